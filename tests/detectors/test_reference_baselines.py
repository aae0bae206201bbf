"""Drift-score limits from the reference: leave-one-chunk-out versus in-sample (biased)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors import WindowState, build_profile, evaluate_window
from detectors.reference_baselines import SCORING, chunk_drift_scores, drift_score_baselines
from driftline.errors import InvalidInputError


def population(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "plan": rng.choice(list("abcde"), size=n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
        }
    )


@pytest.mark.slow
def test_in_sample_limits_flag_unseen_stationary_windows_and_held_out_ones_do_not() -> None:
    """Six chunks of 500 rows, three references; 300 fresh windows of the same population
    each, which the reference does not contain, scored as the stream scores them. (Limits
    from six chunks are noisy, so the rates are pooled over three references.)"""
    above = {"held out": 0, "in sample": 0}
    total = 0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        reference = population(rng, 3000)
        held_out = drift_score_baselines(reference, 500)
        in_sample = drift_score_baselines(reference, 500, in_sample=True)
        for series in held_out:
            assert in_sample[series].mean < held_out[series].mean, "a chunk is closer to itself"
        profile = build_profile(reference)
        for _ in range(300):
            window = population(rng, 500)
            columns = {name: window[name].to_numpy() for name in window.columns}
            state = WindowState.empty(profile).update(profile, columns)
            for feature in evaluate_window(profile, state, SCORING).features:
                series, score = f"drift:{feature.feature}", feature.primary.score
                assert score is not None
                above["held out"] += score > held_out[series].upper
                above["in sample"] += score > in_sample[series].upper
                total += 1
    held, biased = above["held out"] / total, above["in sample"] / total
    assert held <= 0.02, above
    assert biased >= 3 * held and biased >= 0.04, above


def test_each_chunk_is_scored_against_the_rest() -> None:
    rng = np.random.default_rng(2)
    reference = population(rng, 1500)
    reference.loc[1000:, "x"] += 3.0  # the last chunk differs from the other two
    scores = chunk_drift_scores(reference, 500)
    assert set(scores) == {"drift:x", "drift:plan"}
    assert len(scores["drift:x"]) == 3
    itself = chunk_drift_scores(reference, 500, in_sample=True)["drift:x"]
    # Against a reference holding it, a third of the reference is the chunk itself.
    assert all(held > own for held, own in zip(scores["drift:x"], itself, strict=True))
    assert scores["drift:x"][2] > 1.5 * itself[2]


def test_too_few_chunks_is_a_clear_error() -> None:
    reference = population(np.random.default_rng(0), 900)
    with pytest.raises(InvalidInputError, match="at least 3"):
        drift_score_baselines(reference, 500)
