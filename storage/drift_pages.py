"""Drift history a page at a time: keyset pagination on (window start, feature, method).

A cursor is the key of the last row of a page; the next page starts after it, so a page is
one indexed range scan however deep into 10,000 windows it is (an OFFSET would read and
skip every earlier row).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from driftline.errors import InvalidInputError
from storage.models import drift_results
from storage.rows import DriftRecord
from storage.types import require_aware

PageKey = tuple[datetime, str, str]


def drift_page(
    session: Session,
    model_id: str,
    *,
    features: Sequence[str] = (),
    method: str | None = None,
    status: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    after: PageKey | None = None,
    limit: int = 1000,
) -> list[DriftRecord]:
    """Up to ``limit`` drift results of the model in ``[start, end)``, ordered by window
    start, feature and method, after the key ``after``; optionally only some features, one
    method, one status (``ok``, ``warning``, ``drift``, ``no data``)."""
    if limit < 1:
        raise InvalidInputError(f"limit must be >= 1, got {limit}")
    require_aware("start", start)
    require_aware("end", end)
    table = drift_results
    query = select(table).where(table.c.model_id == model_id)
    if features:
        query = query.where(table.c.feature.in_(list(features)))
    if method is not None:
        query = query.where(table.c.method == method)
    if status is not None:
        query = query.where(table.c.status == status)
    if start is not None:
        query = query.where(table.c.window_start >= start)
    if end is not None:
        query = query.where(table.c.window_start < end)
    if after is not None:
        require_aware("cursor", after[0])
        key = tuple_(table.c.window_start, table.c.feature, table.c.method)
        query = query.where(key > tuple_(*after))
    query = query.order_by(table.c.window_start, table.c.feature, table.c.method).limit(limit)
    return [DriftRecord(**row._mapping) for row in session.execute(query)]
