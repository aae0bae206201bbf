"""The detection harness's scoring (bench/detection/scoring.py) on hand-made verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from bench.detection.scoring import score
from bench.detection.streams import category_mix, population, vanishing_value

NONE: frozenset[str] = frozenset()
X = frozenset({"x"})
Y = frozenset({"y"})


def test_stationary_false_alarms_are_windows_with_any_drift() -> None:
    result = score([[NONE, X, NONE, Y], [NONE, NONE, NONE, NONE]], None, None, seconds=0.8)
    assert result.false_alarm_rate == pytest.approx(2 / 8)
    assert result.caught_at_once is None and result.recall is None
    assert result.seconds_per_window == pytest.approx(0.1)


def test_a_change_caught_at_once_late_and_missed() -> None:
    runs = [
        [NONE, NONE, X, X],  # caught at once: true positive
        [Y, NONE, NONE, X],  # a false alarm before; caught one window late (within tolerance)
        [NONE, NONE, NONE, NONE],  # missed
    ]
    result = score(runs, change_point=2, target="x", seconds=1.2)
    assert result.false_alarm_rate == pytest.approx(1 / 6)
    assert result.caught_at_once == pytest.approx(1 / 3)
    assert result.mean_delay == pytest.approx(0.5)
    assert result.missed == 1
    assert result.recall == pytest.approx(2 / 3)
    assert result.precision == pytest.approx(2 / 3)  # 2 true onsets, 1 false (run 2's Y)


def test_an_alarm_that_persists_is_one_detection() -> None:
    result = score([[NONE, X, X, X]], change_point=1, target="x", seconds=1.0)
    assert result.precision == 1.0 and result.recall == 1.0


def test_the_injected_changes_have_the_stated_size() -> None:
    rng = np.random.default_rng(1)
    frame = population(rng, 200_000)
    before = frame["plan"].value_counts(normalize=True)
    after = category_mix("plan", 0.1)(frame.copy(), rng)["plan"].value_counts(normalize=True)
    total_variation = 0.5 * (after - before).abs().sum()
    assert total_variation == pytest.approx(0.1, abs=0.005)
    gone = vanishing_value("month", 1.0)(frame.copy(), rng)
    assert (gone["month"] == 1.0).sum() == 0
    assert gone["month"].value_counts(normalize=True).max() < 0.1


def test_driftline_with_missing_limits_flags_a_missing_value_burst_once_it_has_history() -> None:
    import numpy as np

    from bench.detection.__main__ import DETECTORS
    from bench.detection.streams import missing_burst, population
    from detectors import build_profile

    rng = np.random.default_rng(4)
    profile = build_profile(population(rng, 4_000))
    name = next(n for n in DETECTORS if "missing-rate limits" in n)
    judge = DETECTORS[name](profile)
    quiet = [judge(population(rng, 500)) for _ in range(6)]
    burst = judge(missing_burst("normal2", 0.15)(population(rng, 500), rng))
    assert not any("normal2" in v for v in quiet)
    assert "normal2" in burst
    fresh = DETECTORS[name](profile)  # a new run has no history: no verdict on its first window
    assert "normal2" not in fresh(missing_burst("normal2", 0.15)(population(rng, 500), rng))
