"""A second worker (same app id, so the same consumer group and changelogs) joins in the
middle of a stream and later leaves on SIGTERM: two rebalances while events flow, and the
stored results equal a clean run's, with no duplicate rows."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from driftline.local.worker_process import WorkerProcess
from tests.faults.conftest import WorkerFactory
from tests.faults.stream import (
    BaselineRun,
    Pacer,
    Stream,
    assert_clean_run_results,
    end_stream,
    final_windows,
    log_problems,
    open_registered,
    wait,
    wait_for_progress,
    wait_until_complete,
)
from tests.integration.harness import collapse

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def stats(path: Path) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found


REBALANCE_LINES = re.compile(
    r"WARNING|ERROR|generation|assigned partitions|Revoking|Recovery|Reading Starts|Highwater"
    r"|SIGTERM|^[|+]"
)
NOISE = re.compile(r"producer buffer full|producer flush took|is overlapping|Table: |Store: ")


def rebalance_history(*workers: WorkerProcess, lines: int = 80) -> str:
    """What each worker was given and recovered, for a failure message: which worker owned
    stage 2 when is what a lost window record is decided by. A line repeated with other
    numbers (Faust's recovery warns every 5 s) is shown once, with its count, so what came
    before a long wait is not pushed out."""
    parts = []
    for worker in workers:
        text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
        kept = [
            line[:200]
            for line in text.splitlines()
            if REBALANCE_LINES.search(line) and not NOISE.search(line)
        ]
        parts.append(f"--- {worker.log_path.parent.name} worker ---\n" + collapse(kept, lines))
    return "\n".join(parts)


def test_a_worker_joins_and_leaves_mid_stream(
    kafka_bootstrap: str,
    topic_prefix: str,
    postgres_url: str,
    workers: WorkerFactory,
    fault_stream: Stream,
    clean_run: BaselineRun,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    engine, sessions = open_registered(postgres_url)
    first = workers(kafka_bootstrap, postgres_url, topic_prefix, "first")
    first.create_topics()
    first.start()
    second = workers(kafka_bootstrap, postgres_url, topic_prefix, "second")
    second.app_id = first.app_id  # the same consumer group and changelog topics
    total = len(fault_stream.chunks)
    pacer = Pacer(kafka_bootstrap, first.topics, fault_stream, delay=0.8)
    pacer.allow(3)
    pacer.start()
    try:
        pacer.wait_sent(3, 60)
        wait_for_progress(sessions, kafka_bootstrap, first.app_id, first.topics, windows=1)
        before_join = {"chunks_sent": pacer.sent, "final_windows": final_windows(sessions)}
        pacer.allow(total - 4)  # events flow while the second worker joins
        joined_at = time.monotonic()
        second.start()
        join_seconds = time.monotonic() - joined_at
        assert pacer.sent < total - 2, "the stream ended before the second worker joined"
        pacer.allow(total - 2)
        second_stats = tmp_path / "second" / "stats.json"
        wait(
            lambda: stats(second_stats).get("predictions", 0) > 0,
            60,
            "the second worker to process predictions",
        )
        pacer.wait_sent(total - 2, 60)
        before_leave = {"chunks_sent": pacer.sent, "final_windows": final_windows(sessions)}
        pacer.allow(total)  # and while it leaves
        assert second.stop() == 0
        second_counts = stats(second_stats)
        pacer.finish(60)
        end_stream(kafka_bootstrap, first.topics)
        recovered = wait_until_complete(
            sessions, fault_stream, 180, lambda: rebalance_history(first, second)
        )

        assert_clean_run_results(engine, clean_run, kafka_bootstrap, first.topics)
        assert first.stop() == 0
        for worker in (first, second):
            problems = log_problems(worker.log_path.read_text(errors="replace"))
            assert not problems, problems[:5]
        print(
            f"\nrebalance: before the join {before_join}; second worker ready after "
            f"{join_seconds:.1f} s; before it left {before_leave}; it counted "
            f"{second_counts.get('predictions')} predictions and "
            f"{second_counts.get('labels')} labels; complete {recovered:.1f} s after the "
            f"flush; test {time.monotonic() - began:.1f} s"
        )
    finally:
        pacer.close()
        engine.dispose()
