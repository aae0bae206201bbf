"""Alert groups and the notification outbox.

The relay plans notifications under the ``alert planner`` lock (:func:`lock_planner`):
a row lock on PostgreSQL, which makes a second relay wait for the first one's commit and
then see what it planned; on SQLite, transactions take turns anyway (``BEGIN
IMMEDIATE``, :mod:`storage.db`). Planned notifications are rows here, delivered later under
leases (:mod:`storage.outbox`) in order: only the oldest undelivered row of a stream (a
receiver's integration and group) can be claimed, so a group's messages never overtake
each other, while different streams go out in parallel. Every attempt is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, select, tuple_
from sqlalchemy.orm import Session, aliased

from driftline.errors import InvalidInputError
from storage import outbox
from storage.catalog import require_json
from storage.models import alert_groups, notification_attempts, notifications, relay_locks
from storage.types import require_aware
from storage.upsert import upsert

PLANNER_LOCK = "alert planner"


@dataclass(frozen=True, kw_only=True)
class GroupRecord:
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    first_seen_at: datetime
    last_sent_at: datetime | None
    notified: list[str]
    seq: int
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class NotificationRecord:
    id: str
    receiver: str
    integration: str
    group_key: str
    seq: int
    status: str
    payload: dict[str, Any]
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    claimed_by: str | None
    claimed_until: datetime | None


@dataclass(frozen=True, kw_only=True)
class AttemptRecord:
    id: int
    notification_id: str
    attempted_at: datetime
    ok: bool
    retryable: bool | None
    error: str | None
    seconds: float
    relay: str


def lock_planner(session: Session, now: datetime) -> None:
    """Hold the planner lock until the transaction ends (see the module docstring)."""
    require_aware("now", now)
    session.execute(
        select(relay_locks.c.name).where(relay_locks.c.name == PLANNER_LOCK).with_for_update()
    )
    session.execute(
        relay_locks.update().where(relay_locks.c.name == PLANNER_LOCK).values(locked_at=now)
    )


def load_groups(session: Session) -> list[GroupRecord]:
    return [GroupRecord(**row._mapping) for row in session.execute(select(alert_groups))]


def save_group(session: Session, group: GroupRecord) -> None:
    require_json(group.group_labels, "group labels")
    values = {name: getattr(group, name) for name in GroupRecord.__dataclass_fields__}
    upsert(session, alert_groups, [values], ["receiver", "group_key"])


def forget_group(session: Session, receiver: str, group_key: str) -> None:
    session.execute(
        alert_groups.delete().where(
            alert_groups.c.receiver == receiver, alert_groups.c.group_key == group_key
        )
    )


def add_notification(session: Session, record: NotificationRecord) -> None:
    require_json(record.payload, "notification payload")
    values = {name: getattr(record, name) for name in NotificationRecord.__dataclass_fields__}
    session.execute(notifications.insert().values(**values))


def claim_due(
    session: Session, *, owner: str, now: datetime, lease_seconds: float, limit: int
) -> list[NotificationRecord]:
    """Lease the next notification of each stream that is due, up to ``limit`` of them."""
    n = notifications
    earlier = aliased(n)
    pending_before = exists().where(
        earlier.c.receiver == n.c.receiver,
        earlier.c.integration == n.c.integration,
        earlier.c.group_key == n.c.group_key,
        earlier.c.sent_at.is_(None),
        earlier.c.failed_at.is_(None),
        tuple_(earlier.c.created_at, earlier.c.seq) < tuple_(n.c.created_at, n.c.seq),
    )
    query = (
        select(n)
        .where(
            outbox.claimable(n, n.c.sent_at, now),
            n.c.failed_at.is_(None),
            n.c.next_attempt_at <= now,
            ~pending_before,
        )
        .order_by(n.c.created_at, n.c.seq)
        .limit(limit)
    )
    rows = outbox.claim(
        session, n, n.c.id, query, owner=owner, now=now, lease_seconds=lease_seconds
    )
    return [NotificationRecord(**row._mapping) for row in rows]


def record_attempt(
    session: Session,
    notification_id: str,
    *,
    owner: str,
    at: datetime,
    seconds: float,
    error: str | None = None,
    retryable: bool | None = None,
    retry_in: float | None = None,
) -> None:
    """Record one delivery attempt and its outcome on the notification.

    Success (``error`` None) marks it sent; a retryable failure schedules the next attempt
    ``retry_in`` seconds later; any other failure marks it failed for good. The lease is
    released in every case. Only the lease holder's outcome counts: a relay whose lease ran
    out and was taken over records its attempt but does not change the row.
    """
    require_aware("at", at)
    session.execute(
        notification_attempts.insert().values(
            notification_id=notification_id,
            attempted_at=at,
            ok=error is None,
            retryable=retryable,
            error=error,
            seconds=seconds,
            relay=owner,
        )
    )
    values: dict[str, Any] = {
        "attempts": notifications.c.attempts + 1,
        "claimed_by": None,
        "claimed_until": None,
        "last_error": error,
    }
    if error is None:
        values["sent_at"] = at
    elif retryable:
        values["next_attempt_at"] = at + timedelta(seconds=retry_in or 0.0)
    else:
        values["failed_at"] = at
    session.execute(
        notifications.update()
        .where(
            notifications.c.id == notification_id,
            notifications.c.claimed_by == owner,
            notifications.c.sent_at.is_(None),
        )
        .values(**values)
    )


def list_notifications(session: Session, *, unsent_only: bool = False) -> list[NotificationRecord]:
    query = select(notifications).order_by(notifications.c.created_at, notifications.c.seq)
    if unsent_only:
        query = query.where(
            and_(notifications.c.sent_at.is_(None), notifications.c.failed_at.is_(None))
        )
    return [NotificationRecord(**row._mapping) for row in session.execute(query)]


def list_attempts(session: Session, notification_id: str | None = None) -> list[AttemptRecord]:
    query = select(notification_attempts).order_by(notification_attempts.c.id)
    if notification_id is not None:
        query = query.where(notification_attempts.c.notification_id == notification_id)
    return [AttemptRecord(**row._mapping) for row in session.execute(query)]


def notification_page(
    session: Session,
    *,
    status: str | None = None,
    receiver: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 1000,
) -> list[NotificationRecord]:
    """Up to ``limit`` notifications by creation time then id, after the key ``after``;
    optionally only one ``status`` (``unsent``, ``sent``, ``failed``) or one receiver.

    Keyset pagination, like the drift history: a page is one range scan however many
    notifications a long-running deployment has accumulated.
    """
    if limit < 1:
        raise InvalidInputError(f"limit must be >= 1, got {limit}")
    table = notifications
    query = select(table)
    if status == "sent":
        query = query.where(table.c.sent_at.is_not(None))
    elif status == "failed":
        query = query.where(table.c.sent_at.is_(None), table.c.failed_at.is_not(None))
    elif status == "unsent":
        query = query.where(table.c.sent_at.is_(None), table.c.failed_at.is_(None))
    elif status is not None:
        raise InvalidInputError(f"status must be unsent, sent or failed, got {status!r}")
    if receiver is not None:
        query = query.where(table.c.receiver == receiver)
    if after is not None:
        require_aware("cursor", after[0])
        query = query.where(tuple_(table.c.created_at, table.c.id) > tuple_(*after))
    query = query.order_by(table.c.created_at, table.c.id).limit(limit)
    return [NotificationRecord(**row._mapping) for row in session.execute(query)]


def attempts_of(session: Session, notification_ids: Sequence[str]) -> list[AttemptRecord]:
    """The delivery attempts of some notifications, in order."""
    if not notification_ids:
        return []
    query = (
        select(notification_attempts)
        .where(notification_attempts.c.notification_id.in_(list(notification_ids)))
        .order_by(notification_attempts.c.id)
    )
    return [AttemptRecord(**row._mapping) for row in session.execute(query)]
