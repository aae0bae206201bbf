"""Drift history a page at a time: keyset pagination on (window start, feature, method).

A cursor is the key of the last row of a page; the next page starts after it, so a page is
one indexed range scan however deep into 10,000 windows it is (an OFFSET would read and
skip every earlier row).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from driftline.errors import InvalidInputError
from storage.models import DRIFT_POINT_COLUMNS, drift_results
from storage.types import require_aware

PageKey = tuple[datetime, str, str]


class DriftPoint(NamedTuple):
    """One row of a drift history page: the key and what the index carries (a tuple: pages
    run to thousands of rows, and a tuple is what the database driver hands out)."""

    window_start: datetime
    feature: str
    method: str
    score: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool | None
    status: str


_KEY_COLUMNS = ("window_start", "feature", "method")
assert DriftPoint._fields == _KEY_COLUMNS + DRIFT_POINT_COLUMNS


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
) -> list[DriftPoint]:
    """Up to ``limit`` drift results of the model in ``[start, end)``, ordered by window
    start, feature and method, after the key ``after``; optionally only some features, one
    method, one status (``ok``, ``warning``, ``drift``, ``no data``)."""
    if limit < 1:
        raise InvalidInputError(f"limit must be >= 1, got {limit}")
    require_aware("start", start)
    require_aware("end", end)
    table = drift_results
    query = select(*(table.c[name] for name in DriftPoint._fields))
    query = query.where(table.c.model_id == model_id)
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
    return [DriftPoint._make(row) for row in session.execute(query).all()]
