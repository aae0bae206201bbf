"""The worker's Prometheus metrics: read from its live counters (and SQL) at scrape time,
served on a port of its own, and a port in use said plainly."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from alerting.dispatch import AlertRelay
from alerting.notifiers import DeliveryError, Notification
from alerting.routing import Routing
from driftline.cli import main
from driftline.errors import ConfigurationError
from schemas.topics import Topics
from storage import make_engine, session_factory, upgrade
from storage import notifications as outbox
from storage.repository import TriggerRow, insert_trigger, upsert_model
from storage.transactions import Transactions
from stream_app.counters import Counters
from stream_app.label_join import LabelJoin
from stream_app.metrics import (
    HELP,
    WorkerCollector,
    pipeline_collector,
    serve,
    worker_registry,
)
from stream_app.segment_spill import SegmentSpill
from stream_app.settings import load_settings
from stream_app.state_store import MemoryStore
from stream_app.summary_columns import Summary
from stream_app.worker import build, run_worker

TOPICS = Topics.with_prefix("t.")
NOW = 1_800_000_000.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, as Prometheus would parse it."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def busy_counters() -> Counters:
    counters = Counters()
    counters.saw_predictions(120)
    counters.labels = 40
    counters.dead_lettered(TOPICS.predictions)
    counters.dead_lettered(TOPICS.predictions)
    counters.dead_lettered(TOPICS.labels)
    counters.finalized_window(NOW - 90.0)
    counters.finalized_window(NOW - 600.0)  # an older window finalized later: the lag holds
    counters.outbox_sent = 3
    counters.input_rewinds = 2
    return counters


@pytest.fixture
def sessions(sqlite_url: str) -> sessionmaker[Session]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    return session_factory(engine)


def test_every_int_counter_is_a_total_with_its_help_and_the_topics_split_events() -> None:
    counters = busy_counters()
    registry = worker_registry(WorkerCollector(counters, TOPICS, clock=lambda: NOW))
    got = samples(registry)

    int_fields = [f.name for f in fields(Counters) if type(getattr(counters, f.name)) is int]
    assert set(int_fields) <= set(HELP), "give every counter a HELP text in stream_app.metrics"
    for name in int_fields:
        assert got[(f"driftline_worker_{name}_total", ())] == getattr(counters, name)
    assert got[("driftline_worker_predictions_total", ())] == 120
    assert got[("driftline_worker_dead_letters_total", ())] == 3
    assert got[("driftline_worker_windows_finalized_total", ())] == 2

    def events(topic: str, outcome: str) -> float:
        return got[("driftline_worker_events_total", (("outcome", outcome), ("topic", topic)))]

    assert events(TOPICS.predictions, "accepted") == 120
    assert events(TOPICS.labels, "accepted") == 40
    assert events(TOPICS.predictions, "dead_letter") == 2
    assert events(TOPICS.labels, "dead_letter") == 1

    assert got[("driftline_worker_last_finalized_window_end_seconds", ())] == NOW - 90.0
    assert got[("driftline_worker_finalization_lag_seconds", ())] == 90.0
    assert got[("driftline_worker_last_event_timestamp_seconds", ())] > 0
    # Without a database or an alert relay, their families are simply not there.
    absent = {"driftline_worker_outbox_pending", "driftline_worker_database_up"}
    assert not absent & {name for name, _ in got}
    assert not any(name.startswith("driftline_worker_notifications") for name, _ in got)


def test_the_label_join_reports_what_waits_and_where_its_state_is(tmp_path: Path) -> None:
    spill = SegmentSpill(tmp_path, 0)
    join = LabelJoin(MemoryStore(), 1, Counters(), spill)
    registry = worker_registry(WorkerCollector(Counters(), TOPICS, join=join))
    summary = Summary("churn", 0.0, 60.0, "1", 0.5, 100.0, "p", 0)
    for n in range(3):
        join.add_summary(0, f"p{n}", summary)
    got = samples(registry)
    assert got[("driftline_worker_join_waiting_predictions", ())] == 3
    assert got[("driftline_worker_join_state_bytes", (("where", "disk"),))] == 0
    join.seal()  # a budget of 0: the segment goes to disk
    got = samples(registry)
    assert got[("driftline_worker_join_waiting_predictions", ())] == 3
    assert got[("driftline_worker_join_state_bytes", (("where", "memory"),))] == 0
    assert got[("driftline_worker_join_state_bytes", (("where", "disk"),))] > 0


def test_values_are_read_at_scrape_time_and_the_lag_follows_the_clock() -> None:
    counters = Counters()
    clock = [NOW]
    registry = worker_registry(WorkerCollector(counters, TOPICS, clock=lambda: clock[0]))
    before = samples(registry)
    assert before[("driftline_worker_predictions_total", ())] == 0
    assert ("driftline_worker_finalization_lag_seconds", ()) not in before  # nothing final yet

    counters.saw_predictions(5)
    counters.finalized_window(NOW - 30.0)
    clock[0] = NOW + 15.0
    after = samples(registry)
    assert after[("driftline_worker_predictions_total", ())] == 5
    assert after[("driftline_worker_finalization_lag_seconds", ())] == 45.0


def test_outbox_depth_is_read_from_sql_and_a_dead_database_is_up_0(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        upsert_model(session, "churn", {"task": "binary"})
        for n in range(2):
            insert_trigger(
                session,
                TriggerRow(
                    trigger_id=f"t{n}",
                    model_id="churn",
                    model_version="v1",
                    reason="drift",
                    evidence={},
                    window_start=T0 + timedelta(minutes=n),
                    window_end=T0 + timedelta(minutes=n + 1),
                    created_at=T0 + timedelta(minutes=n + 1),
                ),
            )
    registry = worker_registry(WorkerCollector(Counters(), TOPICS, sessions=sessions))
    got = samples(registry)
    assert got[("driftline_worker_database_up", ())] == 1
    assert got[("driftline_worker_outbox_pending", (("outbox", "triggers"),))] == 2
    assert got[("driftline_worker_outbox_pending", (("outbox", "notifications"),))] == 0

    dead = session_factory(make_engine("sqlite+pysqlite:////nonexistent/dir/driftline.db"))
    got = samples(worker_registry(WorkerCollector(Counters(), TOPICS, sessions=dead)))
    assert got[("driftline_worker_database_up", ())] == 0
    assert got[("driftline_worker_predictions_total", ())] == 0  # the rest still answers
    assert not any(name == "driftline_worker_outbox_pending" for name, _ in got)


class Notifier:
    def __init__(self, error: DeliveryError | None = None) -> None:
        self.error = error

    async def send(self, notification: Notification) -> None:
        if self.error is not None:
            raise self.error


def test_the_alert_relay_counts_deliveries_per_receiver_and_integration(
    sessions: sessionmaker[Session],
) -> None:
    integrations: dict[str, dict[str, Any]] = {
        "team": {
            "slack[0]": Notifier(),
            "email[0]": Notifier(DeliveryError("mailbox full", retryable=True)),
            "email[1]": Notifier(DeliveryError("no such user", retryable=False)),
        }
    }
    with sessions.begin() as session:
        for integration in integrations["team"]:
            outbox.add_notification(
                session,
                outbox.NotificationRecord(
                    id=f"team/g/1/{integration}",
                    receiver="team",
                    integration=integration,
                    group_key="g",
                    seq=1,
                    status="firing",
                    payload={"title": "drift", "key": "team/g/1"},
                    created_at=T0,
                    sent_at=None,
                    failed_at=None,
                    attempts=0,
                    next_attempt_at=T0,
                    last_error=None,
                    claimed_by=None,
                    claimed_until=None,
                ),
            )
    relay = AlertRelay(
        cast(Routing, None),  # deliver() never plans
        Transactions(sessions, "the alert relay"),
        integrations,
        owner="test",
        clock=lambda: T0 + timedelta(seconds=1),
        seed=1,
    )
    assert asyncio.run(relay.deliver(max_rounds=1)) == 1
    assert relay.deliveries == {
        ("team", "slack[0]", "sent"): 1,
        ("team", "email[0]", "retried"): 1,
        ("team", "email[1]", "failed"): 1,
    }
    got = samples(worker_registry(WorkerCollector(Counters(), TOPICS, alert_relay=relay)))
    name = "driftline_worker_notifications_total"
    labels = (("integration", "email[1]"), ("outcome", "failed"), ("receiver", "team"))
    assert got[(name, labels)] == 1
    assert sum(value for (n, _), value in got.items() if n == name) == 3


def test_a_built_worker_serves_what_prometheus_parses(sqlite_url: str, tmp_path: Path) -> None:
    pipeline = build(load_settings(database_url=sqlite_url, data_dir=str(tmp_path / "faust")))
    pipeline.counters.saw_predictions(120)
    pipeline.counters.dead_lettered(pipeline.topics.labels)
    registry = worker_registry()  # served first, the collector registered later: as run_worker
    endpoint = serve(registry, "127.0.0.1", 0)  # any free port (no race with other tests)
    registry.register(pipeline_collector(pipeline))
    try:
        assert endpoint.port > 0
        assert endpoint.url == f"http://127.0.0.1:{endpoint.port}/metrics"
        with urllib.request.urlopen(endpoint.url, timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
    finally:
        endpoint.close()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["driftline_worker_predictions"].type == "counter"
    assert families["driftline_worker_predictions"].samples[0].value == 120
    events = families["driftline_worker_events"].samples
    dead = [(s.labels["topic"], s.value) for s in events if s.labels["outcome"] == "dead_letter"]
    assert dead == [(pipeline.topics.labels, 1)]
    assert families["driftline_worker_finalization_lag_seconds"].type == "gauge"
    assert families["driftline_worker_database_up"].samples[0].value == 1
    pending = families["driftline_worker_outbox_pending"].samples
    assert {s.labels["outbox"]: s.value for s in pending} == {"triggers": 0, "notifications": 0}
    assert "driftline_worker_notifications" not in families  # no alerts_file


def test_a_port_in_use_says_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(ConfigurationError) as caught:
            serve(CollectorRegistry(), "127.0.0.1", port)
    message = str(caught.value)
    assert f"DRIFTLINE_METRICS_PORT {port} is in use" in message
    assert "choose another port" in message and "unset DRIFTLINE_METRICS_PORT" in message


def test_the_port_is_a_setting_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLINE_CONFIG", raising=False)
    monkeypatch.delenv("DRIFTLINE_METRICS_PORT", raising=False)
    monkeypatch.delenv("DRIFTLINE_METRICS_HOST", raising=False)
    defaults = load_settings()
    assert defaults.metrics_port is None and defaults.metrics_host == "127.0.0.1"
    monkeypatch.setenv("DRIFTLINE_METRICS_PORT", "9464")
    assert load_settings().metrics_port == 9464
    monkeypatch.setenv("DRIFTLINE_METRICS_PORT", "70000")
    with pytest.raises(ConfigurationError, match="metrics_port"):
        load_settings()


def test_the_worker_refuses_a_port_in_use_before_anything_else_in_one_line(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DRIFTLINE_CONFIG", raising=False)
    monkeypatch.setenv("DRIFTLINE_DATABASE_URL", sqlite_url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(ConfigurationError, match="in use"):
            run_worker(load_settings(metrics_port=port))
        assert not Path(sqlite_url.split("///", 1)[1]).exists()  # not even migrated
        monkeypatch.setenv("DRIFTLINE_METRICS_PORT", str(port))
        assert main(["worker"]) == 2  # a configuration error
    err = capsys.readouterr().err
    assert err.startswith(f"driftline worker: error: DRIFTLINE_METRICS_PORT {port} is in use")
    assert "Traceback" not in err
