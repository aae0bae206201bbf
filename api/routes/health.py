"""``/healthz`` (the process answers) and ``/readyz`` (the database answers, migrated)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import SessionsDep
from storage.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers and its schema is current")
def readyz(sessions: SessionsDep) -> JSONResponse:
    # Outside a write transaction: SQLite's BEGIN IMMEDIATE would lock out the check itself.
    engine = sessions.kw["bind"]
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    current, head = current_revision(engine), head_revision()
    ready = current == head
    body = {"status": "ok" if ready else "migrations pending", "schema": current, "head": head}
    return JSONResponse(body, status_code=200 if ready else 503)
