"""Leases on outbox rows: rows written in a results transaction, sent afterwards by a relay.

A table is an outbox when its rows carry a "sent" timestamp (NULL until sent) and the two
lease columns ``claimed_by`` and ``claimed_until``. Retraining triggers are one
(``retrain_triggers.published_at``); alerts can become another by adding the same columns.

A relay first *claims* a batch of unsent rows in one short transaction: it sets itself as
their owner until ``now + lease``. Rows under another relay's live lease are skipped, and on
PostgreSQL the candidate rows are also locked with ``FOR UPDATE SKIP LOCKED``, so two relays
claiming at the same moment never get the same row. (SQLite needs no lock: Driftline's
SQLite transactions start with ``BEGIN IMMEDIATE`` and take turns, see :mod:`storage.db`.)
The relay then sends each row and marks it sent in a transaction of its own. A relay that
dies in between leaves rows whose lease runs out; any relay takes them over then, so a row
may be sent twice but is never left unsent. Consumers deduplicate by the row's id.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, ColumnElement, Select, Table, or_
from sqlalchemy.orm import Session

from driftline.errors import InvalidInputError
from storage.types import require_aware


def lease_owner() -> str:
    """A name no other relay has: host, process and a random part (pids repeat in containers)."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


def claimable(table: Table, sent: Column[Any], now: datetime) -> ColumnElement[bool]:
    """Rows not sent yet that no live lease holds."""
    return sent.is_(None) & or_(table.c.claimed_until.is_(None), table.c.claimed_until <= now)


def claim(
    session: Session,
    table: Table,
    key: Column[Any],
    query: Select[Any],
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
) -> list[Any]:
    """Lease the rows ``query`` selects (already restricted with :func:`claimable`) to
    ``owner`` until ``now + lease_seconds``; return them as they were read.

    ``query`` must select from ``table`` and carry its order and limit; the caller commits.
    """
    if not owner:
        raise InvalidInputError("an outbox lease needs a non-empty owner")
    if not lease_seconds > 0:
        raise InvalidInputError(f"lease_seconds must be > 0, got {lease_seconds!r}")
    require_aware("now", now)
    # OF the outbox table only: the caller's query may join others it does not update.
    locked = query.with_for_update(skip_locked=True, of=table)
    rows = list(session.execute(locked))
    if rows:
        session.execute(
            table.update()
            .where(key.in_([row._mapping[key.name] for row in rows]))
            .values(claimed_by=owner, claimed_until=now + timedelta(seconds=lease_seconds))
        )
    return rows
