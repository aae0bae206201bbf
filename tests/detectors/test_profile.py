"""Reference profiles: kinds, bins, awkward columns, files and lossless JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.profile import (
    CategoricalProfile,
    FeatureKind,
    NumericProfile,
    ProfileSettings,
    ReferenceProfile,
    build_profile,
    profile_file,
)
from driftline.errors import ConfigurationError, ProfileError

RNG = np.random.default_rng(7)


def reference_frame(n: int = 2000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": RNG.normal(40, 10, size=n),
            "visits": RNG.integers(0, 30, size=n),
            "plan": RNG.choice(["free", "pro", "team"], size=n),
            "is_new": RNG.random(n) < 0.2,
            "score": RNG.random(n),
        }
    )


def test_kinds_are_inferred_from_dtypes() -> None:
    profile = build_profile(reference_frame(), output_columns=["score"])
    assert profile.kinds() == {
        "age": "numeric",
        "visits": "numeric",
        "plan": "categorical",
        "is_new": "categorical",
        "score": "numeric",
    }
    assert profile.features == ("age", "visits", "plan", "is_new")
    assert profile.output_columns == ("score",)


def test_declared_schema_overrides_inference() -> None:
    profile = build_profile(reference_frame(), schema={"visits": "categorical"})
    column = profile.columns["visits"]
    assert isinstance(column, CategoricalProfile)
    assert set(column.categories) <= {str(i) for i in range(30)}


def test_unknown_kind_names_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="numeric, categorical"):
        build_profile(reference_frame(), schema={"age": "ordinal"})


def test_numeric_profile_matches_the_data() -> None:
    frame = reference_frame()
    column = build_profile(frame).columns["age"]
    assert isinstance(column, NumericProfile)
    values = frame["age"].to_numpy()
    assert column.minimum == values.min() and column.maximum == values.max()
    assert column.mean == pytest.approx(values.mean(), rel=1e-12)
    assert column.std == pytest.approx(values.std(ddof=1), rel=1e-12)
    assert sum(column.counts) == len(values)
    assert column.counts[0] == 0 and column.counts[-1] == 0  # nothing outside its own range
    assert set(column.psi_edges) <= set(column.edges)
    # Fine bins: no open interval between two edges holds more than 1/200 of the reference.
    assert max(column.counts[2:-1]) <= len(values) / 200 + 1


def test_missing_values_are_counted() -> None:
    frame = pd.DataFrame({"x": [1.0, None, 3.0, np.nan], "c": ["a", None, "b", "a"]})
    profile = build_profile(frame)
    assert profile.columns["x"].n_missing == 2 and profile.columns["x"].n == 2
    assert profile.columns["c"].n_missing == 1 and profile.columns["c"].n == 3


def test_constant_column_gets_below_at_and_above_bins() -> None:
    column = build_profile(pd.DataFrame({"x": [5.0] * 100})).columns["x"]
    assert isinstance(column, NumericProfile)
    assert column.std == 0.0
    assert column.n_coarse_bins == 3
    assert list(column.counts) == [0, 100, 0]


def test_all_missing_column_is_a_clear_error() -> None:
    with pytest.raises(ProfileError, match=r"'x' has no non-missing values.*exclude"):
        build_profile(pd.DataFrame({"x": [None, None], "y": [1.0, 2.0]}))
    profile = build_profile(pd.DataFrame({"x": [None, None], "y": [1.0, 2.0]}), exclude=["x"])
    assert list(profile.columns) == ["y"]


def test_mixed_types_need_a_declared_kind() -> None:
    frame = pd.DataFrame({"x": pd.Series([1, "a", 2.5], dtype=object)})
    with pytest.raises(ProfileError, match=r"mixes value types.*declare"):
        build_profile(frame)
    column = build_profile(frame, schema={"x": "categorical"}).columns["x"]
    assert isinstance(column, CategoricalProfile)
    assert set(column.categories) == {"1", "a", "2.5"}
    with pytest.raises(ProfileError, match="not finite numbers"):
        build_profile(frame, schema={"x": "numeric"})


def test_infinite_reference_values_are_refused() -> None:
    with pytest.raises(ProfileError, match="not finite"):
        build_profile(pd.DataFrame({"x": [1.0, np.inf]}))


def test_empty_and_undeclared_inputs() -> None:
    with pytest.raises(ProfileError, match="no rows"):
        build_profile(pd.DataFrame({"x": pd.Series([], dtype=float)}))
    with pytest.raises(ProfileError, match=r"\['nope'\] are declared"):
        build_profile(reference_frame(), output_columns=["nope"])


def test_top_k_keeps_the_most_frequent_and_remembers_the_rest() -> None:
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 10 + ["d"] * 5 + ["e"] * 5
    settings = ProfileSettings(top_k=2, max_rare=2)
    column = build_profile(pd.DataFrame({"c": values}), settings=settings).columns["c"]
    assert isinstance(column, CategoricalProfile)
    assert column.categories == ("a", "b") and column.counts == (50, 30)
    assert column.other_count == 20
    assert column.rare_categories == ("c", "d") and column.rare_truncated


def test_bools_and_their_spellings_are_one_category() -> None:
    column = build_profile(pd.DataFrame({"b": [True, False, True]})).columns["b"]
    assert isinstance(column, CategoricalProfile)
    assert column.categories == ("true", "false")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("psi_bins", 1),
        ("ks_resolution", 5),
        ("top_k", 0),
        ("max_rare", -1),
        ("psi_bins", 2.5),
        ("value_bins_max", -1),
    ],
)
def test_settings_are_validated(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=field):
        ProfileSettings(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_profile_from_files_equals_profile_from_frame(tmp_path: Path, suffix: str) -> None:
    frame = reference_frame(500)
    path = tmp_path / f"reference{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    from_file = profile_file(path, output_columns=["score"])
    from_frame = build_profile(frame, output_columns=["score"])
    # CSV writes bools as text and floats with 17 digits; both read back the same.
    assert from_file.kinds() == from_frame.kinds()
    assert from_file.columns["age"] == from_frame.columns["age"]


def test_unknown_file_type_says_what_to_use(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"\.csv or \.parquet"):
        profile_file(tmp_path / "reference.xlsx")


def test_json_round_trip_is_lossless_and_versioned() -> None:
    profile = build_profile(reference_frame(), output_columns=["score"])
    text = profile.to_json()
    data = json.loads(text)
    assert data["format"] == "driftline.reference-profile" and data["version"] == 1
    again = ReferenceProfile.from_json(text)
    assert again == profile
    assert again.fingerprint == profile.fingerprint
    data["version"] = 99
    with pytest.raises(ProfileError, match=r"version 99.*rebuild"):
        ReferenceProfile.from_dict(data)


def test_fingerprint_changes_with_the_binning() -> None:
    frame = reference_frame()
    a = build_profile(frame)
    b = build_profile(frame, settings=ProfileSettings(ks_resolution=100))
    assert a.fingerprint == build_profile(frame).fingerprint
    assert a.fingerprint != b.fingerprint


@given(
    numbers=st.lists(
        st.floats(min_value=-1e150, max_value=1e150) | st.none(), min_size=1, max_size=60
    ),
    words=st.lists(
        st.sampled_from(["a", "b", "ç", "", "x y"]) | st.none(), min_size=1, max_size=60
    ),
)
def test_any_profile_survives_json(numbers: list[float | None], words: list[str | None]) -> None:
    frames = []
    if any(v is not None for v in numbers):
        frames.append(pd.DataFrame({"x": pd.Series(numbers, dtype=float)}))
    if any(v is not None for v in words):
        frames.append(pd.DataFrame({"c": pd.Series(words, dtype=object)}))
    for frame in frames:
        profile = build_profile(frame)
        assert ReferenceProfile.from_json(profile.to_json()) == profile
        column = next(iter(profile.columns.values()))
        assert column.n + column.n_missing == len(frame)
        if column.kind is FeatureKind.NUMERIC:
            assert isinstance(column, NumericProfile)
            assert list(column.edges) == sorted(set(column.edges))
