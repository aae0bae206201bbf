"""ModelConfig: defaults, every rule with its field path, and the JSON round trip."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.errors import ConfigurationError
from schemas import ModelConfig
from schemas.alert_rules import DEFAULT_RULES


def test_defaults() -> None:
    config = ModelConfig.from_dict({"model_id": "churn"})
    assert (config.task, config.classes, config.positive_class, config.features) == (
        None,
        [],
        None,
        {},
    )
    assert (config.window_seconds, config.allowed_lateness_seconds) == (3600, 300)
    assert (config.label_horizon_seconds, config.baseline_windows) == (7 * 86400, 3)
    assert config.drift.warning_thresholds == {"psi": 0.1}
    assert config.drift.also_report == ["ks"]
    assert (config.anomaly.n_sigma, config.anomaly.window, config.anomaly.min_history) == (3, 30, 5)
    retrain = config.retrain
    assert (retrain.min_drifted_windows, retrain.of_last_windows) == (3, 5)
    assert retrain.enabled and retrain.include_output_drift and retrain.metric is None
    assert retrain.cooldown_seconds == 86400
    assert config.alerts.rules is None and config.alerts.effective_rules() == DEFAULT_RULES


@pytest.mark.parametrize(
    ("data", "positive"),
    [
        ({"task": "binary", "classes": ["0", "1"]}, "1"),
        ({"task": "binary", "classes": ["churn", "stay"], "positive_class": "churn"}, "churn"),
        ({"task": "multiclass", "classes": ["a", "b", "c"]}, None),
        ({"task": "regression"}, None),
    ],
)
def test_tasks(data: dict[str, Any], positive: str | None) -> None:
    assert ModelConfig.from_dict({"model_id": "m", **data}).positive_class == positive


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"retrain": {"min_drifted_windows": 4, "of_last_windows": 3}},
            "retrain.of_last_windows: must be >= min_drifted_windows (4), got 3",
        ),
        (
            {"anomaly": {"window": 10, "min_history": 11}},
            "anomaly.min_history: must be <= window (10), got 11",
        ),
        (
            {"task": "binary", "classes": ["a", "b", "c"]},
            "classes: a binary task needs exactly 2 classes, got 3",
        ),
        ({"task": "binary"}, "classes: a binary task needs exactly 2 classes, got 0"),
        ({"task": "multiclass", "classes": ["a"]}, "classes: a multiclass task needs at least 2"),
        ({"task": "regression", "classes": ["a"]}, "classes: only binary and multiclass tasks"),
        ({"classes": ["a", "b"]}, "classes: only binary and multiclass tasks take classes"),
        ({"task": "multiclass", "classes": ["a", "b", "a"]}, "classes: duplicate class labels"),
        ({"task": "binary", "classes": [0, 1]}, "classes[0]: input should be a valid string"),
        ({"task": "ranking"}, "task: input should be 'binary', 'multiclass' or 'regression'"),
        (
            {"task": "binary", "classes": ["a", "b"], "positive_class": "c"},
            "positive_class: must be one of the classes ['a', 'b'], got 'c'",
        ),
        (
            {"task": "multiclass", "classes": ["a", "b"], "positive_class": "a"},
            "positive_class: only a binary task takes a positive_class",
        ),
        ({"model_id": "bad id"}, "model_id: string should match pattern"),
        ({"model_id": None}, "model_id: input should be a valid string"),
        (
            {"features": {"age": "float"}},
            "features.age: input should be 'numeric' or 'categorical'",
        ),
        ({"window_seconds": 0}, "window_seconds: input should be greater than or equal to 1"),
        ({"window_seconds": "3600"}, "window_seconds: input should be a valid integer"),
        ({"window_seconds": True}, "window_seconds: input should be a valid integer"),
        ({"allowed_lateness_seconds": -1}, "allowed_lateness_seconds: input should be greater"),
        ({"label_horizon_seconds": 0}, "label_horizon_seconds: input should be greater"),
        ({"baseline_windows": 0}, "baseline_windows: input should be greater"),
        ({"drift": {"drift_share": 0}}, "drift.drift_share: input should be greater than 0"),
        ({"drift": {"drift_share": 1.5}}, "drift.drift_share: input should be less than or equal"),
        ({"drift": {"numeric_method": ""}}, "drift.numeric_method: string should have at least"),
        ({"drift": {"thresholds": {"psi": "high"}}}, "drift.thresholds.psi: input should be a"),
        ({"drift": {"methods": {}}}, "drift.methods: unknown field"),
        ({"drift": {"verdicts": "sometimes"}}, "drift.verdicts: input should be 'fixed' or"),
        ({"drift": {"alpha": 1}}, "drift.alpha: input should be less than 1"),
        ({"anomaly": {"n_sigma": 0}}, "anomaly.n_sigma: input should be greater than 0"),
        ({"anomaly": {"window": 1}}, "anomaly.window: input should be greater than or equal to 2"),
        ({"anomaly": {"min_std": {"volume": -1}}}, "anomaly.min_std.volume: input should be"),
        ({"retrain": {"min_drifted_windows": 0}}, "retrain.min_drifted_windows: input should be"),
        ({"retrain": {"cooldown_seconds": -1}}, "retrain.cooldown_seconds: input should be"),
        (
            {"retrain": {"metric": "auc", "metric_below": 0.7}},
            "retrain.metric: unknown metric 'auc'",
        ),
        ({"retrain": {"metric_below": 0.7}}, "retrain: metric_below needs metric to be set"),
        ({"retrain": {"on_metric_anomaly": True}}, "retrain: on_metric_anomaly needs metric"),
        ({"retrain": {"metric": "accuracy"}}, "retrain: metric needs a rule"),
        (
            {"retrain": {"metric": "accuracy", "metric_below": 0.8, "metric_above": 0.99}},
            "retrain: set metric_below or metric_above, not both",
        ),
        (
            {"task": "regression", "retrain": {"metric": "rmse", "metric_below": 3.0}},
            "retrain: rmse is an error metric (lower is better): use metric_above",
        ),
        (
            {
                "task": "binary",
                "classes": ["0", "1"],
                "retrain": {"metric": "f1", "metric_above": 0.9},
            },
            "retrain: higher f1 is better: use metric_below",
        ),
        (
            {"task": "regression", "retrain": {"metric": "accuracy", "metric_below": 0.8}},
            "retrain: metric 'accuracy' needs a binary or multiclass task, but task is regression",
        ),
        (
            {"retrain": {"metric": "mae", "metric_above": 2.0}},
            "retrain: metric 'mae' needs a regression task, but task is None",
        ),
        ({"auto_register": True}, "auto_register: unknown field"),
    ],
)
def test_invalid_config(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ModelConfig.from_dict({"model_id": "m", **data})
    assert message in str(caught.value)


def test_every_problem_is_listed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        ModelConfig.from_dict({"model_id": "", "window_seconds": 0, "drift": {"drift_share": 2}})
    assert str(caught.value).count("; ") == 2


def test_from_json_reports_bad_json_as_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"^not valid JSON: "):
        ModelConfig.from_json('{"model_id": "m",}')


def test_constructor_raises_pydantic_errors_for_code() -> None:
    with pytest.raises(ValueError, match="of_last_windows"):
        ModelConfig.model_validate(
            {"model_id": "m", "retrain": {"min_drifted_windows": 4, "of_last_windows": 3}}
        )


def test_full_config_json_round_trip() -> None:
    data: dict[str, Any] = {
        "model_id": "churn",
        "description": "Churn model of the web shop",
        "task": "binary",
        "classes": ["stay", "churn"],
        "positive_class": "churn",
        "features": {"age": "numeric", "plan": "categorical"},
        "window_seconds": 900,
        "allowed_lateness_seconds": 60,
        "label_horizon_seconds": 86400,
        "baseline_windows": 4,
        "drift": {
            "numeric_method": "ks",
            "categorical_method": "chisquare",
            "feature_methods": {"plan": "psi"},
            "also_report": ["wasserstein"],
            "thresholds": {"ks": 0.01},
            "warning_thresholds": {},
            "drift_share": 0.3,
            "verdicts": "calibrated",
            "alpha": 0.02,
            "effect_floors": {"psi": 0.15},
            "value_bins_max": 12,
            "false_alarms_per_day": 2.0,
        },
        "anomaly": {
            "n_sigma": 2.5,
            "window": 20,
            "min_history": 8,
            "min_std": {"volume": 5.0},
            "quality_detector": "both",
            "page_hinkley_delta": 0.25,
            "page_hinkley_threshold": 8.0,
        },
        "retrain": {
            "enabled": True,
            "features": ["age"],
            "min_drifted_windows": 2,
            "of_last_windows": 2,
            "include_output_drift": False,
            "metric": "roc_auc",
            "metric_below": 0.7,
            "metric_above": None,
            "on_metric_anomaly": True,
            "cooldown_seconds": 0,
        },
        "alerts": {
            "enabled": True,
            "rules": [
                {
                    "name": "f1-low",
                    "kind": "metric",
                    "severity": "critical",
                    "for_windows": 2,
                    "keep_firing_windows": 1,
                    "features": [],
                    "share_above": None,
                    "metric": "f1",
                    "below": 0.7,
                    "above": None,
                    "min_labeled": 50,
                    "series": [],
                    "missing_above": None,
                    "unseen_above": None,
                    "out_of_range_above": None,
                    "min_rows": 1,
                }
            ],
            "labels": {"team": "risk"},
        },
    }
    config = ModelConfig.from_dict(data)
    assert json.loads(config.to_json()) == data
    assert ModelConfig.from_json(config.to_json()) == config


@given(
    st.sampled_from(["binary", "multiclass", "regression", None]),
    st.integers(1, 10**6),
    st.integers(1, 50),
    st.integers(0, 50),
    st.floats(min_value=0.001, max_value=1.0),
)
def test_json_round_trip(task: str | None, window: int, k: int, extra: int, share: float) -> None:
    classes = {"binary": ["n", "y"], "multiclass": ["a", "b", "c"]}.get(task or "", [])
    config = ModelConfig.from_dict(
        {
            "model_id": "m",
            "task": task,
            "classes": classes,
            "window_seconds": window,
            "drift": {"drift_share": share},
            "retrain": {"min_drifted_windows": k, "of_last_windows": k + extra},
        }
    )
    assert ModelConfig.from_json(config.to_json()) == config
    assert ModelConfig.from_json(config.to_json(indent=None)) == config
