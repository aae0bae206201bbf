"""The label-based path of the detection harness: streams whose P(y|x) changes at a known
window, a model frozen before the change, its quality per window as Driftline computes it
from predictions and labels, and the judges of that quality series.

Streams come from River's synthetic generators (SEA, Agrawal, FriedmanDrift, joined by
ConceptDriftStream), plus a slow decay of our own: labels of a stationary SEA stream flipped
with a probability that rises a little every window. Every run draws its own stream (its own
seed); its first ``train_rows`` events train a decision tree, the next ``holdout_rows`` fix
the regression error bound (below), then ``windows`` windows of ``window_rows`` labeled
events are monitored. Per window the events go through a :class:`WindowState` (features and
labeled pairs) and :func:`evaluate_window`; its ``quality`` gives accuracy or MAE.

Judges, on that series (each window judged against the windows before it):

- 3-sigma limits over the trailing 30 windows (``ControlLimits()``), Page-Hinkley
  (``PageHinkley()``), and either of them (``EitherJudge``), all two-sided as Driftline
  alerts;
- River's ADWIN fed every label's error in event order (``error_changes``): 0/1
  misclassifications, or for regression the absolute error divided by the largest absolute
  error on the held-out pre-change events and clipped to 1 (ADWIN's bound assumes values in
  [0, 1]; a change that makes errors larger than anything seen before still shows, as a
  mass at 1). A detection at label ``p`` of the monitored stream falls in window
  ``p // window_rows``.

Scoring (``bench/detection/scoring.py``) starts at window ``warmup`` (30), when the trailing
limits have their full history: the windows before it have fewer or no verdicts, which is
how a new model starts, not how a running one behaves. ADWIN sees the errors from window 0.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from river.datasets import synth
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from bench.detection.scoring import Score, Verdicts, score
from detectors import (
    ClassificationMetrics,
    ControlLimits,
    DriftConfig,
    QualityTask,
    ReferenceProfile,
    RegressionMetrics,
    WindowState,
    build_profile,
    evaluate_window,
)
from detectors.change import EitherJudge, PageHinkley, SeriesJudge, error_changes

FloatArray = npt.NDArray[np.float64]

# River's generators are untyped.
_SEA: Any = synth.SEA
_AGRAWAL: Any = synth.Agrawal
_FRIEDMAN: Any = synth.FriedmanDrift
_CONCEPT_DRIFT: Any = synth.ConceptDriftStream

ADWIN = "ADWIN on the per-label errors (delta 0.002)"
JUDGES: dict[str, Callable[[], SeriesJudge]] = {
    "3-sigma limits (30 windows)": ControlLimits,
    "Page-Hinkley (delta 0.5, threshold 6 sigma)": PageHinkley,
    "3-sigma or Page-Hinkley": lambda: EitherJudge((ControlLimits(), PageHinkley())),
}
DETECTORS = [*JUDGES, ADWIN]

# Drift verdicts are not what this section measures; fixed PSI thresholds skip the
# calibrated null models, which would only cost time here.
WINDOW_CONFIG = DriftConfig(verdicts="fixed", also_report=())


@dataclass(frozen=True)
class Layout:
    """Where things are in a run's stream, in events and windows."""

    windows: int = 100
    window_rows: int = 500
    change: int = 60  # the window in which a change begins
    warmup: int = 30  # windows left out of the scoring (the limits' history)
    train_rows: int = 4_000
    holdout_rows: int = 1_000

    @property
    def monitored_start(self) -> int:
        """Event index (0-based) of window 0's first event."""
        return self.train_rows + self.holdout_rows

    @property
    def change_event(self) -> int:
        """Event index of the first event of the change window."""
        return self.monitored_start + self.change * self.window_rows

    @property
    def total_rows(self) -> int:
        return self.monitored_start + self.windows * self.window_rows


Stream = Callable[[int, Layout], Any]  # (seed, layout) -> a River dataset of (x, y)


@dataclass(frozen=True)
class LabelScenario:
    name: str
    description: str
    stream: Stream
    changes: bool  # whether P(y|x) changes from window ``layout.change`` on
    regression: bool = False
    runs: int = 20
    flip_per_window: float = 0.0  # the slow decay: extra label-flip probability a window

    @property
    def metric(self) -> str:
        return "MAE" if self.regression else "accuracy"


def abrupt_width(position: int) -> int:
    """The narrowest ConceptDriftStream width River can compute at ``position``.

    Its sigmoid evaluates ``math.exp(-4 * (t - position) / width)`` from ``t = 1``, which
    overflows beyond ``exp(709)``: width 1 fails once ``position`` passes about 178. A width
    of ``position / 150`` keeps the exponent under 600; at 35,000 events that is 234 events,
    half a window of 500.
    """
    return max(1, math.ceil(position / 150))


def concept_drift(
    before: Callable[[int], Any], after: Callable[[int], Any], width_windows: int | None
) -> Stream:
    """``before``'s concept, then ``after``'s from window ``layout.change`` on.

    ``width_windows=None``: abrupt (the narrowest width River allows, centred half a width into the
    change window: at 500-event windows, 75 % of the change window's events and 1.5 % of
    the window before come from the new concept).
    Otherwise gradual, over ``width = width_windows * window_rows`` events: the sigmoid's
    midpoint is ``width`` events after the change window's start, so 2 % of the events come
    from the new concept at the start, 50 % ``width`` events later and 98 % after
    ``2 * width``.
    """

    def stream(seed: int, layout: Layout) -> Any:
        start = layout.change_event + 1  # River counts events from 1
        if width_windows is None:
            span = abrupt_width(start)
            position = start + span // 2
        else:
            span = width_windows * layout.window_rows
            position = start + span
        # Separate seeds: the new concept's features are fresh draws, not a replay.
        return _CONCEPT_DRIFT(
            stream=before(seed),
            drift_stream=after(seed + 1),
            position=position,
            width=span,
            seed=seed + 2,
        )

    return stream


def sea(variant: int) -> Callable[[int], Any]:
    return lambda seed: _SEA(variant=variant, noise=0.1, seed=seed)


def agrawal(function: int) -> Callable[[int], Any]:
    return lambda seed: _AGRAWAL(classification_function=function, perturbation=0.05, seed=seed)


def stationary(make: Callable[[int], Any]) -> Stream:
    return lambda seed, layout: make(seed)


def friedman(drift_type: str | None) -> Stream:
    """FriedmanDrift, its first change at the change window (``None``: past the run's end)."""

    def stream(seed: int, layout: Layout) -> Any:
        first = layout.change_event if drift_type else layout.total_rows + 1
        kind = drift_type or "gra"
        # The later change points lie past the run; FriedmanDrift counts events from 0.
        later = (layout.total_rows + 10, layout.total_rows + 20)
        position = (first, *later) if kind == "lea" else (first, later[0])
        return _FRIEDMAN(drift_type=kind, position=position, seed=seed)

    return stream


def scenarios(runs: int = 20, agrawal_runs: int = 5) -> list[LabelScenario]:
    """The label-path scenarios; Agrawal takes fewer runs (River draws it at ~110 µs an event)."""
    return [
        LabelScenario(
            "SEA, stationary",
            "SEA threshold 8, 10 % label noise, throughout",
            stationary(sea(0)),
            changes=False,
            runs=runs,
        ),
        LabelScenario(
            "SEA, abrupt",
            "SEA threshold 8 → 9.5 (13 % of the events change class) at once",
            concept_drift(sea(0), sea(3), None),
            changes=True,
            runs=runs,
        ),
        LabelScenario(
            "SEA, gradual",
            "SEA threshold 8 → 9.5 through ConceptDriftStream, width 20 windows: 2 % of the "
            "events from the new concept at the change window, 12 % 10 windows later, 50 % "
            "20 later, 88 % 30 later",
            concept_drift(sea(0), sea(3), 20),
            changes=True,
            runs=runs,
        ),
        LabelScenario(
            "SEA, slow decay",
            "stationary SEA (threshold 8), labels flipped with a probability rising 0.5 "
            "points a window from the change window on (accuracy: about -0.38 points a "
            "window, a quarter of its window-to-window spread)",
            stationary(sea(0)),
            changes=True,
            runs=runs,
            flip_per_window=0.005,
        ),
        LabelScenario(
            "SEA, slower decay",
            "as the slow decay, rising 0.2 points a window (accuracy: about -0.15 points, "
            "a tenth of the spread)",
            stationary(sea(0)),
            changes=True,
            runs=runs,
            flip_per_window=0.002,
        ),
        LabelScenario(
            "Agrawal, stationary",
            "Agrawal function 6, perturbation 0.05, throughout",
            stationary(agrawal(6)),
            changes=False,
            runs=agrawal_runs,
        ),
        LabelScenario(
            "Agrawal, abrupt",
            "Agrawal function 6 → 8 (the disposable-income rule gains an education term) at once",
            concept_drift(agrawal(6), agrawal(8), None),
            changes=True,
            runs=agrawal_runs,
        ),
        LabelScenario(
            "Friedman, stationary",
            "Friedman's function, unit normal noise, throughout",
            friedman(None),
            changes=False,
            regression=True,
            runs=runs,
        ),
        LabelScenario(
            "Friedman, global abrupt",
            "FriedmanDrift `gra`: the relevant features swap places, all of the space",
            friedman("gra"),
            changes=True,
            regression=True,
            runs=runs,
        ),
        LabelScenario(
            "Friedman, local abrupt",
            "FriedmanDrift `lea`, first stage: the function changes in two corners holding "
            "1.6 % of the space",
            friedman("lea"),
            changes=True,
            regression=True,
            runs=runs,
        ),
    ]


@dataclass(frozen=True)
class LabeledRun:
    """One run: the metric per window, and every monitored label's error in [0, 1]."""

    metric: list[float]
    errors: FloatArray


def draw(dataset: Any, rows: int) -> tuple[FloatArray, FloatArray]:
    """``rows`` events of a River dataset as a feature matrix and a target vector."""
    xs: list[float] = []
    ys: list[float] = []
    for x, y in itertools.islice(dataset, rows):
        xs.extend(x.values())
        ys.append(float(y))
    features = np.asarray(xs, dtype=np.float64).reshape(rows, -1)
    return features, np.asarray(ys, dtype=np.float64)


def flip_labels(
    target: FloatArray, layout: Layout, per_window: float, rng: np.random.Generator
) -> FloatArray:
    """Flip 0/1 labels of window ``change + k`` with probability ``per_window * (k + 1)``."""
    flipped = target.copy()
    for window in range(layout.change, layout.windows):
        start = layout.monitored_start + window * layout.window_rows
        rows = slice(start, start + layout.window_rows)
        chance = per_window * (window - layout.change + 1)
        hit = rng.random(layout.window_rows) < chance
        flipped[rows] = np.where(hit, 1.0 - flipped[rows], flipped[rows])
    return flipped


def window_metric(
    profile: ReferenceProfile,
    task: QualityTask,
    features: FloatArray,
    y_true: Sequence[Any] | npt.NDArray[Any],
    y_pred: Sequence[Any] | npt.NDArray[Any],
) -> float:
    """Accuracy or MAE of one window, as Driftline's window state and report compute it."""
    columns = {name: features[:, i] for i, name in enumerate(profile.features)}
    state = WindowState.empty(profile, task).update(profile, columns)
    state.update_labels(y_true, y_pred)
    quality = evaluate_window(profile, state, WINDOW_CONFIG).quality
    value: float | None = None
    if isinstance(quality, ClassificationMetrics):
        value = quality.accuracy
    elif isinstance(quality, RegressionMetrics):
        value = quality.mae
    if value is None:
        raise RuntimeError("a window with labeled pairs has no quality metric")
    return value


def simulate(scenario: LabelScenario, layout: Layout, seed: int) -> LabeledRun:
    features, target = draw(scenario.stream(seed, layout), layout.total_rows)
    if scenario.flip_per_window:
        target = flip_labels(target, layout, scenario.flip_per_window, np.random.default_rng(seed))
    train = slice(0, layout.train_rows)
    holdout = slice(layout.train_rows, layout.monitored_start)
    monitored = slice(layout.monitored_start, layout.total_rows)
    names = [f"x{i}" for i in range(features.shape[1])]
    profile = build_profile(pd.DataFrame(features[train], columns=names))
    tree: Any
    if scenario.regression:
        tree = DecisionTreeRegressor(max_depth=8, min_samples_leaf=20, random_state=seed)
        task = QualityTask("regression")
    else:
        tree = DecisionTreeClassifier(max_depth=8, min_samples_leaf=20, random_state=seed)
        task = QualityTask("binary", classes=("0", "1"))
        target = target.astype(np.int64)
    tree.fit(features[train], target[train])
    predicted = tree.predict(features[monitored])
    truth = target[monitored]
    if scenario.regression:
        bound = float(np.abs(tree.predict(features[holdout]) - target[holdout]).max())
        errors = np.minimum(np.abs(predicted - truth) / bound, 1.0)
    else:
        errors = (predicted != truth).astype(np.float64)
    metric = []
    for window in range(layout.windows):
        rows = slice(window * layout.window_rows, (window + 1) * layout.window_rows)
        at = slice(layout.monitored_start + rows.start, layout.monitored_start + rows.stop)
        metric.append(window_metric(profile, task, features[at], truth[rows], predicted[rows]))
    return LabeledRun(metric, errors)


def judged_windows(judge: SeriesJudge, series: Sequence[float]) -> list[bool]:
    """Per window: whether ``judge`` fired on it given the windows before it."""
    return [bool(judge.evaluate(series[:i], series[i]).anomaly) for i in range(len(series))]


def adwin_windows(
    errors: Sequence[float] | FloatArray, window_rows: int, windows: int
) -> list[bool]:
    """Per window: whether ADWIN detected a change at one of its labels."""
    fired = [False] * windows
    for position in error_changes(errors):
        fired[position // window_rows] = True
    return fired


def as_verdicts(fired: Sequence[bool], metric: str, warmup: int) -> Verdicts:
    return [frozenset({metric}) if hit else frozenset() for hit in fired[warmup:]]


@dataclass
class LabelResult:
    scenario: LabelScenario
    layout: Layout
    scores: dict[str, Score]
    before: float  # mean metric over the scored windows before the change (all, stationary)
    after: float | None  # mean metric over the last 10 windows
    seconds: float  # the whole scenario: streams, model, quality, judges


def run_scenario(scenario: LabelScenario, layout: Layout, seed: int) -> LabelResult:
    began = time.perf_counter()
    runs = [simulate(scenario, layout, seed + 10 * run) for run in range(scenario.runs)]
    change = layout.change - layout.warmup if scenario.changes else None
    target = scenario.metric if scenario.changes else None
    found: dict[str, list[Verdicts]] = {}
    spent: dict[str, float] = {}
    for name, make in JUDGES.items():
        judge = make()
        start = time.perf_counter()
        fired = [judged_windows(judge, run.metric) for run in runs]
        spent[name] = time.perf_counter() - start
        found[name] = [as_verdicts(f, scenario.metric, layout.warmup) for f in fired]
    start = time.perf_counter()
    fired = [adwin_windows(run.errors, layout.window_rows, layout.windows) for run in runs]
    spent[ADWIN] = time.perf_counter() - start
    found[ADWIN] = [as_verdicts(f, scenario.metric, layout.warmup) for f in fired]
    scores = {name: score(v, change, target, spent[name]) for name, v in found.items()}
    quiet_end = layout.change if scenario.changes else layout.windows
    before = float(np.mean([run.metric[layout.warmup : quiet_end] for run in runs]))
    after = float(np.mean([run.metric[-10:] for run in runs])) if scenario.changes else None
    seconds = time.perf_counter() - began
    return LabelResult(scenario, layout, scores, before, after, seconds)


def run_labels(
    quick: bool = False, seed: int = 2026, say: Callable[[str], None] = lambda text: None
) -> list[LabelResult]:
    """Every label-path scenario; ``quick``: 5 runs each, 2 of Agrawal."""
    layout = Layout()
    found = scenarios(runs=5, agrawal_runs=2) if quick else scenarios()
    results = []
    for index, scenario in enumerate(found):
        result = run_scenario(scenario, layout, seed + 1000 * index)
        say(f"  labels: {scenario.name}: {scenario.runs} runs, {result.seconds:.1f} s")
        results.append(result)
    return results


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def render_labels(results: Sequence[LabelResult], seconds: float | None = None) -> str:
    layout = results[0].layout
    quiet = [r for r in results if not r.scenario.changes]
    changed = [r for r in results if r.scenario.changes]
    took = "" if seconds is None else f" This section took {seconds:.0f} s."
    lines = [
        "## The label-based path: quality from labels, judged per window",
        "",
        f"Streams from River's synthetic generators (and one of our own), each run "
        f"{layout.windows} windows of {layout.window_rows:,} labeled events after "
        f"{layout.train_rows:,} training and {layout.holdout_rows:,} held-out events; a "
        f"change begins in window {layout.change}. A depth-8 decision tree (scikit-learn) "
        "is trained once on the training events and then frozen. Per window the features "
        "and the labeled pairs go through Driftline's window state and `evaluate_window`, "
        "whose quality metrics give the series: accuracy for the classifiers, MAE for the "
        "regressor. Each window is judged against the windows before it (both directions, "
        "as Driftline alerts); ADWIN instead reads every label's error in event order, and "
        "a detection at label `p` counts in window `p // "
        f"{layout.window_rows}`. For MAE, ADWIN gets each absolute error divided by the "
        "largest one on the held-out events, clipped to 1 (its bound assumes values in "
        f"[0, 1]). Scored from window {layout.warmup} on, when the trailing limits have "
        "their full 30-window history (ADWIN sees the errors from window 0)." + took,
        "",
        "| scenario | change |",
        "|---|---|",
    ]
    lines += [f"| {r.scenario.name} | {r.scenario.description} |" for r in results]
    lines += [
        "",
        "### Stationary streams: false alarms per window",
        "",
        "| stream | runs | " + " | ".join(DETECTORS) + " |",
        "|---|---|" + "---|" * len(DETECTORS),
    ]
    for r in quiet:
        cells = [
            f"{pct(r.scores[d].false_alarm_rate)} of {r.scores[d].windows:,}" for d in DETECTORS
        ]
        metric = f"{r.scenario.metric} {r.before:.3f}"
        lines.append(
            f"| {r.scenario.name} ({metric}) | {r.scenario.runs} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "### Changes: false alarms before, caught at once, delay, missed",
        "",
        f"Metric: mean over the scored windows before the change → mean over the last 10 "
        f"windows. False alarms: share of the {layout.change - layout.warmup} scored windows "
        "before the change in which the detector fired. Caught at once: fired in the change "
        "window. Delay: windows from the change to the first alarm, over the runs with one; "
        "missed: runs with no alarm from the change on. Precision and recall count alarm "
        "onsets, one window of tolerance (`bench/detection/scoring.py`): a gradual change "
        "caught late counts as missed there, so read its delay.",
        "",
        "| scenario | metric | runs | detector | false alarms | caught at once | mean delay "
        "| missed | precision | recall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in changed:
        metric = f"{r.scenario.metric} {r.before:.3f} → {r.after:.3f}"
        for d in DETECTORS:
            s = r.scores[d]
            delay = "–" if s.mean_delay is None else f"{s.mean_delay:.1f}"
            lines.append(
                f"| {r.scenario.name} | {metric} | {r.scenario.runs} | {d} | "
                f"{pct(s.false_alarm_rate)} | {pct(s.caught_at_once)} | {delay} | {s.missed} | "
                f"{pct(s.precision)} | {pct(s.recall)} |"
            )
    lines += ["", *label_notes(layout), ""]
    return "\n".join(lines)


def label_notes(layout: Layout) -> list[str]:
    return [
        '- ConceptDriftStream\'s abrupt change ("at once") is as narrow as River can '
        "compute: its sigmoid overflows `math.exp` with width 1 once the change lies past "
        "event 178, so the width is 1/150 of the position (about "
        f"{abrupt_width(layout.change_event)} events here), centred half a width into the "
        "change window: about 75 % of the change window's events and 1.5 % of the window "
        "before come from the new concept.",
        "- A label flipped with probability q moves accuracy a to a - q (2a - 1): with a "
        "about 0.88, 0.5 flip points a window take 0.38 accuracy points a window, where the "
        "window-to-window spread at 500 events is 1.45 points. A trailing 30-window history "
        "decays along with the series; Page-Hinkley accumulates the evidence instead.",
        "- ADWIN (River, delta 0.002) reads one value a label, so it is judged on tens of "
        "thousands of values where the window judges see one a window; its false alarms "
        "count the windows in which it detected a change of the error rate in either "
        "direction.",
    ]
