"""Page-Hinkley charts and ADWIN on label errors (detectors/change.py), checked against River."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import drift

from detectors.change import EitherJudge, PageHinkley, error_changes, page_hinkley
from detectors.control import ControlLimits
from driftline.errors import ConfigurationError
from tests.examples import examples

RiverPageHinkley: Any = drift.PageHinkley
RiverADWIN: Any = drift.ADWIN

finite = st.floats(min_value=-50, max_value=50, allow_nan=False, allow_infinity=False)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_the_statistic_is_rivers_up_to_its_first_alarm(values: list[float], delta: float) -> None:
    """River's PageHinkley (alpha 1, both directions, alarms from the first value on) fires
    at the first position where our statistic passes the threshold."""
    threshold = 3.0
    river = RiverPageHinkley(min_instances=1, delta=delta, threshold=threshold, alpha=1.0)
    river_first = None
    for position, x in enumerate(values):
        river.update(x)
        if river.drift_detected:
            river_first = position
            break
    ours_first = next(
        (i for i in range(len(values)) if max(page_hinkley(values[: i + 1], delta)) > threshold),
        None,
    )
    assert ours_first == river_first


def series_with(values: list[float]) -> list[bool | None]:
    """The chart's verdict on each value given all the values before it."""
    chart = PageHinkley()
    return [chart.evaluate(values[:i], v).anomaly for i, v in enumerate(values)]


def decay_run(seed: int, slope: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = 0.9 + 0.01 * rng.normal(size=120)
    values[60:] -= slope * 0.01 * np.arange(60)  # ``slope`` sigmas a window from window 60
    return values


def first_alarm(values: np.ndarray, judge: Any) -> int | None:
    for i in range(30, len(values)):
        if judge.evaluate(list(values[max(0, i - 30) : i]), float(values[i])).anomaly:
            return i
    return None


def test_a_slow_decay_is_flagged_where_3_sigma_limits_follow_it() -> None:
    """0.1 sigma a window: the chart flags every run, the trailing limits mostly late or never."""
    chart_delays, limits_delays = [], []
    for seed in range(20):
        values = decay_run(seed, 0.1)
        chart, limits = first_alarm(values, PageHinkley()), first_alarm(values, ControlLimits())
        chart_delays.append(math.inf if chart is None else chart - 60)
        limits_delays.append(math.inf if limits is None else limits - 60)
    assert all(d < 40 for d in chart_delays), chart_delays
    assert np.median(chart_delays) < np.median(limits_delays)


def test_false_alarms_on_a_stationary_series_are_rare() -> None:
    rng = np.random.default_rng(7)
    alarms = windows = 0
    for _ in range(40):
        values = list(rng.normal(size=130))
        verdicts = series_with(values)[30:]
        alarms += sum(bool(v) for v in verdicts)
        windows += len(verdicts)
    assert alarms / windows < 0.005, alarms


def test_an_alarm_stays_while_the_shift_does() -> None:
    """A chart marks every point past the change while the evidence is in its window
    (River's detector would reset after the first)."""
    values = [0.0, 1.0] * 15 + [6.0] * 6
    verdicts = series_with(values)
    assert verdicts[30:] == [True] * 6


def test_no_verdict_without_history_or_value() -> None:
    chart = PageHinkley(min_history=5)
    assert chart.evaluate([1.0, 2.0], 3.0).reason == "insufficient history"
    assert chart.evaluate([1.0, 2.0, None, math.nan, 1.5, 2.5, 1.0], None).anomaly is None
    found = chart.evaluate([1.0, 2.0, 1.5, 2.5, 1.0], math.inf)
    assert found.anomaly and found.lower is None and found.upper is None
    steady = chart.evaluate([2.0] * 6, 2.0)
    assert steady.anomaly is False
    assert chart.evaluate([2.0] * 6, 2.5).reason == "constant history"


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"window": 1}, "window"),
        ({"min_history": 40}, "min_history"),
        ({"delta": -1.0}, "delta"),
        ({"threshold": 0.0}, "threshold"),
        ({"min_std": math.nan}, "min_std"),
    ],
)
def test_bad_settings_name_the_setting(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        PageHinkley(**kwargs)


def test_either_judge_takes_the_first_alarm() -> None:
    history = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95]
    both = EitherJudge((ControlLimits(), PageHinkley()))
    quiet = both.evaluate(history, 1.0)
    assert quiet.anomaly is False and quiet.upper is not None  # the limits' verdict stands
    loud = both.evaluate(history, 5.0)
    assert loud.anomaly and loud.reason == "above upper limit"


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.0]), max_size=400), st.sampled_from([0.002, 0.05]))
def test_error_changes_are_rivers_adwin_detections(errors: list[float], delta: float) -> None:
    river = RiverADWIN(delta=delta)
    expected = []
    for position, error in enumerate(errors):
        river.update(error)
        if river.drift_detected:
            expected.append(position)
    assert error_changes(errors, delta) == expected


def test_adwin_finds_a_jump_in_the_error_rate() -> None:
    rng = np.random.default_rng(3)
    errors = np.concatenate([rng.random(3000) < 0.1, rng.random(3000) < 0.3]).astype(float)
    found = error_changes(errors)
    assert found and 3000 <= found[0] < 3600, found
