"""Column types that store the same values on SQLite and PostgreSQL.

- :class:`UTCDateTime`: timezone-aware UTC in and out. SQLite has no time zones, so the
  value is stored as naive UTC text and UTC is attached again on read; PostgreSQL stores
  ``timestamptz`` and hands back the session's zone, which is converted to UTC. A naive
  datetime is refused: it cannot be told apart from local time.
- :class:`PlainFloat`: NaN is stored as NULL. SQLite turns NaN into NULL on its own and
  PostgreSQL keeps it, so without this the two databases would answer differently; for us
  both mean "no value".
- :class:`PlainInt`, :class:`PlainBool`: accept numpy scalars (``np.int64``, ``np.bool_``),
  which the statistics hand out and psycopg cannot adapt.
"""

from __future__ import annotations

import math
import operator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Double, Integer
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from driftline.errors import InvalidInputError


def require_aware(name: str, value: datetime | None) -> None:
    """Raise InvalidInputError unless ``value`` is None or a timezone-aware datetime."""
    if value is None:
        return
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            f"{name} must be timezone-aware (e.g. datetime(..., tzinfo=UTC)), got {value!r}"
        )


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and read back timezone-aware UTC on every database."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        require_aware("timestamp", value)
        utc = value.astimezone(UTC)
        # SQLite's DATETIME text format has no offset: store naive UTC, so text order is time order.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # PostgreSQL sessions are in UTC
            return value
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class PlainFloat(TypeDecorator[float]):
    """A double-precision float; NaN and None are both stored as NULL."""

    impl = Double
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> float | None:
        if value is None:
            return None
        number = float(value)
        return None if math.isnan(number) else number


class PlainInt(TypeDecorator[int]):
    """An integer that also accepts numpy integers (anything with ``__index__``)."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else operator.index(value)


class PlainBool(TypeDecorator[bool]):
    """A boolean that also accepts ``np.bool_``."""

    impl = Boolean
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bool | None:
        return None if value is None else bool(value)
