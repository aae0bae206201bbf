"""Detection quality of Driftline's verdicts, fixed and calibrated, on streams with known
change points (bench/detection/streams.py), scored as bench/detection/scoring.py says, with
Evidently's and NannyML's defaults on the same streams (bench/detection/peers.py: each in a
virtual environment of its own under var/peer-envs, created on first use).

Run with::

    .venv/bin/python -m bench.detection --output docs/detection-quality.md

``--quick`` runs a quarter of the windows and no million-event windows (and a quarter of
the label path's runs); ``--no-peers`` leaves the peers out. The label-based path
(bench/detection/labels.py: River's generators, a frozen model, quality per window judged
by 3-sigma limits, Page-Hinkley and ADWIN) follows as its own section; ``--labels-only``
runs just that section. The peers see the first ``--peer-windows`` windows of each stationary
stream and the first ``--peer-runs`` runs of each change (Evidently takes about 3 s a
window), and no window above 100,000 events. Progress goes to stderr; the Markdown report
to ``--output`` (or stdout).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.detection import labels, peers, series
from bench.detection.scoring import Score, Verdicts, score
from bench.detection.streams import Scenario, population, scenarios
from detectors import ControlLimits, DriftConfig, WindowState, build_profile, evaluate_window
from detectors.calibration import NullModels
from detectors.profile import ReferenceProfile

ROOT = Path(__file__).resolve().parents[2]

Detector = Callable[[ReferenceProfile], Callable[[Any], frozenset[str]]]


def driftline(config: DriftConfig, missing_limits: bool = False) -> Detector:
    """Driftline's verdicts; with ``missing_limits``, also what its default alert rules
    flag on the data-quality series: a missing rate outside its 3-sigma limits over the
    windows before (``ControlLimits`` with the pipeline's floor for rates, 0.005)."""
    caches: dict[int, NullModels] = {}

    def prepare(profile: ReferenceProfile) -> Callable[[Any], frozenset[str]]:
        # A fresh calibration cache per reference, as a new worker would have, shared by the
        # runs against it; the missing-rate history is the run's own (prepared per run).
        nulls = caches.setdefault(id(profile), NullModels())
        history: dict[str, list[float | None]] = {}

        def judge(frame: Any) -> frozenset[str]:
            columns = {name: frame[name].to_numpy() for name in frame.columns}
            state = WindowState.empty(profile).update(profile, columns)
            report = evaluate_window(profile, state, config, null_models=nulls)
            flagged = set(report.drifted_features)
            if missing_limits:
                for quality in report.data_quality:
                    past = history.setdefault(quality.feature, [])
                    verdict = MISSING_LIMITS.evaluate(past, quality.missing_rate)
                    if verdict.anomaly and verdict.direction == "above":
                        flagged.add(quality.feature)
                    past.append(quality.missing_rate)
            return frozenset(flagged)

        return judge

    return prepare


MISSING_LIMITS = ControlLimits(min_std=0.005)

DETECTORS: dict[str, Detector] = {
    "Driftline, fixed (PSI ≥ 0.2)": driftline(DriftConfig(verdicts="fixed", also_report=())),
    "Driftline, calibrated (alpha 1 %, PSI floor 0.05) and missing-rate limits": driftline(
        DriftConfig(verdicts="calibrated", also_report=()), missing_limits=True
    ),
}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


PEER_MAX_WINDOW = 100_000


def run_scenario(scenario: Scenario, seed: int, args: Any) -> dict[str, Score | str]:
    rng = np.random.default_rng(seed)
    reference = population(rng, scenario.reference_rows)
    profile = build_profile(reference)
    runs = [scenario.windows(rng) for _ in range(scenario.runs)]
    found: dict[str, Score | str] = {}
    for name, detector in DETECTORS.items():
        began = time.perf_counter()
        verdicts: list[Verdicts] = []
        for run in runs:
            judge = detector(profile)  # each run starts without a history
            verdicts.append([judge(frame) for frame in run])
        seconds = time.perf_counter() - began
        result = score(verdicts, scenario.change_point, scenario.target, seconds)
        found[name] = result
        say(f"  {scenario.name}: {name}: {describe(result)}")
    if args.peers:
        found.update(run_peers(scenario, reference, runs, args))
    return found


def run_peers(
    scenario: Scenario, reference: Any, runs: list[list[Any]], args: Any
) -> dict[str, Score | str]:
    """The peers on a prefix of the same stream: ``Score``, or why there is none."""
    found: dict[str, Score | str] = {}
    if scenario.window > PEER_MAX_WINDOW:
        return {peer_label(p): f"not run above {PEER_MAX_WINDOW:,} events" for p in peers.PEERS}
    stationary = scenario.change is None
    subset = [runs[0][: args.peer_windows]] if stationary else runs[: args.peer_runs]
    with tempfile.TemporaryDirectory(prefix="driftline-detection-") as folder:
        directory = Path(folder)
        peers.write_scenario(directory, reference, subset)
        for peer in peers.PEERS:
            try:
                verdicts, per_window, version = peers.run_peer(peer, directory, scenario.window)
            except RuntimeError as exc:
                found[peer_label(peer)] = f"failed: {str(exc).splitlines()[-1][:120]}"
                say(f"  {scenario.name}: {peer}: {found[peer_label(peer)]}")
                continue
            windows = sum(len(run) for run in verdicts)
            result = score(verdicts, scenario.change_point, scenario.target, per_window * windows)
            found[peer_label(peer)] = result
            PEER_VERSIONS[peer] = version
            say(f"  {scenario.name}: {peer} {version}: {describe(result)}")
    return found


PEER_VERSIONS: dict[str, str] = {}


def peer_label(peer: str) -> str:
    return {"evidently": "Evidently, DataDriftPreset defaults", "nannyml": "NannyML, "
            "UnivariateDriftCalculator defaults"}[peer]  # fmt: skip


def describe(s: Score) -> str:
    text = f"false alarms {s.false_alarm_rate:.1%} of {s.windows} windows"
    if s.caught_at_once is not None:
        text += f", caught at once {s.caught_at_once:.0%}, missed {s.missed}"
    return text + f", {s.seconds_per_window * 1000:.1f} ms/window"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def cell(result: Score | str, stationary: bool) -> str:
    if isinstance(result, str):
        return result
    if stationary:
        return f"{pct(result.false_alarm_rate)} of {result.windows}"
    delay = "–" if result.mean_delay is None else f"{result.mean_delay:.2f}"
    return (
        f"{pct(result.caught_at_once)} / {delay} ({result.missed}) / {pct(result.precision)} / "
        f"{pct(result.recall)} / {pct(result.false_alarm_rate)} / "
        f"{result.seconds_per_window * 1000:,.1f} ms"
    )


def render(results: dict[str, dict[str, Score | str]], found: list[Scenario], args: Any) -> str:
    command = "python -m bench.detection --output docs/detection-quality.md"
    if args.quick:
        command += " --quick"
    stationary = [s for s in found if s.change is None]
    changes = [s for s in found if s.change is not None]
    columns = list(DETECTORS) + ([peer_label(p) for p in peers.PEERS] if args.peers else [])
    lines = [
        "# Detection quality",
        "",
        f"Measured in one run of `{command}` ({args.minutes:.0f} min, commit {args.commit}).",
        "Streams of our own making (`bench/detection/streams.py`): a reference of "
        f"{found[0].reference_rows:,} rows of ten columns (four normal, two log-normal, a "
        "Poisson count, `month` with 12 equally common values, two categorical), then "
        "windows drawn from the same population or from a changed one. Scored as "
        "`bench/detection/scoring.py` says: false alarms are the share of windows without "
        "a change in which any feature drifted (per model, all ten features together).",
        "",
        "## Stationary streams: false alarms per window",
        "",
        "Cells: the share of windows in which any feature drifted, of how many windows.",
        "",
        "| window | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for s in stationary:
        cells = [cell(results[s.name].get(c, "–"), True) for c in columns]
        lines.append(f"| {s.window:,} events | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Known changes: caught in the first window after the change",
        "",
        "Each run: 3 windows from the population (8 for the missing values, whose limits need a history), then 3 from the changed one. Cells: caught "
        "at once / mean delay in windows (missed runs) / precision / recall (tolerance 1 "
        "window) / false alarms per window before the change / seconds per window (the "
        "peers': their own calls only, the reference's fitting excluded).",
        "",
        "| change | window | runs (Driftline / peers) | " + " | ".join(columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for s in changes:
        cells = [cell(results[s.name].get(c, "–"), False) for c in columns]
        runs = f"{s.runs} / {min(s.runs, args.peer_runs)}" if args.peers else str(s.runs)
        lines.append(f"| {s.description} | {s.window:,} | {runs} | " + " | ".join(cells) + " |")
    cost = [
        f"{c}: {np.median([r.seconds_per_window for r in by_column(results, c)]) * 1000:,.1f} ms"
        for c in columns
        if by_column(results, c)
    ]
    versions = ", ".join(f"{p} {v}" for p, v in sorted(PEER_VERSIONS.items()))
    lines += [
        "",
        "- Median seconds per window over the scenarios: " + "; ".join(cost) + ".",
        f"- Peers: {versions or 'not run'} (each in its own virtual environment, see "
        "`bench/detection/peers.py`).",
    ]
    lines += NOTES
    lines += [
        "",
        f"- Machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}.",
        f"- Reproduce: `{command}`.",
        "",
    ]
    return "\n".join(lines)


def by_column(results: dict[str, dict[str, Score | str]], column: str) -> list[Score]:
    return [r[column] for r in results.values() if isinstance(r.get(column), Score)]  # type: ignore[misc]


NOTES = [
    "",
    "## Reading the tables",
    "",
    "- A stationary cell is a count: at 1 % a run of 3,000 windows expects 30 alarms, with a "
    "95 % range of about 19 to 41 (binomial); 300 windows expect 3, and 5 is not rare.",
    "- The peers see a prefix of the same streams (`--peer-windows`, `--peer-runs`): "
    "Evidently takes about 2 s a window, most of it building the plotly charts of its "
    "report, which `Report.run` always does.",
    "- NannyML's default thresholds come from the reference's own chunks, each compared with "
    "a reference that contains it (nannyml#426), and a 20,000-row reference has only 4 "
    "chunks of 5,000 and 1 of 20,000: the thresholds sit below what a new window scores by "
    "chance, so every large window alarms.",
]


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def label_section(args: Any) -> str:
    say("label-based path")
    began = time.monotonic()
    found = labels.run_labels(args.quick, args.seed, say)
    text = labels.render_labels(found, time.monotonic() - began)
    say("per-window series: 3-sigma limits, Page-Hinkley; reference-built limits")
    return text + "\n" + series.run(args.quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the windows")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-peers", dest="peers", action="store_false")
    parser.add_argument("--peer-windows", type=int, default=20)
    parser.add_argument("--peer-runs", type=int, default=8)
    parser.add_argument("--output", type=Path)
    parser.add_argument(
        "--labels-only", action="store_true", help="only the label-based path's section"
    )
    args = parser.parse_args(argv)
    began = time.monotonic()
    if args.labels_only:
        command = "python -m bench.detection --labels-only" + (" --quick" if args.quick else "")
        text = (
            f"# Detection quality\n\nMeasured with `{command}` (commit {commit()}).\n\n"
            + label_section(args)
        )
    else:
        found = scenarios(args.quick)
        results: dict[str, dict[str, Score | str]] = {}
        for index, scenario in enumerate(found):
            say(f"scenario {index + 1}/{len(found)}: {scenario.name} ({scenario.window:,} events)")
            results[scenario.name] = run_scenario(scenario, args.seed + index, args)
        labeled = label_section(args)
        args.minutes = (time.monotonic() - began) / 60
        args.commit = commit()
        text = render(results, found, args) + "\n" + labeled
    if args.output:
        args.output.write_text(text)
        say(f"wrote {args.output}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
