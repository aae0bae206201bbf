"""What the writers of a window share: its key, its placeholder row, batch checks."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.orm import Session

from driftline.errors import InvalidInputError
from storage.models import windows
from storage.upsert import Excluded, insert_if_absent

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

WINDOW_KEY = ("model_id", "window_start")


def row_values(row: DataclassInstance) -> dict[str, Any]:
    """A dataclass row's fields (``dataclasses.asdict`` would deep-copy them)."""
    return {item.name: getattr(row, item.name) for item in fields(row)}


def require_unique(rows: Iterable[object], key: Callable[[Any], Hashable], what: str) -> None:
    """Raise InvalidInputError if two rows share a key: one statement cannot upsert both."""
    seen: set[Hashable] = set()
    for row in rows:
        value = key(row)
        if value in seen:
            raise InvalidInputError(f"{what} {value!r} appears twice in one window")
        seen.add(value)


def of_window(table: Table, model_id: str, window_start: datetime) -> ColumnElement[bool]:
    """The condition selecting one window's rows of ``table``."""
    return (table.c.model_id == model_id) & (table.c.window_start == window_start)


def placeholder_window(
    model_id: str, window_start: datetime, now: datetime, window_end: datetime | None = None
) -> dict[str, Any]:
    """A window row with nothing counted yet, to hang late events or labels on until the
    window's results arrive (``finalized_at`` stays NULL until then)."""
    return {
        "model_id": model_id,
        "window_start": window_start,
        "window_end": window_end,
        "n_rows": 0,
        "n_late": 0,
        "n_invalid": 0,
        "n_drifted": 0,
        "n_labeled": 0,
        "quality_revision": 0,
        "finalized_at": None,
        "updated_at": now,
    }


def ensure_window(session: Session, model_id: str, window_start: datetime, now: datetime) -> None:
    """Create a placeholder row for the window unless it has a row."""
    insert_if_absent(session, windows, placeholder_window(model_id, window_start, now), WINDOW_KEY)


def not_older_revision(table: Table, excluded: Excluded) -> ColumnElement[bool]:
    """Upsert condition: replace a stored row only by one of the same or a higher revision."""
    return table.c.revision <= excluded.revision
