"""Tests for storage.triggers: a trigger id is recorded once, then marked published."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import InvalidInputError
from storage.repository import (
    TriggerRow,
    UnknownModelError,
    get_trigger,
    insert_trigger,
    last_trigger,
    mark_trigger_published,
    triggers,
    unpublished_triggers,
    upsert_model,
)
from tests.storage.helpers import at

EVIDENCE = {"drifted_features": ["age", "plan"], "share_drifted": 0.5, "windows": [1, 2, 3]}


def _trigger(model: str, n: int, **changes: object) -> TriggerRow:
    values: dict[str, object] = {
        "trigger_id": f"{model}-{n}",
        "model_id": model,
        "model_version": "v7",
        "reason": "dataset drift in 3 consecutive windows",
        "evidence": EVIDENCE,
        "window_start": at(n),
        "window_end": at(n + 1),
        "data_start": at(n - 24),
        "data_end": at(n + 1),
        "created_at": at(n + 1) + timedelta(minutes=2),
    }
    return TriggerRow(**(values | changes))  # type: ignore[arg-type]


def test_inserting_the_same_trigger_id_again_changes_nothing(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        assert insert_trigger(session, _trigger(model, 1))
    with sessions.begin() as session:
        assert not insert_trigger(session, _trigger(model, 1, reason="something else"))
    with sessions() as session:
        (stored,) = triggers(session, model)
    assert stored.reason == "dataset drift in 3 consecutive windows"
    assert stored.evidence == EVIDENCE
    assert (stored.window_start, stored.data_start) == (at(1), at(-23))
    assert stored.published_at is None


def test_triggers_oldest_first_and_the_last_one(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        upsert_model(session, "fraud", {})
        for n in (3, 1, 2):
            insert_trigger(session, _trigger(model, n))
        insert_trigger(session, _trigger("fraud", 9))
    with sessions() as session:
        listed = triggers(session, model)
        last = last_trigger(session, model)
        none = last_trigger(session, "ltv")
    assert [t.trigger_id for t in listed] == [f"{model}-1", f"{model}-2", f"{model}-3"]
    assert last is not None and last.trigger_id == f"{model}-3"
    assert none is None


def test_marking_published_keeps_the_first_time(
    sessions: sessionmaker[Session], model: str
) -> None:
    first = datetime(2025, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    with sessions.begin() as session:
        insert_trigger(session, _trigger(model, 1))
        insert_trigger(session, _trigger(model, 2))
        assert [t.trigger_id for t in unpublished_triggers(session)] == [
            f"{model}-1",
            f"{model}-2",
        ]
        assert mark_trigger_published(session, f"{model}-1", first)
        assert mark_trigger_published(session, f"{model}-1")  # again: still known, time kept
        assert not mark_trigger_published(session, "no-such-trigger")
    with sessions() as session:
        published = get_trigger(session, f"{model}-1")
        pending = unpublished_triggers(session, limit=10)
        assert get_trigger(session, "no-such-trigger") is None
    assert published is not None and published.published_at == first
    assert [t.trigger_id for t in pending] == [f"{model}-2"]


def test_triggers_need_a_registered_model_and_json_evidence(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions() as session, pytest.raises(UnknownModelError):
        insert_trigger(session, _trigger("nobody", 1))
    with sessions() as session, pytest.raises(InvalidInputError, match="evidence"):
        insert_trigger(session, _trigger(model, 1, evidence={"when": at(1)}))
    with pytest.raises(InvalidInputError, match="created_at must be timezone-aware"):
        _trigger(model, 1, created_at=datetime(2025, 1, 1))
