"""What alert evaluation adds to stage 2's commit of a finalized window.

Stage 2 commits each finalized window in one transaction (``SqlResultWriter``); with alert
rules it also reads the model's alert book, advances it and writes it back with the
alerts it changed. This measures that commit, 25 features of which 3 drift, on SQLite,
with the default alert rules against none (the baseline, in the same run).

    python -m bench.window_commit_bench [--windows 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas.alert_rules import DEFAULT_RULES
from storage.catalog import upsert_model
from storage.db import make_engine, session_factory
from storage.migrate import upgrade
from storage.rows import DriftRow, WindowRow
from stream_app.results import AlertInputs, ReportRows, WindowOutcome
from stream_app.sql_writer import SqlResultWriter

FEATURES = [f"f{i}" for i in range(25)]
DRIFTED = {"f0", "f1", "f2"}


def outcome(model: str, index: int, alerts: AlertInputs) -> WindowOutcome:
    start = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=index)
    window = WindowRow(
        model_id=model,
        window_start=start,
        window_end=start + timedelta(hours=1),
        n_rows=5000,
        n_drifted=len(DRIFTED),
        share_drifted=len(DRIFTED) / len(FEATURES),
        dataset_drift=False,
    )
    drift = [
        DriftRow(
            feature=f,
            method="psi",
            score=0.3 if f in DRIFTED else 0.01,
            threshold=0.2,
            drifted=f in DRIFTED,
            status="drift" if f in DRIFTED else "ok",
            is_primary=True,
        )
        for f in FEATURES
    ]
    rows = ReportRows(window, drift, [], [], [], 0)
    seconds = start.timestamp()
    return WindowOutcome(model, seconds, seconds + 3600, rows, (), alerts)


async def commits(writer: SqlResultWriter, model: str, n: int, alerts: AlertInputs) -> list[float]:
    took = []
    for index in range(n):
        began = time.perf_counter()
        await writer.commit_window(outcome(model, index, alerts))
        took.append(time.perf_counter() - began)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite+pysqlite:///{Path(directory) / 'bench.db'}")
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions.begin() as session:
            for model in ("plain", "alerting"):
                upsert_model(session, model, {"model_id": model})
        writer = SqlResultWriter(sessions)
        figures = {}
        for model, alerts in (("plain", AlertInputs()), ("alerting", AlertInputs(DEFAULT_RULES))):
            print(f"committing {args.windows} windows of model {model!r} …", flush=True)
            took = asyncio.run(commits(writer, model, args.windows, alerts))
            p99 = statistics.quantiles(took, n=100)[98]
            figures[model] = (statistics.median(took), p99)
        engine.dispose()
    (plain50, plain99), (alert50, alert99) = figures["plain"], figures["alerting"]
    print(
        f"window commit, no alert rules: p50 {plain50 * 1000:.1f} ms, p99 {plain99 * 1000:.1f} ms\n"
        f"window commit, default rules:  p50 {alert50 * 1000:.1f} ms, p99 {alert99 * 1000:.1f} ms\n"
        f"ratio (p50): {alert50 / plain50:.2f}x"
    )


if __name__ == "__main__":
    main()
