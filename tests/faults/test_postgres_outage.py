"""PostgreSQL, the results database, stops for 30 s in the middle of a stream: the worker
waits for it (its log says so), loses nothing, writes nothing twice, and stores what a
clean run stores.

The server is this test's own (own port, own cluster): the shared PostgreSQL other tests
use is never stopped. The broker is the shared one; the test's topics have their own prefix.
"""

from __future__ import annotations

import time

import pytest

from driftline.local import postgres
from tests.faults.conftest import OwnService, WorkerFactory
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

pytestmark = [pytest.mark.integration, pytest.mark.faults]

OUTAGE_SECONDS = 30.0
WAITING = "is waiting for the database"


def test_worker_waits_out_a_postgres_outage(
    own_postgres: OwnService,
    kafka_bootstrap: str,
    topic_prefix: str,
    workers: WorkerFactory,
    fault_stream: Stream,
    clean_run: BaselineRun,
) -> None:
    began = time.monotonic()
    url = postgres.create_database("results", port=own_postgres.port)
    engine, sessions = open_registered(url)
    worker = workers(kafka_bootstrap, url, topic_prefix, "worker")
    worker.create_topics()
    worker.start()
    pacer = Pacer(kafka_bootstrap, worker.topics, fault_stream, delay=0.4)
    pacer.allow(4)  # the rest streams from when the database stops: mid-stream by design
    pacer.start()
    try:
        wait_for_progress(sessions, kafka_bootstrap, worker.app_id, worker.topics)
        before = {"chunks_sent": pacer.sent, "final_windows": final_windows(sessions)}
        assert before["chunks_sent"] < len(fault_stream.chunks)  # mid-stream
        engine.dispose()
        stopped_at = time.monotonic()
        pacer.allow(len(fault_stream.chunks))
        own_postgres.stop()  # the stream goes on: the producer does not pause
        wait(
            lambda: WAITING in worker.log_path.read_text(errors="replace"),
            OUTAGE_SECONDS,
            "the worker to log that it waits for the database",
        )
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
        chunks_during = pacer.sent - before["chunks_sent"]
        assert worker.process is not None and worker.process.poll() is None, worker.tail()
        own_postgres.start()
        down = time.monotonic() - stopped_at
        pacer.finish(60)
        end_stream(kafka_bootstrap, worker.topics)
        recovered = wait_until_complete(sessions, fault_stream, 180, worker.tail)
        assert worker.process.poll() is None, "the worker exited during the outage"

        assert_clean_run_results(engine, clean_run, kafka_bootstrap, worker.topics)
        assert worker.stop() == 0
        log = worker.log_path.read_text(errors="replace")
        waiting = [line for line in log.splitlines() if WAITING in line]
        assert not log_problems(log), log_problems(log)[:5]
        print(
            f"\npostgres outage: before {before}; {chunks_during} chunks produced during it; "
            f"server stop {own_postgres.timings['stop']:.1f} s, down {down:.1f} s, start "
            f"{own_postgres.timings['start']:.1f} s; complete {recovered:.1f} s after the "
            f"flush; {len(waiting)} 'waiting' lines: {[w[-160:] for w in waiting]}; "
            f"test {time.monotonic() - began:.1f} s"
        )
    finally:
        pacer.close()
        engine.dispose()
