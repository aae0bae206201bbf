"""The timestamp rules shared by every contract."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.errors import InvalidEventError
from schemas import to_epoch_seconds, to_utc_datetime
from schemas.timestamps import EARLIEST, LATEST

PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, EARLIEST),
        (0.0, EARLIEST),
        (1714564800, datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (1714564800.000001, datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=UTC)),
        (LATEST.timestamp() - 1, LATEST - timedelta(seconds=1)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01t12:00:00z", datetime(2024, 5, 1, 12, tzinfo=UTC)),  # RFC 3339 allows it
        ("2024-05-01T12:00:00.1234567Z", datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)),
        ("20240501T120000Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01 12:00:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00-05:00", datetime(2024, 5, 1, 17, tzinfo=UTC)),
        (datetime(2024, 5, 1, 12), datetime(2024, 5, 1, 12, tzinfo=UTC)),
        (datetime(2024, 5, 1, 14, tzinfo=PLUS_TWO), datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ],
)
def test_accepted_forms(value: datetime | str | float, expected: datetime) -> None:
    result = to_utc_datetime(value)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "not a bool"),
        (False, "not a bool"),
        (-0.000001, "must not be before 1970"),
        (LATEST.timestamp(), "must be before 2200"),
        (1714564800123, "epoch milliseconds?"),
        (1714564800123456, "must be before 2200-01-01T00:00:00Z"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        ("1714564800", "not an ISO 8601"),
        ("2024-13-01T00:00:00Z", "not an ISO 8601"),
        ("1969-12-31T23:59:59Z", "must not be before 1970"),
        ("1970-01-01T01:00:00+02:00", "must not be before 1970"),  # 23:00 UTC the day before
        ("2199-12-31T23:00:00-02:00", "must be before 2200"),  # 01:00 UTC in 2200
        (datetime(1960, 1, 1), "must not be before 1970"),
        # The offset carries these past year 1 or 9999, beyond what a datetime holds.
        ("0001-01-01T00:30:00+01:00", "must not be before 1970"),
        ("0001-01-01T00:00:00+23:59", "must not be before 1970"),
        ("9999-12-31T23:30:00-01:00", "must be before 2200"),
        ("9999-12-31T23:59:59.9999999-00:01", "must be before 2200"),
        (datetime(1, 1, 1, tzinfo=PLUS_TWO), "must not be before 1970"),
        (-math.inf, "finite"),
        (-(10**30), "integer out of range"),
        (None, "must be an ISO 8601 string or epoch seconds"),
        (b"2024-05-01", "must be an ISO 8601 string or epoch seconds"),
    ],
)
def test_rejected_forms(value: object, reason: str) -> None:
    with pytest.raises(InvalidEventError, match=r"^timestamp: .*" + reason.replace("?", r"\?")):
        to_utc_datetime(value)  # type: ignore[arg-type]


def test_epoch_seconds_of_naive_and_aware_agree() -> None:
    aware = datetime(2024, 5, 1, 14, tzinfo=PLUS_TWO)
    assert to_epoch_seconds(aware) == to_epoch_seconds(datetime(2024, 5, 1, 12)) == 1714564800.0


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31)))
def test_epoch_seconds_round_trip(moment: datetime) -> None:
    aware = moment.replace(tzinfo=UTC)
    assert to_utc_datetime(to_epoch_seconds(aware)) == aware
    assert to_utc_datetime(aware.isoformat()) == aware
    assert to_utc_datetime(moment.isoformat()) == aware  # naive ISO: UTC


# Fixed offsets, as on the wire (a zone's fold makes aware comparisons inexact), or none.
offsets = st.none() | st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23)),
)
within_a_day = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1))
moments = (
    st.datetimes(timezones=offsets)
    # Year 1 and 9999, where an offset carries the moment beyond what a datetime holds.
    | st.builds(lambda d, tz: (datetime.min + d).replace(tzinfo=tz), within_a_day, offsets)
    | st.builds(lambda d, tz: (datetime.max - d).replace(tzinfo=tz), within_a_day, offsets)
)


@given(moments, st.booleans())
def test_any_moment_is_accepted_or_rejected_never_crashes(moment: datetime, as_text: bool) -> None:
    value = moment.isoformat() if as_text else moment
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        result = to_utc_datetime(value)
    except InvalidEventError:
        assert not EARLIEST <= aware < LATEST
    else:
        assert result == aware and result.tzinfo is UTC
