"""Every drift method against scipy (or a direct numpy computation) on the same raw data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from detectors.methods import (
    PSI_EPSILON,
    FeatureDistributions,
    chi_square,
    jensen_shannon,
    kolmogorov_smirnov,
    psi,
    wasserstein,
    wasserstein_distance,
)
from detectors.profile import NumericProfile
from tests.detectors.helpers import numeric_profile, profile_of, window_of

RNG = np.random.default_rng(20261125)

# (name, reference sample, current sample): random and adversarial pairs.
NUMERIC_CASES = [
    ("same normal", RNG.normal(size=5000), RNG.normal(size=5000)),
    ("shifted normal", RNG.normal(size=5000), RNG.normal(0.3, 1.0, size=5000)),
    ("wider", RNG.normal(size=3000), RNG.normal(0.0, 1.5, size=4000)),
    ("heavy tails", RNG.standard_t(1.0, size=5000), RNG.standard_t(1.0, size=5000) * 1.2),
    ("cauchy vs normal", RNG.standard_cauchy(size=5000), RNG.normal(size=5000)),
    ("lognormal", RNG.lognormal(size=8000), RNG.lognormal(0.1, 1.1, size=2000)),
    (
        "ties: small ints",
        RNG.integers(0, 5, size=5000).astype(float),
        RNG.integers(0, 6, size=3000).astype(float),
    ),
    (
        "ties: many ints",
        RNG.integers(0, 1000, size=5000).astype(float),
        RNG.integers(100, 1100, size=5000).astype(float),
    ),
    (
        "atom at zero",
        np.where(RNG.random(5000) < 0.4, 0.0, RNG.exponential(size=5000)),
        np.where(RNG.random(5000) < 0.1, 0.0, RNG.exponential(size=5000)),
    ),
    (
        "current between discrete reference values",
        RNG.integers(0, 40, size=2000).astype(float),
        RNG.uniform(0, 40, size=2000),
    ),
    (
        "interior atoms",
        np.concatenate([RNG.normal(size=4000), np.full(300, 0.5), np.full(150, 1.0)]),
        np.concatenate([RNG.normal(size=3000), RNG.uniform(0.45, 0.5, size=400)]),
    ),
    ("current outside range", RNG.uniform(0, 1, size=2000), RNG.uniform(-2, 3, size=2000)),
    ("constant reference", np.full(1000, 3.0), RNG.normal(3.0, 0.1, size=500)),
    ("tiny window n=1", RNG.normal(size=2000), np.array([0.25])),
    ("tiny window n=3", RNG.normal(size=2000), np.array([-5.0, 0.0, 5.0])),
    ("tiny reference", np.array([1.0, 2.0, 2.5]), RNG.normal(2.0, 1.0, size=100)),
]
CASE_IDS = [case[0] for case in NUMERIC_CASES]


def distributions(reference: np.ndarray, current: np.ndarray) -> FeatureDistributions:
    profile = numeric_profile(reference)
    state = window_of(profile, x=current)
    return FeatureDistributions.of(profile.columns["x"], state.columns["x"])


@pytest.mark.parametrize(("name", "reference", "current"), NUMERIC_CASES, ids=CASE_IDS)
def test_ks_statistic_within_resolution_of_scipy(
    name: str, reference: np.ndarray, current: np.ndarray
) -> None:
    ours = kolmogorov_smirnov(distributions(reference, current))
    exact = stats.ks_2samp(reference, current).statistic
    # The documented bound: never above the exact value, less than 1.5/ks_resolution below.
    assert ours.score <= exact + 1e-12
    assert exact - ours.score < 1.5 / 200
    assert abs(ours.score - exact) <= 0.01


@pytest.mark.parametrize("resolution", [10, 50, 400])
def test_ks_bound_follows_the_resolution(resolution: int) -> None:
    reference, current = RNG.normal(size=20000), RNG.normal(0.05, 1.0, size=20000)
    profile = numeric_profile(reference, ks_resolution=resolution)
    state = window_of(profile, x=current)
    ours = kolmogorov_smirnov(FeatureDistributions.of(profile.columns["x"], state.columns["x"]))
    exact = stats.ks_2samp(reference, current).statistic
    assert -1e-12 <= exact - ours.score < 1.5 / resolution


def test_ks_is_exact_for_discrete_reference() -> None:
    reference = RNG.integers(0, 50, size=4000).astype(float)
    current = RNG.integers(3, 50, size=1500).astype(float)
    ours = kolmogorov_smirnov(distributions(reference, current))
    exact = stats.ks_2samp(reference, current, method="asymp")
    assert ours.score == pytest.approx(exact.statistic, abs=1e-12)


@pytest.mark.parametrize(
    ("n_reference", "n_current", "tolerance"),
    [(20, 20, 1e-9), (2000, 500, 1e-9), (2000, 1000, 0.0065), (50_000, 5000, 0.0022)],
)
def test_ks_p_value_close_to_scipy_asymptotic(
    n_reference: int, n_current: int, tolerance: float
) -> None:
    """Same statistic (discrete data makes ours exact), p-values within the documented gap."""
    for shift in (0, 1, 2, 3):
        reference = RNG.integers(0, 40, size=n_reference).astype(float)
        current = RNG.integers(shift, 40 + shift, size=n_current).astype(float)
        ours = kolmogorov_smirnov(distributions(reference, current))
        exact = stats.ks_2samp(reference, current, method="asymp")
        assert ours.score == pytest.approx(exact.statistic, abs=1e-12)
        assert ours.p_value is not None
        assert abs(ours.p_value - exact.pvalue) <= tolerance


@pytest.mark.parametrize(
    "effective",
    [
        401,
        1000,
        pytest.param(4000, marks=pytest.mark.slow),
        pytest.param(10_000, marks=pytest.mark.slow),
    ],
)
def test_ks_corrected_limit_stays_within_the_documented_gap(effective: int) -> None:
    statistics = np.linspace(0.001, 1.0, 2000)
    root = np.sqrt(effective)
    ours = stats.kstwobign.sf((root + 0.12 + 0.11 / root) * statistics)
    gap = np.abs(ours - stats.kstwo.sf(statistics, effective)).max()
    assert gap <= (0.0022 if effective >= 4000 else 0.0065)


def numpy_psi(reference: np.ndarray, current: np.ndarray, edges: tuple[float, ...]) -> float:
    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.digitize(values, edges, right=True), minlength=len(edges) + 1)
        p = counts / counts.sum()
        return np.where(p == 0, PSI_EPSILON, p)

    p, q = shares(reference), shares(current)
    return float(np.sum((q - p) * np.log(q / p)))


@pytest.mark.parametrize(("name", "reference", "current"), NUMERIC_CASES, ids=CASE_IDS)
def test_psi_equals_direct_computation_on_raw_data(
    name: str, reference: np.ndarray, current: np.ndarray
) -> None:
    profile = numeric_profile(reference)
    column = profile.columns["x"]
    assert isinstance(column, NumericProfile)
    state = window_of(profile, x=current)
    ours = psi(FeatureDistributions.of(column, state.columns["x"])).score
    assert ours == pytest.approx(
        numpy_psi(reference, current, column.psi_edges), rel=1e-12, abs=1e-15
    )


def test_psi_uses_reference_deciles() -> None:
    reference = RNG.normal(size=10000)
    column = numeric_profile(reference).columns["x"]
    assert isinstance(column, NumericProfile)
    assert len(column.psi_edges) == 9
    shares = np.bincount(np.digitize(reference, column.psi_edges, right=True)) / reference.size
    np.testing.assert_allclose(shares, 0.1, atol=1e-3)


@pytest.mark.parametrize(("name", "reference", "current"), NUMERIC_CASES, ids=CASE_IDS)
def test_jensen_shannon_equals_scipy_on_reference_bins(
    name: str, reference: np.ndarray, current: np.ndarray
) -> None:
    profile = numeric_profile(reference)
    column = profile.columns["x"]
    assert isinstance(column, NumericProfile)
    dist = FeatureDistributions.of(column, window_of(profile, x=current).columns["x"])
    edges = column.psi_edges
    p = np.bincount(np.digitize(reference, edges, right=True), minlength=len(edges) + 1)
    q = np.bincount(np.digitize(current, edges, right=True), minlength=len(edges) + 1)
    expected = distance.jensenshannon(p / p.sum(), q / q.sum(), base=2)
    assert jensen_shannon(dist).score == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("name", "reference", "current"), NUMERIC_CASES, ids=CASE_IDS)
def test_wasserstein_close_to_scipy(name: str, reference: np.ndarray, current: np.ndarray) -> None:
    dist = distributions(reference, current)
    ours = wasserstein_distance(dist)
    exact = stats.wasserstein_distance(reference, current)
    scale = float(np.std(reference, ddof=1)) or 1.0
    assert wasserstein(dist).score == pytest.approx(ours / scale, rel=1e-12)
    # The documented bound: how far both samples' values sit from their bin's reference mean.
    column = numeric_profile(reference).columns["x"]
    assert isinstance(column, NumericProfile)

    def displacement(values: np.ndarray) -> float:
        bins = np.searchsorted(column.edges_array, values, side="left")
        inside = (bins > 0) & (bins < len(column.edges))
        return float(
            np.abs(values[inside] - column.bin_means_array[bins[inside]]).sum() / values.size
        )

    assert abs(ours - exact) <= displacement(reference) + displacement(current) + 1e-9
    if name not in {"tiny reference", "current between discrete reference values"}:
        # Wide bins are the exception; otherwise within 2 % of the reference spread (the
        # normed score's threshold is 10 %).
        assert abs(ours - exact) <= 0.02 * scale + 1e-9


def test_wasserstein_is_exact_on_discrete_values() -> None:
    reference = RNG.integers(0, 20, size=3000).astype(float)
    current = RNG.integers(5, 25, size=1000).astype(float)  # includes values above the range
    ours = wasserstein_distance(distributions(reference, current))
    assert ours == pytest.approx(stats.wasserstein_distance(reference, current), rel=1e-9)


CATEGORICAL_CASES = [
    (
        "same",
        list(RNG.choice(list("abcde"), size=3000)),
        list(RNG.choice(list("abcde"), size=3000)),
    ),
    (
        "shifted",
        list(RNG.choice(list("abcde"), size=3000)),
        list(RNG.choice(list("abcde"), p=[0.5, 0.2, 0.1, 0.1, 0.1], size=3000)),
    ),
    (
        "unseen category",
        list(RNG.choice(list("abc"), size=2000)),
        list(RNG.choice(list("abcz"), size=2000)),
    ),
    ("one category", ["a"] * 500, ["a"] * 499 + ["b"]),
    ("tiny window", list(RNG.choice(list("abc"), size=500)), ["c"]),
]


def categorical_counts(reference: list[str], current: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Counts over the reference categories (by frequency) plus 'other', from raw data."""
    order = pd.Series(reference).value_counts()
    categories = sorted(order.index, key=lambda c: (-order[c], c))
    ref = np.array([*[order[c] for c in categories], 0])
    cur_counts = pd.Series(current).value_counts()
    cur = np.array([*[cur_counts.get(c, 0) for c in categories], 0])
    cur[-1] = len(current) - cur[:-1].sum()
    return ref, cur


@pytest.mark.parametrize(("name", "reference", "current"), CATEGORICAL_CASES)
def test_chi_square_equals_scipy(name: str, reference: list[str], current: list[str]) -> None:
    profile = profile_of(c=reference)
    dist = FeatureDistributions.of(profile.columns["c"], window_of(profile, c=current).columns["c"])
    ref, cur = categorical_counts(reference, current)
    np.testing.assert_array_equal(dist.reference, ref)
    np.testing.assert_array_equal(dist.current, cur)
    shares = np.where(ref == 0, PSI_EPSILON, ref / ref.sum())
    expected = stats.chisquare(cur, shares / shares.sum() * cur.sum())
    ours = chi_square(dist)
    assert ours.score == pytest.approx(expected.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("name", "reference", "current"), CATEGORICAL_CASES)
def test_categorical_psi_and_js_on_raw_counts(
    name: str, reference: list[str], current: list[str]
) -> None:
    profile = profile_of(c=reference)
    dist = FeatureDistributions.of(profile.columns["c"], window_of(profile, c=current).columns["c"])
    ref, cur = categorical_counts(reference, current)
    p = np.where(ref == 0, PSI_EPSILON, ref / ref.sum())
    q = np.where(cur == 0, PSI_EPSILON, cur / cur.sum())
    assert psi(dist).score == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-12)
    expected_js = distance.jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2)
    assert jensen_shannon(dist).score == pytest.approx(expected_js, rel=1e-12, abs=1e-12)


def test_psi_grows_with_the_shift() -> None:
    reference = RNG.normal(size=5000)
    scores = [
        psi(distributions(reference, RNG.normal(s, 1.0, size=5000))).score
        for s in (0, 0.25, 0.5, 1)
    ]
    assert scores == sorted(scores)
    assert scores[0] < 0.02 and scores[-1] > 0.5


def test_methods_need_the_right_kind_of_input() -> None:
    dist = FeatureDistributions.of(
        profile_of(c=list("aab")).columns["c"],
        window_of(profile_of(c=list("aab")), c=["a"]).columns["c"],
    )
    with pytest.raises(TypeError, match="fine bins"):
        kolmogorov_smirnov(dist)


def vanishing_value(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """12 equally common integers; in the window one of them is gone and its 8 % spread
    over the others (issue 11's discrete feature)."""
    reference = rng.integers(1, 13, size=20_000).astype(float)
    current = rng.choice(np.arange(2, 13), size=5_000).astype(float)  # 1 is gone
    return reference, current


@pytest.mark.parametrize("value_bins_max", [20, 0])
def test_psi_sees_a_vanishing_value_of_a_discrete_feature(value_bins_max: int) -> None:
    """A bin per value (the low-cardinality rule), or the value's own bin as an atom (rule
    off: 8.3 % is more than half a decile): either way the value is not merged with a
    neighbour, and PSI is the per-value PSI of the raw data."""
    reference, current = vanishing_value(np.random.default_rng(11))
    column = numeric_profile(reference, value_bins_max=value_bins_max).columns["x"]
    assert isinstance(column, NumericProfile)
    state = window_of(numeric_profile(reference, value_bins_max=value_bins_max), x=current)
    ours = psi(FeatureDistributions.of(column, state.columns["x"])).score
    per_value = tuple(np.arange(0.5, 13.0, 1.0))  # a bin for each of 1..12, below and above
    assert ours == pytest.approx(numpy_psi(reference, current, per_value), rel=1e-9)
    assert ours > 0.5  # about 0.6: drift at the default threshold 0.2


def test_plain_deciles_miss_the_vanishing_value() -> None:
    """Why: the deciles alone put the value in a bin with a neighbour."""
    reference, current = vanishing_value(np.random.default_rng(11))
    deciles = tuple(
        np.unique(np.quantile(reference, np.linspace(0.1, 0.9, 9), method="inverted_cdf"))
    )
    assert numpy_psi(reference, current, deciles) < 0.2


def test_an_atom_in_a_continuous_column_has_a_psi_bin_of_its_own() -> None:
    rng = np.random.default_rng(12)
    reference = np.where(rng.random(10_000) < 0.3, 0.25, rng.normal(size=10_000))
    column = numeric_profile(reference).columns["x"]
    assert isinstance(column, NumericProfile)
    edges = np.asarray(column.psi_edges)
    assert 0.25 in edges and np.nextafter(0.25, -np.inf) in edges
    shares = np.bincount(np.digitize(reference, edges, right=True)) / reference.size
    atom_bin = int(np.searchsorted(edges, 0.25))
    exact = np.mean(reference == 0.25)
    assert shares[atom_bin] == pytest.approx(exact, abs=1e-12)
    assert set(column.psi_edges) <= set(column.edges)


def test_a_low_cardinality_numeric_column_gets_a_psi_bin_per_value() -> None:
    reference = np.random.default_rng(13).choice([0.0, 1.0, 2.0, 7.0], size=1000)
    column = numeric_profile(reference).columns["x"]
    assert isinstance(column, NumericProfile)
    assert column.psi_edges == (np.nextafter(0.0, -np.inf), 0.0, 1.0, 2.0, 7.0)
