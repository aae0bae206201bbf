"""The label-based path of the detection harness (bench/detection/labels.py), small."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error

from bench.detection import labels
from bench.detection.labels import LabelScenario, Layout
from detectors import QualityTask, build_profile

pytestmark = pytest.mark.slow  # make test runs it; make test-unit does not

# 20 windows of 300 events, the change at window 12: big enough for the concepts to show,
# small enough for the whole file to run in a few seconds.
SMALL = Layout(windows=20, window_rows=300, change=12, warmup=5, train_rows=2_000, holdout_rows=500)


def by_name(name: str, runs: int = 1) -> LabelScenario:
    return next(s for s in labels.scenarios(runs=runs, agrawal_runs=1) if s.name == name)


def test_the_window_metric_from_driftlines_quality_code_equals_sklearns() -> None:
    rng = np.random.default_rng(4)
    features = rng.normal(size=(400, 3))
    profile = build_profile(pd.DataFrame(features[:200], columns=["x0", "x1", "x2"]))
    truth = (features[200:, 0] > 0).astype(np.int64)
    predicted = np.where(rng.random(200) < 0.2, 1 - truth, truth)
    task = QualityTask("binary", classes=("0", "1"))
    accuracy = labels.window_metric(profile, task, features[200:], truth, predicted)
    assert accuracy == pytest.approx(accuracy_score(truth, predicted), abs=1e-12)
    target = features[200:, 1] * 3.0
    guess = target + rng.normal(size=200)
    task = QualityTask("regression")
    mae = labels.window_metric(profile, task, features[200:], target, guess)
    assert mae == pytest.approx(mean_absolute_error(target, guess), rel=1e-12)


def test_a_stationary_stream_keeps_its_concept_and_a_changed_one_loses_accuracy() -> None:
    quiet = np.array(labels.simulate(by_name("SEA, stationary"), SMALL, 11).metric)
    assert 0.8 < quiet.mean() < 0.95
    assert np.abs(quiet - quiet.mean()).max() < 0.08  # about 4 sigma at 300 events
    assert abs(quiet[: SMALL.change].mean() - quiet[SMALL.change :].mean()) < 0.03
    changed = np.array(labels.simulate(by_name("SEA, abrupt"), SMALL, 11).metric)
    # The same seed draws the same events before the change.
    assert changed[: SMALL.change - 1] == pytest.approx(quiet[: SMALL.change - 1])
    assert changed[SMALL.change + 1 :].mean() < quiet[: SMALL.change].mean() - 0.05
    decay = np.array(labels.simulate(by_name("SEA, slow decay"), SMALL, 11).metric)
    assert decay[: SMALL.change] == pytest.approx(quiet[: SMALL.change])
    assert decay[-3:].mean() < quiet[-3:].mean() - 0.02  # 7-8 windows of 0.5 flip points


def test_friedman_mae_rises_after_a_global_change_and_errors_stay_in_the_unit_interval() -> None:
    run = labels.simulate(by_name("Friedman, global abrupt"), SMALL, 5)
    mae = np.array(run.metric)
    assert mae[SMALL.change :].mean() > 1.5 * mae[: SMALL.change].mean()
    assert run.errors.size == SMALL.windows * SMALL.window_rows
    assert run.errors.min() >= 0.0 and run.errors.max() <= 1.0


def test_an_adwin_detection_at_label_p_falls_in_window_p_over_window_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(labels, "error_changes", lambda errors: [0, 499, 500, 2_999])
    fired = labels.adwin_windows([0.0] * 3_000, window_rows=500, windows=6)
    assert fired == [True, True, False, False, False, True]


def test_adwin_finds_a_jump_in_the_error_rate_in_the_window_it_happened() -> None:
    rng = np.random.default_rng(0)
    errors = np.concatenate([rng.random(3_000) < 0.1, rng.random(3_000) < 0.5]).astype(float)
    fired = labels.adwin_windows(errors, window_rows=500, windows=12)
    first = fired.index(True)
    assert 6 <= first <= 7 and not any(fired[:6])


def test_the_narrowest_abrupt_width_does_not_overflow_rivers_sigmoid() -> None:
    stream = labels.concept_drift(labels.sea(0), labels.sea(3), None)(1, Layout())
    assert len(list(labels.draw(stream, 10)[1])) == 10
    assert labels.abrupt_width(35_001) == 234


def test_the_rendered_section_has_a_row_per_detector_and_scenario() -> None:
    found = [
        labels.run_scenario(by_name("SEA, stationary", runs=2), SMALL, 1),
        labels.run_scenario(by_name("SEA, abrupt", runs=2), SMALL, 1),
    ]
    quiet = found[0].scores["3-sigma limits (30 windows)"]
    assert quiet.windows == 2 * (SMALL.windows - SMALL.warmup) and quiet.caught_at_once is None
    abrupt = found[1].scores[labels.ADWIN]
    assert abrupt.caught_at_once is not None and abrupt.missed <= 2
    text = labels.render_labels(found, seconds=3.0)
    assert "### Stationary streams: false alarms per window" in text
    assert "| SEA, stationary (accuracy " in text
    for detector in labels.DETECTORS:
        assert f"| {detector} |" in text
        assert f"| SEA, abrupt | accuracy {found[1].before:.3f} → " in text
    assert text.count("| SEA, abrupt |") == len(labels.DETECTORS) + 1  # + the scenario list
