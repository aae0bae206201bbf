"""``/healthz`` (the process answers) and ``/readyz`` (the database answers with its schema
current, and the broker answers when ``api_check_broker`` names one).

Open by default, for probes; ``DRIFTLINE_API_OPEN_HEALTH=false`` puts them behind a key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from api.deps import SessionsDep, SettingsDep, key_unless_open
from driftline.kafka_security import KafkaSecurity
from driftline.local.kafka_client import broker_serves
from storage.availability import is_unavailable
from storage.migrate import current_revision, head_revision

BROKER_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["health"], dependencies=[Depends(key_unless_open("api_open_health"))])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable, schema current, broker reachable when configured",
    responses={503: {"description": "Not ready; the body says which check failed"}},
)
async def readyz(sessions: SessionsDep, settings: SettingsDep) -> JSONResponse:
    checks: dict[str, Any] = await run_in_threadpool(_database, sessions.kw["bind"])
    if settings.api_check_broker:
        served = await broker_serves(
            settings.api_check_broker, BROKER_TIMEOUT_SECONDS, KafkaSecurity.load()
        )
        checks["broker"] = "ok" if served else "unreachable"
    ready = all(checks[name] == "ok" for name in ("database", "schema", "broker") if name in checks)
    return JSONResponse({"status": "ok" if ready else "not ready", **checks}, 200 if ready else 503)


def _database(engine: Engine) -> dict[str, Any]:
    # Outside a write transaction: SQLite's BEGIN IMMEDIATE would lock out the check itself.
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(engine)
    except Exception as error:
        if not is_unavailable(error):
            raise
        return {"database": "unreachable"}
    head = head_revision()
    return {
        "database": "ok",
        "schema": "ok" if current == head else "migrations pending",
        "schema_revision": current,
        "head_revision": head,
    }
