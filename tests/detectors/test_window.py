"""Window state: merge laws, batch-size independence, serialization and bad input."""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.encoding import BinnedColumn, coerce_numeric
from detectors.profile import ProfileSettings, build_profile
from detectors.quality import QualityTask
from detectors.window import CategoricalCounts, NumericCounts, UnknownFeatureError, WindowState
from driftline.errors import IncompatibleStateError, InvalidInputError

RNG = np.random.default_rng(11)
PROFILE = build_profile(
    pd.DataFrame(
        {
            "x": RNG.normal(size=1000),
            "c": RNG.choice(["a", "b", "c", "d", "rare"], p=[0.4, 0.3, 0.2, 0.09, 0.01], size=1000),
        }
    ),
    settings=ProfileSettings(top_k=3),
)
TASK = QualityTask("binary", classes=("0", "1"))

numeric_value = (
    st.floats(min_value=-5, max_value=5)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.none()
    | st.sampled_from(["3.5", True])
)
category_value = st.sampled_from(["a", "b", "c", "d", "rare", "new", None, 1, True, float("nan")])
rows = st.lists(st.tuples(numeric_value, category_value), max_size=40)


def state_of(batch: list[tuple[Any, Any]]) -> WindowState:
    state = WindowState.empty(PROFILE)
    if batch:
        xs, cs = zip(*batch, strict=True)
        state.update(PROFILE, {"x": list(xs), "c": list(cs)})
    return state


def assert_same(a: WindowState, b: WindowState) -> None:
    """Counts equal exactly, float sums to rounding."""
    assert _approx(a.to_dict(), b.to_dict())


def _approx(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_approx(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_approx(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@given(rows, rows)
def test_merge_is_commutative(a: list[Any], b: list[Any]) -> None:
    assert state_of(a).merge(state_of(b)) == state_of(b).merge(state_of(a))


@given(rows, rows, rows)
def test_merge_is_associative(a: list[Any], b: list[Any], c: list[Any]) -> None:
    left = state_of(a).merge(state_of(b)).merge(state_of(c))
    right = state_of(a).merge(state_of(b).merge(state_of(c)))
    assert_same(left, right)


@given(rows, rows)
def test_merge_equals_feeding_both_batches(a: list[Any], b: list[Any]) -> None:
    assert_same(state_of(a).merge(state_of(b)), state_of(a + b))


@given(rows)
def test_empty_state_is_the_identity(a: list[Any]) -> None:
    assert state_of(a).merge(WindowState.empty(PROFILE)) == state_of(a)


@given(rows, st.integers(min_value=1, max_value=7))
def test_batch_size_does_not_matter(a: list[Any], size: int) -> None:
    chunked = WindowState.empty(PROFILE)
    for start in range(0, len(a), size):
        chunk = a[start : start + size]
        xs, cs = zip(*chunk, strict=True)
        chunked.update(PROFILE, {"x": list(xs), "c": list(cs)})
    assert_same(chunked, state_of(a))


@given(rows)
def test_serialization_round_trips(a: list[Any]) -> None:
    state = state_of(a)
    assert WindowState.from_bytes(state.to_bytes()) == state
    assert WindowState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@given(
    rows,
    st.text(max_size=20) | st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
)
def test_the_fingerprint_read_from_the_first_bytes_is_the_one_the_state_holds(
    a: list[Any], fingerprint: str
) -> None:
    state = state_of(a)
    state.fingerprint = fingerprint  # quotes, escapes and long ones too: read the long way
    assert WindowState.fingerprint_of(state.to_bytes()) == fingerprint


def test_the_fingerprint_of_an_unknown_version_or_garbage_is_refused() -> None:
    data = WindowState.empty(PROFILE).to_dict()
    data["version"] = 2
    with pytest.raises(IncompatibleStateError, match="version 2"):
        WindowState.fingerprint_of(zlib.compress(orjson.dumps(data)))
    with pytest.raises(IncompatibleStateError, match="not a serialized window state"):
        WindowState.fingerprint_of(b"not zlib")


@given(rows)
def test_every_row_is_accounted_for(a: list[Any]) -> None:
    state = state_of(a)
    for counts in state.columns.values():
        assert counts.n + counts.n_missing + counts.n_invalid == state.n_rows == len(a)


def test_labeled_states_merge_their_quality_state() -> None:
    a = WindowState.empty(PROFILE, TASK).update_labels(["0", "1"], ["0", "0"], [0.2, 0.4])
    b = WindowState.empty(PROFILE, TASK).update_labels(["1"], ["1"], [0.9])
    merged = a.merge(b)
    assert merged.quality is not None and merged.quality.n_labeled == 3
    assert WindowState.from_bytes(merged.to_bytes()) == merged
    with pytest.raises(IncompatibleStateError, match="labeled"):
        a.merge(WindowState.empty(PROFILE))
    with pytest.raises(InvalidInputError, match="QualityTask"):
        WindowState.empty(PROFILE).update_labels(["0"], ["0"])


def test_numeric_bad_values_are_counted_not_binned() -> None:
    state = WindowState.empty(PROFILE).update(
        PROFILE, {"x": [0.5, None, float("nan"), float("inf"), -float("inf"), "3.5", True, 1]}
    )
    counts = state.columns["x"]
    assert isinstance(counts, NumericCounts)
    assert (counts.n, counts.n_missing, counts.n_invalid) == (2, 2, 4)
    assert counts.total == 1.5


def test_numpy_columns_take_the_same_path() -> None:
    values = RNG.normal(size=500)
    values[::7] = np.nan
    from_array = WindowState.empty(PROFILE).update(PROFILE, {"x": values})
    from_list = WindowState.empty(PROFILE).update(
        PROFILE, {"x": [None if np.isnan(v) else float(v) for v in values]}
    )
    assert_same(from_array, from_list)


def test_out_of_range_values_land_in_the_outer_bins() -> None:
    column = PROFILE.columns["x"]
    state = WindowState.empty(PROFILE).update(
        PROFILE,
        {"x": [column.minimum, column.maximum, column.minimum - 2, column.maximum + 3]},  # type: ignore[union-attr]
    )
    counts = state.columns["x"]
    assert isinstance(counts, NumericCounts)
    assert counts.counts[0] == 1 and counts.counts[-1] == 1
    assert counts.below_excess == pytest.approx(2) and counts.above_excess == pytest.approx(3)


def test_categories_rare_unseen_missing_and_invalid() -> None:
    state = WindowState.empty(PROFILE).update(
        PROFILE, {"c": ["a", "a", "rare", "new", None, float("nan"), ["a"], {"k": 1}, 7]}
    )
    counts = state.columns["c"]
    assert isinstance(counts, CategoricalCounts)
    assert counts.counts[0] == 2  # "a" is the most frequent reference category
    assert counts.counts[-1] == 3  # "rare", "new" and 7 fall in "other"
    assert counts.n_unseen == 2  # "new" and 7 were never seen; "rare" was
    assert (counts.n_missing, counts.n_invalid) == (2, 2)


def test_absent_columns_count_as_missing() -> None:
    state = WindowState.empty(PROFILE).update(PROFILE, {"x": [0.1, 0.2, 0.3]})
    assert state.n_rows == 3
    assert state.columns["c"].n_missing == 3


def test_empty_batches_change_nothing() -> None:
    state = WindowState.empty(PROFILE)
    assert state.update(PROFILE, {}) == WindowState.empty(PROFILE)
    assert state.update(PROFILE, {"x": [], "c": []}) == WindowState.empty(PROFILE)


def test_unknown_features_are_refused_naming_them() -> None:
    state = WindowState.empty(PROFILE)
    with pytest.raises(UnknownFeatureError, match=r"\['zzz'\].*known: \['c', 'x'\]"):
        state.update(PROFILE, {"x": [1.0], "zzz": [2.0]})
    assert state == WindowState.empty(PROFILE)  # nothing was counted


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="different lengths"):
        WindowState.empty(PROFILE).update(PROFILE, {"x": [1.0, 2.0], "c": ["a"]})


def test_states_of_other_profiles_do_not_mix() -> None:
    other = build_profile(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}))
    with pytest.raises(IncompatibleStateError, match="different reference profiles"):
        WindowState.empty(PROFILE).merge(WindowState.empty(other))
    with pytest.raises(IncompatibleStateError, match="laid out for profile"):
        WindowState.empty(PROFILE).update(other, {"x": [1.0]})


def test_unknown_versions_and_garbage_are_refused() -> None:
    data = WindowState.empty(PROFILE).to_dict()
    data["version"] = 2
    with pytest.raises(IncompatibleStateError, match="version 2"):
        WindowState.from_dict(data)
    with pytest.raises(IncompatibleStateError, match="not a serialized window state"):
        WindowState.from_bytes(b"not zlib")


def test_state_size_is_bounded_by_bins_not_events() -> None:
    small = WindowState.empty(PROFILE).update(PROFILE, {"x": RNG.normal(size=10)})
    large = WindowState.empty(PROFILE).update(PROFILE, {"x": RNG.normal(size=100_000)})
    assert len(json.dumps(large.to_dict())) < len(json.dumps(small.to_dict())) + 2000


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2.5, None], ([1.0, 2.5], 1, 0)),
        ([1, 10**400, None], ([1.0], 1, 1)),
        ([], ([], 0, 0)),
        ([None, None], ([], 2, 0)),
        ([1.0, float("inf"), "2"], ([1.0], 0, 2)),
    ],
)
def test_numeric_lists_fast_and_careful_paths_agree(values: list[Any], expected: Any) -> None:
    finite, missing, invalid = coerce_numeric(values)
    assert (finite.tolist(), missing, invalid) == expected


def test_a_binned_column_counts_as_its_values() -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(size=2000)})
    profile = build_profile(reference)
    values = np.concatenate([rng.normal(scale=3, size=500), [np.nan, np.nan]])
    edges = profile.columns["x"].edges_array  # type: ignore[union-attr]
    bins = np.where(np.isnan(values), -1, np.searchsorted(edges, values)).astype(np.int32)
    binned = WindowState.empty(profile).update(profile, {"x": BinnedColumn(values, bins)})
    plain = WindowState.empty(profile).update(profile, {"x": values})
    assert binned == plain
    assert binned.columns["x"].n_missing == 2
