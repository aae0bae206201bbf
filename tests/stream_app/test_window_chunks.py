"""A window's chunks joined into one update count what the chunks counted one by one."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.encoding import BinnedColumn
from detectors.profile import ProfileSettings, build_profile
from detectors.window import WindowState
from stream_app.window_chunks import joined_chunks
from tests.examples import examples

RNG = np.random.default_rng(3)
PROFILE = build_profile(
    pd.DataFrame(
        {
            "x": RNG.normal(size=500),
            "c": RNG.choice(["a", "b", "c", "rare"], p=[0.5, 0.3, 0.19, 0.01], size=500),
        }
    ),
    settings=ProfileSettings(top_k=3),
)
EDGES = PROFILE.columns["x"].edges_array  # type: ignore[union-attr]

numbers = st.lists(
    st.floats(min_value=-6, max_value=6) | st.just(math.nan), min_size=1, max_size=40
)
categories = st.lists(st.sampled_from(["a", "b", "c", "rare", "new", None, 3]), max_size=40)


@st.composite
def chunks(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Chunks as stage 1 collects them: x as a list, a float array or binned; c a list.
    Mostly one kind throughout (joined), sometimes mixed (kept apart)."""
    kind = draw(st.sampled_from(["list", "array", "binned"]))
    made = []
    for _ in range(draw(st.integers(1, 5))):
        x = draw(numbers)
        n = len(x)
        drawn = draw(categories)
        c = (drawn * n)[:n] if drawn else [None] * n
        mine = kind if draw(st.integers(0, 4)) else draw(st.sampled_from(["list", "array"]))
        values = np.array(x, dtype=np.float64)
        column: Any = x
        if mine == "array":
            column = values
        elif mine == "binned":
            bins = np.where(np.isnan(values), -1, np.searchsorted(EDGES, values)).astype(np.int32)
            column = BinnedColumn(values, bins)
        made.append({"x": column, "c": c})
    return made


def counted(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    state = WindowState.empty(PROFILE)
    for part in parts:
        state.update(PROFILE, part)
    return state.to_dict()


def without_sums(state: dict[str, Any]) -> tuple[dict[str, Any], list[float]]:
    x = dict(state["columns"]["x"])
    sums = [float(x.pop(name)) for name in ("total", "below_excess", "above_excess")]
    return {**state, "columns": {**state["columns"], "x": x}}, sums


@settings(max_examples=examples(150), deadline=None)
@given(chunks())
def test_joined_chunks_count_what_the_chunks_counted(parts: list[dict[str, Any]]) -> None:
    one_by_one, sums = without_sums(counted(parts))
    joined, joined_sums = without_sums(counted(list(joined_chunks(parts))))
    assert joined == one_by_one
    assert np.allclose(joined_sums, sums, rtol=1e-12, atol=1e-9)


def test_chunks_of_one_kind_become_one() -> None:
    a: dict[str, Any] = {"x": np.array([1.0, 2.0]), "c": ["a", "b"]}
    b: dict[str, Any] = {"x": np.array([3.0]), "c": ["c"]}
    (joined,) = joined_chunks([a, b])
    assert isinstance(joined["x"], np.ndarray)
    assert joined["x"].tolist() == [1.0, 2.0, 3.0]
    assert joined["c"] == ["a", "b", "c"]


def test_chunks_of_different_kinds_or_columns_stay_apart() -> None:
    array: dict[str, Any] = {"x": np.array([1.0]), "c": ["a"]}
    as_list: dict[str, Any] = {"x": [2.0], "c": ["b"]}
    other_columns: dict[str, Any] = {"x": np.array([3.0])}
    assert list(joined_chunks([array, as_list])) == [array, as_list]
    assert list(joined_chunks([array, other_columns])) == [array, other_columns]
