"""Tests for the outbox leases (storage.outbox) through unpublished_triggers(claim_for=...)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import InvalidInputError
from storage import session_factory
from storage.availability import first_line, is_unavailable
from storage.repository import (
    TriggerRow,
    get_trigger,
    insert_trigger,
    mark_trigger_published,
    unpublished_triggers,
)
from tests.storage.helpers import at

NOW = at(10)


def _trigger(model: str, n: int) -> TriggerRow:
    return TriggerRow(
        trigger_id=f"{model}-{n}",
        model_id=model,
        model_version="v1",
        reason="drift",
        evidence={"n": n},
        window_start=at(n),
        window_end=at(n + 1),
        created_at=at(n + 1),
    )


def _claim(
    sessions: sessionmaker[Session],
    owner: str,
    limit: int = 10,
    now: datetime = NOW,
    lease: float = 30.0,
) -> list[str]:
    with sessions.begin() as session:
        claimed = unpublished_triggers(
            session, limit, claim_for=owner, lease_seconds=lease, now=now
        )
    return [t.trigger_id for t in claimed]


@pytest.fixture
def three(sessions: sessionmaker[Session], model: str) -> list[str]:
    with sessions.begin() as session:
        for n in (1, 2, 3):
            insert_trigger(session, _trigger(model, n))
    return [f"{model}-{n}" for n in (1, 2, 3)]


def test_a_claim_leases_the_oldest_unpublished_triggers(
    sessions: sessionmaker[Session], three: list[str]
) -> None:
    assert _claim(sessions, "relay-a", limit=2) == three[:2]
    with sessions() as session:
        stored = get_trigger(session, three[0])
        listed = [t.trigger_id for t in unpublished_triggers(session)]
    assert stored is not None and stored.claimed_by == "relay-a"
    assert stored.claimed_until == NOW + timedelta(seconds=30)
    assert listed == three  # claimed is not published: the plain listing still shows them


def test_a_live_lease_keeps_other_relays_off_until_it_runs_out(
    sessions: sessionmaker[Session], three: list[str]
) -> None:
    assert _claim(sessions, "relay-a", limit=2) == three[:2]
    assert _claim(sessions, "relay-b") == three[2:]
    assert _claim(sessions, "relay-c", now=NOW + timedelta(seconds=29)) == []
    # relay-a died: once its lease has run out, the triggers are taken over.
    assert _claim(sessions, "relay-c", now=NOW + timedelta(seconds=31)) == three
    with sessions() as session:
        stored = get_trigger(session, three[0])
    assert stored is not None and stored.claimed_by == "relay-c"


def test_published_triggers_are_never_claimed(
    sessions: sessionmaker[Session], three: list[str]
) -> None:
    _claim(sessions, "relay-a")
    with sessions.begin() as session:
        assert mark_trigger_published(session, three[1])
    later = NOW + timedelta(hours=1)
    assert _claim(sessions, "relay-b", now=later) == [three[0], three[2]]


def test_a_lease_needs_an_owner_and_a_positive_length(
    sessions: sessionmaker[Session], three: list[str]
) -> None:
    with pytest.raises(InvalidInputError, match="owner"):
        _claim(sessions, "")
    with pytest.raises(InvalidInputError, match="lease_seconds"):
        _claim(sessions, "relay-a", lease=0)


# PostgreSQL only: SQLite transactions take turns (BEGIN IMMEDIATE), no two claims at once.
@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_relays_claiming_at_once_get_different_triggers(
    engine: Engine, sessions: sessionmaker[Session], three: list[str]
) -> None:
    # PostgreSQL: the first relay's claim is not committed yet; SKIP LOCKED makes the second
    # take the next trigger instead of waiting for (or, after it, re-sending) the first.
    other = session_factory(engine)
    with sessions.begin() as first:
        mine = unpublished_triggers(first, 1, claim_for="relay-a", now=NOW)
        with other.begin() as second:
            theirs = unpublished_triggers(second, 1, claim_for="relay-b", now=NOW)
    assert [t.trigger_id for t in mine] == three[:1]
    assert [t.trigger_id for t in theirs] == three[1:2]


def test_unreachable_is_told_apart_from_bugs() -> None:
    refused = OperationalError(
        "SELECT 1", {}, Exception("connection failed: Connection refused\n\tIs it running?")
    )
    assert is_unavailable(refused)
    assert first_line(refused) == "connection failed: Connection refused"
    assert is_unavailable(OperationalError("INSERT", {}, Exception("database is locked")))
    assert not is_unavailable(OperationalError("SELECT", {}, Exception("no such table: windows")))
    assert not is_unavailable(IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")))
    assert not is_unavailable(ProgrammingError("SELECT", {}, Exception("syntax error")))
    invalidated = ProgrammingError("SELECT", {}, Exception("gone"), connection_invalidated=True)
    assert is_unavailable(invalidated)
    assert not is_unavailable(ValueError("not a database error"))
