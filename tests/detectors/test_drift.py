"""Finalizing a window: verdicts per feature, BH adjustment, window verdict, config errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors.drift import DriftConfig, evaluate_window
from detectors.profile import build_profile
from detectors.quality import QualityTask
from detectors.registry import UnknownDetectorError
from detectors.window import WindowState
from driftline.errors import ConfigurationError

RNG = np.random.default_rng(3)
N = 5000
NUMERIC = [f"n{i}" for i in range(6)]
CATEGORICAL = ["c0", "c1"]


def frame(n: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    shift = shift or {}
    data: dict[str, object] = {
        name: RNG.normal(shift.get(name, 0.0), 1.0, size=n) for name in NUMERIC
    }
    for name in CATEGORICAL:
        p = [0.5, 0.3, 0.2] if name not in shift else [0.2, 0.3, 0.5]
        data[name] = RNG.choice(["a", "b", "c"], p=p, size=n)
    data["score"] = 1 / (1 + np.exp(-(RNG.normal(shift.get("score", 0.0), 1.0, size=n))))
    return pd.DataFrame(data)


PROFILE = build_profile(frame(20000), output_columns=["score"])


def window(data: pd.DataFrame, task: QualityTask | None = None) -> WindowState:
    columns = {name: data[name].to_numpy() for name in data.columns}
    return WindowState.empty(PROFILE, task).update(PROFILE, columns)


def test_no_drift_on_the_reference_distribution() -> None:
    report = evaluate_window(PROFILE, window(frame(N)))
    assert report.drifted_features == []
    assert all(f.status == "ok" for f in report.features)
    assert report.share_drifted == 0.0 and report.dataset_drift is False
    assert report.output_drift is False
    assert report.n_rows == N


def test_drift_on_exactly_the_shifted_features() -> None:
    shifted = {"n1": 0.8, "n4": 1.0, "c1": 1.0}
    report = evaluate_window(PROFILE, window(frame(N, shifted)))
    assert sorted(report.drifted_features) == sorted(shifted)
    assert report.n_drifted == 3
    assert report.share_drifted == pytest.approx(3 / 8)
    assert report.dataset_drift is False
    score = report.feature("n1").primary.score
    assert score is not None and score > 0.2
    assert report.feature("n1").others[0].method == "ks"
    assert report.feature("n1").others[0].drifted is True
    assert report.feature("n0").others[0].drifted is False


def test_output_drift_is_reported_apart_from_features() -> None:
    report = evaluate_window(PROFILE, window(frame(N, {"score": 1.0})))
    assert report.output_drift is True
    assert report.drifted_features == []
    assert report.feature("score").is_output


def test_psi_warning_level_between_thresholds() -> None:
    config = DriftConfig(verdicts="fixed", warning_thresholds={"psi": 0.0001})
    report = evaluate_window(PROFILE, window(frame(N)), config)
    assert {f.status for f in report.features} == {"warning"}


def test_dataset_drift_at_the_configured_share() -> None:
    shifted = {name: 1.0 for name in [*NUMERIC[:4], *CATEGORICAL]}
    report = evaluate_window(PROFILE, window(frame(N, shifted)))
    assert report.share_drifted == pytest.approx(6 / 8)
    assert report.dataset_drift is True
    stricter = evaluate_window(PROFILE, window(frame(N, shifted)), DriftConfig(drift_share=0.8))
    assert stricter.dataset_drift is False


def test_ks_p_values_are_benjamini_hochberg_adjusted_across_features() -> None:
    report = evaluate_window(PROFILE, window(frame(N, {"n2": 0.05, "n3": 0.1})))
    ks = [r for f in (*report.features, *report.outputs) for r in f.others if r.method == "ks"]
    raw = np.array([r.p_value for r in ks])
    adjusted = np.array([r.adjusted_p_value for r in ks])
    # BH by hand: p_(i) * m / i, made monotone from the largest rank down, capped at 1.
    order = np.argsort(raw)
    m = raw.size
    by_rank = raw[order] * m / np.arange(1, m + 1)
    expected_sorted = np.minimum(1.0, np.minimum.accumulate(by_rank[::-1])[::-1])
    expected = np.empty(m)
    expected[order] = expected_sorted
    np.testing.assert_allclose(adjusted, expected, rtol=1e-12)
    np.testing.assert_allclose(adjusted, stats.false_discovery_control(raw), rtol=1e-12)
    assert all(r.adjusted_p_value is not None for r in ks)
    assert [r.drifted for r in ks] == (adjusted.astype(np.float64) < 0.05).tolist()


def test_primary_method_per_kind_and_per_feature() -> None:
    config = DriftConfig(
        numeric_method="wasserstein",
        categorical_method="chisquare",
        feature_methods={"n0": "jensenshannon"},
        also_report=(),
    )
    report = evaluate_window(PROFILE, window(frame(N, {"n1": 1.0, "c0": 1.0})), config)
    assert report.feature("n0").primary.method == "jensenshannon"
    assert report.feature("n1").primary.method == "wasserstein"
    assert report.feature("c0").primary.method == "chisquare"
    assert report.feature("c0").others == ()
    assert sorted(report.drifted_features) == ["c0", "n1"]


def test_thresholds_override_the_spec_defaults() -> None:
    report = evaluate_window(PROFILE, window(frame(N)), DriftConfig(thresholds={"psi": 0.0}))
    assert all(f.status == "drift" for f in report.features)
    assert report.feature("n0").primary.threshold == 0.0


def test_empty_window_has_no_verdicts() -> None:
    report = evaluate_window(PROFILE, WindowState.empty(PROFILE))
    assert {f.status for f in report.features} == {"no data"}
    assert report.share_drifted is None and report.dataset_drift is None
    assert report.output_drift is None
    assert all(f.primary.score is None for f in report.features)
    assert all(q.missing_rate is None for q in report.data_quality)


def test_data_quality_rates() -> None:
    state = WindowState.empty(PROFILE).update(
        PROFILE, {"n0": [0.0, None, "x", 100.0], "c0": ["a", "zzz", None, "b"]}
    )
    quality = {q.feature: q for q in evaluate_window(PROFILE, state).data_quality}
    assert quality["n0"].missing_rate == 0.25 and quality["n0"].invalid_rate == 0.25
    assert quality["n0"].out_of_range_rate == 0.5 and quality["n0"].mean == 50.0
    assert quality["c0"].unseen_rate == pytest.approx(1 / 3)
    assert quality["n1"].missing_rate == 1.0 and quality["n1"].out_of_range_rate is None


def test_quality_metrics_and_label_coverage() -> None:
    task = QualityTask("binary", classes=("0", "1"))
    state = window(frame(100), task).update_labels(
        ["1", "0", "1", "1"], ["1", "0", "0", "1"], [0.9, 0.2, 0.4, 0.7]
    )
    report = evaluate_window(PROFILE, state)
    assert report.label_coverage == pytest.approx(0.04)
    assert report.quality is not None and report.quality.n_labeled == 4
    assert report.quality.accuracy == pytest.approx(0.75)  # type: ignore[union-attr]
    unlabeled = evaluate_window(PROFILE, window(frame(100)))
    assert unlabeled.quality is None and unlabeled.label_coverage is None


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        (DriftConfig(numeric_method="kl"), UnknownDetectorError, "valid: chisquare, jensenshannon"),
        (DriftConfig(categorical_method="ks"), ConfigurationError, "does not apply to categorical"),
        (DriftConfig(also_report=("nope",)), UnknownDetectorError, "unknown drift method 'nope'"),
        (DriftConfig(feature_methods={"ghost": "psi"}), ConfigurationError, "ghost"),
    ],
)
def test_bad_configuration_fails_naming_the_choices(
    config: DriftConfig, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        evaluate_window(PROFILE, window(frame(10)), config)


def test_drift_share_is_validated() -> None:
    with pytest.raises(ConfigurationError, match="drift_share"):
        DriftConfig(drift_share=0.0)
