"""Three-sigma control limits ("3-sigma anomalies") for any windowed series Driftline tracks.

A series is one number per window (event volume, prediction mean, a drift score, a quality
metric, a missing rate). A value is an anomaly when it lies strictly outside ``mean ± n_sigma *
sigma`` with ``sigma = max(std, min_std)``; a value on a limit is not. The limits come from the
last ``window`` usable values before the value (:meth:`ControlLimits.evaluate`) or are frozen
from a baseline series (:meth:`ControlLimits.baseline`, e.g. on :func:`reference_window_series`
of the reference data), as River's Shewhart chart freezes its centre line after warm-up.

- ``std`` is the sample standard deviation (``ddof=1``), the estimate a Shewhart individuals
  chart takes from data; with the 5 to 30 points of a window ``ddof=0`` would understate sigma.
- ``None``, NaN and ``±inf`` in a history are skipped, not counted in ``n_history``. A value of
  ``None`` or NaN gives no verdict, reason ``"missing value"``, whatever the history; ``±inf``
  is an anomaly once there is enough history. With fewer than ``min_history`` usable values
  there are no limits and no verdict (``"insufficient history"``); mean and std are still
  reported from 2 values on.
- ``sigma == 0`` (constant history, ``min_std == 0``): the limits collapse onto the mean. A value
  equal to the mean (within 1e-12 relative) is within limits, any other is an anomaly with
  reason ``"constant history"``: a series that never moved and now moves is news. Where that is
  too noisy (a rate that sits at 0, then ticks), set ``min_std``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftline.errors import ConfigurationError, IncompatibleStateError, InvalidInputError

BASELINE_VERSION = 1


@dataclass(frozen=True)
class ControlLimitResult:
    """The verdict on one value; ``anomaly`` is ``None`` when no verdict can be given."""

    value: float | None
    mean: float | None
    std: float | None
    lower: float | None
    upper: float | None
    n_history: int
    anomaly: bool | None
    reason: str

    @property
    def direction(self) -> Literal["above", "below"] | None:
        """``"above"`` or ``"below"`` the limits for an anomaly, else ``None``."""
        if not self.anomaly or self.value is None or self.mean is None:
            return None
        return "above" if self.value > self.mean else "below"


def _check(
    name: str, x: object, allowed: str, ok: Callable[[float], bool], integer: bool = False
) -> None:
    """Raise ConfigurationError unless ``x`` is a finite real (an int if asked) passing ``ok``."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(x, bool) or not isinstance(x, kind) or not math.isfinite(x) or not ok(float(x)):
        raise ConfigurationError(f"{name} must be {allowed}, got {x!r}")


def _check_sigma(n_sigma: float, min_std: float) -> None:
    _check("n_sigma", n_sigma, "a finite number > 0", lambda x: x > 0)
    _check("min_std", min_std, "a finite number >= 0", lambda x: x >= 0)


def _as_float(x: object, what: str) -> float | None:
    if type(x) is float:  # the common case; the ABC checks below cost ~1.5 µs a value
        return None if math.isnan(x) else x
    if x is None:
        return None
    if isinstance(x, bool | np.bool_) or not isinstance(x, numbers.Real):
        raise InvalidInputError(f"{what} must be real numbers or None, got {type(x).__name__}")
    number = float(x)
    return None if math.isnan(number) else number


def _usable(values: Sequence[float | None], last: int | None) -> list[float]:
    """The finite values, oldest first; only the ``last`` ones when it is given."""
    picked: list[float] = []
    for item in reversed(values):
        number = _as_float(item, "history values")
        if number is not None and math.isfinite(number):
            picked.append(number)
            if len(picked) == last:
                break
    picked.reverse()
    return picked


def _moments(values: list[float]) -> tuple[float, float]:
    """Mean and sample std (``ddof=1``) of two or more finite values."""
    lo, hi = min(values), max(values)
    if lo == hi:
        return lo, 0.0
    # Scaling by a power of two is exact, so this is numpy's result bit for bit wherever numpy
    # neither overflows nor underflows; sums near the float maximum cannot overflow here (the
    # std still may, to inf, which then gives infinite limits).
    scale = math.ldexp(1.0, math.frexp(max(-lo, hi))[1] - 1)
    scaled = np.asarray(values, dtype=np.float64) / scale
    return float(np.mean(scaled)) * scale, float(np.std(scaled, ddof=1)) * scale


def _verdict(
    value: float | None, mean: float, std: float, n: int, n_sigma: float, min_std: float
) -> ControlLimitResult:
    sigma = max(std, min_std)
    lower, upper = mean - n_sigma * sigma, mean + n_sigma * sigma
    anomaly: bool | None = True
    if value is None:
        anomaly, reason = None, "missing value"
    elif math.isfinite(value) and sigma == 0.0:
        within = math.isclose(value, mean, rel_tol=1e-12, abs_tol=0.0)
        anomaly, reason = not within, "within limits" if within else "constant history"
    elif value > upper or value == math.inf:
        reason = "above upper limit"
    elif value < lower or value == -math.inf:
        reason = "below lower limit"
    else:
        anomaly, reason = False, "within limits"
    return ControlLimitResult(value, mean, std, lower, upper, n, anomaly, reason)


@dataclass(frozen=True)
class FrozenBaseline:
    """Control limits frozen from a baseline series; see :meth:`ControlLimits.baseline`."""

    mean: float
    std: float
    n: int
    n_sigma: float = 3.0
    min_std: float = 0.0

    def __post_init__(self) -> None:
        _check("mean", self.mean, "a finite number", lambda x: True)
        _check("std", self.std, "a finite number >= 0", lambda x: x >= 0)
        _check("n", self.n, "an integer >= 2", lambda x: x >= 2, integer=True)
        _check_sigma(self.n_sigma, self.min_std)

    @property
    def lower(self) -> float:
        return self.mean - self.n_sigma * max(self.std, self.min_std)

    @property
    def upper(self) -> float:
        return self.mean + self.n_sigma * max(self.std, self.min_std)

    def evaluate(self, value: float | None) -> ControlLimitResult:
        """Judge one value against the frozen limits (``n_history`` is the baseline's ``n``)."""
        number = _as_float(value, "value")
        return _verdict(number, self.mean, self.std, self.n, self.n_sigma, self.min_std)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict with a ``"version"`` key; :meth:`from_dict` reads it back."""
        keys = ("mean", "std", "n", "n_sigma", "min_std")
        return {"version": BASELINE_VERSION} | {key: getattr(self, key) for key in keys}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FrozenBaseline:
        """Read what :meth:`to_dict` wrote, else raise :class:`IncompatibleStateError`."""
        if data.get("version") != BASELINE_VERSION:
            raise IncompatibleStateError(
                f"baseline version {data.get('version')!r} is not {BASELINE_VERSION}; rebuild it"
            )
        try:
            n_sigma, min_std = float(data["n_sigma"]), float(data["min_std"])
            return cls(float(data["mean"]), float(data["std"]), int(data["n"]), n_sigma, min_std)
        except (KeyError, TypeError, ValueError) as error:
            raise IncompatibleStateError(f"stored baseline cannot be read: {error}") from error


@dataclass(frozen=True)
class ControlLimits:
    """Shewhart-style ``n_sigma`` control limits over a trailing window or a frozen baseline.

    Parameters
    ----------
    n_sigma
        Half-width of the limits in standard deviations; finite and > 0.
    window
        How many trailing usable values the limits are computed from; an integer >= 2.
    min_history
        Fewer usable values than this give no verdict; an integer, 2 <= min_history <= window.
    min_std
        Floor on sigma, so a series that barely moves does not alert on noise; finite, >= 0.
    """

    n_sigma: float = 3.0
    window: int = 30
    min_history: int = 5
    min_std: float = 0.0

    def __post_init__(self) -> None:
        _check("window", self.window, "an integer >= 2", lambda x: x >= 2, integer=True)
        allowed = f"an integer with 2 <= min_history <= window ({self.window})"
        in_range: Callable[[float], bool] = lambda x: 2 <= x <= self.window  # noqa: E731
        _check("min_history", self.min_history, allowed, in_range, integer=True)
        _check_sigma(self.n_sigma, self.min_std)

    def evaluate(self, history: Sequence[float | None], value: float | None) -> ControlLimitResult:
        """Judge ``value`` against the last ``window`` usable values of ``history``.

        Examples
        --------
        >>> limits = ControlLimits(n_sigma=3.0, window=30, min_history=5)
        >>> history = [-1.0, None, -1.0, 0.0, 1.0, float("nan"), 1.0]  # mean 0, std 1
        >>> result = limits.evaluate(history, 3.5)
        >>> result.anomaly, result.reason, result.direction, result.n_history
        (True, 'above upper limit', 'above', 5)
        >>> result.lower, result.upper
        (-3.0, 3.0)
        >>> limits.evaluate(history, -3.0).anomaly  # on the limit is not outside it
        False
        >>> limits.evaluate(history[:3], 9.0).reason
        'insufficient history'
        >>> limits.evaluate(history, None).reason
        'missing value'
        """
        number = _as_float(value, "value")
        past = _usable(history, self.window)
        mean, std = _moments(past) if len(past) >= 2 else (None, None)
        if mean is not None and std is not None and len(past) >= self.min_history:
            return _verdict(number, mean, std, len(past), self.n_sigma, self.min_std)
        reason = "missing value" if number is None else "insufficient history"
        return ControlLimitResult(number, mean, std, None, None, len(past), None, reason)

    def baseline(self, values: Sequence[float | None]) -> FrozenBaseline:
        """Freeze mean and std from every usable value of a baseline series.

        ``window`` does not apply. Raises :class:`InvalidInputError` when fewer than
        ``min_history`` values are usable.

        Examples
        --------
        >>> frozen = ControlLimits(min_history=3).baseline([9.0, 10.0, None, 11.0])
        >>> frozen.mean, frozen.std, frozen.n, frozen.lower, frozen.upper
        (10.0, 1.0, 3, 7.0, 13.0)
        >>> frozen.evaluate(13.5).reason
        'above upper limit'
        """
        usable = _usable(values, None)
        if len(usable) < self.min_history:
            raise InvalidInputError(
                f"a baseline needs min_history={self.min_history} finite values, got {len(usable)}"
            )
        mean, std = _moments(usable)
        if not math.isfinite(std):
            raise InvalidInputError("baseline values are too large for a finite std")
        return FrozenBaseline(mean, std, len(usable), self.n_sigma, self.min_std)


def reference_window_series(
    values: Sequence[float] | npt.NDArray[Any],
    window_rows: int,
    statistic: Callable[[npt.NDArray[np.float64]], Any] = np.mean,
) -> list[float]:
    """Cut a reference column into windows of ``window_rows`` rows and summarise each one.

    Windows are consecutive and do not overlap. A trailing partial window is kept when it holds
    at least half of ``window_rows`` rows and dropped otherwise, so a sliver of a window does
    not enter the baseline; fewer rows than half a window give ``[]``. ``statistic`` receives
    each window as a float array, NaN included (so it can be a missing rate).

    Examples
    --------
    >>> reference_window_series(np.arange(10.0), window_rows=4)  # last window: 2 of 4 rows
    [1.5, 5.5, 8.5]
    >>> reference_window_series(np.arange(9.0), window_rows=4)  # last window: 1 of 4 rows
    [1.5, 5.5]
    >>> reference_window_series([1.0, np.nan, 3.0, 4.0], 2, lambda w: np.isnan(w).mean())
    [0.5, 0.0]
    """
    _check("window_rows", window_rows, "an integer >= 1", lambda x: x >= 1, integer=True)
    column, rows = np.asarray(values, dtype=np.float64), int(window_rows)
    if column.ndim != 1:
        raise InvalidInputError(f"reference values must be one-dimensional, got {column.shape}")
    size, starts = column.size, range(0, column.size, rows)
    return [
        float(statistic(column[s : s + rows])) for s in starts if 2 * min(rows, size - s) >= rows
    ]
