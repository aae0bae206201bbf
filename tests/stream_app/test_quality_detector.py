"""The anomaly settings pick the judge of each series: 3-sigma limits, Page-Hinkley or both."""

from __future__ import annotations

import pytest

from detectors import ControlLimits
from detectors.change import EitherJudge, PageHinkley
from driftline.errors import ConfigurationError
from stream_app.registry import ModelRuntime
from tests.stream_app import scenario


def runtime(**anomaly: object) -> ModelRuntime:
    return ModelRuntime(scenario.model_config(anomaly={"min_history": 3, **anomaly}), None)


def test_the_default_is_3_sigma_limits_everywhere() -> None:
    found = runtime().control_limits("metric:accuracy")
    assert isinstance(found, ControlLimits) and found.min_history == 3


def test_page_hinkley_judges_the_quality_metrics_only() -> None:
    chosen = runtime(quality_detector="page_hinkley", page_hinkley_threshold=4.0)
    chart = chosen.control_limits("metric:accuracy")
    assert isinstance(chart, PageHinkley)
    assert (chart.threshold, chart.delta, chart.min_history) == (4.0, 0.5, 3)
    assert chart.min_std > 0, "the metric's sigma floor applies to the chart too"
    assert isinstance(chosen.control_limits("volume"), ControlLimits)
    assert isinstance(chosen.control_limits("drift:age"), ControlLimits)


def test_both_fire_on_either() -> None:
    judge = runtime(quality_detector="both").control_limits("metric:f1")
    assert isinstance(judge, EitherJudge)
    assert [type(j) for j in judge.judges] == [ControlLimits, PageHinkley]


def test_an_unknown_detector_names_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="quality_detector") as raised:
        runtime(quality_detector="adwin")
    assert "page_hinkley" in str(raised.value)
