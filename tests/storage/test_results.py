"""Tests for storage.results and storage.late_events: idempotent window writes."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import InvalidInputError
from storage.models import anomalies, data_quality_results, drift_results, quality_metrics, windows
from storage.repository import (
    UnknownModelError,
    add_late_events,
    set_late_events,
    upsert_model,
    window_details,
    write_anomalies,
    write_window_results,
)
from tests.storage.helpers import (
    T0,
    anomaly,
    at,
    count_rows,
    data_quality,
    drift,
    metric,
    window,
)

FEATURES = [f"feature_{i:02d}" for i in range(25)]


def _write_full_window(session: Session, model: str, n_rows: int, scale: float) -> None:
    """A realistic batch: 25 features x 2 methods, 25 data-quality rows, 20 metrics, 50
    anomaly series; every value depends on ``scale``."""
    write_window_results(
        session,
        window(model, n_rows=n_rows),
        drift=[
            drift(name, method, score=scale * i, is_primary=method == "psi")
            for i, name in enumerate(FEATURES)
            for method in ("psi", "ks")
        ],
        data_quality=[data_quality(name, mean=scale + i) for i, name in enumerate(FEATURES)],
        metrics=[metric(f"metric_{i}", scale / (i + 1)) for i in range(20)],
        anomalies=[anomaly(f"series_{i}", value=scale * i) for i in range(50)],
    )


def _counts(session: Session) -> dict[str, int]:
    tables = (windows, drift_results, data_quality_results, quality_metrics, anomalies)
    return {table.name: count_rows(session, table) for table in tables}


def test_writing_a_window_twice_keeps_one_set_of_rows_with_the_second_values(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        _write_full_window(session, model, n_rows=10, scale=1.0)
    with sessions.begin() as session:
        _write_full_window(session, model, n_rows=20, scale=2.0)
    with sessions() as session:
        assert _counts(session) == {
            "windows": 1,
            "drift_results": 50,
            "data_quality_results": 25,
            "quality_metrics": 20,
            "anomalies": 50,
        }
        details = window_details(session, model, T0)
    assert details is not None
    assert details.window.n_rows == 20
    assert {(d.feature, d.method): d.score for d in details.drift}[("feature_03", "ks")] == 6.0
    assert {q.feature: q.mean for q in details.data_quality}["feature_24"] == 26.0
    assert {m.metric: m.value for m in details.metrics}["metric_1"] == 1.0
    assert {a.series: a.value for a in details.anomalies}["series_49"] == 98.0
    assert all(m.revision == 0 for m in details.metrics)


def test_a_rewrite_with_fewer_rows_deletes_the_ones_not_repeated(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        write_window_results(
            session,
            window(model),
            drift=[drift("age", "psi"), drift("age", "ks"), drift("plan", "psi")],
            data_quality=[data_quality("age"), data_quality("plan")],
            metrics=[metric("accuracy"), metric("f1")],
            anomalies=[anomaly("volume"), anomaly("drift:age")],
        )
        # Another window's rows are not touched.
        write_window_results(session, window(model, 1), drift=[drift("plan", "psi")])
    with sessions.begin() as session:
        write_window_results(
            session,
            window(model),
            drift=[drift("age", "psi")],
            data_quality=[],
            metrics=[metric("f1")],
            anomalies=[anomaly("volume")],
        )
    with sessions() as session:
        details = window_details(session, model, T0)
        other = window_details(session, model, at(1))
    assert details is not None and other is not None
    assert [(d.feature, d.method) for d in details.drift] == [("age", "psi")]
    assert details.data_quality == []
    assert [m.metric for m in details.metrics] == ["f1"]
    assert [a.series for a in details.anomalies] == ["volume"]
    assert [(d.feature, d.method) for d in other.drift] == [("plan", "psi")]


def test_results_of_other_models_are_not_touched(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        upsert_model(session, "fraud", {})
        write_window_results(session, window("fraud"), drift=[drift("age")])
        write_window_results(session, window(model), drift=[drift("age")])
        write_window_results(session, window(model), drift=[])
    with sessions() as session:
        fraud = window_details(session, "fraud", T0)
    assert fraud is not None and len(fraud.drift) == 1


def test_a_key_given_twice_is_refused(sessions: sessionmaker[Session], model: str) -> None:
    with sessions() as session, pytest.raises(InvalidInputError, match="'age', 'psi'"):
        write_window_results(session, window(model), drift=[drift("age"), drift("age")])
    with sessions() as session, pytest.raises(InvalidInputError, match="metric 'f1'"):
        write_window_results(session, window(model), metrics=[metric("f1"), metric("f1")])


def test_an_unregistered_model_is_named_in_the_error(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, pytest.raises(UnknownModelError, match="'nobody'"):
        write_window_results(session, window("nobody"))
    with sessions() as session, pytest.raises(UnknownModelError):
        add_late_events(session, "nobody", T0, 1)


def test_finalized_at_defaults_to_the_time_of_writing(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        write_window_results(session, window(model))
    with sessions() as session:
        details = window_details(session, model, T0)
    assert details is not None and details.window.finalized_at is not None
    assert details.window.finalized_at == details.window.updated_at


def test_late_events_before_the_window_make_a_placeholder_that_the_results_fill(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        add_late_events(session, model, T0, 3, window_end=at(1))
        add_late_events(session, model, T0, 2)
    with sessions() as session:
        placeholder = window_details(session, model, T0)
    assert placeholder is not None
    assert placeholder.window.n_late == 5
    assert placeholder.window.finalized_at is None
    assert placeholder.window.window_end == at(1)
    assert placeholder.window.n_rows == 0

    with sessions.begin() as session:
        write_window_results(session, window(model, n_rows=700))
        write_window_results(session, window(model, n_rows=700))  # a replay keeps n_late too
        add_late_events(session, model, T0, 1)
    with sessions() as session:
        filled = window_details(session, model, T0)
    assert filled is not None
    assert (filled.window.n_rows, filled.window.n_late) == (700, 6)
    assert filled.window.finalized_at is not None


def test_set_late_events_stores_a_total_so_a_replay_does_not_double_it(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        write_window_results(session, window(model))
        set_late_events(session, model, T0, 4)
        set_late_events(session, model, T0, 4)
        set_late_events(session, model, at(5), 2, window_end=at(6))
    with sessions() as session:
        assert window_details(session, model, T0).window.n_late == 4  # type: ignore[union-attr]
        placeholder = window_details(session, model, at(5))
    assert placeholder is not None
    assert (placeholder.window.n_late, placeholder.window.window_end) == (2, at(6))


@pytest.mark.parametrize("count", [-1, 1.5, True, "3"])
def test_late_event_counts_must_be_non_negative_integers(
    sessions: sessionmaker[Session], model: str, count: object
) -> None:
    with sessions() as session, pytest.raises(InvalidInputError, match="integer >= 0"):
        add_late_events(session, model, T0, count)  # type: ignore[arg-type]


def test_zero_late_events_write_nothing(sessions: sessionmaker[Session], model: str) -> None:
    with sessions.begin() as session:
        add_late_events(session, model, T0, 0)
    with sessions() as session:
        assert count_rows(session, windows) == 0


def test_write_anomalies_upserts_some_series_and_keeps_the_others(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        write_window_results(
            session,
            window(model),
            anomalies=[anomaly("volume"), anomaly("metric:f1", value=0.8, anomaly=False)],
        )
        write_anomalies(session, model, T0, [anomaly("metric:f1", value=0.4, anomaly=True)])
    with sessions() as session:
        details = window_details(session, model, T0)
    assert details is not None
    assert {a.series: (a.value, a.anomaly) for a in details.anomalies} == {
        "metric:f1": (0.4, True),
        "volume": (1000.0, False),
    }
