"""A historical replay closes its last window when told to, not 30 days of wall clock later.

A backfill of four 30-day windows (about four months of event time) goes through the
producer helper in envelopes to a worker whose idle timeout is a day: the wall clock cannot
close anything during the test. Events of later windows close the earlier ones; the last
one stays open until ``driftline flush`` puts an end-of-stream marker on every partition.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from driftline.cli import main
from driftline.producer import PredictionProducer
from storage import history
from stream_app.windows import window_start
from tests.integration.harness import WorkerProcess, final_windows, register, wait_for
from tests.stream_app import scenario

pytestmark = pytest.mark.integration

DAY = 86_400.0
WINDOW = 30 * DAY
LATENESS = DAY
WINDOWS, PER_WINDOW, PARTITIONS = 4, 300, 3
# Epoch-aligned, about a year before the test machine's clock: a replay of old logs.
FIRST = window_start(scenario.START, WINDOW)


def backfill() -> list[scenario.Event]:
    """The scenario's events, stretched from one-minute windows to 30-day ones."""
    stretched = []
    for event in scenario.events(WINDOWS, PER_WINDOW, drift_from=99, decay_from=99):
        offset = event.timestamp - (scenario.START + event.window * scenario.WINDOW)
        moment = FIRST + event.window * WINDOW + offset * (WINDOW / scenario.WINDOW)
        stretched.append(scenario.Event(**{**event.__dict__, "timestamp": moment}))
    return stretched


async def replay(bootstrap: str, worker: WorkerProcess, events: list[scenario.Event]) -> int:
    producer = PredictionProducer(bootstrap, topics=worker.topics, batch_size=50)
    async with producer:
        for e in events:
            await producer.predict(
                scenario.MODEL_ID, e.prediction_id, e.timestamp, e.features, e.prediction, e.score
            )
    return producer.sent_envelopes


def stats(path: Path) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet
        return {}
    return found


def test_flush_closes_the_last_window_of_a_replay(
    kafka_bootstrap: str,
    topic_prefix: str,
    sqlite_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A label horizon longer than the window, as a model with 30-day windows would have. It
    # also matters to the counts: a partition that has not reported yet does not hold a
    # window back (stage 2), and its partial, arriving later, rewrites the final window only
    # while the window is kept, that is until its label horizon has passed. With the
    # scenario's one hour that race dropped such partials (counts of 100 of 300).
    sessions = register(
        sqlite_url,
        window_seconds=int(WINDOW),
        allowed_lateness_seconds=int(DAY),
        label_horizon_seconds=int(3 * WINDOW),
    )
    stats_path = tmp_path / "stats.json"
    worker = WorkerProcess(
        kafka_bootstrap,
        sqlite_url,
        topic_prefix,
        PARTITIONS,
        tmp_path / "w",
        {"IDLE_TIMEOUT_SECONDS": str(DAY), "BATCH_MAX": "200", "STATS_FILE": str(stats_path)},
    )
    worker.create_topics()
    worker.start()
    try:
        events = backfill()
        envelopes = asyncio.run(replay(kafka_bootstrap, worker, events))
        # Envelopes of 50 at most, one partition's ids each: at least that many.
        assert envelopes >= WINDOWS * PER_WINDOW // 50
        wait_for(
            lambda: stats(stats_path).get("predictions") == len(events),
            60,
            "the worker to count every prediction of the replay",
        )
        # A few timer ticks (0.5 s each) on top: whatever the clock could close, it has.
        time.sleep(3)
        with sessions() as session:
            before = history.window_history(session, scenario.MODEL_ID, None, None)
        last_start = FIRST + (WINDOWS - 1) * WINDOW
        final_before = [r.window_start.timestamp() for r in before if r.finalized_at]
        assert last_start not in final_before  # the last window waits: for 31 days of clock

        flushed_at = time.monotonic()
        assert main(["flush", "--bootstrap", kafka_bootstrap, "--topic-prefix", topic_prefix]) == 0
        out = capsys.readouterr().out
        assert f"marker sent to {PARTITIONS} partitions of {worker.topics.predictions}" in out

        rows = final_windows(sessions, WINDOWS, 60)
        closed_in = time.monotonic() - flushed_at
        assert [r.window_start.timestamp() for r in rows] == [
            FIRST + w * WINDOW for w in range(WINDOWS)
        ]
        assert [r.n_rows for r in rows] == [PER_WINDOW] * WINDOWS
        # The stats file is written every tick: wait for the one that saw the markers.
        counted = wait_for(
            lambda: (
                (found := stats(stats_path)).get("end_of_stream_markers") == PARTITIONS and found
            ),
            10,
            "the markers in the worker's counters",
        )
        assert counted["late"] == 0 and counted["dead_letters"] == 0
        assert counted["expired_messages"] == 0
        with capsys.disabled():  # the numbers docs/reliability quotes
            print(
                f"\nfinal before the flush: {len(final_before)} of {WINDOWS} windows; "
                f"every window final {closed_in:.1f} s after it"
            )
    finally:
        assert worker.stop() == 0
