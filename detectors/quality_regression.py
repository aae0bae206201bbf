"""Regression quality (MAE, RMSE, R²) from mergeable sufficient statistics.

The state keeps five numbers whatever the number of pairs: the count, the sums of absolute
and squared errors, and the mean and centred sum of squares (M2) of ``y_true``. M2 is
updated and merged with Chan et al.'s parallel formula rather than as ``Σy² - n·ȳ²``,
which loses every significant digit when targets carry a large offset (``1e6 + noise``).
What remains is the float64 running mean: each merge can pass its last bit (about
``1e-16 · |mean|``) on to M2. With an offset of 1e6, unit spread and one update per pair
R² is off a two-pass computation by about 1e-11; at an offset of 1e9, by about 1e-8.

References
----------
Chan, T. F., Golub, G. H. and LeVeque, R. J. (1979). Updating formulae and a pairwise
algorithm for computing sample variances. Stanford technical report STAN-CS-79-773.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.encoding import FloatArray
from detectors.quality_task import (
    QUALITY_STATE_VERSION,
    QualityTask,
    as_float,
    read_state_header,
    require_finite,
)
from driftline.errors import ConfigurationError, IncompatibleStateError, InvalidInputError

_FIELDS = ("n", "sum_abs_error", "sum_squared_error", "mean_true", "m2_true")


class RegressionState:
    """Mergeable sufficient statistics for MAE, RMSE and R² of a regression model.

    Build one with :meth:`empty`, feed it labeled pairs with :meth:`update`, combine
    partial states from partitions or workers with :meth:`merge` or ``+=``, and read the
    metrics with :func:`regression_metrics`.

    Examples
    --------
    >>> task = QualityTask("regression")
    >>> left = RegressionState.empty(task).update([3.0, -0.5], [2.5, 0.0])
    >>> right = RegressionState.empty(task).update([2.0, 7.0], [2.0, 8.0])
    >>> state = left.merge(right)
    >>> state.n_labeled
    4
    >>> RegressionState.from_dict(state.to_dict()) == state
    True
    """

    def __init__(self, task: QualityTask) -> None:
        if task.kind != "regression":
            raise ConfigurationError(f"RegressionState needs a regression task, got {task.kind!r}")
        self._task = task
        self._n = 0
        self._sum_abs_error = 0.0
        self._sum_squared_error = 0.0
        self._mean_true = 0.0
        self._m2_true = 0.0

    @classmethod
    def empty(cls, task: QualityTask) -> RegressionState:
        """Return the state of a window with no labeled pairs."""
        return cls(task)

    @property
    def task(self) -> QualityTask:
        """The task this state belongs to."""
        return self._task

    @property
    def n_labeled(self) -> int:
        """Number of labeled pairs counted."""
        return self._n

    def update(
        self,
        y_true: Sequence[Any] | npt.NDArray[Any],
        y_pred: Sequence[Any] | npt.NDArray[Any],
    ) -> RegressionState:
        """Count a batch of labeled pairs and return ``self``.

        Raises :class:`InvalidInputError` for lengths that differ or a value that is not a
        finite number; the state is unchanged then. An empty batch changes nothing.
        """
        truth = _finite_numbers(y_true, "y_true")
        predicted = _finite_numbers(y_pred, "y_pred")
        if truth.size != predicted.size:
            raise InvalidInputError(
                f"y_true has {truth.size} values but y_pred has {predicted.size}"
            )
        if truth.size == 0:
            return self
        # Overflow is reported below as invalid input, not as a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            error = truth - predicted
            mean = float(truth.mean())
            batch = (
                int(truth.size),
                float(np.abs(error).sum()),
                float(np.square(error).sum()),
                mean,
                float(np.square(truth - mean).sum()),
            )
        if not all(math.isfinite(value) for value in batch):
            raise InvalidInputError("y_true and y_pred are too large: their errors overflow")
        self._combine(*batch)
        return self

    def _combine(self, n: int, sum_abs: float, sum_sq: float, mean: float, m2: float) -> None:
        if n == 0:
            return
        n_self = self._n
        if n_self == 0:
            self._n, self._sum_abs_error, self._sum_squared_error = n, sum_abs, sum_sq
            self._mean_true, self._m2_true = mean, m2
            return
        total = n_self + n
        delta = mean - self._mean_true
        # Both formulas are symmetric in the two sides, so a + b equals b + a bit for bit.
        self._m2_true = self._m2_true + m2 + delta * delta * (n_self * n / total)
        self._mean_true = (n_self * self._mean_true + n * mean) / total
        self._n = total
        self._sum_abs_error += sum_abs
        self._sum_squared_error += sum_sq

    def merge(self, other: RegressionState) -> RegressionState:
        """Return a new state counting the pairs of both; neither input changes."""
        merged = RegressionState(self._task)
        merged += self
        merged += other
        return merged

    def __iadd__(self, other: RegressionState) -> RegressionState:
        if not isinstance(other, RegressionState):
            raise IncompatibleStateError(
                f"cannot merge a {type(other).__name__} into a RegressionState"
            )
        if other._task != self._task:
            raise IncompatibleStateError(
                f"cannot merge states of different tasks: {self._task} and {other._task}"
            )
        self._combine(
            other._n,
            other._sum_abs_error,
            other._sum_squared_error,
            other._mean_true,
            other._m2_true,
        )
        return self

    def _values(self) -> tuple[int, float, float, float, float]:
        return (
            self._n,
            self._sum_abs_error,
            self._sum_squared_error,
            self._mean_true,
            self._m2_true,
        )

    def to_dict(self, as_arrays: bool = False) -> dict[str, Any]:
        """Return the state as a JSON-safe dict carrying its version and task
        (``as_arrays``, as :meth:`ClassificationState.to_dict` takes it: no arrays here)."""
        data: dict[str, Any] = {"version": QUALITY_STATE_VERSION, "task": self._task.to_dict()}
        data.update(zip(_FIELDS, self._values(), strict=True))
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RegressionState:
        """Read a state written by :meth:`to_dict`.

        Raises :class:`IncompatibleStateError` for an unknown version or a malformed state.
        """
        state = cls(read_state_header(data, ("regression",)))
        try:
            n = data["n"]
            values = [float(data[name]) for name in _FIELDS[1:]]
        except (KeyError, TypeError, ValueError) as exc:
            raise IncompatibleStateError(f"malformed regression state: {exc}") from exc
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise IncompatibleStateError(f"malformed regression state: n = {n!r}")
        if not all(math.isfinite(value) for value in values) or values[0] < 0 or values[1] < 0:
            raise IncompatibleStateError("malformed regression state: bad error sums")
        state._combine(n, *values)
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RegressionState):
            return NotImplemented
        return self._task == other._task and self._values() == other._values()

    def __repr__(self) -> str:
        return f"RegressionState(n_labeled={self._n})"


@dataclass(frozen=True)
class RegressionMetrics:
    """Regression quality of a window; a metric is ``None`` when it is undefined.

    Attributes
    ----------
    n_labeled
        Number of labeled pairs.
    mae, rmse
        Mean absolute error and root mean squared error (``None`` with no pairs).
    r2
        Coefficient of determination (``None`` with fewer than 2 pairs, as scikit-learn
        returns NaN there).
    """

    n_labeled: int
    mae: float | None
    rmse: float | None
    r2: float | None


def regression_metrics(state: RegressionState) -> RegressionMetrics:
    """Compute MAE, RMSE and R² from a regression state.

    The values equal scikit-learn's ``mean_absolute_error``, ``root_mean_squared_error``
    and ``r2_score`` up to rounding. Like ``r2_score``, R² is 1.0 when ``y_true`` is
    constant (total sum of squares 0) and the predictions are exact, and 0.0 when it is
    constant and they are not, instead of a division by zero.

    Examples
    --------
    >>> state = RegressionState.empty(QualityTask("regression"))
    >>> metrics = regression_metrics(state.update([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0]))
    >>> metrics.mae, metrics.rmse, round(metrics.r2, 6)
    (0.5, 0.612372, 0.948608)
    >>> regression_metrics(RegressionState.empty(QualityTask("regression"))).mae is None
    True
    """
    n, sum_abs, sum_sq, _, m2 = state._values()
    if n == 0:
        return RegressionMetrics(n_labeled=0, mae=None, rmse=None, r2=None)
    r2: float | None
    if n < 2:
        r2 = None
    elif m2 == 0.0:
        r2 = 1.0 if sum_sq == 0.0 else 0.0
    else:
        r2 = 1.0 - sum_sq / m2
    return RegressionMetrics(n_labeled=n, mae=sum_abs / n, rmse=math.sqrt(sum_sq / n), r2=r2)


def _finite_numbers(values: Sequence[Any] | npt.NDArray[Any], what: str) -> FloatArray:
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        if values.ndim != 1:
            raise InvalidInputError(f"{what} must be one-dimensional, got shape {values.shape}")
        array = values.astype(np.float64)
    else:
        array = np.array([as_float(value, what) for value in values], dtype=np.float64)
    require_finite(array, what)
    return array
