"""Event time: what a timestamp on the wire may look like and how it becomes a UTC datetime.

Rules (the same for every contract):

- An **ISO 8601 string**, anything :meth:`datetime.datetime.fromisoformat` reads on Python 3.11
  (``2024-05-01T12:00:00Z``, ``…+02:00``, ``…T12:00:00.250``, basic ``20240501T120000Z``, a
  bare date meaning midnight), and RFC 3339's lower-case ``t`` and ``z``. Digits beyond the
  microsecond are cut. A string **without an offset is UTC**: producers that log
  local time without an offset must add one; guessing the producer's zone is impossible.
- A JSON **number of epoch seconds** (int or float; fractions kept to the microsecond).
  Epoch milliseconds are rejected with a hint, not guessed at: 1.7e12 seconds is year 55 000.
- **Rejected**: bools (``true`` is 1 in Python, never a time), numeric strings (``"1714564800"``
  is neither ISO 8601 nor a number), NaN and infinities, and anything before
  1970-01-01T00:00:00Z or at/after 2200-01-01T00:00:00Z (a clock or unit bug, and a window
  computed from it would be years away from every other).

The result is always timezone-aware with ``tzinfo=datetime.UTC`` and serializes as ISO 8601
with ``Z``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from driftline.errors import InvalidEventError
from schemas.values import INT_MAX, INT_MIN, INTEGER_OUT_OF_RANGE

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""Earliest accepted event time (inclusive)."""
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""First event time no longer accepted (exclusive)."""
_LATEST_EPOCH = LATEST.timestamp()

TIMESTAMP_JSON_SCHEMA: dict[str, Any] = {
    "description": (
        "Event time: an ISO 8601 string (no offset means UTC) or epoch seconds, "
        "from 1970-01-01T00:00:00Z up to, not including, 2200-01-01T00:00:00Z."
    ),
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "number", "minimum": 0, "exclusiveMaximum": _LATEST_EPOCH},
    ],
}


def _timestamp_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("timestamp", message)


def _from_epoch(value: float) -> datetime:
    if isinstance(value, float) and not math.isfinite(value):
        raise _timestamp_error("epoch seconds must be a finite number")
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        raise _timestamp_error(INTEGER_OUT_OF_RANGE)
    if value < 0:
        raise _timestamp_error("must not be before 1970-01-01T00:00:00Z")
    if value >= _LATEST_EPOCH:
        hint = " (epoch milliseconds? send seconds)" if value < _LATEST_EPOCH * 1000 else ""
        raise _timestamp_error(f"must be before 2200-01-01T00:00:00Z{hint}")
    return datetime.fromtimestamp(value, UTC)


def _in_range(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Compared before converting: an offset can carry a moment past year 1 or 9999, where
    # astimezone raises OverflowError; aware comparisons do not convert.
    if moment < EARLIEST:
        raise _timestamp_error("must not be before 1970-01-01T00:00:00Z")
    if moment >= LATEST:
        raise _timestamp_error("must be before 2200-01-01T00:00:00Z")
    return moment.astimezone(UTC)


def _from_lower_case_iso(value: str) -> datetime:
    # RFC 3339 (JSON Schema's "date-time") allows "t" and "z"; Python 3.11 does not.
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:
        raise _timestamp_error("not an ISO 8601 date-time string") from None


def _validate_timestamp(value: object) -> datetime:
    # One Python call per timestamp: cheaper than pydantic's datetime plus before/after hooks,
    # and it lets us refuse what pydantic's lax mode would guess at (bools, milliseconds).
    if isinstance(value, datetime):
        return _in_range(value)
    if isinstance(value, bool):
        raise _timestamp_error("must be an ISO 8601 string or epoch seconds, not a bool")
    if isinstance(value, int | float):
        return _from_epoch(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = _from_lower_case_iso(value)
        return _in_range(parsed)
    raise _timestamp_error("must be an ISO 8601 string or epoch seconds")


class _TimestampSchema:
    """Annotated marker: validate with the rules above, serialize as an ISO 8601 string.

    Built by hand because pydantic's ``PlainValidator`` on ``datetime`` warns on every JSON
    dump (it re-checks the serialized string against the datetime schema).
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_timestamp, serialization=core_schema.simple_ser_schema("datetime")
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if handler.mode == "validation":
            return dict(TIMESTAMP_JSON_SCHEMA)
        return {"type": "string", "format": "date-time"}


Timestamp = Annotated[datetime, _TimestampSchema()]
"""A field type for event times; see the module docstring for the rules."""


def to_utc_datetime(value: datetime | str | float) -> datetime:
    """Read a timestamp by the contract's rules, outside a model.

    Raises :class:`~driftline.errors.InvalidEventError` when it breaks them.

    Examples
    --------
    >>> to_utc_datetime("2024-05-01T14:00:00+02:00")
    datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    >>> to_utc_datetime(1714564800) == to_utc_datetime("2024-05-01T12:00:00")
    True
    >>> to_utc_datetime(1714564800000)
    Traceback (most recent call last):
    ...
    driftline.errors.InvalidEventError: timestamp: must be before 2200-01-01T00:00:00Z (epoch milliseconds? send seconds)
    """  # noqa: E501
    try:
        return _validate_timestamp(value)
    except PydanticCustomError as exc:
        raise InvalidEventError(f"timestamp: {exc.message()}") from None


def to_epoch_seconds(moment: datetime) -> float:
    """Return ``moment`` as seconds since the epoch; a naive datetime counts as UTC.

    Examples
    --------
    >>> to_epoch_seconds(datetime(2024, 5, 1, 12, tzinfo=UTC))
    1714564800.0
    >>> to_epoch_seconds(datetime(2024, 5, 1, 12))  # naive: UTC, as on the wire
    1714564800.0
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
