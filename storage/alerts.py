"""Alerts in SQL: each model's alert book, the current state of every alert, silences.

Stage 2 writes books, alerts and alert events in the transaction of the window that
changed them (:mod:`alerting.evaluation`), so an alert exists exactly when the results it
is about do. The alert relay reads firing alerts and silences to plan notifications
(:mod:`storage.notifications`). Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.catalog import require_json
from storage.models import alert_books, alert_events, alerts, silences
from storage.types import require_aware, utcnow
from storage.upsert import upsert


@dataclass(frozen=True, kw_only=True)
class AlertRecord:
    """One alert (a fingerprint) as it stands: ``status`` is ``firing`` or ``resolved``."""

    fingerprint: str
    model_id: str
    model_version: str | None
    rule: str
    subject: str
    severity: str
    status: str
    labels: dict[str, str]
    summary: str
    evidence: dict[str, Any]
    window_start: datetime
    window_end: datetime | None
    starts_at: datetime
    resolved_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class SilenceRecord:
    """Alerts matching every matcher are not notified between ``starts_at`` and ``ends_at``."""

    id: str
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


def load_book(session: Session, model_id: str) -> dict[str, Any] | None:
    """The model's saved alert book (JSON), or None before its first window."""
    row = session.execute(
        select(alert_books.c.book).where(alert_books.c.model_id == model_id)
    ).first()
    return None if row is None else dict(row.book)


def save_book(
    session: Session, model_id: str, book: Mapping[str, Any], last_window: datetime | None
) -> None:
    require_json(book, "alert book")
    require_aware("last_window", last_window)
    row = {
        "model_id": model_id,
        "last_window": last_window,
        "book": dict(book),
        "updated_at": utcnow(),
    }
    upsert(session, alert_books, [row], ["model_id"])


def save_alert(session: Session, alert: AlertRecord) -> None:
    """Write the alert's current state (replacing the stored one)."""
    require_json(alert.evidence, "alert evidence")
    upsert(session, alerts, [asdict(alert)], ["fingerprint"])


def add_event(session: Session, alert: AlertRecord) -> None:
    """Record that ``alert`` changed to its ``status`` (history; never read by the relay)."""
    session.execute(
        alert_events.insert().values(
            fingerprint=alert.fingerprint,
            model_id=alert.model_id,
            status=alert.status,
            window_start=alert.window_start,
            summary=alert.summary,
            created_at=utcnow(),
        )
    )


def firing_alerts(session: Session) -> list[AlertRecord]:
    """Every firing alert, oldest first."""
    query = select(alerts).where(alerts.c.status == "firing").order_by(alerts.c.starts_at)
    return [AlertRecord(**row._mapping) for row in session.execute(query)]


def list_alerts(
    session: Session, *, model_id: str | None = None, status: str | None = None
) -> list[AlertRecord]:
    """Alerts as they stand, oldest first; optionally of one model, or only ``firing`` or
    ``resolved`` ones."""
    query = select(alerts)
    if model_id is not None:
        query = query.where(alerts.c.model_id == model_id)
    if status is not None:
        query = query.where(alerts.c.status == status)
    rows = session.execute(query.order_by(alerts.c.starts_at, alerts.c.fingerprint))
    return [AlertRecord(**row._mapping) for row in rows]


def get_alerts(session: Session, fingerprints: Iterable[str]) -> list[AlertRecord]:
    wanted = sorted(set(fingerprints))
    if not wanted:
        return []
    query = select(alerts).where(alerts.c.fingerprint.in_(wanted))
    return [AlertRecord(**row._mapping) for row in session.execute(query)]


def alerts_of_model(
    session: Session, model_id: str, window_start: datetime | None = None
) -> list[AlertRecord]:
    """The model's alerts, oldest first; with ``window_start``, only those of that window."""
    query = select(alerts).where(alerts.c.model_id == model_id)
    if window_start is not None:
        require_aware("window_start", window_start)
        query = query.where(alerts.c.window_start == window_start)
    rows = session.execute(query.order_by(alerts.c.starts_at)).all()
    return [AlertRecord(**row._asdict()) for row in rows]


def add_silence(session: Session, silence: SilenceRecord) -> None:
    require_aware("starts_at", silence.starts_at)
    require_aware("ends_at", silence.ends_at)
    session.execute(silences.insert().values(**asdict(silence)))


def list_silences(session: Session, *, active_at: datetime | None = None) -> list[SilenceRecord]:
    """Every silence (``active_at``: only those in force then), the latest ending first."""
    query = select(silences).order_by(silences.c.ends_at.desc())
    if active_at is not None:
        require_aware("active_at", active_at)
        query = query.where(silences.c.starts_at <= active_at, silences.c.ends_at > active_at)
    return [SilenceRecord(**row._mapping) for row in session.execute(query)]


def expire_silence(session: Session, silence_id: str, now: datetime) -> bool:
    """End a silence now; return whether it existed and was still in force or pending."""
    require_aware("now", now)
    result = session.execute(
        silences.update()
        .where(silences.c.id == silence_id, silences.c.ends_at > now)
        .values(ends_at=now)
        .returning(silences.c.id)
    )
    return result.first() is not None
