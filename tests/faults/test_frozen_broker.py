"""The broker stops answering in the middle of a stream (its process frozen with SIGSTOP:
connections stay open, nothing comes back). Once a send has waited
``DRIFTLINE_SEND_TIMEOUT_SECONDS`` the worker stops itself, loudly, with exit code 70 and
nothing acknowledged, instead of waiting on the producer for Faust's 20 minutes. The
broker thaws, a restarted worker reads again from the last commit, and the results are
those of a clean run.

The broker is this test's own: the shared one other tests use is never frozen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from driftline.local import kafka
from stream_app.app import EXIT_FATAL
from tests.faults.conftest import OwnService, WorkerFactory
from tests.faults.stream import (
    BaselineRun,
    Pacer,
    Stream,
    assert_clean_run_results,
    end_stream,
    open_registered,
    wait_for_progress,
    wait_until_complete,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SEND_TIMEOUT_SECONDS = 8


def test_a_frozen_broker_stops_the_worker_loudly_and_a_restart_loses_nothing(
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
    settings = {
        "SESSION_TIMEOUT_SECONDS": "10",
        "SEND_TIMEOUT_SECONDS": str(SEND_TIMEOUT_SECONDS),
    }
    worker = workers(bootstrap, url, "frozen.", "worker", **settings)
    worker.create_topics()
    worker.start()
    pacer = Pacer(bootstrap, worker.topics, fault_stream, delay=0.4).start()
    try:
        wait_for_progress(sessions, bootstrap, worker.app_id, worker.topics)
        pacer.pause()  # right after a chunk went out: the worker is processing it
        sent_before = pacer.sent
        assert sent_before < len(fault_stream.chunks)  # mid-stream
        broker_pid = kafka.start(own_kafka.port, report=lambda _: None).pid  # the running one
        frozen_at = time.monotonic()
        os.kill(broker_pid, signal.SIGSTOP)
        try:
            assert worker.process is not None
            # A batch's sends, or the watermark marks every tick sends within 5 s.
            code = worker.process.wait(timeout=SEND_TIMEOUT_SECONDS + 60)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            os.kill(broker_pid, signal.SIGCONT)
        stopped_after = time.monotonic() - frozen_at
        log = worker.log_path.read_text(errors="replace")
        assert code == EXIT_FATAL, f"exit code {code} after {stopped_after:.0f} s:\n{worker.tail()}"
        assert "not one message's fault" in log, worker.tail()

        # The same worker again (its consumer group, its changelogs), as a supervisor would.
        restarted = worker
        restarted.start()
        pacer.finish(120)
        end_stream(bootstrap, restarted.topics)
        recovered = wait_until_complete(sessions, fault_stream, 180, restarted.tail)
        assert restarted.process is not None and restarted.process.poll() is None

        assert_clean_run_results(engine, clean_run, bootstrap, restarted.topics)
        assert restarted.stop() == 0
        print(
            f"\nfrozen broker: {sent_before} chunks sent before; the worker stopped "
            f"{stopped_after:.1f} s after the freeze (send timeout {SEND_TIMEOUT_SECONDS} s); "
            f"complete {recovered:.1f} s after the flush; test {time.monotonic() - began:.1f} s"
        )
    finally:
        pacer.close()
        engine.dispose()
