"""What a detector did on a scenario: false alarms, delay, precision and recall.

Per window the detector says which features drifted. For a scenario with a change at
window ``c`` concerning feature ``target``:

- **false alarms per window**: the share of windows before ``c`` (every window, for a
  stationary scenario) in which any feature drifted: the rate a model owner sees alerts
  at when nothing changed;
- **caught at once**: the share of runs in which ``target`` drifted in window ``c``, the
  first full window after the change;
- **delay**: windows from ``c`` to the first window in which ``target`` drifted, over the
  runs that caught it (runs that never did are counted as missed);
- **precision / recall**, as River's drift-detection evaluation counts them: a detection
  is the start of an alarm (a window with any drift after one without); one detection
  within ``tolerance`` windows from ``c`` is a true positive (the first), every other
  detection a false positive; recall is the share of runs with a true positive.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Verdicts = Sequence[frozenset[str]]  # per window: the features that drifted


@dataclass(frozen=True)
class Score:
    windows: int
    false_alarm_rate: float
    caught_at_once: float | None
    mean_delay: float | None
    missed: int
    precision: float | None
    recall: float | None
    seconds_per_window: float


def score(
    runs: Sequence[Verdicts],
    change_point: int | None,
    target: str | None,
    seconds: float,
    tolerance: int = 1,
) -> Score:
    quiet = [v for run in runs for v in (run if change_point is None else run[:change_point])]
    false_alarms = sum(bool(v) for v in quiet) / len(quiet) if quiet else math.nan
    n_windows = sum(len(run) for run in runs)
    if change_point is None or target is None:
        return Score(n_windows, false_alarms, None, None, 0, None, None, seconds / n_windows)
    delays, true_positives, false_positives = [], 0, 0
    for run in runs:
        hit = next((i for i in range(change_point, len(run)) if target in run[i]), None)
        if hit is not None:
            delays.append(hit - change_point)
        found = False
        for index, verdict in enumerate(run):
            onset = bool(verdict) and (index == 0 or not run[index - 1])
            if not onset:
                continue
            if not found and change_point <= index <= change_point + tolerance:
                true_positives += 1
                found = True
            else:
                false_positives += 1
    detections = true_positives + false_positives
    return Score(
        windows=n_windows,
        false_alarm_rate=false_alarms,
        caught_at_once=sum(target in run[change_point] for run in runs) / len(runs),
        mean_delay=sum(delays) / len(delays) if delays else None,
        missed=len(runs) - len(delays),
        precision=true_positives / detections if detections else None,
        recall=true_positives / len(runs),
        seconds_per_window=seconds / n_windows,
    )
