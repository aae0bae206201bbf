"""Checks shared by the routes: a model that must exist, a time that must carry an offset."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException
from sqlalchemy.orm import Session

from storage import catalog


def require_model(session: Session, model_id: str) -> None:
    """404 unless the model is registered."""
    if catalog.get_model(session, model_id) is None:
        raise HTTPException(404, f"no model {model_id!r}")


def utc(name: str, value: datetime | None) -> datetime | None:
    """The time in UTC; 400 for one without an offset (it could be any zone)."""
    if value is not None and value.tzinfo is None:
        raise HTTPException(400, f"{name}: give a UTC offset (e.g. 2026-11-01T00:00:00Z)")
    return None if value is None else value.astimezone(UTC)
