"""Window state: the sufficient statistics of one (model, window), fed with batches.

A :class:`WindowState` is a plain value: counts per reference bin for every column, the
missing / invalid / out-of-range tallies, a few float sums, and optionally the quality
state of the labeled pairs. It holds no reference to the profile (only its fingerprint),
so it serializes to JSON and back and can live in a Faust table.

The laws the stream relies on:

- ``a.merge(b) == b.merge(a)`` and ``(a.merge(b)).merge(c) == a.merge(b.merge(c))``;
- feeding two batches into one state equals merging the states of each batch;
- its size is bounded by columns x bins (+ classes x score bins), whatever the event count.

Counts are exact integers, so the laws hold exactly for them; float sums (means, distances
beyond the reference range) hold to rounding.

What a batch may contain is documented in :mod:`detectors.encoding`: missing and invalid
values are counted per column, never dropped silently. Columns of the profile that a batch
lacks count as missing for every row of the batch; columns the profile does not know raise
:class:`UnknownFeatureError`.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from detectors.encoding import (
    BinnedColumn,
    ColumnValues,
    IntArray,
    category_key,
    coerce_numeric,
)
from detectors.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from detectors.quality import (
    ClassificationState,
    QualityTask,
    RegressionState,
    empty_quality_state,
    quality_state_from_dict,
)
from driftline.errors import IncompatibleStateError, InvalidInputError

WINDOW_STATE_VERSION = 1
# What to_bytes writes first (orjson keeps to_dict's order): the fingerprint, plain (no
# escapes: anything else makes fingerprint_of read the whole state).
_FINGERPRINT_HEAD = re.compile(
    rb'\{"version":(\d{1,9}),"fingerprint":"([\x20-\x21\x23-\x5b\x5d-\x7e]*)"'
)
_HEAD_BYTES = 256

QualityState = ClassificationState | RegressionState


class UnknownFeatureError(InvalidInputError):
    """A batch carries a column that the reference profile does not know."""


@dataclass(eq=False)
class NumericCounts:
    """Fine-bin counts of one numeric column plus what the bins cannot tell."""

    counts: IntArray
    n_missing: int = 0
    n_invalid: int = 0
    total: float = 0.0
    below_excess: float = 0.0
    above_excess: float = 0.0

    @property
    def n(self) -> int:
        """Finite values counted in the bins."""
        return int(self.counts.sum())

    @property
    def n_out_of_range(self) -> int:
        return int(self.counts[0] + self.counts[-1])

    def update(self, profile: NumericProfile, values: ColumnValues | BinnedColumn) -> None:
        bins: npt.NDArray[np.integer[Any]]
        if isinstance(values, BinnedColumn):
            finite, bins = values.values, values.bins
            if bins.size and bins.min() < 0:  # missing values: bin -1
                present = bins >= 0
                self.n_missing += int(bins.size - present.sum())
                finite, bins = finite[present], bins[present]
        else:
            finite, n_missing, n_invalid = coerce_numeric(values)
            self.n_missing += n_missing
            self.n_invalid += n_invalid
            bins = np.searchsorted(profile.edges_array, finite, side="left")
        if finite.size == 0:
            return
        batch_counts = np.bincount(bins, minlength=self.counts.size)
        self.counts += batch_counts
        # Sums of values near 1e308 overflow to inf; that is kept (and serialized as
        # "inf"), so numpy need not warn about it.
        with np.errstate(over="ignore"):
            self.total += float(finite.sum())
            # Distances beyond the reference range make Wasserstein exact in the tails;
            # they are only computed when a batch has such values, the rare case.
            if batch_counts[0]:
                self.below_excess += float((profile.minimum - finite[bins == 0]).sum())
            if batch_counts[-1]:
                self.above_excess += float(
                    (finite[bins == self.counts.size - 1] - profile.maximum).sum()
                )

    def merged(self, other: NumericCounts) -> NumericCounts:
        return NumericCounts(
            counts=self.counts + other.counts,
            n_missing=self.n_missing + other.n_missing,
            n_invalid=self.n_invalid + other.n_invalid,
            total=self.total + other.total,
            below_excess=self.below_excess + other.below_excess,
            above_excess=self.above_excess + other.above_excess,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "counts": self.counts.tolist(),
            "n_missing": self.n_missing,
            "n_invalid": self.n_invalid,
            "total": _json_float(self.total),
            "below_excess": _json_float(self.below_excess),
            "above_excess": _json_float(self.above_excess),
        }


@dataclass(eq=False)
class CategoricalCounts:
    """Counts per top-K reference category, then one "other" bin; unseen is part of other."""

    counts: IntArray
    n_unseen: int = 0
    n_missing: int = 0
    n_invalid: int = 0

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def update(self, profile: CategoricalProfile, values: ColumnValues) -> None:
        try:
            tally = Counter(values.tolist() if isinstance(values, np.ndarray) else values)
        except TypeError:
            # An unhashable value (a list or dict where a scalar belongs): count it invalid.
            self._update_unhashable(profile, values)
            return
        for value, count in tally.items():
            self._add(profile, value, count)

    def _update_unhashable(self, profile: CategoricalProfile, values: ColumnValues) -> None:
        for value in values:
            self._add(profile, value, 1)

    def _add(self, profile: CategoricalProfile, value: Any, count: int) -> None:
        index = profile.index_of.get(value) if isinstance(value, str) else None
        if index is not None:
            self.counts[index] += count
            return
        if isinstance(value, list | dict | tuple | set):
            self.n_invalid += count
            return
        key = category_key(value)
        if key is None:
            self.n_missing += count
            return
        index = profile.index_of.get(key)
        if index is not None:
            self.counts[index] += count
            return
        self.counts[-1] += count
        if key not in profile.rare_set:
            self.n_unseen += count

    def merged(self, other: CategoricalCounts) -> CategoricalCounts:
        return CategoricalCounts(
            counts=self.counts + other.counts,
            n_unseen=self.n_unseen + other.n_unseen,
            n_missing=self.n_missing + other.n_missing,
            n_invalid=self.n_invalid + other.n_invalid,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "counts": self.counts.tolist(),
            "n_unseen": self.n_unseen,
            "n_missing": self.n_missing,
            "n_invalid": self.n_invalid,
        }


ColumnCounts = NumericCounts | CategoricalCounts


class WindowState:
    """Mergeable sufficient statistics of one (model, window).

    Examples
    --------
    >>> import pandas as pd
    >>> from detectors.profile import build_profile
    >>> profile = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": list("aabb")}))
    >>> a = WindowState.empty(profile).update(profile, {"x": [1.5, None], "c": ["a", "z"]})
    >>> b = WindowState.empty(profile).update(profile, {"x": [9.0], "c": ["b"]})
    >>> merged = a.merge(b)
    >>> merged.n_rows, merged.columns["x"].n_missing, merged.columns["c"].n_unseen
    (3, 1, 1)
    >>> WindowState.from_bytes(merged.to_bytes()) == merged
    True
    """

    __slots__ = ("columns", "fingerprint", "n_rows", "quality")

    def __init__(
        self,
        fingerprint: str,
        columns: dict[str, ColumnCounts],
        n_rows: int = 0,
        quality: QualityState | None = None,
    ) -> None:
        self.fingerprint = fingerprint
        self.columns = columns
        self.n_rows = n_rows
        self.quality = quality

    @classmethod
    def empty(cls, profile: ReferenceProfile, task: QualityTask | None = None) -> WindowState:
        """A state with nothing counted, laid out for ``profile`` (and ``task`` if labeled)."""
        columns: dict[str, ColumnCounts] = {}
        for name, column in profile.columns.items():
            if isinstance(column, NumericProfile):
                columns[name] = NumericCounts(np.zeros(len(column.edges) + 1, dtype=np.int64))
            else:
                columns[name] = CategoricalCounts(np.zeros(column.n_coarse_bins, dtype=np.int64))
        quality = empty_quality_state(task) if task is not None else None
        return cls(profile.fingerprint, columns, 0, quality)

    def update(
        self, profile: ReferenceProfile, batch: Mapping[str, ColumnValues | BinnedColumn]
    ) -> WindowState:
        """Count a batch of rows given as columns; mutates and returns ``self``.

        Raises
        ------
        IncompatibleStateError
            ``profile`` is not the one this state was laid out for.
        UnknownFeatureError
            A column is not in the profile (nothing is counted then).
        InvalidInputError
            Columns of different lengths (nothing is counted then).
        """
        self._check_profile(profile)
        unknown = [name for name in batch if name not in profile.columns]
        if unknown:
            raise UnknownFeatureError(
                f"columns {sorted(unknown)} are not in the reference profile "
                f"(known: {sorted(profile.columns)}); drop them or re-profile the reference"
            )
        lengths = {name: len(values) for name, values in batch.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidInputError(f"batch columns have different lengths: {lengths}")
        n = next(iter(lengths.values()), 0)
        if n == 0:
            return self
        for name, column in profile.columns.items():
            counts = self.columns[name]
            values = batch.get(name)
            if values is None:
                counts.n_missing += n
            elif isinstance(counts, NumericCounts) and isinstance(column, NumericProfile):
                counts.update(column, values)
            elif isinstance(counts, CategoricalCounts) and isinstance(column, CategoricalProfile):
                # Only numeric columns come binned; a binned one here is counted by value.
                counts.update(column, values.values if isinstance(values, BinnedColumn) else values)
        self.n_rows += n
        return self

    def update_labels(
        self,
        y_true: ColumnValues,
        y_pred: ColumnValues,
        scores: ColumnValues | None = None,
    ) -> WindowState:
        """Count labeled pairs for the quality metrics; mutates and returns ``self``."""
        if self.quality is None:
            raise InvalidInputError(
                "this window state was created without a QualityTask; pass task= to "
                "WindowState.empty to count labeled pairs"
            )
        if isinstance(self.quality, ClassificationState):
            self.quality.update(y_true, y_pred, scores)
        else:
            self.quality.update(y_true, y_pred)
        return self

    def merge(self, other: WindowState) -> WindowState:
        """A new state holding both states' counts."""
        if other.fingerprint != self.fingerprint:
            raise IncompatibleStateError(
                f"cannot merge window states of different reference profiles "
                f"({self.fingerprint} vs {other.fingerprint})"
            )
        columns = {
            name: _merge_counts(counts, other.columns[name])
            for name, counts in self.columns.items()
        }
        quality: QualityState | None
        if self.quality is None or other.quality is None:
            if self.quality is not other.quality:
                raise IncompatibleStateError(
                    "cannot merge a labeled window state with an unlabeled one"
                )
            quality = None
        else:
            quality = self.quality.merge(other.quality)  # type: ignore[arg-type]
        return WindowState(self.fingerprint, columns, self.n_rows + other.n_rows, quality)

    def __iadd__(self, other: WindowState) -> WindowState:
        return self.merge(other)

    def _check_profile(self, profile: ReferenceProfile) -> None:
        if profile.fingerprint != self.fingerprint:
            raise IncompatibleStateError(
                f"window state was laid out for profile {self.fingerprint}, "
                f"not {profile.fingerprint}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": WINDOW_STATE_VERSION,
            "fingerprint": self.fingerprint,
            "n_rows": self.n_rows,
            "columns": {name: counts.to_dict() for name, counts in self.columns.items()},
            "quality": self.quality.to_dict() if self.quality is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WindowState:
        if data.get("version") != WINDOW_STATE_VERSION:
            raise IncompatibleStateError(
                f"window state version {data.get('version')!r} cannot be read by this "
                f"Driftline (reads version {WINDOW_STATE_VERSION}); rebuild the window"
            )
        columns = {name: _counts_from_dict(spec) for name, spec in data["columns"].items()}
        quality = quality_state_from_dict(data["quality"]) if data["quality"] else None
        return cls(str(data["fingerprint"]), columns, int(data["n_rows"]), quality)

    def to_bytes(self) -> bytes:
        """Compact form for tables and topics: JSON, deflated (bins are mostly zeros)."""
        # orjson: the state is written once per batch on the hot path; stdlib json is 5x slower.
        return zlib.compress(orjson.dumps(self.to_dict()), 1)

    @classmethod
    def from_bytes(cls, payload: bytes) -> WindowState:
        try:
            data = orjson.loads(zlib.decompress(payload))
        except (zlib.error, orjson.JSONDecodeError) as exc:
            raise IncompatibleStateError(f"not a serialized window state: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def fingerprint_of(cls, payload: bytes) -> str:
        """The fingerprint of a state in its :meth:`to_bytes` form, as :meth:`from_bytes`
        reads it, from its first bytes alone: a label revision needs it to pick the
        reference, and reading the whole ~20 KB state for it was a tenth of a revision."""
        try:
            head = zlib.decompressobj().decompress(payload, _HEAD_BYTES)
        except zlib.error:
            head = b""
        found = _FINGERPRINT_HEAD.match(head)
        if found is not None and int(found[1]) == WINDOW_STATE_VERSION:
            return found[2].decode()
        return cls.from_bytes(payload).fingerprint  # says what is wrong, if anything is

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WindowState):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"WindowState(fingerprint={self.fingerprint!r}, n_rows={self.n_rows}, "
            f"columns={len(self.columns)}, labeled={self.quality is not None})"
        )


def _merge_counts(a: ColumnCounts, b: ColumnCounts) -> ColumnCounts:
    if isinstance(a, NumericCounts) and isinstance(b, NumericCounts):
        return a.merged(b)
    if isinstance(a, CategoricalCounts) and isinstance(b, CategoricalCounts):
        return a.merged(b)
    raise IncompatibleStateError("cannot merge numeric counts with categorical counts")


def _json_float(value: float) -> float | str:
    # JSON has no infinity: a sum that overflowed travels as "inf" and reads back as one.
    return value if math.isfinite(value) else repr(value)


def _counts_from_dict(spec: Mapping[str, Any]) -> ColumnCounts:
    counts = np.asarray(spec["counts"], dtype=np.int64)
    if spec["kind"] == "numeric":
        return NumericCounts(
            counts=counts,
            n_missing=int(spec["n_missing"]),
            n_invalid=int(spec["n_invalid"]),
            total=float(spec["total"]),
            below_excess=float(spec["below_excess"]),
            above_excess=float(spec["above_excess"]),
        )
    return CategoricalCounts(
        counts=counts,
        n_unseen=int(spec["n_unseen"]),
        n_missing=int(spec["n_missing"]),
        n_invalid=int(spec["n_invalid"]),
    )
