"""Alerts end to end: a real broker, a real worker process with the alert relay, PostgreSQL,
the local Slack-speaking server and a real SMTP server.

The stream drifts in one lone window (1: `for_windows: 2` must say nothing) and then in
windows 4–6; the windows after are clean. Slack is down when the drift fires, and the
worker is killed (SIGKILL) while the notification is waiting for Slack: after a restart it
goes out once. A separate `driftline alerts` process then relays beside the worker, and the
resolved notice goes out once too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from driftline.sinks.slack import SlackSink
from driftline.sinks.smtp import SmtpSink
from storage import notifications as outbox
from tests.integration.harness import WorkerProcess, produce_sync, register, wait_for
from tests.stream_app import scenario

pytestmark = pytest.mark.integration

WINDOWS, PER_WINDOW = 9, 150
DRIFTED = frozenset({1, 4, 5, 6})
RULES = {
    "rules": [
        {"name": "feature-drift", "kind": "feature_drift", "for_windows": 2},
    ],
    "labels": {"team": "risk"},
}


@pytest.fixture
def sinks() -> Iterator[tuple[SlackSink, SmtpSink]]:
    with SlackSink() as slack, SmtpSink() as smtp:
        yield slack, smtp


def routing(path: Path, smtp: SmtpSink) -> Path:
    path.write_text(
        textwrap.dedent(
            f"""\
            route:
              receiver: risk-team
              group_by: [model]
              group_wait: 0s
              group_interval: 1s
              repeat_interval: 1h
            receivers:
              - name: risk-team
                slack:
                  - webhook_url_env: DRIFTLINE_TEST_SLACK_URL
                email:
                  - to: [risk@example.com]
                    from: driftline@example.com
                    host: 127.0.0.1
                    port: {smtp.port}
                    security: none
            """
        )
    )
    return path


def stream(topics: Any, windows: range) -> list[tuple[str, bytes | None, bytes]]:
    events = scenario.events(WINDOWS, PER_WINDOW, 99, 99, drift_windows=DRIFTED)
    return [
        (topics.predictions, e.prediction_id.encode(), e.prediction_json())
        for e in events
        if e.window in windows
    ]


def rows(sessions: sessionmaker[Session]) -> list[outbox.NotificationRecord]:
    with sessions() as session:
        return outbox.list_notifications(session)


def titles(slack: SlackSink) -> list[str]:
    return [r.body["blocks"][0]["text"]["text"] for r in slack.delivered]


def test_alerts_survive_slack_down_a_killed_worker_and_a_second_relay(
    kafka_bootstrap: str,
    topic_prefix: str,
    postgres_url: str,
    tmp_path: Path,
    sinks: tuple[SlackSink, SmtpSink],
) -> None:
    slack, smtp = sinks
    sessions = register(postgres_url, alerts=RULES)
    path = routing(tmp_path / "alerts.yaml", smtp)
    os.environ["DRIFTLINE_TEST_SLACK_URL"] = slack.url_webhook  # read by the worker at start
    settings = {
        "ALERTS_FILE": str(path),
        "ALERT_LEASE_SECONDS": "5",
        "ALERT_MAX_RETRY_SECONDS": "2",  # production waits up to 60 s between tries
        "SESSION_TIMEOUT_SECONDS": "6",  # the killed member leaves the group sooner
    }
    worker = WorkerProcess(
        kafka_bootstrap, postgres_url, topic_prefix, 2, tmp_path / "w", settings=settings
    )
    worker.create_topics()
    relay: subprocess.Popen[bytes] | None = None
    try:
        slack.set_down(True)
        worker.start()
        produce_sync(kafka_bootstrap, stream(worker.topics, range(0, 7)))

        # Progress before the fault: the drift fired, e-mail went out, Slack was tried.
        def slack_tried() -> bool:
            pending = [r for r in rows(sessions) if r.integration == "slack[0]"]
            return bool(pending) and pending[0].attempts >= 2 and pending[0].sent_at is None

        wait_for(slack_tried, 120, "a firing notification tried against Slack while it is down")
        assert smtp.wait_for(1, 10) and len(smtp.messages) == 1
        assert smtp.messages[0].subject == "[driftline] [FIRING:2] churn: warning"
        assert "income drifted" in smtp.messages[0].text and "plan drifted" in smtp.messages[0].text
        assert worker.process is not None
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(10)

        slack.set_down(False)
        # The same consumer group, a log of its own (the first log says "Worker ready").
        worker = WorkerProcess(
            kafka_bootstrap,
            postgres_url,
            topic_prefix,
            2,
            tmp_path / "w2",
            settings=settings,
            app_id=worker.app_id,
        )
        worker.start()
        wait_for(lambda: len(slack.delivered) >= 1, 60, "the notification after the restart")

        # A relay process beside the worker; the clean windows resolve the drift.
        relay = subprocess.Popen(
            [sys.executable, "-m", "driftline", "relay", "--alerts", str(path)],
            env={**os.environ, "DRIFTLINE_DATABASE_URL": postgres_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        produce_sync(kafka_bootstrap, stream(worker.topics, range(7, WINDOWS)))
        wait_for(lambda: len(slack.delivered) >= 2 and len(smtp.messages) >= 2, 120, "resolved")
        time.sleep(3)  # anything duplicated would arrive by now (relays tick every 0.5 s)
    except Exception:
        print(worker.tail(80))
        raise
    finally:
        if relay is not None:
            relay.send_signal(signal.SIGTERM)
            output = relay.communicate(timeout=30)[0].decode(errors="replace")
            print(output)
        worker.stop()
        os.environ.pop("DRIFTLINE_TEST_SLACK_URL", None)

    assert titles(slack) == ["[FIRING:2] churn: warning", "[RESOLVED] churn: 2 alerts cleared"]
    assert [m.subject for m in smtp.messages] == [
        "[driftline] [FIRING:2] churn: warning",
        "[driftline] [RESOLVED] churn: 2 alerts cleared",
    ]
    sent = rows(sessions)
    assert len(sent) == 4 and all(r.sent_at is not None for r in sent)
    assert relay is not None and relay.returncode == 0
