"""Apache Kafka stops for 10 s in the middle of a stream and starts again from its durable
log dir: the worker rides it out without manual action and stores what a clean run stores.

The broker is this test's own (own ports, log dir under the test's tmp dir): the shared
broker other tests use is never stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.conftest import OwnService, WorkerFactory
from tests.faults.stream import (
    BaselineRun,
    Pacer,
    Stream,
    assert_clean_run_results,
    end_stream,
    final_windows,
    lag,
    log_problems,
    open_registered,
    wait_for_progress,
    wait_until_complete,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

OUTAGE_SECONDS = 10.0


def test_worker_rides_out_a_kafka_outage(
    own_kafka: OwnService,
    workers: WorkerFactory,
    fault_stream: Stream,
    clean_run: BaselineRun,
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    bootstrap = f"127.0.0.1:{own_kafka.port}"
    url = f"sqlite+pysqlite:///{tmp_path / 'results.db'}"
    engine, sessions = open_registered(url)
    worker = workers(bootstrap, url, "fault.", "worker", SESSION_TIMEOUT_SECONDS="10")
    worker.create_topics()
    worker.start()
    pacer = Pacer(bootstrap, worker.topics, fault_stream, delay=0.4).start()
    try:
        wait_for_progress(sessions, bootstrap, worker.app_id, worker.topics)
        pacer.pause()  # right after a chunk went out: the worker is processing it
        before = {
            "chunks_sent": pacer.sent,
            "final_windows": final_windows(sessions),
            "uncommitted": lag(bootstrap, worker.app_id, worker.topics.predictions),
        }
        assert before["chunks_sent"] < len(fault_stream.chunks)  # mid-stream
        stopped_at = time.monotonic()
        own_kafka.stop()
        time.sleep(OUTAGE_SECONDS)
        assert worker.process is not None and worker.process.poll() is None, worker.tail()
        own_kafka.start()
        down = time.monotonic() - stopped_at
        pacer.finish(120)
        end_stream(bootstrap, worker.topics)
        recovered = wait_until_complete(sessions, fault_stream, 180, worker.tail)
        assert worker.process.poll() is None, "the worker exited during the outage"

        assert_clean_run_results(engine, clean_run, bootstrap, worker.topics)
        assert worker.stop() == 0
        problems = log_problems(worker.log_path.read_text(errors="replace"))
        print(
            f"\nkafka outage: before {before}; broker stop {own_kafka.timings['stop']:.1f} s, "
            f"down {down:.1f} s, start {own_kafka.timings['start']:.1f} s; complete "
            f"{recovered:.1f} s after the flush; log lines about crashes: {len(problems)}; "
            f"test {time.monotonic() - began:.1f} s"
        )
    finally:
        pacer.close()
        engine.dispose()
