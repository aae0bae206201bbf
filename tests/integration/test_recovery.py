"""A worker killed mid-stream (SIGKILL, no clean shutdown) and restarted loses nothing and
counts nothing twice: its state comes back from the changelog topics."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from storage import history
from tests.integration.harness import (
    WorkerProcess,
    final_windows,
    produce_sync,
    register,
)
from tests.stream_app import scenario

pytestmark = pytest.mark.integration


def test_a_killed_worker_resumes_without_loss_or_double_counting(
    kafka_bootstrap: str, topic_prefix: str, sqlite_url: str, tmp_path: Path
) -> None:
    sessions = register(sqlite_url)
    events = list(scenario.events(6, 300, drift_from=3, decay_from=99))
    fast = {"SESSION_TIMEOUT_SECONDS": "6"}  # the dead member leaves the group sooner
    first = WorkerProcess(kafka_bootstrap, sqlite_url, topic_prefix, 2, tmp_path / "a", fast)
    first.create_topics()
    first.start()
    topic = first.topics.predictions
    messages = [(topic, e.prediction_id.encode(), e.prediction_json()) for e in events]
    half = len(messages) // 2
    produce_sync(kafka_bootstrap, messages[:half])
    time.sleep(3)  # let it process (and checkpoint) part of the stream
    assert first.process is not None
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)

    second = WorkerProcess(kafka_bootstrap, sqlite_url, topic_prefix, 2, tmp_path / "b", fast)
    second.app_id = first.app_id  # the same consumer group and changelogs: a restart
    second.start()
    try:
        produce_sync(kafka_bootstrap, messages[half:])

        rows = final_windows(sessions, 6, 90)
        assert [r.n_rows for r in rows] == [300] * 6
        with sessions() as session:
            income = history.drift_history(session, scenario.MODEL_ID, "income", None, None, "psi")
        assert [r.status == "drift" for r in income] == [w >= 3 for w in range(6)]
    finally:
        assert second.stop() == 0
