"""Calibrated verdicts: false alarms at the configured level for every window size, real
shifts still caught, the null law close to the replicates it is fitted to."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors.calibration import (
    NullModel,
    NullModels,
    fit_scaled_chi_square,
    replicate_scores,
    size_bucket,
)
from detectors.drift import DriftConfig, evaluate_window
from detectors.methods import FeatureDistributions, jensen_shannon, psi
from detectors.profile import FeatureKind, ReferenceProfile, build_profile
from detectors.window import WindowState

FEATURES = 10
CALIBRATED = DriftConfig(verdicts="calibrated", also_report=())


def population(rng: np.random.Generator, n: int, mean_shift: float = 0.0) -> pd.DataFrame:
    """Numeric, skewed, discrete and categorical columns: FEATURES in all."""
    data: dict[str, object] = {}
    for i in range(4):
        data[f"normal{i}"] = rng.normal(mean_shift if i == 0 else 0.0, 1.0, size=n)
    for i in range(2):
        data[f"skewed{i}"] = rng.lognormal(0.0, 1.0, size=n)
    for i in range(2):
        data[f"count{i}"] = rng.poisson(3.0, size=n).astype(float)
    for i in range(2):
        data[f"plan{i}"] = rng.choice(["a", "b", "c", "d"], p=[0.4, 0.3, 0.2, 0.1], size=n)
    return pd.DataFrame(data)


def window(profile: ReferenceProfile, data: pd.DataFrame) -> WindowState:
    columns = {name: data[name].to_numpy() for name in data.columns}
    return WindowState.empty(profile).update(profile, columns)


@pytest.mark.slow
@pytest.mark.parametrize(("size", "windows"), [(200, 300), (1000, 300), (20_000, 150)])
def test_stationary_windows_raise_at_most_alpha_false_alarms(size: int, windows: int) -> None:
    """Windows from the reference's population: the share of windows with any feature
    judged "statistically real" (warning or drift) stays near alpha = 1 %, and no window
    drifts (the effect floor)."""
    rng = np.random.default_rng(size)
    profile = build_profile(population(rng, 20_000))
    nulls = NullModels()
    alarms = drifts = 0
    p_values: list[float] = []
    for _ in range(windows):
        state = window(profile, population(rng, size))
        report = evaluate_window(profile, state, CALIBRATED, null_models=nulls)
        flagged = [f for f in report.features if f.status in ("warning", "drift")]
        alarms += bool(flagged)
        drifts += any(f.status == "drift" for f in report.features)
        p_values += [f.primary.p_value for f in report.features if f.primary.p_value is not None]
    assert alarms / windows <= 0.03  # alpha 0.01; 3x leaves room for chance at 150-300 windows
    assert drifts <= alarms
    # The p-values are calibrated, not merely small-or-large: about uniform under no drift.
    below = np.mean(np.asarray(p_values) <= 0.2)
    assert 0.1 <= below <= 0.28, below


def test_a_half_sigma_mean_shift_is_caught_in_5000_event_windows() -> None:
    rng = np.random.default_rng(5)
    profile = build_profile(population(rng, 20_000))
    nulls = NullModels()
    caught = 0
    for _ in range(40):
        report = evaluate_window(
            profile,
            window(profile, population(rng, 5000, mean_shift=0.5)),
            CALIBRATED,
            null_models=nulls,
        )
        caught += report.feature("normal0").status == "drift"
    assert caught / 40 >= 0.95


@pytest.mark.slow  # a simulation of a million-event window
def test_a_huge_window_does_not_flag_a_trivial_shift_as_drift() -> None:
    """At a million events a 0.05-sigma shift is statistically real (warning), but its PSI
    stays under the effect floor: not drift."""
    rng = np.random.default_rng(6)
    profile = build_profile(population(rng, 50_000))
    report = evaluate_window(
        profile, window(profile, population(rng, 1_000_000, mean_shift=0.05)), CALIBRATED
    )
    shifted = report.feature("normal0")
    assert shifted.status == "warning"
    assert shifted.primary.score is not None and shifted.primary.score < 0.05


def test_replicates_follow_the_large_sample_law_of_psi() -> None:
    """PSI of two independent samples of one population: mean about (k - 1)(1/n + 1/N)."""
    counts = np.full(10, 2000)
    scores = replicate_scores(counts, 5000, "psi", draws=2000, seed=1)
    expected = 9 * (1 / 5000 + 1 / 20_000)
    assert np.mean(scores) == pytest.approx(expected, rel=0.08)
    fitted = fit_scaled_chi_square(scores)
    assert fitted.dof == pytest.approx(9, rel=0.15)


def test_replicate_scores_are_the_methods_scores() -> None:
    """The vectorized scores equal the methods' own on each replicate (JS squared)."""
    counts = np.array([500, 300, 150, 49, 1])
    rng = np.random.default_rng(2)
    references = rng.multinomial(1000, counts / 1000, size=20)
    windows = rng.multinomial(300, counts / 1000, size=20)
    from detectors.calibration import _js_squared_rows, _psi_rows

    for reference, current, p, j in zip(
        references,
        windows,
        _psi_rows(references, windows),
        _js_squared_rows(references, windows),
        strict=True,
    ):
        dist = FeatureDistributions(FeatureKind.CATEGORICAL, reference, current)
        assert p == pytest.approx(psi(dist).score, rel=1e-12)
        assert math.sqrt(j) == pytest.approx(jensen_shannon(dist).score, rel=1e-9, abs=1e-12)


def test_the_fitted_tail_matches_the_replicates_where_they_are_dense() -> None:
    counts = np.array([3000, 2000, 2000, 1500, 1000, 500])
    scores = replicate_scores(counts, 800, "psi", draws=4000, seed=3)
    fitted = fit_scaled_chi_square(scores)
    for level in (0.5, 0.1, 0.02):
        cut = float(np.quantile(scores, 1 - level))
        assert fitted.p_value(cut) == pytest.approx(level, rel=0.35, abs=0.005)


def test_verdicts_are_reproducible_across_caches() -> None:
    rng = np.random.default_rng(7)
    profile = build_profile(population(rng, 5000))
    state = window(profile, population(rng, 700))
    first = evaluate_window(profile, state, CALIBRATED, null_models=NullModels())
    second = evaluate_window(profile, state, CALIBRATED, null_models=NullModels())
    assert [f.primary.p_value for f in first.features] == [
        f.primary.p_value for f in second.features
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 200, 1000, 1001, 123_456, 10**7])
def test_size_buckets_are_below_the_size_and_close_to_it(n: int) -> None:
    bucket = size_bucket(n)
    assert 1 <= bucket <= n
    assert n < bucket * 2 ** (1 / 4) + 1
    assert size_bucket(bucket) == bucket


def test_a_constant_null_treats_any_larger_score_as_news() -> None:
    null = NullModel(scale=0.0, dof=0.0)
    assert null.p_value(0.0) == 1.0
    assert null.p_value(1e-9) == 0.0


def test_configuration_is_validated() -> None:
    from driftline.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="verdicts"):
        DriftConfig(verdicts="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="alpha"):
        DriftConfig(alpha=1.5)
    assert stats.chi2.sf(0, 1) == 1.0
