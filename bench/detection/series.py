"""The judges of a per-window series on series of known shape: 3-sigma limits against the
Page-Hinkley chart (detectors/change.py), and drift-score limits frozen from the reference
in sample against leave one chunk out (detectors/reference_baselines.py).

Series: independent normal values (one per window), 130 windows a run; a change from
window 60 on: a step of 4 or of 1 sigma, or a decay of 0.1 sigma a window. Every judge sees the
30 windows before the value, as stage 2 gives them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.detection.scoring import Score, score
from bench.detection.streams import population
from detectors import ControlLimits, WindowState, build_profile, evaluate_window
from detectors.change import EitherJudge, PageHinkley, SeriesJudge
from detectors.reference_baselines import SCORING, drift_score_baselines

WINDOWS, CHANGE, HISTORY = 130, 60, 30

JUDGES: dict[str, Callable[[], SeriesJudge]] = {
    "3-sigma limits (30 windows)": ControlLimits,
    "Page-Hinkley (delta 0.5, threshold 6 sigma)": PageHinkley,
    "either": lambda: EitherJudge((ControlLimits(), PageHinkley())),
}

SHAPES: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "stationary": None,
    "step of -4 sigma": lambda x: x - 4.0,
    "step of -1 sigma": lambda x: x - 1.0,
    "decay of 0.1 sigma a window": lambda x: x - 0.1 * np.arange(x.size),
}


def judge_run(values: np.ndarray, judge: SeriesJudge) -> list[frozenset[str]]:
    """Per window from HISTORY on: {"metric"} when the judge fired."""
    return [
        frozenset({"metric"})
        if judge.evaluate(list(values[i - HISTORY : i]), float(values[i])).anomaly
        else frozenset()
        for i in range(HISTORY, values.size)
    ]


def series_scores(runs: int, seed: int = 0) -> dict[str, dict[str, Score]]:
    rng = np.random.default_rng(seed)
    base = [rng.normal(size=WINDOWS) for _ in range(runs)]
    found: dict[str, dict[str, Score]] = {}
    for shape, change in SHAPES.items():
        series = []
        for values in base:
            changed = values.copy()
            if change is not None:
                changed[CHANGE:] = change(changed[CHANGE:])
            series.append(changed)
        for name, make in JUDGES.items():
            judge = make()
            began = time.perf_counter()
            verdicts = [judge_run(values, judge) for values in series]
            seconds = time.perf_counter() - began
            point = None if change is None else CHANGE - HISTORY
            target = None if change is None else "metric"
            found.setdefault(shape, {})[name] = score(verdicts, point, target, seconds)
    return found


@dataclass(frozen=True)
class BaselineScore:
    references: int
    windows: int
    held_out: float
    in_sample: float


def reference_baseline_scores(references: int, windows: int) -> BaselineScore:
    """Share of unseen stationary windows (drift score, any feature) above frozen limits."""
    above = {"held": 0, "in": 0}
    total = 0
    for seed in range(references):
        rng = np.random.default_rng(1000 + seed)
        reference = population(rng, 10_000)
        held = drift_score_baselines(reference, 1_000)
        biased = drift_score_baselines(reference, 1_000, in_sample=True)
        profile = build_profile(reference)
        for _ in range(windows):
            frame = population(rng, 1_000)
            columns = {name: frame[name].to_numpy() for name in frame.columns}
            state = WindowState.empty(profile).update(profile, columns)
            for feature in evaluate_window(profile, state, SCORING).features:
                value = feature.primary.score
                series = f"drift:{feature.feature}"
                above["held"] += value is not None and value > held[series].upper
                above["in"] += value is not None and value > biased[series].upper
                total += 1
    return BaselineScore(references, windows, above["held"] / total, above["in"] / total)


def render_series(found: dict[str, dict[str, Score]], baselines: BaselineScore) -> str:
    lines = [
        "## Judging a per-window series: 3-sigma limits and the Page-Hinkley chart",
        "",
        f"Independent normal values, one a window, {WINDOWS} windows a run, "
        f"{next(iter(next(iter(found.values())).values())).windows} judged windows in all per "
        f"shape; the change starts at window {CHANGE}; every judge sees the {HISTORY} windows "
        "before the value. A large step is what 3-sigma limits are for; a slow decay moves "
        "trailing limits along with it, which the Page-Hinkley chart "
        "(`anomaly.quality_detector`) accumulates instead. Delay counts windows from the "
        "change to the first alarm, over the runs with one.",
        "",
        "| shape | judge | false alarms / window | mean delay (windows) | missed runs |",
        "|---|---|---|---|---|",
    ]
    for shape, judges in found.items():
        for name, s in judges.items():
            delay = "" if s.mean_delay is None else f"{s.mean_delay:.1f}"
            missed = "" if s.caught_at_once is None else str(s.missed)
            lines.append(f"| {shape} | {name} | {s.false_alarm_rate:.2%} | {delay} | {missed} |")
    lines += [
        "",
        "## Drift-score limits frozen from the reference",
        "",
        f"{baselines.references} references of 10,000 events cut into chunks of 1,000; "
        f"{baselines.windows} unseen stationary windows of 1,000 events each, every feature's "
        "drift score compared with 3-sigma limits from the chunks' scores. Scored against the "
        "whole reference (in sample) a chunk meets itself, so its score and the limits come "
        "out too small; scored against the other chunks (held out, "
        "`detectors/reference_baselines.py`) a chunk is judged as an unseen window is.",
        "",
        "| chunk scores | share of unseen stationary scores above the limits |",
        "|---|---|",
        f"| in sample (biased) | {baselines.in_sample:.2%} |",
        f"| held out (one chunk left out) | {baselines.held_out:.2%} |",
        "",
        "Even held out, drift scores cross 3-sigma limits far more often than a normal series "
        "would (0.27 %): scores are skewed to the right and ten chunks estimate the spread "
        "roughly. Driftline's drift verdicts therefore come from the calibrated null "
        "distribution, not from 3-sigma limits; the limits on `drift:*` series flag a score "
        "that jumps relative to recent windows.",
        "",
    ]
    return "\n".join(lines)


def run(quick: bool = False) -> str:
    runs = 50 if quick else 200
    return render_series(series_scores(runs), reference_baseline_scores(3 if quick else 8, 150))
