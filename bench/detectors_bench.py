"""Cost of the statistical core per window, against a batch baseline measured in the same run.

A window holds 5,000 events with 25 features (20 numeric, 5 categorical). Driftline's cost
is updating the window state (in batches) and finalizing it (PSI on every feature, KS on
the numeric ones, BH adjustment, data quality). The baseline is what a batch tool does per
window on the raw arrays: numpy histograms on the reference's quantile edges for PSI,
``scipy.stats.ks_2samp`` against the raw reference, value counts and ``chisquare`` for the
categorical features. Run with::

    make bench            # or: .venv/bin/python -m bench.detectors_bench --output docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy
import sklearn
from scipy import stats

from detectors import DriftConfig, WindowState, build_profile, evaluate_window
from detectors.profile import NumericProfile, ReferenceProfile

N_NUMERIC, N_CATEGORICAL = 20, 5
N_FEATURES = N_NUMERIC + N_CATEGORICAL
WINDOW = 5_000
REFERENCE_ROWS = 50_000
CATEGORIES = [f"cat_{i}" for i in range(12)]


@dataclass(frozen=True)
class Timing:
    median_s: float
    best_s: float


def time_it(fn: Callable[[], object], repeats: int) -> Timing:
    fn()  # warm caches (profile arrays, scipy imports) outside the measurement
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Timing(statistics.median(samples), min(samples))


def make_frame(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    data: dict[str, Any] = {
        f"num_{i}": rng.normal(shift * (i % 3 == 0), 1.0 + i / 10, size=rows)
        for i in range(N_NUMERIC)
    }
    for i in range(N_CATEGORICAL):
        weights = np.linspace(1.0, 2.0 + i, len(CATEGORIES))
        data[f"cat_{i}"] = rng.choice(CATEGORIES, p=weights / weights.sum(), size=rows).tolist()
    return pd.DataFrame(data)


def columns_of(frame: pd.DataFrame) -> dict[str, Any]:
    """Numeric columns as float arrays, categorical ones as lists of str (as from JSON)."""
    return {
        name: frame[name].to_numpy() if name.startswith("num") else list(frame[name])
        for name in frame.columns
    }


def baseline_window(
    profile: ReferenceProfile, reference: pd.DataFrame, window: pd.DataFrame
) -> list[float]:
    """What a batch tool computes per window, straight from the raw arrays."""
    scores = []
    for name in reference.columns:
        if name.startswith("num"):
            column = profile.columns[name]
            assert isinstance(column, NumericProfile)
            edges = np.asarray(column.psi_edges)
            p = np.bincount(
                np.digitize(reference[name], edges, right=True), minlength=edges.size + 1
            )
            q = np.bincount(np.digitize(window[name], edges, right=True), minlength=edges.size + 1)
            p = np.where(p == 0, 1e-4, p / p.sum())
            q = np.where(q == 0, 1e-4, q / q.sum())
            scores.append(float(np.sum((q - p) * np.log(q / p))))
            scores.append(float(stats.ks_2samp(reference[name], window[name]).statistic))
        else:
            p_counts = reference[name].value_counts()
            q_counts = window[name].value_counts().reindex(p_counts.index, fill_value=0)
            expected = p_counts / p_counts.sum() * q_counts.sum()
            scores.append(float(stats.chisquare(q_counts, expected).pvalue))
    return scores


def run(repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(2026)
    reference = make_frame(rng, REFERENCE_ROWS)
    profile = build_profile(reference)
    window = make_frame(rng, WINDOW, shift=0.5)
    columns = columns_of(window)
    json_columns = {
        name: list(map(float, v)) if name.startswith("num") else v for name, v in columns.items()
    }
    batches = [
        {name: values[start : start + 500] for name, values in columns.items()}
        for start in range(0, WINDOW, 500)
    ]

    def update_whole() -> WindowState:
        return WindowState.empty(profile).update(profile, columns)

    def update_batches() -> WindowState:
        state = WindowState.empty(profile)
        for batch in batches:
            state.update(profile, batch)
        return state

    def update_lists() -> WindowState:
        return WindowState.empty(profile).update(profile, json_columns)

    def update_numeric_only() -> WindowState:
        numeric = {name: v for name, v in columns.items() if name.startswith("num")}
        return WindowState.empty(profile).update(profile, numeric)

    state = update_whole()
    config = DriftConfig()
    halves = (update_batches(), update_batches())
    timings = {
        "update_window": time_it(update_whole, repeats),
        "update_500_batches": time_it(update_batches, repeats),
        "update_numeric_only": time_it(update_numeric_only, repeats),
        "update_json_lists": time_it(update_lists, max(3, repeats // 3)),
        "finalize": time_it(lambda: evaluate_window(profile, state, config), repeats),
        "merge": time_it(lambda: halves[0].merge(halves[1]), repeats),
        "serialize": time_it(state.to_bytes, repeats),
        "baseline_window": time_it(lambda: baseline_window(profile, reference, window), repeats),
    }
    return {
        "timings": {k: {"median_s": t.median_s, "best_s": t.best_s} for k, t in timings.items()},
        "state_bytes": len(state.to_bytes()),
        "state_json_bytes": len(json.dumps(state.to_dict())),
        "fine_bins": len(profile.columns["num_0"].edges) + 1,  # type: ignore[union-attr]
        "repeats": repeats,
    }


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, pandas {pd.__version__}, scikit-learn {sklearn.__version__}"
    )


def per_event_feature(seconds: float, features: int = N_FEATURES) -> float:
    """Microseconds per event per feature."""
    return seconds / (WINDOW * features) * 1e6


def report(result: dict[str, Any]) -> str:
    t = {k: v["median_s"] for k, v in result["timings"].items()}
    baseline_total = t["baseline_window"]
    ours_total = t["update_window"] + t["finalize"]
    rows = [
        (
            "Update, whole window in one batch",
            f"{t['update_window'] * 1e3:.2f} ms",
            f"{per_event_feature(t['update_window']):.3f} µs",
            "< 1 µs per event per feature",
        ),
        (
            "Update, ten batches of 500 events",
            f"{t['update_500_batches'] * 1e3:.2f} ms",
            f"{per_event_feature(t['update_500_batches']):.3f} µs",
            "< 1 µs per event per feature",
        ),
        (
            "Update, 20 numeric columns only (numpy arrays)",
            f"{t['update_numeric_only'] * 1e3:.2f} ms",
            f"{per_event_feature(t['update_numeric_only'], N_NUMERIC):.3f} µs",
            "",
        ),
        (
            "Update, numeric columns as Python lists (JSON path)",
            f"{t['update_json_lists'] * 1e3:.2f} ms",
            f"{per_event_feature(t['update_json_lists']):.3f} µs",
            "",
        ),
        (
            "Finalize 25 features (PSI + KS + BH + data quality)",
            f"{t['finalize'] * 1e3:.2f} ms",
            "",
            "< 5 ms per window",
        ),
        ("Merge two partial states", f"{t['merge'] * 1e3:.3f} ms", "", ""),
        ("Serialize the state (JSON + deflate)", f"{t['serialize'] * 1e3:.2f} ms", "", ""),
        (
            "**Baseline**: scipy/numpy on the raw arrays, per window",
            f"{baseline_total * 1e3:.2f} ms",
            f"{per_event_feature(baseline_total):.3f} µs",
            "",
        ),
    ]
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    return f"""## Statistical core: cost per 5,000-event window (issue 2)

Window of {WINDOW:,} events, {N_NUMERIC} numeric and {N_CATEGORICAL} categorical features, reference of
{REFERENCE_ROWS:,} rows ({result["fine_bins"]} fine bins per numeric feature). Medians of {result["repeats"]} runs.

| what | per window | per event per feature | target |
|---|---|---|---|
{table}

- Driftline per window (update + finalize): **{ours_total * 1e3:.2f} ms**, against **{baseline_total * 1e3:.2f} ms**
  for the batch baseline on the same data: **{baseline_total / ours_total:.1f}×** faster, and the state
  is mergeable across partitions while the baseline needs every raw value of the window and of the
  reference in one place.
- What the baseline spends its time on: `ks_2samp` sorts the raw reference together with the window
  for each of the 20 numeric features; that is the price of exact KS on raw data, which Driftline
  replaces with fine reference-quantile bins (statistic within 0.0075 of scipy's, tested).
- The JSON path (numeric values as Python lists, `None` for missing) first checks which value
  types a column holds (one C-level pass); plain numbers and `None` are then converted by numpy
  at once, while a column holding strings or bools is checked value by value so they are
  counted as invalid instead of coerced.
- Serialized window state: **{result["state_bytes"]:,} bytes** (deflated JSON; {result["state_json_bytes"]:,} bytes as plain JSON),
  independent of the number of events.
- Targets: update {per_event_feature(t["update_window"]):.3f} µs per event per feature (target < 1 µs:
  {"met" if per_event_feature(t["update_window"]) < 1 else "NOT met"}); finalize {t["finalize"] * 1e3:.2f} ms
  (target < 5 ms: {"met" if t["finalize"] < 0.005 else "NOT met"}).
- Machine: {machine()}.
- Reproduce: `make bench` (runs `python -m bench.detectors_bench --output docs/benchmarks.md`).
"""


def write_section(path: Path, name: str, text: str) -> None:
    """Replace this benchmark's section of ``path``, leaving the other sections alone."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{text}\n{end}"
    if start in current:
        head, rest = current.split(start, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--output", type=Path, help="write the Markdown report here")
    args = parser.parse_args(argv)
    print(
        f"benchmarking {N_FEATURES} features x {WINDOW:,} events, {args.repeats} repeats ...",
        file=sys.stderr,
    )
    result = run(args.repeats)
    text = report(result)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_section(args.output, "detectors", text)
        print(f"wrote {args.output}", file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
