"""What the dashboard's pages show, read through ``storage`` and shaped for the browser.

Each page's data is one JSON document embedded in the page (no second request, no key
in the browser's scripts). Pages are bounded on the server: a model page holds at most
``columns`` windows and ``FEATURES_PER_PAGE`` features, whatever the model's history.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from detectors import default_registry
from detectors.registry import Direction
from storage import alerts as alert_store
from storage import catalog, drift_grid, history
from storage import triggers as trigger_store

FEATURES_PER_PAGE = 200
MAX_COLUMNS = 500
# Severity is drawn on [0, SEVERITY_CAP]: 1 is the threshold, beyond 3x it is all "red".
SEVERITY_CAP = 3.0

_DIRECTIONS = {method.name: method.spec.direction for method in default_registry()}


def severity(cell: drift_grid.DriftCell) -> float | None:
    """How far a verdict is from its threshold, as a ratio: >= 1 is drift.

    A score method compares score / threshold; a p-value method threshold / p-value (a
    p-value of 0.001 against 0.05 is 50 times past it). None when there is nothing to
    compare (too few rows).
    """
    if cell.threshold is None or cell.threshold <= 0:
        return None
    if _DIRECTIONS.get(cell.method) is Direction.P_VALUE_BELOW:
        p_value = cell.adjusted_p_value if cell.adjusted_p_value is not None else cell.p_value
        if p_value is None:
            return None
        return min(SEVERITY_CAP, cell.threshold / max(p_value, 1e-12))
    if cell.score is None or not math.isfinite(cell.score):
        return None
    return min(SEVERITY_CAP, max(0.0, cell.score / cell.threshold))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def models_overview(session: Session) -> list[dict[str, Any]]:
    """Every model with its latest window's status."""
    out = []
    for model in catalog.list_models(session):
        latest = history.recent_windows(session, model.model_id, 1)
        window = latest[0] if latest else None
        firing = [
            a for a in alert_store.alerts_of_model(session, model.model_id) if a.status == "firing"
        ]
        out.append(
            {
                "model_id": model.model_id,
                "latest_window": _iso(window.window_start) if window else None,
                "n_rows": window.n_rows if window else None,
                "n_drifted": window.n_drifted if window else None,
                "dataset_drift": window.dataset_drift if window else None,
                "label_coverage": window.label_coverage if window else None,
                "firing_alerts": len(firing),
                "status": _status(window, len(firing)),
            }
        )
    return out


def _status(window: Any, firing: int) -> str:
    if window is None:
        return "no data"
    if firing or window.dataset_drift:
        return "drift" if window.dataset_drift else "alerting"
    return "drifting features" if window.n_drifted else "ok"


def model_page(
    session: Session,
    model_id: str,
    *,
    before: datetime | None,
    columns: int,
    features_page: int,
) -> dict[str, Any]:
    """The heatmap, the metric series with their bands, coverage and the alert timeline of
    one page of windows (the latest ``columns`` before ``before``)."""
    starts = drift_grid.window_page(session, model_id, before, columns)
    page: dict[str, Any] = {
        "model_id": model_id,
        "windows": [_iso(s) for s in starts],
        "features": [],
        "feature_pages": 0,
        "features_page": features_page,
        "heatmap": {"z": [], "text": []},
        "metrics": {},
        "coverage": [],
        "alerts": [],
        "triggers": [],
        "older": None,
        "newer": None,
    }
    if not starts:
        return page
    first, last = starts[0], starts[-1]
    every_feature = drift_grid.features_in(session, model_id, last)
    page["feature_pages"] = max(1, math.ceil(len(every_feature) / FEATURES_PER_PAGE))
    shown = every_feature[
        features_page * FEATURES_PER_PAGE : (features_page + 1) * FEATURES_PER_PAGE
    ]
    page["features"] = shown
    page["heatmap"] = _heatmap(
        drift_grid.primary_cells(session, model_id, first, last, shown), starts, shown
    )
    in_page = set(starts)
    page["metrics"] = _metric_series(session, model_id, first, last, in_page)
    windows = [
        w for w in history.window_history(session, model_id, first, None) if w.window_start <= last
    ]
    page["coverage"] = [
        {
            "window_start": _iso(w.window_start),
            "label_coverage": w.label_coverage,
            "n_rows": w.n_rows,
        }
        for w in windows
    ]
    page["alerts"] = [
        {
            "window_start": _iso(a.window_start),
            "rule": a.rule,
            "subject": a.subject,
            "severity": a.severity,
            "status": a.status,
            "summary": a.summary,
        }
        for a in alert_store.alerts_of_model(session, model_id)
        if first <= a.window_start <= last
    ]
    page["triggers"] = [
        {"window_start": _iso(t.window_start), "reason": t.reason, "trigger_id": t.trigger_id}
        for t in trigger_store.triggers(session, model_id)
        if first <= t.window_start <= last
    ]
    older = drift_grid.window_page(session, model_id, first, 1)
    page["older"] = _iso(first) if older else None
    page["newer"] = _newer_before(session, model_id, last, columns)
    return page


def _newer_before(session: Session, model_id: str, last: datetime, columns: int) -> str | None:
    """The ``before`` of the next page towards now (None on the latest page)."""
    later = [w.window_start for w in history.window_history(session, model_id, last, None)][1:]
    if not later:
        return None
    if len(later) <= columns:
        return ""  # the latest page: no ``before``
    return _iso(later[columns])


def _heatmap(
    cells: list[drift_grid.DriftCell], starts: list[datetime], features: list[str]
) -> dict[str, Any]:
    column = {start: i for i, start in enumerate(starts)}
    row = {feature: i for i, feature in enumerate(features)}
    z: list[list[float | None]] = [[None] * len(starts) for _ in features]
    text: list[list[str]] = [[""] * len(starts) for _ in features]
    for cell in cells:
        i, j = row.get(cell.feature), column.get(cell.window_start)
        if i is None or j is None:
            continue
        z[i][j] = severity(cell)
        score = "n/a" if cell.score is None else f"{cell.score:.4g}"
        p_value = "" if cell.p_value is None else f", p={cell.p_value:.3g}"
        text[i][j] = f"{cell.method} {score}{p_value} (threshold {cell.threshold}): {cell.status}"
    return {"z": z, "text": text}


def _metric_series(
    session: Session, model_id: str, first: datetime, last: datetime, in_page: set[datetime]
) -> dict[str, list[dict[str, Any]]]:
    """Each 3-sigma series of the page (metrics, volume, drift share) with its band."""
    series: dict[str, list[dict[str, Any]]] = {}
    for verdict in history.anomaly_history(session, model_id, first, None):
        if verdict.window_start not in in_page:
            continue
        series.setdefault(verdict.series, []).append(
            {
                "window_start": _iso(verdict.window_start),
                "value": verdict.value,
                "lower": verdict.lower,
                "upper": verdict.upper,
                "mean": verdict.mean,
                "anomaly": bool(verdict.anomaly),
            }
        )
    return series


def window_page(session: Session, model_id: str, start: datetime) -> dict[str, Any] | None:
    """One window's report, every feature's severity included (None if not stored)."""
    details = history.window_details(session, model_id, start)
    if details is None:
        return None
    alerts = alert_store.alerts_of_model(session, model_id, window_start=start)
    drift = []
    for row in details.drift:
        cell = drift_grid.DriftCell(
            row.window_start,
            row.feature,
            row.method,
            row.score,
            row.p_value,
            row.adjusted_p_value,
            row.threshold,
            row.drifted,
            row.status,
            row.is_output,
        )
        drift.append({**_plain(row), "severity": severity(cell)})
    return {
        "model_id": model_id,
        "window": _plain(details.window),
        "drift": drift,
        "data_quality": [_plain(r) for r in details.data_quality],
        "metrics": [_plain(r) for r in details.metrics],
        "anomalies": [_plain(r) for r in details.anomalies],
        "alerts": [_plain(a) for a in alerts],
    }


def _plain(record: Any) -> dict[str, Any]:
    """A storage record as JSON-ready values (datetimes as ISO 8601 in UTC)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        values = dataclasses.asdict(record)
    else:
        values = dict(record)
    return {
        key: _iso(value) if isinstance(value, datetime) else value
        for key, value in values.items()
        if not key.startswith("_")
    }
