"""Reading results back: history over a time range, recent windows, one window in full.

Time ranges are half-open on the window start, ``start <= window_start < end``, so
consecutive ranges never count a window twice; ``None`` leaves a side open. Results come
oldest first (by window start), as plain dataclasses detached from any session.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, Table, select, true
from sqlalchemy.orm import Session

from driftline.errors import InvalidInputError
from storage.models import anomalies, data_quality_results, drift_results, quality_metrics, windows
from storage.rows import (
    AnomalyRecord,
    DataQualityRecord,
    DriftRecord,
    MetricRecord,
    WindowDetails,
    WindowRecord,
)
from storage.types import require_aware


def _in_range(
    table: Table, model_id: str, start: datetime | None, end: datetime | None
) -> list[ColumnElement[bool]]:
    require_aware("start", start)
    require_aware("end", end)
    conditions = [table.c.model_id == model_id]
    if start is not None:
        conditions.append(table.c.window_start >= start)
    if end is not None:
        conditions.append(table.c.window_start < end)
    return conditions


def _select(table: Table, *conditions: ColumnElement[bool]) -> Select[tuple[object, ...]]:
    return select(*table.columns).where(*conditions)


def window_history(
    session: Session, model_id: str, start: datetime | None, end: datetime | None
) -> list[WindowRecord]:
    """The model's windows starting in ``[start, end)``."""
    query = _select(windows, *_in_range(windows, model_id, start, end))
    rows = session.execute(query.order_by(windows.c.window_start))
    return [WindowRecord(**row._mapping) for row in rows]


def recent_windows(session: Session, model_id: str, limit: int) -> list[WindowRecord]:
    """The model's ``limit`` latest windows, newest first."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError(f"limit must be an integer >= 1, got {limit!r}")
    query = _select(windows, windows.c.model_id == model_id)
    rows = session.execute(query.order_by(windows.c.window_start.desc()).limit(limit))
    return [WindowRecord(**row._mapping) for row in rows]


def drift_history(
    session: Session,
    model_id: str,
    feature: str,
    start: datetime | None,
    end: datetime | None,
    method: str | None = None,
) -> list[DriftRecord]:
    """Drift results of one feature (every method, or only ``method``), by window start."""
    conditions = _in_range(drift_results, model_id, start, end)
    conditions.append(drift_results.c.feature == feature)
    if method is not None:
        conditions.append(drift_results.c.method == method)
    query = _select(drift_results, *conditions).order_by(
        drift_results.c.window_start, drift_results.c.method
    )
    return [DriftRecord(**row._mapping) for row in session.execute(query)]


def data_quality_history(
    session: Session, model_id: str, feature: str, start: datetime | None, end: datetime | None
) -> list[DataQualityRecord]:
    """Data-quality signals of one feature, by window start."""
    conditions = _in_range(data_quality_results, model_id, start, end)
    conditions.append(data_quality_results.c.feature == feature)
    query = _select(data_quality_results, *conditions)
    rows = session.execute(query.order_by(data_quality_results.c.window_start))
    return [DataQualityRecord(**row._mapping) for row in rows]


def metric_history(
    session: Session, model_id: str, metric: str, start: datetime | None, end: datetime | None
) -> list[MetricRecord]:
    """One metric's latest revision per window, by window start."""
    conditions = _in_range(quality_metrics, model_id, start, end)
    conditions.append(quality_metrics.c.metric == metric)
    query = _select(quality_metrics, *conditions).order_by(quality_metrics.c.window_start)
    return [MetricRecord(**row._mapping) for row in session.execute(query)]


def metrics_history(
    session: Session,
    model_id: str,
    start: datetime | None,
    end: datetime | None,
    metric: str | None = None,
) -> list[MetricRecord]:
    """Every metric's latest revision per window (or only ``metric``), by window start, then
    metric."""
    conditions = _in_range(quality_metrics, model_id, start, end)
    if metric is not None:
        conditions.append(quality_metrics.c.metric == metric)
    query = _select(quality_metrics, *conditions).order_by(
        quality_metrics.c.window_start, quality_metrics.c.metric
    )
    return [MetricRecord(**row._mapping) for row in session.execute(query)]


def anomaly_history(
    session: Session,
    model_id: str,
    start: datetime | None,
    end: datetime | None,
    only_anomalies: bool = False,
    series: str | None = None,
) -> list[AnomalyRecord]:
    """3-sigma verdicts by window start, then series; optionally only the anomalies, or
    only one ``series``."""
    conditions = _in_range(anomalies, model_id, start, end)
    if only_anomalies:
        conditions.append(anomalies.c.anomaly.is_(true()))
    if series is not None:
        conditions.append(anomalies.c.series == series)
    query = _select(anomalies, *conditions).order_by(anomalies.c.window_start, anomalies.c.series)
    return [AnomalyRecord(**row._mapping) for row in session.execute(query)]


def window_details(session: Session, model_id: str, window_start: datetime) -> WindowDetails | None:
    """The window and all its results, or None if it is not stored."""
    require_aware("window_start", window_start)

    def of_window(table: Table) -> Select[tuple[object, ...]]:
        return _select(table, table.c.model_id == model_id, table.c.window_start == window_start)

    window = session.execute(of_window(windows)).first()
    if window is None:
        return None
    # .all(): the driver hands over every row at once (iterating fetches them one by one).
    drift = session.execute(
        of_window(drift_results).order_by(drift_results.c.feature, drift_results.c.method)
    ).all()
    quality = session.execute(of_window(data_quality_results).order_by("feature")).all()
    metrics = session.execute(of_window(quality_metrics).order_by("metric")).all()
    verdicts = session.execute(of_window(anomalies).order_by("series")).all()
    return WindowDetails(
        window=WindowRecord(**window._asdict()),
        drift=[DriftRecord(**row._asdict()) for row in drift],
        data_quality=[DataQualityRecord(**row._asdict()) for row in quality],
        metrics=[MetricRecord(**row._asdict()) for row in metrics],
        anomalies=[AnomalyRecord(**row._asdict()) for row in verdicts],
    )
