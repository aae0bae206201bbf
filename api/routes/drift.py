"""Drift history of a model (filtered, paged, JSON or CSV) and one window's full report."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import Response

from api import pages
from api.deps import ReadKey, SessionDep, SettingsDep
from api.drift_json import drift_page_json
from api.errors import ERROR_RESPONSES
from api.params import require_model, utc
from api.schemas import DriftPage, WindowReport
from storage import alerts as alert_store
from storage import history
from storage.drift_pages import drift_page

router = APIRouter(prefix="/models/{model_id}", tags=["drift"], responses=ERROR_RESPONSES)

Status = Literal["ok", "warning", "drift", "no data"]
CSV_COLUMNS = (
    "window_start",
    "feature",
    "method",
    "score",
    "p_value",
    "threshold",
    "drifted",
    "status",
)


@router.get(
    "/drift",
    summary="Drift history: per window, feature and method; paged; JSON or CSV",
    response_model=DriftPage,
    responses={200: {"content": {"text/csv": {}}}},
)
def drift(
    model_id: str,
    session: SessionDep,
    settings: SettingsDep,
    key: ReadKey,
    feature: Annotated[list[str], Query(description="Only these features")] = [],  # noqa: B006
    method: str | None = None,
    status: Status | None = None,
    start: Annotated[datetime | None, Query(description="ISO 8601 with an offset")] = None,
    end: Annotated[datetime | None, Query(description="Exclusive")] = None,
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    format: Literal["json", "csv"] | None = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    require_model(session, model_id)
    size = min(limit or settings.api_page_limit, settings.api_page_limit)
    rows = drift_page(
        session,
        model_id,
        features=feature,
        method=method,
        status=status,
        start=utc("start", start),
        end=utc("end", end),
        after=pages.decode(cursor) if cursor else None,
        limit=size,
    )
    last = rows[-1] if len(rows) == size else None
    next_cursor = pages.encode((last.window_start, last.feature, last.method)) if last else None
    wants_csv = format == "csv" or (format is None and "text/csv" in (accept or ""))
    if not wants_csv:
        # The DriftPage the route declares, written without building it (api/drift_json.py).
        return Response(drift_page_json(model_id, rows, next_cursor), media_type="application/json")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for point in rows:
        writer.writerow(
            [point.window_start.isoformat(), *(getattr(point, c) for c in CSV_COLUMNS[1:])]
        )
    headers = {"Next-Cursor": next_cursor} if next_cursor else {}
    return Response(out.getvalue(), media_type="text/csv", headers=headers)


@router.get("/windows/{window_start}", summary="One window's full report (what an alert links to)")
def window_report(
    model_id: str, window_start: datetime, session: SessionDep, key: ReadKey
) -> WindowReport:
    require_model(session, model_id)
    at = utc("window_start", window_start)
    assert at is not None
    details = history.window_details(session, model_id, at)
    if details is None:
        raise HTTPException(404, f"model {model_id!r} has no window starting {at.isoformat()}")
    alerts = alert_store.alerts_of_model(session, model_id, window_start=at)
    return WindowReport.of(details, alerts)
