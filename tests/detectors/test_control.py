"""Tests for detectors.control: 3-sigma control limits over trailing windows and baselines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from detectors.control import (
    BASELINE_VERSION,
    ControlLimitResult,
    ControlLimits,
    FrozenBaseline,
    reference_window_series,
)
from driftline.errors import ConfigurationError, IncompatibleStateError, InvalidInputError
from tests.examples import examples

NAN, INF = math.nan, math.inf
UNIT = [-1.0, -1.0, 0.0, 1.0, 1.0]  # mean 0 and sample std 1, both exact in floating point
DEFAULT = ControlLimits()


# (limits, history, value, anomaly, reason, n_history)
VERDICTS = [
    pytest.param(DEFAULT, [], 1.0, None, "insufficient history", 0, id="empty-history"),
    pytest.param(DEFAULT, [], None, None, "missing value", 0, id="empty-history-missing-value"),
    pytest.param(DEFAULT, [2.0], 100.0, None, "insufficient history", 1, id="one-value"),
    pytest.param(DEFAULT, UNIT[:4], 100.0, None, "insufficient history", 4, id="min-history-1"),
    pytest.param(DEFAULT, UNIT, 3.5, True, "above upper limit", 5, id="exactly-min-history"),
    pytest.param(DEFAULT, UNIT, -3.5, True, "below lower limit", 5, id="below"),
    pytest.param(DEFAULT, UNIT, 2.9, False, "within limits", 5, id="within"),
    pytest.param(DEFAULT, UNIT, 3.0, False, "within limits", 5, id="on-upper-limit"),
    pytest.param(DEFAULT, UNIT, -3.0, False, "within limits", 5, id="on-lower-limit"),
    pytest.param(
        DEFAULT, UNIT, math.nextafter(3.0, INF), True, "above upper limit", 5, id="just-above"
    ),
    pytest.param(
        DEFAULT, UNIT, math.nextafter(-3.0, -INF), True, "below lower limit", 5, id="just-below"
    ),
    pytest.param(
        ControlLimits(n_sigma=2.0), UNIT, 2.5, True, "above upper limit", 5, id="n-sigma-2"
    ),
    pytest.param(DEFAULT, [4.0] * 6, 4.0, False, "within limits", 6, id="constant-equal"),
    pytest.param(
        DEFAULT, [0.1] * 7, 0.1 * (1 + 1e-13), False, "within limits", 7, id="constant-rel-tol"
    ),
    pytest.param(DEFAULT, [4.0] * 6, 4.001, True, "constant history", 6, id="constant-above"),
    pytest.param(DEFAULT, [0.0] * 6, -1e-300, True, "constant history", 6, id="constant-zero"),
    pytest.param(
        ControlLimits(min_std=0.01), [0.0] * 6, 0.02, False, "within limits", 6, id="min-std-floor"
    ),
    pytest.param(
        ControlLimits(min_std=0.01),
        [0.0] * 6,
        0.031,
        True,
        "above upper limit",
        6,
        id="min-std-out",
    ),
    pytest.param(
        ControlLimits(min_std=0.5), UNIT, 3.5, True, "above upper limit", 5, id="min-std-below-std"
    ),
    pytest.param(DEFAULT, UNIT, None, None, "missing value", 5, id="value-none"),
    pytest.param(DEFAULT, UNIT, NAN, None, "missing value", 5, id="value-nan"),
    pytest.param(DEFAULT, UNIT, INF, True, "above upper limit", 5, id="value-inf"),
    pytest.param(DEFAULT, UNIT, -INF, True, "below lower limit", 5, id="value-minus-inf"),
    pytest.param(DEFAULT, [4.0] * 6, INF, True, "above upper limit", 6, id="constant-inf"),
    pytest.param(DEFAULT, UNIT[:3], INF, None, "insufficient history", 3, id="short-inf"),
    pytest.param(
        DEFAULT,
        [None, -1.0, NAN, -1.0, INF, 0.0, -INF, 1.0, None, 1.0, NAN],
        3.5,
        True,
        "above upper limit",
        5,
        id="unusable-history-skipped",
    ),
    pytest.param(
        DEFAULT,
        [None, NAN, INF, -INF, 1.0, 2.0, 3.0],
        1.0,
        None,
        "insufficient history",
        3,
        id="unusable-history-not-counted",
    ),
    # All 9 values: std ~ 70.7, so 5.0 is well within; the last 5 alone: std 1, so it is out.
    pytest.param(
        ControlLimits(window=5),
        [-100.0, 100.0, -100.0, 100.0, *UNIT],
        5.0,
        True,
        "above upper limit",
        5,
        id="window-truncation",
    ),
    pytest.param(
        ControlLimits(window=9),
        [-100.0, 100.0, -100.0, 100.0, *UNIT],
        5.0,
        False,
        "within limits",
        9,
        id="window-covers-all",
    ),
    # The window counts usable values: the trailing NaNs do not push old values in.
    pytest.param(
        ControlLimits(window=5),
        [-100.0, 100.0, *UNIT, NAN, None, NAN],
        5.0,
        True,
        "above upper limit",
        5,
        id="window-counts-usable-values",
    ),
]


@pytest.mark.parametrize(("limits", "history", "value", "anomaly", "reason", "n"), VERDICTS)
def test_verdicts(
    limits: ControlLimits,
    history: list[float | None],
    value: float | None,
    anomaly: bool | None,
    reason: str,
    n: int,
) -> None:
    result = limits.evaluate(history, value)
    assert result.anomaly is anomaly
    assert result.reason == reason
    assert result.n_history == n


def test_unit_history_limits_and_direction() -> None:
    result = DEFAULT.evaluate(UNIT, 3.5)
    assert (result.mean, result.std, result.lower, result.upper) == (0.0, 1.0, -3.0, 3.0)
    assert result.direction == "above"
    assert DEFAULT.evaluate(UNIT, -3.5).direction == "below"
    assert DEFAULT.evaluate(UNIT, 0.5).direction is None
    assert DEFAULT.evaluate(UNIT, None).direction is None
    assert DEFAULT.evaluate([4.0] * 6, 3.0).direction == "below"


def test_short_history_reports_moments_without_limits() -> None:
    one = DEFAULT.evaluate([2.0], 1.0)
    assert (one.mean, one.std, one.lower, one.upper) == (None, None, None, None)
    two = DEFAULT.evaluate([1.0, 3.0], 1.0)
    assert two.mean == 2.0
    assert two.std == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert (two.lower, two.upper, two.anomaly) == (None, None, None)


def test_missing_value_still_reports_limits() -> None:
    result = DEFAULT.evaluate(UNIT, None)
    assert result.value is None
    assert (result.lower, result.upper) == (-3.0, 3.0)


def test_constant_history_collapses_limits_onto_mean() -> None:
    result = DEFAULT.evaluate([7.5] * 10, 7.5)
    assert (result.mean, result.std, result.lower, result.upper) == (7.5, 0.0, 7.5, 7.5)
    assert result.anomaly is False


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("size", [2, 5, 30, 31, 200])
def test_moments_and_limits_match_numpy(seed: int, size: int) -> None:
    rng = np.random.default_rng(seed)
    history = rng.normal(loc=rng.uniform(-1e3, 1e3), scale=rng.uniform(1e-3, 1e3), size=size)
    limits = ControlLimits(n_sigma=2.5, window=30, min_history=2)
    result = limits.evaluate(history.tolist(), 0.0)
    used = history[-30:]
    mean, std = float(np.mean(used)), float(np.std(used, ddof=1))
    assert result.n_history == used.size
    assert result.mean is not None and result.std is not None
    assert result.lower is not None and result.upper is not None
    np.testing.assert_allclose([result.mean, result.std], [mean, std], rtol=1e-12)
    np.testing.assert_allclose(
        [result.lower, result.upper], [mean - 2.5 * std, mean + 2.5 * std], rtol=1e-12
    )
    frozen = ControlLimits(min_history=2).baseline(history.tolist())
    assert frozen.mean is not None and frozen.std is not None
    np.testing.assert_allclose(
        [frozen.mean, frozen.std],
        [float(np.mean(history)), float(np.std(history, ddof=1))],
        rtol=1e-12,
    )


def test_numpy_arrays_and_numpy_scalars_are_accepted() -> None:
    result = DEFAULT.evaluate(np.array(UNIT), np.float64(3.5))  # type: ignore[arg-type]
    assert result.anomaly is True
    assert isinstance(result.mean, float)


def test_non_numeric_input_is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="str"):
        DEFAULT.evaluate(UNIT, "3.5")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="bool"):
        DEFAULT.evaluate([*UNIT, True], 1.0)


def test_simulated_false_alarm_rate_and_shift_detection() -> None:
    rng = np.random.default_rng(20240601)
    stream = rng.standard_normal(10_000).tolist()
    limits = ControlLimits()  # 3 sigma, window 30, min_history 5
    verdicts = [limits.evaluate(stream[max(0, t - 30) : t], stream[t]) for t in range(len(stream))]
    judged = [v.anomaly for v in verdicts if v.anomaly is not None]
    assert len(judged) == len(stream) - 5
    rate = sum(judged) / len(judged)
    # Normal tail alone: 0.27%; estimating mean and std from 30 points widens it (t with 29 dof).
    assert 0.001 <= rate <= 0.015
    full_window = 2 * stats.t.sf(3.0 / math.sqrt(1 + 1 / 30), df=29)
    assert rate == pytest.approx(full_window, rel=0.5)
    shifted = [limits.evaluate(stream[t - 30 : t], 6.0) for t in range(30, len(stream))]
    assert all(v.anomaly and v.direction == "above" for v in shifted)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_sigma": 0.0}, "n_sigma must be a finite number > 0"),
        ({"n_sigma": -3.0}, "n_sigma"),
        ({"n_sigma": INF}, "n_sigma"),
        ({"n_sigma": NAN}, "n_sigma"),
        ({"n_sigma": "3"}, "n_sigma"),
        ({"window": 1}, "window must be an integer >= 2"),
        ({"window": 30.0}, "window"),
        ({"window": True}, "window"),
        ({"min_history": 1}, r"2 <= min_history <= window \(30\)"),
        ({"window": 10, "min_history": 11}, "min_history"),
        ({"min_history": 5.0}, "min_history"),
        ({"min_std": -0.1}, "min_std must be a finite number >= 0"),
        ({"min_std": INF}, "min_std"),
        ({"min_std": None}, "min_std"),
    ],
)
def test_invalid_hyperparameters(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        ControlLimits(**kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)


def test_valid_edge_hyperparameters() -> None:
    limits = ControlLimits(n_sigma=1e-9, window=2, min_history=2, min_std=0)
    assert limits.evaluate([1.0, 2.0], 1.5).anomaly is False


def test_baseline_freezes_and_judges() -> None:
    frozen = ControlLimits().baseline([None, *UNIT, NAN, INF])
    assert (frozen.mean, frozen.std, frozen.n) == (0.0, 1.0, 5)
    assert (frozen.lower, frozen.upper) == (-3.0, 3.0)
    result = frozen.evaluate(-3.5)
    assert (result.anomaly, result.reason, result.n_history) == (True, "below lower limit", 5)
    assert frozen.evaluate(3.0).anomaly is False
    assert frozen.evaluate(None).anomaly is None
    assert frozen.evaluate(NAN).reason == "missing value"
    assert frozen.evaluate(INF).anomaly is True


def test_baseline_uses_every_usable_value_not_the_window() -> None:
    values = list(range(100))
    frozen = ControlLimits(window=5).baseline(values)
    assert frozen.n == 100
    assert frozen.mean == pytest.approx(np.mean(values), rel=1e-12)


@pytest.mark.parametrize("values", [[], [1.0, 2.0, 3.0, 4.0], [None, NAN, INF, 1.0, 2.0, 3.0, 4.0]])
def test_baseline_needs_min_history_values(values: list[float | None]) -> None:
    with pytest.raises(InvalidInputError, match="min_history=5"):
        DEFAULT.baseline(values)


def test_baseline_with_overflowing_std_is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="too large"):
        ControlLimits(min_history=2).baseline([-1.7e308, 1.7e308])


def test_frozen_baseline_validates_and_reads_state() -> None:
    with pytest.raises(ConfigurationError, match="std"):
        FrozenBaseline(mean=0.0, std=-1.0, n=5)
    with pytest.raises(ConfigurationError, match="n must be an integer >= 2"):
        FrozenBaseline(mean=0.0, std=1.0, n=1)
    with pytest.raises(ConfigurationError, match="mean"):
        FrozenBaseline(mean=NAN, std=1.0, n=5)
    good = FrozenBaseline(0.0, 1.0, 5).to_dict()
    assert good["version"] == BASELINE_VERSION
    with pytest.raises(IncompatibleStateError, match="version"):
        FrozenBaseline.from_dict({**good, "version": BASELINE_VERSION + 1})
    with pytest.raises(IncompatibleStateError, match="cannot be read"):
        FrozenBaseline.from_dict({k: v for k, v in good.items() if k != "std"})
    with pytest.raises(IncompatibleStateError, match="cannot be read"):
        FrozenBaseline.from_dict({**good, "n": 1})


# (values, window_rows, expected series)
WINDOW_SERIES = [
    pytest.param([], 3, [], id="empty"),
    pytest.param([1.0], 3, [], id="less-than-half-a-window"),
    pytest.param([1.0, 2.0], 3, [1.5], id="at-least-half-a-window"),
    pytest.param([1.0, 2.0, 3.0], 1, [1.0, 2.0, 3.0], id="one-row-windows"),
    pytest.param(list(range(12)), 4, [1.5, 5.5, 9.5], id="whole-windows"),
    pytest.param(list(range(13)), 4, [1.5, 5.5, 9.5], id="partial-dropped"),
    pytest.param(list(range(14)), 4, [1.5, 5.5, 9.5, 12.5], id="half-kept"),
    pytest.param(list(range(5)), 5, [2.0], id="single-window"),
]


@pytest.mark.parametrize(("values", "rows", "expected"), WINDOW_SERIES)
def test_reference_window_series(values: list[float], rows: int, expected: list[float]) -> None:
    assert reference_window_series(values, rows) == expected
    assert reference_window_series(np.asarray(values, dtype=float), rows) == expected


def test_reference_window_series_custom_statistic_feeds_a_baseline() -> None:
    rng = np.random.default_rng(7)
    column = rng.normal(10.0, 2.0, size=1_000)
    series = reference_window_series(column, 100, statistic=np.std)
    assert series == [float(np.std(column[i : i + 100])) for i in range(0, 1_000, 100)]
    frozen = ControlLimits().baseline(series)
    assert frozen.n == 10
    assert frozen.evaluate(float(np.std(column[:100]) * 3)).anomaly is True


@pytest.mark.parametrize("rows", [0, -1, 2.0, True, None])
def test_reference_window_series_invalid_window_rows(rows: object) -> None:
    with pytest.raises(ConfigurationError, match="window_rows must be an integer >= 1"):
        reference_window_series([1.0, 2.0], rows)  # type: ignore[arg-type]


def test_reference_window_series_rejects_2d() -> None:
    with pytest.raises(InvalidInputError, match="one-dimensional"):
        reference_window_series(np.ones((3, 2)), 2)


maybe_floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@settings(deadline=None, max_examples=examples(300))
@given(
    history=st.lists(maybe_floats, max_size=40),
    value=maybe_floats,
    window=st.integers(min_value=2, max_value=12),
    data=st.data(),
)
def test_evaluate_never_raises_and_abstains_exactly_when_it_should(
    history: list[float | None],
    value: float | None,
    window: int,
    data: st.DataObject,
) -> None:
    min_history = data.draw(st.integers(min_value=2, max_value=window))
    min_std = data.draw(st.sampled_from([0.0, 1e-6, 1.0]))
    limits = ControlLimits(window=window, min_history=min_history, min_std=min_std)
    result = limits.evaluate(history, value)
    assert isinstance(result, ControlLimitResult)
    usable = min(window, sum(1 for x in history if x is not None and math.isfinite(x)))
    missing = value is None or math.isnan(value)
    assert result.n_history == usable
    assert (result.anomaly is None) == (usable < min_history or missing)
    assert (result.mean is None) == (usable < 2)
    if result.anomaly is not None and value is not None and math.isfinite(value):
        assert result.lower is not None
        assert result.upper is not None
        if result.lower < result.upper:
            assert result.anomaly == (value < result.lower or value > result.upper)
    assert (result.direction is not None) == bool(result.anomaly)
    if missing:
        assert result.reason == "missing value"
    if value is not None and math.isinf(value) and usable >= min_history:
        assert result.anomaly is True


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e150, max_value=1e150)


@settings(deadline=None, max_examples=examples(200))
@given(
    values=st.lists(finite, min_size=2, max_size=50),
    n_sigma=st.floats(min_value=0.1, max_value=10.0),
    min_std=st.floats(min_value=0.0, max_value=1e3),
)
def test_frozen_baseline_round_trips(values: list[float], n_sigma: float, min_std: float) -> None:
    frozen = ControlLimits(n_sigma=n_sigma, min_history=2, min_std=min_std).baseline(values)
    state = frozen.to_dict()
    assert FrozenBaseline.from_dict(state) == frozen
    assert FrozenBaseline.from_dict(json.loads(json.dumps(state, allow_nan=False))) == frozen
    assert frozen.evaluate(frozen.upper).anomaly is False
    assert frozen.evaluate(frozen.lower).anomaly is False
