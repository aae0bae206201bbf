"""Reference profiles: what the training or validation data looked like, in bins.

A profile is built once from a reference DataFrame (or a CSV / Parquet file) and is then
the yardstick every window is compared with. It keeps, per column:

- **numeric**: *fine* bin edges at the reference's quantiles (``ks_resolution`` of them,
  default 200) plus the reference counts in those bins, the coarse PSI edges (``psi_bins``
  quantile bins, default 10, open-ended outer bins) which are a subset of the fine edges,
  the reference range, mean, standard deviation and missing count;
- **categorical**: the ``top_k`` most frequent categories with their counts, the count of
  all other reference values, the names of those other categories (up to ``max_rare``) so
  a rare-but-known category is not reported as unseen, and the missing count.

Bins are right-closed: fine bin ``i`` holds ``edges[i-1] < x <= edges[i]``; bin ``0`` holds
everything ``<= edges[0]`` and the last bin everything ``> edges[-1]``. The first fine edge
is the float just below the reference minimum and the last is the reference maximum, so
bin ``0`` counts exactly the values below the reference range and the last bin exactly the
values above it.

Documented handling of awkward columns:

- few distinct values (at most ``ks_resolution + 1``): every value is a fine edge and has
  a bin of its own, so KS is exact and the profile is marked ``discrete``;
- atoms (a value holding more than half a fine bin's share of the reference) get a bin of
  their own, so ties do not widen the KS error;
- the coarse PSI bins do the same at their scale: a value holding more than half a PSI
  bin's share (5 % at 10 bins) gets a PSI bin of its own, and a column with at most
  ``value_bins_max`` (20) distinct values a PSI bin per value, as if categorical (declare
  such a column categorical to drop KS and Wasserstein for it, or set ``value_bins_max``
  to 0 for plain quantile bins);
- constant column: one value, so the fine bins are "below", "the value", "above" and any
  other value in a window is out of range and shifts PSI sharply;
- all-missing column: :class:`~driftline.errors.ProfileError` (exclude it, or fix the data);
- mixed types (strings and numbers in one column): ``ProfileError`` unless the kind is
  declared in ``schema``; a column declared categorical turns every value into a string
  key, a column declared numeric must not hold strings, bools or infinities;
- integers are numeric unless declared categorical (low-cardinality codes).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from detectors.encoding import FloatArray, IntArray, category_key, coerce_numeric
from driftline.errors import ConfigurationError, ProfileError

PROFILE_FORMAT = "driftline.reference-profile"
PROFILE_VERSION = 1


class FeatureKind(StrEnum):
    """How a column is binned and which drift methods apply to it."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"

    @classmethod
    def parse(cls, value: str | FeatureKind) -> FeatureKind:
        """Read a kind from configuration, naming the valid kinds when it is unknown."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(kind.value for kind in cls)
            raise ConfigurationError(
                f"unknown feature kind {value!r}; use one of: {valid}"
            ) from None


@dataclass(frozen=True)
class ProfileSettings:
    """Resolution of a profile; validated so a bad value fails before any data is read.

    Parameters
    ----------
    psi_bins
        Number of quantile bins for PSI, Jensen-Shannon and chi-square (>= 2).
    ks_resolution
        Number of fine quantile bins for KS and Wasserstein (>= 10). The KS statistic
        computed from them is within ``1 / ks_resolution`` of the exact one.
    top_k
        Categories kept by name (>= 1); the rest form the "other" bin.
    max_rare
        Names of "other" reference categories remembered to tell rare from unseen (>= 0).
    value_bins_max
        A numeric column with at most this many distinct reference values (counts, months,
        ratings) gets one PSI bin per value, as a categorical column would, instead of
        quantile bins that merge neighbouring values (>= 0; 0 turns the rule off). KS and
        Wasserstein keep using the values' order.
    """

    psi_bins: int = 10
    ks_resolution: int = 200
    top_k: int = 20
    max_rare: int = 1000
    value_bins_max: int = 20

    def __post_init__(self) -> None:
        checks = [
            ("psi_bins", self.psi_bins, 2),
            ("ks_resolution", self.ks_resolution, 10),
            ("top_k", self.top_k, 1),
            ("max_rare", self.max_rare, 0),
            ("value_bins_max", self.value_bins_max, 0),
        ]
        for name, value, minimum in checks:
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class NumericProfile:
    """Reference distribution of a numeric column (see the module docstring for bins)."""

    name: str
    n: int
    n_missing: int
    minimum: float
    maximum: float
    mean: float
    std: float
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    psi_edges: tuple[float, ...]
    bin_means: tuple[float, ...]
    discrete: bool = False
    kind: FeatureKind = field(default=FeatureKind.NUMERIC, init=False)

    @cached_property
    def edges_array(self) -> FloatArray:
        return np.asarray(self.edges, dtype=np.float64)

    @cached_property
    def counts_array(self) -> IntArray:
        return np.asarray(self.counts, dtype=np.int64)

    @cached_property
    def bin_means_array(self) -> FloatArray:
        return np.asarray(self.bin_means, dtype=np.float64)

    @cached_property
    def coarse_index(self) -> IntArray:
        """For every fine bin, the PSI bin that contains it (PSI edges are fine edges)."""
        upper_edges = np.append(self.edges_array, np.inf)
        return np.searchsorted(np.asarray(self.psi_edges), upper_edges, side="left").astype(
            np.int64
        )

    @property
    def n_coarse_bins(self) -> int:
        return len(self.psi_edges) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "n": self.n,
            "n_missing": self.n_missing,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "edges": list(self.edges),
            "counts": list(self.counts),
            "psi_edges": list(self.psi_edges),
            "bin_means": list(self.bin_means),
            "discrete": self.discrete,
        }


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference frequencies of a categorical column: top-K by name, the rest as "other"."""

    name: str
    n: int
    n_missing: int
    categories: tuple[str, ...]
    counts: tuple[int, ...]
    other_count: int
    rare_categories: tuple[str, ...]
    rare_truncated: bool
    kind: FeatureKind = field(default=FeatureKind.CATEGORICAL, init=False)

    @cached_property
    def index_of(self) -> dict[str, int]:
        return {category: i for i, category in enumerate(self.categories)}

    @cached_property
    def rare_set(self) -> frozenset[str]:
        return frozenset(self.rare_categories)

    @cached_property
    def bin_counts(self) -> IntArray:
        """Reference counts per bin: the top-K categories, then "other"."""
        return np.asarray([*self.counts, self.other_count], dtype=np.int64)

    @property
    def n_coarse_bins(self) -> int:
        return len(self.categories) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "n": self.n,
            "n_missing": self.n_missing,
            "categories": list(self.categories),
            "counts": list(self.counts),
            "other_count": self.other_count,
            "rare_categories": list(self.rare_categories),
            "rare_truncated": self.rare_truncated,
        }


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference of one model: a profile per input feature and per output column.

    Examples
    --------
    >>> df = pd.DataFrame({"age": [23, 35, 41, 52, 67, 29], "plan": list("aabbbc")})
    >>> profile = build_profile(df)
    >>> profile.kinds()
    {'age': 'numeric', 'plan': 'categorical'}
    >>> ReferenceProfile.from_json(profile.to_json()) == profile
    True
    """

    columns: Mapping[str, ColumnProfile]
    output_columns: tuple[str, ...]
    n_rows: int
    settings: ProfileSettings

    @property
    def features(self) -> tuple[str, ...]:
        """Input features, in reference column order."""
        return tuple(name for name in self.columns if name not in self.output_columns)

    def kinds(self) -> dict[str, str]:
        return {name: column.kind.value for name, column in self.columns.items()}

    @cached_property
    def fingerprint(self) -> str:
        """Short hash of the binning; window states are only merged under the same one."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "n_rows": self.n_rows,
            "output_columns": list(self.output_columns),
            "settings": {
                "psi_bins": self.settings.psi_bins,
                "ks_resolution": self.settings.ks_resolution,
                "top_k": self.settings.top_k,
                "max_rare": self.settings.max_rare,
            },
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
        }

    def to_json(self) -> str:
        # json writes floats with repr, the shortest string that reads back to the same
        # double, so the round trip is lossless.
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        if data.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"not a Driftline reference profile (format={data.get('format')!r})")
        if data.get("version") != PROFILE_VERSION:
            raise ProfileError(
                f"reference profile version {data.get('version')!r} is not supported by this "
                f"Driftline (reads version {PROFILE_VERSION}); rebuild the profile"
            )
        columns = {name: _column_from_dict(name, spec) for name, spec in data["columns"].items()}
        return cls(
            columns=columns,
            output_columns=tuple(data["output_columns"]),
            n_rows=int(data["n_rows"]),
            settings=ProfileSettings(**data["settings"]),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        return cls.from_dict(json.loads(text))


def _column_from_dict(name: str, spec: Mapping[str, Any]) -> ColumnProfile:
    kind = FeatureKind.parse(spec["kind"])
    if kind is FeatureKind.NUMERIC:
        return NumericProfile(
            name=name,
            n=int(spec["n"]),
            n_missing=int(spec["n_missing"]),
            minimum=float(spec["minimum"]),
            maximum=float(spec["maximum"]),
            mean=float(spec["mean"]),
            std=float(spec["std"]),
            edges=tuple(float(x) for x in spec["edges"]),
            counts=tuple(int(x) for x in spec["counts"]),
            psi_edges=tuple(float(x) for x in spec["psi_edges"]),
            bin_means=tuple(float(x) for x in spec["bin_means"]),
            discrete=bool(spec["discrete"]),
        )
    return CategoricalProfile(
        name=name,
        n=int(spec["n"]),
        n_missing=int(spec["n_missing"]),
        categories=tuple(spec["categories"]),
        counts=tuple(int(x) for x in spec["counts"]),
        other_count=int(spec["other_count"]),
        rare_categories=tuple(spec["rare_categories"]),
        rare_truncated=bool(spec["rare_truncated"]),
    )


def build_profile(
    data: pd.DataFrame,
    *,
    schema: Mapping[str, str | FeatureKind] | None = None,
    output_columns: Iterable[str] = (),
    exclude: Iterable[str] = (),
    settings: ProfileSettings | None = None,
) -> ReferenceProfile:
    """Profile every column of a reference DataFrame.

    Parameters
    ----------
    data
        The reference rows, one column per feature and per model output.
    schema
        Declared kinds (``"numeric"`` or ``"categorical"``) that override inference.
    output_columns
        Columns holding the model's output (score, predicted class); profiled like
        features and reported as prediction drift.
    exclude
        Columns to leave out (identifiers, timestamps, labels).
    settings
        Bin resolution; :class:`ProfileSettings` defaults when omitted.

    Raises
    ------
    ProfileError
        Empty data, an all-missing column, mixed types without a declared kind, or a
        declared column that is absent.
    """
    settings = settings or ProfileSettings()
    declared = {name: FeatureKind.parse(kind) for name, kind in (schema or {}).items()}
    outputs = tuple(output_columns)
    skipped = set(exclude)
    missing_columns = [c for c in [*declared, *outputs] if c not in data.columns]
    if missing_columns:
        raise ProfileError(
            f"columns {missing_columns} are declared but not in the reference data "
            f"(it has: {[str(c) for c in data.columns]})"
        )
    if len(data) == 0:
        raise ProfileError("the reference data has no rows; a profile needs at least one")
    columns: dict[str, ColumnProfile] = {}
    for raw_name in data.columns:
        name = str(raw_name)
        if name in skipped:
            continue
        series = data[raw_name]
        kind = declared.get(name) or infer_kind(name, series)
        if kind is FeatureKind.NUMERIC:
            columns[name] = _profile_numeric(name, series, settings)
        else:
            columns[name] = _profile_categorical(name, series, settings)
    if not columns:
        raise ProfileError("no columns left to profile after exclusions")
    return ReferenceProfile(
        columns=columns, output_columns=outputs, n_rows=len(data), settings=settings
    )


def profile_file(path: str | Path, **options: Any) -> ReferenceProfile:
    """Build a profile from a ``.csv`` or ``.parquet`` file; options as in :func:`build_profile`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = pd.read_csv(path)
    elif suffix in {".parquet", ".pq"}:
        frame = pd.read_parquet(path)
    else:
        raise ProfileError(f"cannot read {path.name!r}: use a .csv or .parquet file")
    return build_profile(frame, **options)


def infer_kind(name: str, series: pd.Series[Any]) -> FeatureKind:
    """Numeric for float and integer columns, categorical for strings and bools."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return FeatureKind.CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype):
        return FeatureKind.NUMERIC
    present = series.dropna()
    if len(present) == 0:
        raise ProfileError(
            f"column {name!r} has no non-missing values in the reference; "
            "exclude it or provide data for it"
        )
    types = {_value_type(value) for value in present}
    if types == {"number"}:
        return FeatureKind.NUMERIC
    if types <= {"string", "bool"}:
        return FeatureKind.CATEGORICAL
    raise ProfileError(
        f"column {name!r} mixes value types ({', '.join(sorted(types))}); declare its kind "
        "in schema= ('numeric' or 'categorical')"
    )


def _value_type(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | float | np.integer | np.floating):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _profile_numeric(
    name: str, series: pd.Series[Any], settings: ProfileSettings
) -> NumericProfile:
    raw = series.to_numpy()
    values, n_missing, n_invalid = coerce_numeric(raw if raw.dtype.kind in "fiu" else list(raw))
    if n_invalid:
        raise ProfileError(
            f"numeric column {name!r} holds {n_invalid} values that are not finite numbers "
            "(strings, bools or infinities); clean them or declare the column categorical"
        )
    if values.size == 0:
        raise ProfileError(
            f"column {name!r} has no non-missing values in the reference; "
            "exclude it or provide data for it"
        )
    minimum, maximum = float(values.min()), float(values.max())
    distinct, multiplicity = np.unique(values, return_counts=True)
    psi_edges = _psi_edges(values, distinct, multiplicity, settings)
    # With few distinct values every one becomes an edge (``discrete``). Values carrying
    # more than half a fine bin's share (atoms) get an edge just below them too, so a bin
    # holds either the atom alone or less than 1/ks_resolution of the reference between
    # its edges: that bounds the KS error (see detectors.methods) and makes it 0 here.
    discrete = distinct.size <= settings.ks_resolution + 1
    if discrete:
        fine_edges, atoms = distinct, distinct
    else:
        fine_edges = _quantile_edges(values, settings.ks_resolution)
        atoms = distinct[multiplicity > values.size / (2 * settings.ks_resolution)]
    edges = np.unique(
        np.concatenate(
            ([np.nextafter(minimum, -np.inf)], fine_edges, psi_edges, np.nextafter(atoms, -np.inf))
        )
    )
    bins = np.searchsorted(edges, values, side="left")
    counts = np.bincount(bins, minlength=edges.size + 1)
    # Where the reference mass sits inside each fine bin; Wasserstein places both
    # distributions' mass there. The outer bins hold no reference: use the range ends.
    sums = np.bincount(bins, weights=values, minlength=edges.size + 1)
    right_edges = np.append(edges, maximum)
    bin_means = np.where(counts > 0, sums / np.maximum(counts, 1), right_edges)
    bin_means[0], bin_means[-1] = minimum, maximum
    return NumericProfile(
        name=name,
        n=int(values.size),
        n_missing=n_missing,
        minimum=minimum,
        maximum=maximum,
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        edges=tuple(float(x) for x in edges),
        counts=tuple(int(x) for x in counts),
        psi_edges=tuple(float(x) for x in psi_edges),
        bin_means=tuple(float(x) for x in bin_means),
        discrete=bool(discrete),
    )


def _psi_edges(
    values: FloatArray, distinct: FloatArray, multiplicity: IntArray, settings: ProfileSettings
) -> FloatArray:
    """The coarse bins of PSI, Jensen-Shannon and chi-square (see the module docstring).

    Quantile bins merge tied values: with 12 equally common integers, deciles put two
    values in some bins, and a value that vanishes from the stream moves its mass to the
    neighbour it shares a bin with, unseen by PSI. So a column with at most
    ``value_bins_max`` distinct values gets a bin per value, and in any other column a
    value holding more than half a bin's share (an atom) gets a bin of its own: an edge
    at it and one just below it. Every edge is a reference value or just below one, so the
    coarse bins are unions of the fine ones.
    """
    below_range = np.nextafter(distinct[0], -np.inf)
    if distinct.size <= settings.value_bins_max:
        # A bin per value, one below the reference range and one above it (the last).
        return np.concatenate(([below_range], distinct))
    atoms = distinct[multiplicity > values.size / (2 * settings.psi_bins)]
    edges = np.unique(
        np.concatenate(
            (
                _quantile_edges(values, settings.psi_bins, inner=True),
                atoms,
                np.nextafter(atoms, -np.inf),
            )
        )
    )
    edges = edges[edges < distinct[-1]]  # the last bin is "above the last edge"
    if edges.size == 0 or edges[0] == distinct[0]:
        # An atom at the minimum (or a constant column) would merge "below the reference
        # range" with the atom; give values below the range a PSI bin of their own.
        edges = np.concatenate(([below_range], edges))
    return edges


def _quantile_edges(values: FloatArray, n_bins: int, *, inner: bool = False) -> FloatArray:
    # inverted_cdf returns observed values, so the reference mass strictly between two
    # consecutive edges is below 1 / n_bins: the bound the KS accuracy rests on.
    levels = np.linspace(0.0, 1.0, n_bins + 1)
    if inner:
        levels = levels[1:-1]
    return np.unique(np.quantile(values, levels, method="inverted_cdf"))


def _profile_categorical(
    name: str, series: pd.Series[Any], settings: ProfileSettings
) -> CategoricalProfile:
    keys = [category_key(value) for value in series.tolist()]
    present = Counter(key for key in keys if key is not None)
    n_missing = len(keys) - sum(present.values())
    if not present:
        raise ProfileError(
            f"column {name!r} has no non-missing values in the reference; "
            "exclude it or provide data for it"
        )
    ranked = sorted(present.items(), key=lambda item: (-item[1], item[0]))
    top, rest = ranked[: settings.top_k], ranked[settings.top_k :]
    rare = sorted(category for category, _ in rest)
    return CategoricalProfile(
        name=name,
        n=sum(present.values()),
        n_missing=n_missing,
        categories=tuple(category for category, _ in top),
        counts=tuple(count for _, count in top),
        other_count=sum(count for _, count in rest),
        rare_categories=tuple(rare[: settings.max_rare]),
        rare_truncated=len(rare) > settings.max_rare,
    )
