"""Outstanding prediction summaries: columns by segment against the join table's entries.

Issue 12 part 2 asks for summaries kept as columnar segments with an index of id hashes,
to bring an outstanding prediction near 120 bytes of worker RSS. This measures the data
structure alone (``stream_app.summary_columns``) against what the worker kept before it,
in the same run, each in a fresh process:

* **table entries** (the baseline): what ``LabelJoin.add_summary`` stored until
  2026-12-01, a ``"{partition}|{id}"`` key string and the summary as JSON bytes in a dict
  (the in-memory store's dict, without the changelog segment ledger's entry);
* **columns**: ``SummaryColumns.add`` of envelopes of 500 (one segment each).

For each: the RSS growth per outstanding prediction from ``--outstanding / 10`` to
``--outstanding`` (so the interpreter and numpy do not count), the time to keep them, and
lookups of existing ids, one id a call (a single label) and 500 a call (a label envelope).
Ids are 36-character UUID strings, a binary model, one-week horizon.

    .venv/bin/python -m bench.join_columns_bench --output docs/benchmarks.md
    .venv/bin/python -m bench.join_columns_bench --outstanding 1000000   # quicker

A 10,000,000 run takes about four minutes on 2 cores and prints progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.detectors_bench import write_section
from stream_app.summary_columns import Summary, SummaryColumns

ENVELOPE = 500
LOOKUPS = 200_000
HORIZON = 7 * 86_400.0


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def envelope(n: int, start: int) -> tuple[list[str], list[Summary]]:
    ids = [str(uuid.UUID(int=random.getrandbits(128))) for _ in range(n)]
    summaries = []
    for row in range(n):
        timestamp = 1_700_000_000.0 + (start + row) * 0.01
        window = timestamp - timestamp % 60.0
        summaries.append(
            Summary(
                "churn",
                window,
                window + 60.0,
                row % 2,
                random.random(),
                timestamp + HORIZON,
                "p",
                start // ENVELOPE,
            )
        )
    return ids, summaries


def run_one(kind: str, outstanding: int) -> dict[str, Any]:
    """In this process: keep ``outstanding`` summaries one way, measure, look some up."""
    random.seed(7)
    table: dict[str, bytes] = {}
    columns = SummaryColumns()
    sample: list[str] = []
    base = 0
    curve = []
    kept_seconds = 0.0
    for start in range(0, outstanding, ENVELOPE):
        ids, summaries = envelope(min(ENVELOPE, outstanding - start), start)
        if len(sample) < LOOKUPS and start % (ENVELOPE * 5) == 0:
            sample.extend(ids[:: max(1, (outstanding // LOOKUPS) // 5 or 1)])
        began = time.perf_counter()
        if kind == "table":
            for prediction_id, s in zip(ids, summaries, strict=True):
                value = {
                    "k": "p",
                    "m": s.model_id,
                    "ws": s.window_start,
                    "we": s.window_end,
                    "y": s.predicted,
                    "s": s.score,
                    "x": s.expires,
                    "sk": s.origin_kind,
                    "so": s.origin_offset,
                }
                # A copy of exactly its size: orjson's output keeps its ~4 KB buffer's tail
                # as a heap hole that nothing in this process would reuse (4,239 bytes per
                # entry measured without the copy); the worker's other allocations do.
                table[f"3|{prediction_id}"] = bytes(memoryview(orjson.dumps(value)))
        else:
            columns.add(ids, summaries)
        kept_seconds += time.perf_counter() - began
        done = start + len(ids)
        if done == outstanding // 10:
            base = rss_bytes()
        if done % (outstanding // 10) == 0:
            curve.append((done, rss_bytes()))
            print(f"  {kind}: {done:,} kept", file=sys.stderr, flush=True)
    grown = rss_bytes() - base
    probe = sample[:LOOKUPS]
    random.shuffle(probe)
    began = time.perf_counter()
    if kind == "table":
        hits = sum(table.get(f"3|{p}") is not None for p in probe)
    else:
        hits = sum(columns.index.find_one(p) >= 0 for p in probe)
    single = len(probe) / (time.perf_counter() - began)
    began = time.perf_counter()
    batch_hits = 0
    for at in range(0, len(probe), ENVELOPE):
        chunk = probe[at : at + ENVELOPE]
        if kind == "table":
            batch_hits += sum(table.get(f"3|{p}") is not None for p in chunk)
        else:
            batch_hits += int(np.count_nonzero(columns.find(chunk) >= 0))
    batched = len(probe) / (time.perf_counter() - began)
    assert hits == batch_hits == len(probe), (hits, batch_hits, len(probe))
    return {
        "kind": kind,
        "outstanding": outstanding,
        "bytes_per": grown / (outstanding - outstanding // 10),
        "keep_per_s": outstanding / kept_seconds,
        "lookup_single_per_s": single,
        "lookup_batch_per_s": batched,
        "curve": curve,
        "structure_bytes_per": columns.nbytes / outstanding if kind == "columns" else None,
    }


def measure(kind: str, outstanding: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.join_columns_bench",
            "--one",
            kind,
            "--outstanding",
            str(outstanding),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    sys.stderr.write(out.stderr)
    return dict(json.loads(out.stdout))


def report(table: dict[str, Any], columns: dict[str, Any], outstanding: int) -> str:
    def row(name: str, r: dict[str, Any]) -> str:
        return (
            f"| {name} | {r['bytes_per']:,.0f} | {r['keep_per_s']:,.0f} | "
            f"{r['lookup_single_per_s']:,.0f} | {r['lookup_batch_per_s']:,.0f} |"
        )

    curve = ", ".join(f"{n / 1e6:g} M: {b / 1e6:,.0f} MB" for n, b in columns["curve"])
    return f"""### Outstanding summaries as columns: the data structure alone (issue 12 part 2)

`python -m bench.join_columns_bench --outstanding {outstanding} --output docs/benchmarks.md`;
{platform.processor() or platform.machine()}, Python {platform.python_version()}. Each way in a
fresh process; {outstanding:,} summaries of a binary model with 36-character ids, kept in
envelopes of {ENVELOPE}; RSS growth from {outstanding // 10:,} to {outstanding:,} outstanding.
The data structure alone, not the worker (whose figures are in the label-join sections).

| kept as | RSS bytes per outstanding prediction | kept/s | single-id lookups/s | lookups/s in calls of {ENVELOPE} |
|---|---|---|---|---|
{row("table entries (before: key string + JSON value in a dict)", table)}
{row("columns by segment + id index", columns)}

Columns: {columns["bytes_per"] / table["bytes_per"]:.0%} of the table entries' memory
({columns["structure_bytes_per"]:.0f} bytes per prediction counted in the arrays themselves;
target for the worker: ≤ 120), lookups in calls of {ENVELOPE}
{columns["lookup_batch_per_s"] / table["lookup_batch_per_s"]:.1f}× the dict's, single-id lookups
{columns["lookup_single_per_s"] / table["lookup_single_per_s"]:.2f}× (a numpy call per id: a single
label should be looked up with others of its fetch). RSS by outstanding summaries, columns: {curve}.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outstanding", type=int, default=10_000_000)
    parser.add_argument("--one", choices=["table", "columns"], help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.outstanding)))
        return 0
    print(f"keeping {args.outstanding:,} summaries each way ...", file=sys.stderr)
    table = measure("table", args.outstanding)
    columns = measure("columns", args.outstanding)
    text = report(table, columns, args.outstanding)
    print(text)
    if args.output:
        write_section(args.output, "join-columns", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
