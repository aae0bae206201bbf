"""Change detectors for what 3-sigma limits miss: Page-Hinkley over a windowed series, and
River's ADWIN over the per-label error stream.

**Page-Hinkley over a per-window series** (an option beside the 3-sigma limits of
:mod:`detectors.control`, with their interface ``evaluate(history, value) ->
ControlLimitResult``, meant for the quality series). Limits computed from a trailing window
follow a slow decay: each window is compared with windows that have already decayed, so
accuracy sliding a tenth of a sigma a window never leaves its limits. Page-Hinkley (a CUSUM
of deviations from the running mean) accumulates the evidence instead.

- For each verdict the statistic is computed afresh over the last ``window`` usable values
  of the history, then the value; the value is an anomaly when the statistic is above
  ``threshold`` at the value, as a CUSUM chart marks a point out of control. The verdict
  depends on the series only, so a replay or a restart gives the same verdicts and there
  is no detector state to checkpoint. River's ``PageHinkley`` resets after an alarm, and
  on a history that slides by one window each time an alarm inside the history would
  hide the change from every later verdict (measured: half of 1-sigma steps never
  flagged); the statistic is the same as River's up to its first alarm, which
  ``tests/detectors/test_change.py`` checks against River on random series.
- Values are standardised by the history's mean and ``sigma = max(std, min_std)``, so one
  ``delta`` and ``threshold`` (in sigmas) fit accuracy, a mean absolute error and a volume
  alike; ``min_std`` plays the role it plays for the control limits.
- ``None``, NaN and ``±inf`` in the history are skipped as the control limits skip them; a
  missing value gives no verdict, an infinite one is an anomaly; fewer than
  ``min_history`` usable values give no verdict. ``lower``/``upper`` of the result are
  ``None``: a sequential detector has no limits.

Measured on independent normal series (``bench/detection/series.py``, 30-window history,
200 runs): with the defaults ``delta`` 0.5 and ``threshold`` 6 the false alarms are 0.06 %
of windows (3-sigma limits: 0.69 %), and a decay of 0.1 sigma a window is flagged in every
run after 21 windows on average, where the limits need 28 and miss a quarter of runs. A
large step is the 3-sigma limits' strength: ``"both"`` in the settings has both.

**ADWIN over the per-label error stream** (:func:`error_changes`): River's ADWIN fed one
0/1 error (or absolute error) per label in event order, for streams long enough to give
it the hundreds of values its bound needs; on 30 per-window values it never alarms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from river import drift

from detectors.control import ControlLimitResult, _as_float, _check, _moments, _usable

_ADWIN: Any = drift.ADWIN  # River is untyped


class SeriesJudge(Protocol):
    """What judges one value of a windowed series against its history."""

    def evaluate(
        self, history: Sequence[float | None], value: float | None
    ) -> ControlLimitResult: ...


@dataclass(frozen=True)
class EitherJudge:
    """Fires when any of ``judges`` fires; its verdict is the first one that fired.

    Without an alarm the first judge's verdict stands (the 3-sigma limits, whose bounds the
    dashboard draws).
    """

    judges: tuple[SeriesJudge, ...]

    def evaluate(self, history: Sequence[float | None], value: float | None) -> ControlLimitResult:
        verdicts = [judge.evaluate(history, value) for judge in self.judges]
        return next((v for v in verdicts if v.anomaly), verdicts[0])


@dataclass(frozen=True)
class PageHinkley:
    """A Page-Hinkley chart judging one value of a series against its history."""

    window: int = 30
    min_history: int = 5
    min_std: float = 0.0
    delta: float = 0.5  # slack, in sigmas: drifts smaller than this accumulate nothing
    threshold: float = 6.0  # alarm level, in sigmas

    def __post_init__(self) -> None:
        _check("window", self.window, "an integer >= 2", lambda x: x >= 2, integer=True)
        _check(
            "min_history",
            self.min_history,
            f"an integer from 2 to window ({self.window})",
            lambda x: 2 <= x <= self.window,
            integer=True,
        )
        _check("min_std", self.min_std, "a finite number >= 0", lambda x: x >= 0)
        _check("delta", self.delta, "a finite number >= 0", lambda x: x >= 0)
        _check("threshold", self.threshold, "a finite number > 0", lambda x: x > 0)

    def evaluate(self, history: Sequence[float | None], value: float | None) -> ControlLimitResult:
        """Whether the statistic over ``history`` (its last ``window`` values) and ``value``
        is above the threshold at ``value``."""
        number = _as_float(value, "value")
        past = _usable(history, self.window)
        n = len(past)
        mean, std = _moments(past) if n >= 2 else (past[0] if past else None, None)
        if number is None:
            return ControlLimitResult(None, mean, std, None, None, n, None, "missing value")
        if n < self.min_history or mean is None or std is None:
            return ControlLimitResult(
                number, mean, std, None, None, n, None, "insufficient history"
            )
        if not math.isfinite(number):
            return ControlLimitResult(number, mean, std, None, None, n, True, "not finite")
        sigma = max(std, self.min_std)
        if sigma == 0.0:
            within = math.isclose(number, mean, rel_tol=1e-12, abs_tol=0.0)
            reason = "within limits" if within else "constant history"
            return ControlLimitResult(number, mean, std, None, None, n, not within, reason)
        rise, fall = page_hinkley([(x - mean) / sigma for x in [*past, number]], self.delta)
        statistic = max(rise, fall)
        changed = statistic > self.threshold
        moved = "rose" if rise >= fall else "fell"
        reason = f"page-hinkley: level {moved} ({statistic:.1f} sigma)" if changed else "no change"
        return ControlLimitResult(number, mean, std, None, None, n, changed, reason)


def page_hinkley(values: Iterable[float], delta: float) -> tuple[float, float]:
    """The Page-Hinkley statistics for a rise and for a fall, at the last of ``values``.

    River's recursion (``river.drift.PageHinkley`` with ``alpha=1``, both directions) without
    its reset: the cumulative deviations from the running mean, less (for a rise) or plus
    (for a fall) ``delta`` a value, measured from their extreme so far.
    """
    n, mean = 0, 0.0
    rise_sum, fall_sum = 0.0, 0.0
    rise_low, fall_high = math.inf, -1.0  # River's starting extremes
    for x in values:
        n += 1
        mean += (x - mean) / n
        deviation = x - mean
        rise_sum += deviation - delta
        fall_sum += deviation + delta
        rise_low = min(rise_low, rise_sum)
        fall_high = max(fall_high, fall_sum)
    if n == 0:
        return 0.0, 0.0
    return rise_sum - rise_low, fall_high - fall_sum


def error_changes(errors: Iterable[float], delta: float = 0.002) -> list[int]:
    """Positions in the per-label error stream at which River's ADWIN detects a change.

    ``errors`` in event order: 0/1 misclassifications, or absolute errors scaled to [0, 1]
    (ADWIN's bound assumes values in that range).
    """
    detector = _ADWIN(delta=delta)
    found = []
    for position, error in enumerate(errors):
        detector.update(float(error))
        if detector.drift_detected:
            found.append(position)
    return found
