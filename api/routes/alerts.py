"""Alerts of a model, notifications with their delivery attempts, and silences (list, add,
expire: adding and expiring need an admin key)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field, field_validator, model_validator

from alerting.matchers import Matcher
from api import pages
from api.deps import AdminKey, ReadKey, SessionDep, SettingsDep
from api.errors import ERROR_RESPONSES
from api.params import require_model
from schemas.alert_routing import Duration
from storage import alerts as alert_store
from storage import notifications as notification_store
from storage.types import utcnow

router = APIRouter(tags=["alerts"], responses=ERROR_RESPONSES)


class Alert(BaseModel):
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


class AlertList(BaseModel):
    model_id: str
    items: list[Alert]


class Attempt(BaseModel):
    attempted_at: datetime
    ok: bool
    retryable: bool | None
    error: str | None
    seconds: float


class Notification(BaseModel):
    id: str
    receiver: str
    integration: str
    group_key: str
    status: Literal["unsent", "sent", "failed"] = Field(description="Delivery state")
    alert_status: str = Field(description="What it tells: firing or resolved")
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    attempts: int
    last_error: str | None
    attempt_log: list[Attempt] = Field(description="Every delivery attempt, oldest first")


class NotificationList(BaseModel):
    items: list[Notification]
    next_cursor: str | None = None


class Silence(BaseModel):
    id: str
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime
    active: bool


class SilenceList(BaseModel):
    items: list[Silence]


class NewSilence(BaseModel):
    matchers: list[str] = Field(
        min_length=1, description='Label matchers, e.g. model="churn", rule=~".*drift"'
    )
    duration: Duration | None = Field(
        default=None, description="How long from now: 30m, 2h, 1d or seconds"
    )
    ends_at: datetime | None = Field(default=None, description="Or when it ends (with an offset)")
    comment: str = Field(min_length=1, max_length=1000)
    created_by: str = Field(min_length=1, max_length=200)

    @field_validator("matchers")
    @classmethod
    def _parse(cls, matchers: list[str]) -> list[str]:
        for text in matchers:
            Matcher.parse(text)  # ValueError names the bad matcher
        return matchers

    @model_validator(mode="after")
    def _one_end(self) -> NewSilence:
        if (self.duration is None) == (self.ends_at is None):
            raise ValueError("give either duration or ends_at")
        if self.ends_at is not None and self.ends_at.tzinfo is None:
            raise ValueError("ends_at: give a UTC offset (e.g. 2026-11-01T00:00:00Z)")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive")
        return self


def _silence(record: alert_store.SilenceRecord, now: datetime) -> Silence:
    fields = {name: getattr(record, name) for name in Silence.model_fields if name != "active"}
    return Silence(**fields, active=record.active(now))


def _status(
    record: notification_store.NotificationRecord,
) -> Literal["unsent", "sent", "failed"]:
    if record.sent_at is not None:
        return "sent"
    if record.failed_at is not None:
        return "failed"
    return "unsent"


@router.get("/models/{model_id}/alerts", summary="The model's alerts, oldest first")
def model_alerts(
    model_id: str,
    session: SessionDep,
    key: ReadKey,
    status: Literal["firing", "resolved"] | None = None,
) -> AlertList:
    require_model(session, model_id)
    found = alert_store.alerts_of_model(session, model_id)
    items = [
        Alert.model_validate(a, from_attributes=True)
        for a in found
        if status is None or a.status == status
    ]
    return AlertList(model_id=model_id, items=items)


@router.get("/notifications", summary="Notifications (one per group and receiver) and attempts")
def notifications(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    key: ReadKey,
    status: Literal["unsent", "sent", "failed"] | None = None,
    receiver: Annotated[str | None, Query(description="only this receiver's")] = None,
    limit: Annotated[int | None, Query(ge=1, description="at most the API's page limit")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> NotificationList:
    size = min(limit or settings.api_page_limit, settings.api_page_limit)
    after = None
    if cursor is not None:
        at, notification_id, _ = pages.decode(cursor)
        after = (at, notification_id)
    found = notification_store.notification_page(
        session, status=status, receiver=receiver, after=after, limit=size
    )
    by_notification: dict[str, list[Attempt]] = {}
    for attempt in notification_store.attempts_of(session, [r.id for r in found]):
        by_notification.setdefault(attempt.notification_id, []).append(
            Attempt.model_validate(attempt, from_attributes=True)
        )
    items = []
    for record in found:
        fields = {
            name: getattr(record, name)
            for name in Notification.model_fields
            if name not in ("status", "alert_status", "attempt_log")
        }
        items.append(
            Notification(
                **fields,
                status=_status(record),
                alert_status=record.status,
                attempt_log=by_notification.get(record.id, []),
            )
        )
    next_cursor = None
    if len(found) == size:
        next_cursor = pages.encode((found[-1].created_at, found[-1].id, ""))
        response.headers["Next-Cursor"] = next_cursor
    return NotificationList(items=items, next_cursor=next_cursor)


@router.get("/silences", summary="Silences in force (all=true: every one)")
def silences(
    session: SessionDep,
    key: ReadKey,
    all: Annotated[bool, Query(description="Also expired and pending ones")] = False,
) -> SilenceList:
    now = utcnow()
    found = alert_store.list_silences(session, active_at=None if all else now)
    return SilenceList(items=[_silence(s, now) for s in found])


@router.post("/silences", status_code=201, summary="Mute matching alerts for a while")
def add_silence(body: NewSilence, session: SessionDep, key: AdminKey) -> Silence:
    now = utcnow()
    if body.ends_at is not None:
        ends_at = body.ends_at.astimezone(UTC)
    else:
        assert body.duration is not None
        ends_at = now + timedelta(seconds=body.duration)
    if ends_at <= now:
        raise HTTPException(400, f"ends_at {ends_at.isoformat()} is not in the future")
    record = alert_store.SilenceRecord(
        id=uuid.uuid4().hex[:12],
        matchers=body.matchers,
        starts_at=now,
        ends_at=ends_at,
        created_by=body.created_by,
        comment=body.comment,
        created_at=now,
    )
    alert_store.add_silence(session, record)
    return _silence(record, now)


@router.post("/silences/{silence_id}/expire", summary="End a silence now")
def expire_silence(silence_id: str, session: SessionDep, key: AdminKey) -> Silence:
    now = utcnow()
    if not alert_store.expire_silence(session, silence_id, now):
        raise HTTPException(404, f"no silence {silence_id!r} in force")
    found = [s for s in alert_store.list_silences(session) if s.id == silence_id]
    return _silence(found[0], now)
