"""Retraining triggers: recorded once, then marked when published to Kafka.

The table is the triggers' outbox (:mod:`storage.outbox`): a trigger is written in the same
transaction as the window that caused it, and published afterwards by the worker's relay
(:mod:`stream_app.trigger_relay`), which takes unpublished ones with
:func:`unpublished_triggers` (leasing them to itself) and marks each one with
:func:`mark_trigger_published` once Kafka has it. A crash in between leaves the trigger
unpublished, so it is sent again: the trigger id is deterministic, and the consumer drops a
duplicate by it.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, select
from sqlalchemy.orm import Session

from driftline.errors import InvalidInputError
from storage import outbox
from storage.catalog import require_json, require_model
from storage.models import retrain_triggers
from storage.rows import TriggerRecord, TriggerRow
from storage.types import require_aware, utcnow
from storage.upsert import insert_if_absent


def insert_trigger(session: Session, trigger: TriggerRow) -> bool:
    """Record ``trigger``; return False, changing nothing, if its id is already recorded."""
    require_model(session, trigger.model_id)
    require_json(trigger.evidence, "evidence")
    values = {item.name: getattr(trigger, item.name) for item in fields(trigger)}
    return insert_if_absent(session, retrain_triggers, values, ["trigger_id"])


def mark_trigger_published(
    session: Session, trigger_id: str, published_at: datetime | None = None
) -> bool:
    """Note that the trigger was published (now, by default); return whether it exists.

    The first publication time is kept when it is published again.
    """
    require_aware("published_at", published_at)
    result = session.execute(
        retrain_triggers.update()
        .where(
            retrain_triggers.c.trigger_id == trigger_id,
            retrain_triggers.c.published_at.is_(None),
        )
        .values(published_at=published_at or utcnow())
    )
    if cast(CursorResult[Any], result).rowcount == 1:
        return True
    exists = select(retrain_triggers.c.trigger_id).where(
        retrain_triggers.c.trigger_id == trigger_id
    )
    return session.execute(exists).first() is not None


def get_trigger(session: Session, trigger_id: str) -> TriggerRecord | None:
    """The trigger with this id, if recorded."""
    found = _records(
        session, select(retrain_triggers).where(retrain_triggers.c.trigger_id == trigger_id)
    )
    return found[0] if found else None


def _records(session: Session, query: Select[Any]) -> list[TriggerRecord]:
    return [TriggerRecord(**row._mapping) for row in session.execute(query)]


def triggers(session: Session, model_id: str) -> list[TriggerRecord]:
    """The model's triggers, oldest first."""
    query = (
        select(retrain_triggers)
        .where(retrain_triggers.c.model_id == model_id)
        .order_by(retrain_triggers.c.created_at, retrain_triggers.c.trigger_id)
    )
    return _records(session, query)


def last_trigger(session: Session, model_id: str) -> TriggerRecord | None:
    """The model's newest trigger (by creation time), if any: the start of a cooldown."""
    query = (
        select(retrain_triggers)
        .where(retrain_triggers.c.model_id == model_id)
        .order_by(retrain_triggers.c.created_at.desc(), retrain_triggers.c.trigger_id.desc())
        .limit(1)
    )
    found = _records(session, query)
    return found[0] if found else None


def unpublished_triggers(
    session: Session,
    limit: int = 100,
    *,
    claim_for: str | None = None,
    lease_seconds: float = 30.0,
    now: datetime | None = None,
) -> list[TriggerRecord]:
    """Triggers of any model not yet published, oldest first.

    With ``claim_for`` (a relay's name), only those no other relay holds a live lease on,
    and they are leased to ``claim_for`` for ``lease_seconds`` from ``now`` (the current
    time by default): see :mod:`storage.outbox`. The returned records show the trigger as
    read, before the lease.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError(f"limit must be an integer >= 1, got {limit!r}")
    order = (retrain_triggers.c.created_at, retrain_triggers.c.trigger_id)
    if claim_for is None:
        query = (
            select(retrain_triggers)
            .where(retrain_triggers.c.published_at.is_(None))
            .order_by(*order)
            .limit(limit)
        )
        return _records(session, query)
    now = now or utcnow()
    query = (
        select(retrain_triggers)
        .where(outbox.claimable(retrain_triggers, retrain_triggers.c.published_at, now))
        .order_by(*order)
        .limit(limit)
    )
    rows = outbox.claim(
        session,
        retrain_triggers,
        retrain_triggers.c.trigger_id,
        query,
        owner=claim_for,
        now=now,
        lease_seconds=lease_seconds,
    )
    return [TriggerRecord(**row._mapping) for row in rows]
