"""Cheap data-quality signals per feature and window, read off the window's counts.

Every rate has the denominator that makes it meaningful, and is ``None`` when that
denominator is zero (an empty window is not a window with a 0 % missing rate):

- ``missing_rate``: missing values (``None``, NaN, or the column absent from the event)
  over the rows of the window;
- ``invalid_rate``: values of the wrong type (strings in a numeric column, ``±inf``,
  bools, nested objects) over the rows of the window;
- ``out_of_range_rate`` (numeric): values below the reference minimum or above its maximum
  over the valid values;
- ``unseen_rate`` (categorical): categories never seen in the reference over the valid values;
- ``mean`` (numeric): mean of the valid values, the series the prediction-mean control
  chart watches.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.window import CategoricalCounts, ColumnCounts


@dataclass(frozen=True)
class DataQualityResult:
    """Data-quality signals of one column in one window."""

    feature: str
    n_rows: int
    n_valid: int
    missing_rate: float | None
    invalid_rate: float | None
    out_of_range_rate: float | None = None
    unseen_rate: float | None = None
    mean: float | None = None


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def data_quality(feature: str, counts: ColumnCounts, n_rows: int) -> DataQualityResult:
    """Data-quality signals of ``feature`` from its window counts.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.window import NumericCounts
    >>> counts = NumericCounts(np.array([1, 5, 2]), n_missing=2, total=14.0)
    >>> result = data_quality("age", counts, n_rows=10)
    >>> result.missing_rate, result.out_of_range_rate, result.mean
    (0.2, 0.375, 1.75)
    """
    n_valid = counts.n
    missing_rate = _rate(counts.n_missing, n_rows)
    invalid_rate = _rate(counts.n_invalid, n_rows)
    if isinstance(counts, CategoricalCounts):
        return DataQualityResult(
            feature,
            n_rows,
            n_valid,
            missing_rate,
            invalid_rate,
            unseen_rate=_rate(counts.n_unseen, n_valid),
        )
    return DataQualityResult(
        feature,
        n_rows,
        n_valid,
        missing_rate,
        invalid_rate,
        out_of_range_rate=_rate(counts.n_out_of_range, n_valid),
        mean=counts.total / n_valid if n_valid else None,
    )
