"""The ``alerts`` section of a model configuration: typed rules, errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.errors import ConfigurationError
from schemas.alert_rules import DEFAULT_RULES
from schemas.model_config import ModelConfig


def config(alerts: dict[str, Any]) -> ModelConfig:
    return ModelConfig.from_dict({"model_id": "churn", "alerts": alerts})


def test_without_rules_a_model_gets_the_defaults_and_disabled_gets_none() -> None:
    assert config({}).alerts.effective_rules() == DEFAULT_RULES
    assert config({"enabled": False}).alerts.effective_rules() == ()
    rules = config({"rules": [{"name": "drift", "kind": "feature_drift", "for_windows": 2}]})
    assert [r.name for r in rules.alerts.effective_rules()] == ["drift"]


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"rules": [{"name": "x", "kind": "volume", "below": 0.5}]}, "alerts.rules[0]"),
        ({"rules": [{"name": "x", "kind": "volume", "below": 0.5}]}, "below: only a metric"),
        ({"rules": [{"name": "x", "kind": "metric", "metric": "f1"}]}, "below or above"),
        ({"rules": [{"name": "x", "kind": "data_quality"}]}, "missing_above"),
        ({"rules": [{"name": "x", "kind": "drift"}]}, "alerts.rules[0].kind"),
        ({"rules": [{"name": "x", "kind": "anomaly", "for_windows": 0}]}, "for_windows"),
        ({"rules": [{"name": "x", "kind": "anomaly", "severity": "page"}]}, "severity"),
        ({"rules": [{"name": "x", "kind": "anomaly", "fro_windows": 2}]}, "fro_windows"),
        (
            {"rules": [{"name": "x", "kind": "anomaly"}, {"name": "x", "kind": "volume"}]},
            "repeated: ['x']",
        ),
        ({"labels": {"model": "other"}}, "set by Driftline"),
        ({"routes": []}, "alerts.routes"),
    ],
)
def test_a_bad_alerts_section_is_refused_naming_the_key(
    alerts: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        config(alerts)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("task", "metric", "message"),
    [
        ("binary", "f2", "unknown metric 'f2'"),
        ("regression", "f1", "'f1' is not computed for task regression"),
        (None, "rmse", "'rmse' is not computed for task None"),
    ],
)
def test_a_metric_rule_must_name_a_metric_of_the_task(
    task: str | None, metric: str, message: str
) -> None:
    data: dict[str, Any] = {
        "model_id": "m",
        "alerts": {"rules": [{"name": "low", "kind": "metric", "metric": metric, "below": 0.5}]},
    }
    if task is not None:
        data["task"] = task
    if task == "binary":
        data["classes"] = ["0", "1"]
    with pytest.raises(ConfigurationError, match=message):
        ModelConfig.from_dict(data)
