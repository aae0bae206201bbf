"""Turning raw column values into what the statistics count.

Events arrive as JSON, so a column is a list of numbers, strings, bools and ``None``; a
batch built by a caller may also be a numpy array. Two rules hold everywhere:

- **numeric columns**: ``None`` and NaN are *missing*; ``±inf``, strings, bools and any
  other object are *invalid*. Both are counted, neither enters a distribution. Strings are
  never parsed (``"3.5"`` is invalid, not 3.5): a producer sending strings has a bug that
  a count makes visible, while parsing would hide it.
- **categorical columns**: every value becomes a string key (:func:`category_key`), so
  ``True``, ``"true"`` and the JSON ``true`` are one category and ``3`` and ``3.0`` are one
  category. ``None`` and NaN are missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BinnedColumn:
    """A numeric column whose reference bins a decoder has already found.

    ``bins[i] == np.searchsorted(edges, values[i], side="left")`` for the profile's fine
    edges, and ``-1`` where ``values[i]`` is NaN (missing). The native envelope decoder bins
    while it parses, which spares the window update a numpy search over the same values.
    """

    values: FloatArray
    bins: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.values.size)

    def take(self, rows: npt.NDArray[np.intp]) -> BinnedColumn:
        return BinnedColumn(self.values[rows], self.bins[rows])


ColumnValues = Sequence[Any] | npt.NDArray[Any]


def category_key(value: Any) -> str | None:
    """Return the category a raw value belongs to, or ``None`` when it is missing.

    Examples
    --------
    >>> category_key(True), category_key("b"), category_key(3), category_key(3.0)
    ('true', 'b', '3', '3')
    >>> category_key(None) is None, category_key(float("nan")) is None
    (True, True)
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    return str(value)


def coerce_numeric(values: ColumnValues) -> tuple[FloatArray, int, int]:
    """Split a numeric column into its finite values and the missing and invalid counts.

    Returns ``(finite_values, n_missing, n_invalid)``; ``len(finite_values) + n_missing +
    n_invalid == len(values)``. A float or integer numpy array takes a vectorised path, and
    so does a list holding only ints, floats and ``None``; other lists are checked value by
    value so no string or bool slips in.

    Examples
    --------
    >>> finite, missing, invalid = coerce_numeric([1.5, None, float("nan"), "2", True, 3])
    >>> finite.tolist(), missing, invalid
    ([1.5, 3.0], 2, 2)
    >>> finite, missing, invalid = coerce_numeric(np.array([1.0, np.inf, np.nan]))
    >>> finite.tolist(), missing, invalid
    ([1.0], 1, 1)
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
        return _split_floats(values.astype(np.float64, copy=False).ravel())
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        return np.empty(0, dtype=np.float64), 0, int(values.size)
    # JSON columns are mostly plain numbers and None: checking the types present is a C
    # loop, and then numpy converts the list at once (None becomes NaN, i.e. missing).
    if set(map(type, values)) <= _PLAIN_NUMBER_TYPES:
        try:
            return _split_floats(np.array(values, dtype=np.float64))
        except OverflowError:  # an int too large for a double: the careful path says so
            pass
    return _coerce_numeric_objects(values)


_PLAIN_NUMBER_TYPES = {float, int, type(None)}


def _split_floats(array: FloatArray) -> tuple[FloatArray, int, int]:
    if array.dtype.kind == "f":
        finite_mask = np.isfinite(array)
        if finite_mask.all():
            return array, 0, 0
        n_missing = int(np.isnan(array).sum())
        n_invalid = int(array.size - finite_mask.sum()) - n_missing
        return array[finite_mask], n_missing, n_invalid
    return array, 0, 0


def _coerce_numeric_objects(values: ColumnValues) -> tuple[FloatArray, int, int]:
    finite: list[float] = []
    n_missing = 0
    n_invalid = 0
    append = finite.append
    for value in values:
        # bool is a subclass of int: test it first so True is not read as 1.0.
        if isinstance(value, bool | np.bool_):
            n_invalid += 1
        elif isinstance(value, int | float | np.integer | np.floating):
            try:
                number = float(value)
            except OverflowError:  # an int beyond the range of a double
                n_invalid += 1
                continue
            if math.isfinite(number):
                append(number)
            elif math.isnan(number):
                n_missing += 1
            else:
                n_invalid += 1
        elif value is None:
            n_missing += 1
        else:
            n_invalid += 1
    return np.asarray(finite, dtype=np.float64), n_missing, n_invalid
