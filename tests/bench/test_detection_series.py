"""The series section of the detection harness (bench/detection/series.py), small."""

from __future__ import annotations

import time

import pytest

from bench.detection import series


@pytest.mark.slow
def test_page_hinkley_catches_the_decay_the_limits_miss_and_the_table_says_so() -> None:
    began = time.perf_counter()
    found = series.series_scores(runs=20, seed=3)
    decay = found["decay of 0.1 sigma a window"]
    limits = decay["3-sigma limits (30 windows)"]
    chart = decay["Page-Hinkley (delta 0.5, threshold 6 sigma)"]
    assert chart.missed == 0 and chart.mean_delay is not None
    assert limits.mean_delay is None or chart.mean_delay < limits.mean_delay + limits.missed
    big_step = found["step of -4 sigma"]["3-sigma limits (30 windows)"]
    assert big_step.caught_at_once is not None and big_step.caught_at_once >= 0.7
    quiet = found["stationary"]
    assert all(s.false_alarm_rate < 0.02 for s in quiet.values())
    baselines = series.BaselineScore(1, 10, held_out=0.01, in_sample=0.2)
    text = series.render_series(found, baselines)
    assert "| decay of 0.1 sigma a window | Page-Hinkley" in text
    assert "| in sample (biased) | 20.00% |" in text
    assert time.perf_counter() - began < 60  # a guard on the test's own size, not a benchmark


@pytest.mark.slow
def test_held_out_reference_limits_flag_fewer_unseen_windows() -> None:
    found = series.reference_baseline_scores(references=1, windows=40)
    assert found.in_sample > found.held_out
