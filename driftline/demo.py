"""The demo: a generated stream with drift injected at a known window, judged window by window.

Until the streaming pipeline lands (Kafka broker, Faust worker, SQL) this runs the
statistical core in-process on the same kind of stream: a binary classifier's predictions
with eight features, split into four partitions whose partial window states are merged as
the stream stage 2 will merge them, and labels for part of the predictions. Drift is
injected on three features from ``DRIFT_AT`` on, and the model's accuracy drops from
``DECAY_AT`` on.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import numpy as np
import pandas as pd

from detectors import ControlLimits, QualityTask, WindowState, build_profile, evaluate_window
from detectors.profile import ReferenceProfile

WINDOWS = 12
EVENTS_PER_WINDOW = 4000
PARTITIONS = 4
DRIFT_AT = 6
DECAY_AT = 8
DRIFTED = ("income", "tenure", "plan")
LABELED_SHARE = 0.3


def generate(rng: np.random.Generator, rows: int, drift: bool) -> pd.DataFrame:
    income_shift = 0.8 if drift else 0.0
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, rows).round(),
            "income": rng.lognormal(10 + income_shift, 0.5, rows),
            "tenure": rng.exponential(3.0 if not drift else 6.0, rows),
            "sessions": rng.poisson(5, rows).astype(float),
            "balance": rng.normal(1000, 300, rows),
            "plan": rng.choice(
                ["free", "pro", "team"], p=[0.2, 0.4, 0.4] if drift else [0.6, 0.3, 0.1], size=rows
            ),
            "region": rng.choice(["eu", "us", "apac"], p=[0.4, 0.4, 0.2], size=rows),
            "mobile": rng.random(rows) < 0.55,
        }
    )
    logit = 0.04 * (frame["age"] - 40) - 0.3 * frame["sessions"] + 1.5
    frame["score"] = 1 / (1 + np.exp(-logit.to_numpy() + rng.normal(0, 0.3, rows)))
    return frame


def labels_for(rng: np.random.Generator, scores: np.ndarray, decayed: bool) -> np.ndarray:
    truth = rng.random(scores.size) < scores
    if decayed:  # the world changed: a third of outcomes no longer follow the model
        flip = rng.random(scores.size) < 0.35
        truth = np.where(flip, ~truth, truth)
    return truth.astype(int)


def window_state(
    rng: np.random.Generator, profile: ReferenceProfile, task: QualityTask, index: int
) -> WindowState:
    """Build the window from one partial state per partition, merged as stage 2 does."""
    events = generate(rng, EVENTS_PER_WINDOW, drift=index >= DRIFT_AT)
    merged = WindowState.empty(profile, task)
    for part in np.array_split(np.arange(len(events)), PARTITIONS):
        chunk = events.iloc[part]
        partial = WindowState.empty(profile, task)
        partial.update(profile, {name: chunk[name].tolist() for name in chunk.columns})
        labeled = chunk.sample(frac=LABELED_SHARE, random_state=int(rng.integers(1 << 31)))
        scores = labeled["score"].to_numpy()
        y_true = labels_for(rng, scores, decayed=index >= DECAY_AT)
        partial.update_labels(
            y_true.tolist(), (scores >= 0.5).astype(int).tolist(), scores.tolist()
        )
        merged = merged.merge(partial)
    return merged


def run(out: TextIO = sys.stdout, seed: int = 7) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    say = out.write
    say("Driftline demo: the statistical core on a generated stream (no broker needed yet).\n")
    reference = generate(rng, 20_000, drift=False)
    profile = build_profile(reference, output_columns=["score"])
    task = QualityTask("binary", classes=("0", "1"))
    say(
        f"reference: {len(reference):,} rows, {len(profile.features)} features + model score; "
        f"drift injected on {', '.join(DRIFTED)} from window {DRIFT_AT}, accuracy drop from "
        f"window {DECAY_AT}\n\n"
    )
    say(
        f"{'win':>3} {'events':>7} {'drifted features (PSI)':<44} {'score PSI':>9} "
        f"{'accuracy':>8} {'AUC':>6} {'labels':>6}  anomalies\n"
    )
    limits = ControlLimits(min_history=4)
    history: dict[str, list[float | None]] = {"accuracy": [], "score mean": []}
    rows = []
    for index in range(WINDOWS):
        report = evaluate_window(profile, window_state(rng, profile, task, index))
        drifted = [
            f"{f.feature}={f.primary.score:.2f}" for f in report.features if f.status == "drift"
        ]
        quality = report.quality
        accuracy = getattr(quality, "accuracy", None)
        score_mean = next(q.mean for q in report.data_quality if q.feature == "score")
        anomalies = []
        for series, value in (("accuracy", accuracy), ("score mean", score_mean)):
            verdict = limits.evaluate(history[series], value)
            if verdict.anomaly:
                anomalies.append(f"{series} {verdict.direction} 3σ ({value:.3f})")
            history[series].append(value)
        score_psi = report.feature("score").primary.score or 0.0
        say(
            f"{index:>3} {report.n_rows:>7,} {', '.join(drifted) or '-':<44} {score_psi:>9.3f} "
            f"{accuracy or 0:>8.3f} {getattr(quality, 'roc_auc', 0) or 0:>6.3f} "
            f"{report.label_coverage or 0:>6.0%}  {'; '.join(anomalies) or '-'}\n"
        )
        rows.append(
            {
                "window": index,
                "drifted": [d.split("=")[0] for d in drifted],
                "accuracy": accuracy,
                "anomalies": anomalies,
            }
        )
    say(
        "\nDrift verdicts use PSI >= 0.2 on the reference's decile bins; anomalies are values "
        "outside mean ± 3σ of the previous windows.\n"
    )
    return rows
