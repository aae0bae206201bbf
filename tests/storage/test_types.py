"""Tests for storage.types through a real round trip: the same values on both databases."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import InvalidInputError
from storage.repository import (
    drift_history,
    window_details,
    window_history,
    write_window_results,
)
from tests.storage.helpers import T0, anomaly, data_quality, drift, window

PARIS_SUMMER = timezone(timedelta(hours=2))
KOLKATA = timezone(timedelta(hours=5, minutes=30))


def test_timestamps_come_back_timezone_aware_utc(
    sessions: sessionmaker[Session], model: str
) -> None:
    start = datetime(2025, 7, 1, 14, 0, 0, 123456, tzinfo=PARIS_SUMMER)
    finalized = datetime(2025, 7, 1, 15, 5, tzinfo=KOLKATA)
    row = window(
        model, window_start=start, window_end=start + timedelta(minutes=5), finalized_at=finalized
    )
    with sessions.begin() as session:
        write_window_results(session, row)
    with sessions() as session:
        (stored,) = window_history(session, model, None, None)
    assert stored.window_start == start  # the same instant...
    assert stored.window_start.tzinfo is UTC  # ...in UTC
    assert stored.window_start.hour == 12
    assert stored.window_start.microsecond == 123456
    assert stored.finalized_at == finalized
    assert stored.finalized_at is not None and stored.finalized_at.tzinfo is UTC
    assert stored.updated_at.tzinfo is UTC
    assert abs(datetime.now(UTC) - stored.updated_at) < timedelta(minutes=5)


def test_windows_sort_by_instant_whatever_the_offset(
    sessions: sessionmaker[Session], model: str
) -> None:
    # 10:00+05:30 is 04:30Z, before 06:00Z; as text in the writer's zone it would sort after.
    early = datetime(2025, 1, 1, 10, 0, tzinfo=KOLKATA)
    late = datetime(2025, 1, 1, 6, 0, tzinfo=UTC)
    with sessions.begin() as session:
        write_window_results(session, window(model, window_start=late))
        write_window_results(session, window(model, window_start=early))
    with sessions() as session:
        starts = [w.window_start for w in window_history(session, model, None, None)]
        assert starts == [early, late]
        # A query bound in another zone selects by instant too.
        between = window_history(session, model, early, late.astimezone(KOLKATA))
        assert [w.window_start for w in between] == [early]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="window_start must be timezone-aware"):
        window("m", window_start=datetime(2025, 1, 1))


def test_naive_query_bounds_are_refused(sessions: sessionmaker[Session], model: str) -> None:
    with sessions() as session, pytest.raises(InvalidInputError, match="start"):
        drift_history(session, model, "age", datetime(2025, 1, 1), None)


def test_nan_is_stored_as_none_on_every_database(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        write_window_results(
            session,
            window(model, share_drifted=math.nan),
            drift=[drift(score=math.nan, p_value=0.5)],
        )
    with sessions() as session:
        (stored,) = drift_history(session, model, "age", None, None)
        (stored_window,) = window_history(session, model, None, None)
    assert stored.score is None
    assert stored.p_value == 0.5
    assert stored_window.share_drifted is None


def test_infinity_round_trips(sessions: sessionmaker[Session], model: str) -> None:
    with sessions.begin() as session:
        write_window_results(session, window(model), drift=[drift(score=math.inf)])
    with sessions() as session:
        (stored,) = drift_history(session, model, "age", None, None)
    assert stored.score == math.inf


def test_numpy_scalars_are_accepted(sessions: sessionmaker[Session], model: str) -> None:
    row = window(
        model,
        n_rows=np.int64(500),
        share_drifted=np.float32(0.25),
        dataset_drift=np.bool_(True),
    )
    with sessions.begin() as session:
        write_window_results(
            session,
            row,
            drift=[drift(score=np.float64(0.3), drifted=np.bool_(False))],
            data_quality=[data_quality(n_valid=np.int32(7))],
            anomalies=[anomaly(n_history=np.int64(4), anomaly=np.bool_(True))],
        )
    with sessions() as session:
        details = window_details(session, model, T0)
    assert details is not None
    assert details.window.n_rows == 500 and type(details.window.n_rows) is int
    assert details.window.share_drifted == 0.25
    assert details.window.dataset_drift is True
    assert details.drift[0].drifted is False and details.drift[0].score == 0.3
    assert details.data_quality[0].n_valid == 7
    assert details.anomalies[0].anomaly is True and details.anomalies[0].n_history == 4
