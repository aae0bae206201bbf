"""``INSERT … ON CONFLICT`` for SQLite and PostgreSQL behind one function.

Both databases speak the same ``ON CONFLICT (key) DO UPDATE SET … WHERE …`` clause, but
SQLAlchemy builds it from a dialect-specific ``insert``; :func:`upsert` picks the one that
matches the session's database, so the repository is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.elements import KeyedColumnElement

from driftline.errors import ConfigurationError

Excluded = ReadOnlyColumnCollection[str, KeyedColumnElement[Any]]
"""The ``excluded`` pseudo-table: the values the conflicting row would have had."""

UpdateBuilder = Callable[[Table, Excluded], Mapping[str, Any]]
ConditionBuilder = Callable[[Table, Excluded], ColumnElement[bool]]


def _insert(session: Session, table: Table) -> sqlite.Insert | postgresql.Insert:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise ConfigurationError(f"upserts need SQLite or PostgreSQL, not {dialect!r}")


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key_columns: Sequence[str],
    *,
    update: UpdateBuilder | None = None,
    where: ConditionBuilder | None = None,
) -> None:
    """Insert ``rows`` into ``table``; a row whose key exists updates the stored one instead.

    Parameters
    ----------
    session
        The session whose transaction the statement joins; nothing is committed here.
    table
        The target table.
    rows
        Column values, all rows with the same columns. Keys must be unique within the batch
        (PostgreSQL refuses to update one row twice in a statement).
    key_columns
        The columns of the primary key or unique constraint that identifies a row.
    update
        ``(table, excluded) -> {column: expression}`` for a conflicting row. By default every
        given non-key column takes the new value (``excluded.column``); refer to
        ``table.c.column`` to use the stored one, e.g. to increment a counter.
    where
        ``(table, excluded) -> condition``: update only conflicting rows where it holds; the
        others keep their stored values.
    """
    if not rows:
        return
    statement = _insert(session, table)
    excluded = statement.excluded
    if update is None:
        values: Mapping[str, Any] = {
            name: excluded[name] for name in rows[0] if name not in key_columns
        }
    else:
        values = update(table, excluded)
    if not values:
        statement = statement.on_conflict_do_nothing(index_elements=list(key_columns))
    else:
        statement = statement.on_conflict_do_update(
            index_elements=list(key_columns),
            set_=dict(values),
            where=None if where is None else where(table, excluded),
        )
    session.execute(statement, [dict(row) for row in rows])


def insert_if_absent(
    session: Session, table: Table, row: Mapping[str, Any], key_columns: Sequence[str]
) -> bool:
    """Insert ``row`` unless its key exists; return whether it was inserted."""
    statement = _insert(session, table).on_conflict_do_nothing(index_elements=list(key_columns))
    # RETURNING, not rowcount: SQLAlchemy does not report an INSERT's rowcount everywhere.
    returning = statement.values(dict(row)).returning(table.c[key_columns[0]])
    return session.execute(returning).first() is not None
