"""schemas stays independent of the statistical core yet in step with it.

``schemas`` may not import ``detectors`` (both at the bottom of the layers; the contract is in
pyproject.toml, ``[tool.importlinter]``), so the names and defaults it mirrors are checked here,
where importing both is allowed.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from detectors import (
    ClassificationMetrics,
    ControlLimits,
    DriftConfig,
    QualityTask,
    RegressionMetrics,
    default_registry,
)
from detectors.change import PageHinkley
from detectors.profile import ProfileSettings
from schemas import QUALITY_METRICS, AnomalySettings, DriftSettings, ModelConfig
from schemas.model_settings import METHOD_NAME_PATTERN


def test_drift_settings_map_onto_drift_config() -> None:
    settings = DriftSettings().model_dump()
    settings["also_report"] = tuple(settings["also_report"])
    # The budget is not the core's: registration turns it into alpha (window_alpha).
    assert settings.pop("false_alarms_per_day") is None
    # And the per-value bins are the profile's (registration builds ProfileSettings).
    assert settings.pop("value_bins_max") == ProfileSettings().value_bins_max
    assert DriftConfig(**settings) == DriftConfig()
    assert set(settings) == {field.name for field in dataclasses.fields(DriftConfig)}


def test_anomaly_settings_map_onto_control_limits() -> None:
    settings = AnomalySettings()
    limits = ControlLimits(settings.n_sigma, settings.window, settings.min_history)
    assert limits == ControlLimits()


def test_page_hinkley_settings_default_to_the_chart_defaults() -> None:
    settings = AnomalySettings()
    chart = PageHinkley(
        settings.window,
        settings.min_history,
        delta=settings.page_hinkley_delta,
        threshold=settings.page_hinkley_threshold,
    )
    assert chart == PageHinkley()


def test_quality_metrics_exist_for_their_tasks() -> None:
    classification = {field.name for field in dataclasses.fields(ClassificationMetrics)}
    regression = {field.name for field in dataclasses.fields(RegressionMetrics)}
    for name, (tasks, _) in QUALITY_METRICS.items():
        metrics = regression if tasks == {"regression"} else classification
        assert name in metrics, name


@pytest.mark.parametrize(
    ("task", "classes", "positive"),
    [
        ("binary", ["0", "1"], None),
        ("binary", ["no", "yes"], "no"),
        ("multiclass", ["a", "b"], None),
    ],
)
def test_model_config_task_builds_quality_task(
    task: str, classes: list[str], positive: str | None
) -> None:
    config = ModelConfig.from_dict(
        {"model_id": "m", "task": task, "classes": classes, "positive_class": positive}
    )
    assert config.task is not None
    quality = QualityTask(config.task, tuple(config.classes), config.positive_class)
    assert quality.classes == tuple(config.classes)
    assert quality.positive_class == config.positive_class


def test_registered_method_names_fit_the_config_pattern() -> None:
    names = default_registry().names()
    assert names and all(re.search(METHOD_NAME_PATTERN, name) for name in names)
