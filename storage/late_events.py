"""Counting events that came after their window's allowed lateness (``windows.n_late``).

Two ways, for two kinds of caller: :func:`set_late_events` stores a running total the caller
keeps (idempotent: a replay stores the same total), :func:`add_late_events` adds a batch's
count (a replay counts it again). Either creates a placeholder window if the window has no
row yet, so the count is not lost; its results fill the placeholder in later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.orm import Session

from driftline.errors import InvalidInputError
from storage.catalog import require_model
from storage.models import windows
from storage.types import require_aware, utcnow
from storage.upsert import Excluded, UpdateBuilder, upsert
from storage.window_keys import WINDOW_KEY, placeholder_window


def _write(
    session: Session,
    model_id: str,
    window_start: datetime,
    count: int,
    window_end: datetime | None,
    n_late: UpdateBuilder,
) -> None:
    require_aware("window_start", window_start)
    require_aware("window_end", window_end)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidInputError(f"the number of late events must be an integer >= 0, got {count!r}")
    require_model(session, model_id)
    row = placeholder_window(model_id, window_start, utcnow(), window_end) | {"n_late": count}

    def update(table: Table, excluded: Excluded) -> dict[str, Any]:
        return {
            **n_late(table, excluded),
            "window_end": func.coalesce(table.c.window_end, excluded.window_end),
            "updated_at": excluded.updated_at,
        }

    upsert(session, windows, [row], WINDOW_KEY, update=update)


def set_late_events(
    session: Session,
    model_id: str,
    window_start: datetime,
    total: int,
    *,
    window_end: datetime | None = None,
) -> None:
    """Set the window's late-event count to ``total``; ``window_end`` fills a placeholder."""
    _write(
        session,
        model_id,
        window_start,
        total,
        window_end,
        lambda table, excluded: {"n_late": excluded.n_late},
    )


def add_late_events(
    session: Session,
    model_id: str,
    window_start: datetime,
    count: int,
    *,
    window_end: datetime | None = None,
) -> None:
    """Add ``count`` to the window's late-event count; ``window_end`` fills a placeholder."""
    if count == 0:
        return
    _write(
        session,
        model_id,
        window_start,
        count,
        window_end,
        lambda table, excluded: {"n_late": table.c.n_late + excluded.n_late},
    )
