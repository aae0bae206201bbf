"""Detection quality of Driftline's verdicts, fixed and calibrated, on streams with known
change points (bench/detection/streams.py), scored as bench/detection/scoring.py says.

Run with::

    .venv/bin/python -m bench.detection --output docs/detection-quality.md

``--quick`` runs a quarter of the windows and no million-event windows. Progress goes to
stderr; the Markdown report to ``--output`` (or stdout).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.detection.scoring import Score, Verdicts, score
from bench.detection.streams import Scenario, population, scenarios
from detectors import DriftConfig, WindowState, build_profile, evaluate_window
from detectors.calibration import NullModels
from detectors.profile import ReferenceProfile

ROOT = Path(__file__).resolve().parents[2]

Detector = Callable[[ReferenceProfile], Callable[[Any], frozenset[str]]]


def driftline(config: DriftConfig) -> Detector:
    def prepare(profile: ReferenceProfile) -> Callable[[Any], frozenset[str]]:
        nulls = NullModels()  # a fresh cache per reference, as a new worker would have

        def judge(frame: Any) -> frozenset[str]:
            columns = {name: frame[name].to_numpy() for name in frame.columns}
            state = WindowState.empty(profile).update(profile, columns)
            report = evaluate_window(profile, state, config, null_models=nulls)
            return frozenset(report.drifted_features)

        return judge

    return prepare


DETECTORS: dict[str, Detector] = {
    "Driftline, fixed (PSI ≥ 0.2)": driftline(DriftConfig(also_report=())),
    "Driftline, calibrated (alpha 1 %, PSI floor 0.1)": driftline(
        DriftConfig(verdicts="calibrated", also_report=())
    ),
}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run_scenario(scenario: Scenario, seed: int) -> dict[str, Score]:
    rng = np.random.default_rng(seed)
    reference = population(rng, scenario.reference_rows)
    profile = build_profile(reference)
    runs = [scenario.windows(rng) for _ in range(scenario.runs)]
    found = {}
    for name, detector in DETECTORS.items():
        judge = detector(profile)
        began = time.perf_counter()
        verdicts: list[Verdicts] = [[judge(frame) for frame in run] for run in runs]
        seconds = time.perf_counter() - began
        found[name] = score(verdicts, scenario.change_point, scenario.target, seconds)
        say(f"  {scenario.name}: {name}: {describe(found[name])}")
    return found


def describe(s: Score) -> str:
    text = f"false alarms {s.false_alarm_rate:.1%} of {s.windows} windows"
    if s.caught_at_once is not None:
        text += f", caught at once {s.caught_at_once:.0%}, missed {s.missed}"
    return text + f", {s.seconds_per_window * 1000:.1f} ms/window"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def render(results: dict[str, dict[str, Score]], found: list[Scenario], args: Any) -> str:
    command = "python -m bench.detection --output docs/detection-quality.md"
    if args.quick:
        command += " --quick"
    stationary = [s for s in found if s.change is None]
    changes = [s for s in found if s.change is not None]
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
        "| window | windows | " + " | ".join(DETECTORS) + " |",
        "|---|---|" + "---|" * len(DETECTORS),
    ]
    for s in stationary:
        cells = [pct(results[s.name][d].false_alarm_rate) for d in DETECTORS]
        lines.append(f"| {s.window:,} events | {s.before} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Known changes: caught in the first window after the change",
        "",
        "Each scenario: runs of 3 windows from the population, then 3 from the changed one. "
        "Cells: caught at once / mean delay in windows (missed runs) / precision / recall "
        "(tolerance 1 window) / false alarms per window before the change / ms per window.",
        "",
        "| change | window | runs | " + " | ".join(DETECTORS) + " |",
        "|---|---|---|" + "---|" * len(DETECTORS),
    ]
    for s in changes:
        cells = []
        for d in DETECTORS:
            r = results[s.name][d]
            delay = "–" if r.mean_delay is None else f"{r.mean_delay:.2f}"
            cells.append(
                f"{pct(r.caught_at_once)} / {delay} ({r.missed}) / {pct(r.precision)} / "
                f"{pct(r.recall)} / {pct(r.false_alarm_rate)} / "
                f"{r.seconds_per_window * 1000:.1f} ms"
            )
        lines.append(f"| {s.description} | {s.window:,} | {s.runs} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"- Machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}.",
        f"- Reproduce: `{command}`.",
        "",
    ]
    return "\n".join(lines)


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the windows")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    began = time.monotonic()
    found = scenarios(args.quick)
    results = {}
    for index, scenario in enumerate(found):
        say(f"scenario {index + 1}/{len(found)}: {scenario.name} ({scenario.window:,} events)")
        results[scenario.name] = run_scenario(scenario, args.seed + index)
    args.minutes = (time.monotonic() - began) / 60
    args.commit = commit()
    text = render(results, found, args)
    if args.output:
        args.output.write_text(text)
        say(f"wrote {args.output}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
