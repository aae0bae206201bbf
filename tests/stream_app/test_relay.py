"""The outbox relay: committed triggers reach Kafka after any crash, at least once."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy.orm import Session, sessionmaker

from schemas.outbound import RetrainTrigger
from storage import make_engine, session_factory, upgrade
from storage.repository import TriggerRow, get_trigger, insert_trigger, upsert_model
from stream_app.counters import Counters
from stream_app.outbox_relay import OutboxMessage, OutboxRelay, SqlTriggerOutbox
from stream_app.sql_writer import Transactions
from tests.stream_app.outage import FlakySessions, WorkerCrashError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _trigger(n: int) -> TriggerRow:
    return TriggerRow(
        trigger_id=f"t{n:03d}",
        model_id="churn",
        model_version="v1",
        reason="drift in 2 of the last 3 windows",
        evidence={"rule": "drift", "n": n},
        window_start=T0.replace(minute=n),
        window_end=T0.replace(minute=n + 1),
        created_at=T0.replace(minute=n + 1),
    )


@pytest.fixture
def sessions(sqlite_url: str) -> sessionmaker[Session]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        upsert_model(session, "churn", {"task": "binary"})
    return sessions


def _committed(sessions: sessionmaker[Session], *numbers: int) -> None:
    """Triggers stage 2 committed (with their windows) before the worker died."""
    with sessions.begin() as session:
        for n in numbers:
            insert_trigger(session, _trigger(n))


class Broker:
    def __init__(self) -> None:
        self.messages: list[OutboxMessage] = []
        self.down = False

    async def send(self, message: OutboxMessage) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.messages.append(message)

    def ids(self) -> list[str]:
        return [RetrainTrigger.from_json_bytes(m.value).trigger_id for m in self.messages]


def _relay(sessions: Any, broker: Broker, name: str, **options: Any) -> OutboxRelay:
    outbox = SqlTriggerOutbox(Transactions(sessions, "the outbox relay"))
    return OutboxRelay([(outbox, broker.send)], owner=name, **options)


def _published_at(sessions: sessionmaker[Session], trigger_id: str) -> datetime | None:
    with sessions() as session:
        stored = get_trigger(session, trigger_id)
    assert stored is not None
    return stored.published_at


def test_a_trigger_committed_before_a_crash_is_published_after_the_restart(
    sessions: sessionmaker[Session],
) -> None:
    _committed(sessions, 1, 2)  # the worker died after the commit, before any publish
    broker = Broker()
    counters = Counters()
    restarted = _relay(sessions, broker, "after-restart", counters=counters)
    assert asyncio.run(restarted.run_once()) == 2
    assert broker.ids() == ["t001", "t002"]
    message = RetrainTrigger.from_json_bytes(broker.messages[0].value)
    assert message.model_id == "churn" and message.evidence == {"rule": "drift", "n": 1}
    assert broker.messages[0].key == b"churn"
    assert _published_at(sessions, "t001") is not None
    assert asyncio.run(restarted.run_once()) == 0  # published once
    assert counters.outbox_sent == 2


def test_a_relay_that_died_holding_a_lease_is_taken_over_when_it_runs_out(
    sessions: sessionmaker[Session],
) -> None:
    _committed(sessions, 1)
    broker = Broker()
    dead = SqlTriggerOutbox(Transactions(sessions, "the outbox relay"))
    assert [m.id for m in asyncio.run(dead.claim("dead-relay", 0.3, 10))] == ["t001"]
    other = _relay(sessions, broker, "other")
    assert asyncio.run(other.run_once()) == 0  # the lease is live: no double send
    time.sleep(0.35)
    assert asyncio.run(other.run_once()) == 1
    assert broker.ids() == ["t001"]


def test_a_crash_between_publishing_and_marking_sends_the_same_trigger_again(
    sessions: sessionmaker[Session],
) -> None:
    _committed(sessions, 1)
    broker = Broker()
    outbox = SqlTriggerOutbox(Transactions(sessions, "the outbox relay"))

    async def crash_on_mark(message_id: str) -> None:
        raise WorkerCrashError

    outbox.mark_sent = crash_on_mark  # type: ignore[method-assign]
    dying = OutboxRelay([(outbox, broker.send)], owner="dying", lease_seconds=0.2)
    with pytest.raises(WorkerCrashError):
        asyncio.run(dying.run_once())
    time.sleep(0.25)
    asyncio.run(_relay(sessions, broker, "restarted").run_once())
    # At least once: the consumer drops the second copy by its trigger_id.
    assert broker.ids() == ["t001", "t001"]
    assert _published_at(sessions, "t001") is not None


def test_a_broker_outage_leaves_the_trigger_for_a_later_round(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    _committed(sessions, 1, 2)
    broker = Broker()
    broker.down = True
    relay = _relay(sessions, broker, "relay", lease_seconds=0.2)
    with caplog.at_level(logging.WARNING, logger="stream_app.outbox_relay"):
        assert asyncio.run(relay.run_once()) == 0
    (line,) = [r.getMessage() for r in caplog.records]
    assert "could not send retraining triggers t001 (ConnectionError: broker unreachable)" in line
    assert _published_at(sessions, "t001") is None
    broker.down = False
    time.sleep(0.25)
    assert asyncio.run(relay.run_once()) == 2
    assert broker.ids() == ["t001", "t002"]


def test_a_backlog_larger_than_a_batch_drains_in_one_round(
    sessions: sessionmaker[Session],
) -> None:
    _committed(sessions, *range(7))
    broker = Broker()
    assert asyncio.run(_relay(sessions, broker, "relay", batch=3).run_once()) == 7
    assert broker.ids() == [f"t{n:03d}" for n in range(7)]


def test_the_relay_waits_out_a_database_outage(sessions: sessionmaker[Session]) -> None:
    _committed(sessions, 1)
    flaky = FlakySessions(sessions, fail_each=3)
    broker = Broker()

    async def no_sleep(seconds: float) -> None:
        return None

    outbox = SqlTriggerOutbox(Transactions(cast(Any, flaky), "the outbox relay", sleep=no_sleep))
    relay = OutboxRelay([(outbox, broker.send)], owner="relay")
    assert asyncio.run(relay.run_once()) == 1
    assert broker.ids() == ["t001"] and flaky.failures == 6  # claim and mark, 3 each


def test_a_relay_error_is_logged_and_the_timer_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        name = "retraining triggers"

        async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[OutboxMessage]:
            raise RuntimeError("no such column: retrain_triggers.claimed_by")

        async def mark_sent(self, message_id: str) -> None:
            return None

    broker = Broker()
    relay = OutboxRelay([(Broken(), broker.send)], owner="relay")
    with caplog.at_level(logging.ERROR, logger="stream_app.outbox_relay"):
        asyncio.run(relay.tick())  # does not raise
    assert "the outbox relay failed" in caplog.records[0].getMessage()
