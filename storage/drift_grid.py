"""The drift heatmap's reads: a page of windows and the primary drift verdicts in it.

The dashboard pages on the server (a model with 200 features and 10,000 windows would be
two million cells): the latest ``limit`` windows before a point in time, and the primary
verdict of each feature in them, as plain tuples (tens of thousands per page).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from storage.models import drift_results, windows
from storage.types import require_aware


@dataclass(frozen=True)
class DriftCell:
    window_start: datetime
    feature: str
    method: str
    score: float | None
    p_value: float | None
    adjusted_p_value: float | None
    threshold: float | None
    drifted: bool | None
    status: str
    is_output: bool


def window_page(
    session: Session, model_id: str, before: datetime | None, limit: int
) -> list[datetime]:
    """Starts of the model's latest ``limit`` windows starting before ``before``, oldest first."""
    require_aware("before", before)
    query = select(windows.c.window_start).where(windows.c.model_id == model_id)
    if before is not None:
        query = query.where(windows.c.window_start < before)
    rows = session.execute(query.order_by(windows.c.window_start.desc()).limit(limit))
    return sorted(row[0] for row in rows)


def features_in(session: Session, model_id: str, window_start: datetime) -> list[str]:
    """The features with a primary verdict in one window (the output's last), by name."""
    query = select(drift_results.c.feature, drift_results.c.is_output).where(
        drift_results.c.model_id == model_id,
        drift_results.c.window_start == window_start,
        drift_results.c.is_primary.is_(true()),
    )
    found = {(bool(is_output), feature) for feature, is_output in session.execute(query)}
    return [feature for _, feature in sorted(found)]


def primary_cells(
    session: Session,
    model_id: str,
    first: datetime,
    last: datetime,
    features: Sequence[str],
) -> list[DriftCell]:
    """Primary verdicts of ``features`` in windows starting in ``[first, last]``."""
    require_aware("first", first)
    require_aware("last", last)
    c = drift_results.c
    query = select(
        c.window_start,
        c.feature,
        c.method,
        c.score,
        c.p_value,
        c.adjusted_p_value,
        c.threshold,
        c.drifted,
        c.status,
        c.is_output,
    ).where(
        c.model_id == model_id,
        c.window_start >= first,
        c.window_start <= last,
        c.is_primary.is_(true()),
        c.feature.in_(list(features)),
    )
    return [DriftCell(**row._mapping) for row in session.execute(query)]
