"""Tests for storage.history: filters by model, feature, metric and time; ordering."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import InvalidInputError
from storage.repository import (
    anomaly_history,
    data_quality_history,
    drift_history,
    metric_history,
    recent_windows,
    upsert_model,
    window_details,
    window_history,
    write_window_results,
)
from tests.storage.helpers import T0, anomaly, at, data_quality, drift, metric, window

OTHER = "fraud"


@pytest.fixture
def filled(sessions: sessionmaker[Session], model: str) -> str:
    """Six hourly windows of two models, written newest first (so order comes from SQL).

    Scores encode where they came from: window + 0.1 for "plan", + 0.01 for "ks", + 100 for
    the other model. Window 3 of `model` has a volume anomaly.
    """
    with sessions.begin() as session:
        upsert_model(session, OTHER, {})
        for model_id, offset in ((model, 0.0), (OTHER, 100.0)):
            for hour in reversed(range(6)):
                base = hour + offset
                write_window_results(
                    session,
                    window(model_id, hour, n_rows=hour),
                    drift=[
                        drift(feature, method, score=base + f_off + m_off)
                        for feature, f_off in (("age", 0.0), ("plan", 0.1))
                        for method, m_off in (("psi", 0.0), ("ks", 0.01))
                    ],
                    data_quality=[data_quality("age", mean=base), data_quality("plan")],
                    metrics=[metric("accuracy", base), metric("volume", 1000.0)],
                    anomalies=[
                        anomaly("volume", value=base, anomaly=hour == 3 and model_id == model),
                        anomaly("drift:age", value=base, anomaly=None, reason="missing value"),
                    ],
                )
    return model


def test_drift_history_of_one_feature_in_a_half_open_range(
    sessions: sessionmaker[Session], filled: str
) -> None:
    with sessions() as session:
        rows = drift_history(session, filled, "age", at(1), at(4))
    assert [(r.window_start, r.method, r.score) for r in rows] == [
        (at(1), "ks", 1.01),
        (at(1), "psi", 1.0),
        (at(2), "ks", 2.01),
        (at(2), "psi", 2.0),
        (at(3), "ks", 3.01),
        (at(3), "psi", 3.0),
    ]
    assert {(r.model_id, r.feature) for r in rows} == {(filled, "age")}


def test_drift_history_of_one_method_and_open_ranges(
    sessions: sessionmaker[Session], filled: str
) -> None:
    with sessions() as session:
        psi = drift_history(session, filled, "plan", None, None, method="psi")
        from_3 = drift_history(session, filled, "plan", at(3), None, method="psi")
        to_2 = drift_history(session, filled, "plan", None, at(2), method="psi")
        unknown = drift_history(session, filled, "income", None, None)
    assert [r.score for r in psi] == [0.1, 1.1, 2.1, 3.1, 4.1, 5.1]
    assert [r.window_start for r in from_3] == [at(3), at(4), at(5)]
    assert [r.window_start for r in to_2] == [at(0), at(1)]
    assert unknown == []


def test_window_history_and_recent_windows(sessions: sessionmaker[Session], filled: str) -> None:
    with sessions() as session:
        history = window_history(session, filled, at(2), at(5))
        recent = recent_windows(session, filled, 2)
        other = recent_windows(session, OTHER, 100)
    assert [w.window_start for w in history] == [at(2), at(3), at(4)]
    assert [w.n_rows for w in history] == [2, 3, 4]
    assert [w.window_start for w in recent] == [at(5), at(4)]
    assert len(other) == 6 and {w.model_id for w in other} == {OTHER}


@pytest.mark.parametrize("limit", [0, -1, 2.0, True])
def test_recent_windows_needs_a_positive_limit(
    sessions: sessionmaker[Session], model: str, limit: object
) -> None:
    with sessions() as session, pytest.raises(InvalidInputError, match="limit"):
        recent_windows(session, model, limit)  # type: ignore[arg-type]


def test_metric_history(sessions: sessionmaker[Session], filled: str) -> None:
    with sessions() as session:
        accuracy = metric_history(session, filled, "accuracy", at(4), at(10))
        other = metric_history(session, OTHER, "accuracy", None, at(1))
    assert [(m.window_start, m.value) for m in accuracy] == [(at(4), 4.0), (at(5), 5.0)]
    assert [(m.model_id, m.value) for m in other] == [(OTHER, 100.0)]


def test_data_quality_history(sessions: sessionmaker[Session], filled: str) -> None:
    with sessions() as session:
        rows = data_quality_history(session, filled, "age", at(0), at(3))
    assert [(r.window_start, r.mean) for r in rows] == [(at(0), 0.0), (at(1), 1.0), (at(2), 2.0)]


def test_anomaly_history(sessions: sessionmaker[Session], filled: str) -> None:
    with sessions() as session:
        everything = anomaly_history(session, filled, at(2), at(4))
        only = anomaly_history(session, filled, None, None, only_anomalies=True)
        one_series = anomaly_history(session, filled, None, at(2), series="drift:age")
    assert [(a.window_start, a.series) for a in everything] == [
        (at(2), "drift:age"),
        (at(2), "volume"),
        (at(3), "drift:age"),
        (at(3), "volume"),
    ]
    assert [(a.model_id, a.window_start, a.series) for a in only] == [(filled, at(3), "volume")]
    assert [(a.window_start, a.anomaly, a.reason) for a in one_series] == [
        (at(0), None, "missing value"),
        (at(1), None, "missing value"),
    ]


def test_window_details(sessions: sessionmaker[Session], filled: str) -> None:
    with sessions() as session:
        details = window_details(session, filled, at(2))
        missing = window_details(session, filled, at(99))
    assert missing is None
    assert details is not None
    assert details.window.window_start == at(2)
    assert [(d.feature, d.method) for d in details.drift] == [
        ("age", "ks"),
        ("age", "psi"),
        ("plan", "ks"),
        ("plan", "psi"),
    ]
    assert [q.feature for q in details.data_quality] == ["age", "plan"]
    assert [m.metric for m in details.metrics] == ["accuracy", "volume"]
    assert [a.series for a in details.anomalies] == ["drift:age", "volume"]
    assert all(r.window_start == at(2) for r in details.drift)


def test_history_of_a_model_without_results_is_empty(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions() as session:
        assert window_history(session, model, T0, at(10)) == []
        assert recent_windows(session, model, 5) == []
        assert anomaly_history(session, "nobody", None, None) == []
