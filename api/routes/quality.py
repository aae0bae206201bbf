"""Model quality over time: one metric's history with its 3-sigma control limits, the
anomalies the 3-sigma rule flagged, and the retraining triggers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ReadKey, SessionDep
from api.errors import ERROR_RESPONSES
from api.params import require_model, utc
from api.schemas import rows_as
from storage import history
from storage import triggers as trigger_store

router = APIRouter(prefix="/models/{model_id}", tags=["quality"], responses=ERROR_RESPONSES)

Start = Annotated[datetime | None, Query(description="ISO 8601 with an offset; inclusive")]
End = Annotated[datetime | None, Query(description="ISO 8601 with an offset; exclusive")]


class MetricPoint(BaseModel):
    window_start: datetime
    value: float | None
    revision: int
    n_labeled: int | None
    label_coverage: float | None
    mean: float | None = None
    lower: float | None = None
    upper: float | None = None
    anomaly: bool | None = None


class MetricSeries(BaseModel):
    model_id: str
    metric: str
    items: list[MetricPoint]


class AnomalyPoint(BaseModel):
    window_start: datetime
    series: str
    value: float | None
    mean: float | None
    std: float | None
    lower: float | None
    upper: float | None
    n_history: int
    anomaly: bool | None


class AnomalyList(BaseModel):
    model_id: str
    items: list[AnomalyPoint]


class Trigger(BaseModel):
    trigger_id: str
    model_version: str | None
    reason: str
    evidence: dict[str, Any]
    window_start: datetime
    window_end: datetime
    data_start: datetime | None
    data_end: datetime | None
    created_at: datetime
    published_at: datetime | None


class TriggerList(BaseModel):
    model_id: str
    items: list[Trigger]


@router.get("/metrics/{metric}", summary="A metric's history with its 3-sigma control limits")
def metric(
    model_id: str,
    metric: str,
    session: SessionDep,
    key: ReadKey,
    start: Start = None,
    end: End = None,
) -> MetricSeries:
    require_model(session, model_id)
    since, until = utc("start", start), utc("end", end)
    rows = history.metric_history(session, model_id, metric, since, until)
    limits = {
        a.window_start: a
        for a in history.anomaly_history(session, model_id, since, until, series=f"metric:{metric}")
    }
    items = []
    for row in rows:
        point = MetricPoint.model_validate(row, from_attributes=True)
        verdict = limits.get(row.window_start)
        if verdict is not None:
            band = {n: getattr(verdict, n) for n in ("mean", "lower", "upper", "anomaly")}
            point = point.model_copy(update=band)
        items.append(point)
    return MetricSeries(model_id=model_id, metric=metric, items=items)


@router.get("/anomalies", summary="3-sigma verdicts: only the anomalies, by default")
def anomalies(
    model_id: str,
    session: SessionDep,
    key: ReadKey,
    only: Annotated[bool, Query(description="false: every verdict, not only anomalies")] = True,
    series: Annotated[str | None, Query(description="e.g. metric:accuracy")] = None,
    start: Start = None,
    end: End = None,
) -> AnomalyList:
    require_model(session, model_id)
    rows = history.anomaly_history(
        session,
        model_id,
        utc("start", start),
        utc("end", end),
        only_anomalies=only,
        series=series,
    )
    return AnomalyList(
        model_id=model_id,
        items=rows_as(AnomalyPoint, rows),
    )


@router.get("/triggers", summary="The model's retraining triggers, oldest first")
def triggers(model_id: str, session: SessionDep, key: ReadKey) -> TriggerList:
    require_model(session, model_id)
    found = trigger_store.triggers(session, model_id)
    return TriggerList(model_id=model_id, items=rows_as(Trigger, found))
