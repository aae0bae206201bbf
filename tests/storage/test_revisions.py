"""Tests for storage.revisions: late labels revise quality metrics; revisions only go up."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from storage.repository import (
    metric_history,
    window_details,
    write_quality_revision,
    write_window_results,
)
from storage.rows import AnomalyRow
from tests.storage.helpers import T0, anomaly, at, metric, window


def _first_evaluation(sessions: sessionmaker[Session], model: str) -> None:
    with sessions.begin() as session:
        write_window_results(
            session,
            window(model, n_labeled=100, label_coverage=0.1),
            metrics=[metric("accuracy", 0.90, n_labeled=100), metric("volume", 1000.0)],
        )


def _revise(
    sessions: sessionmaker[Session],
    model: str,
    n_labeled: int,
    accuracy: float,
    anomalies: Sequence[AnomalyRow] = (),
) -> int:
    with sessions.begin() as session:
        return write_quality_revision(
            session,
            model,
            T0,
            [metric("accuracy", accuracy)],
            anomalies=anomalies,
            n_labeled=n_labeled,
            label_coverage=n_labeled / 1000,
        )


def test_each_revision_with_more_labels_increases_the_revision(
    sessions: sessionmaker[Session], model: str
) -> None:
    _first_evaluation(sessions, model)
    assert _revise(sessions, model, 400, 0.85) == 1
    assert _revise(sessions, model, 900, 0.80) == 2
    with sessions() as session:
        details = window_details(session, model, T0)
        (accuracy,) = metric_history(session, model, "accuracy", None, None)
    assert details is not None
    assert (details.window.quality_revision, details.window.n_labeled) == (2, 900)
    assert details.window.label_coverage == 0.9
    assert (accuracy.value, accuracy.revision, accuracy.n_labeled) == (0.80, 2, 900)
    assert accuracy.label_coverage == 0.9
    volume = {m.metric: m for m in details.metrics}["volume"]
    assert (volume.value, volume.revision) == (1000.0, 0)  # not revised, not touched


def test_replaying_a_revision_changes_nothing(sessions: sessionmaker[Session], model: str) -> None:
    _first_evaluation(sessions, model)
    assert _revise(sessions, model, 400, 0.85) == 1
    with sessions() as session:
        before = window_details(session, model, T0)
    assert _revise(sessions, model, 400, 0.85) == 1
    with sessions() as session:
        assert window_details(session, model, T0) == before


def test_an_older_revision_arriving_late_is_ignored(
    sessions: sessionmaker[Session], model: str
) -> None:
    _first_evaluation(sessions, model)
    _revise(sessions, model, 400, 0.85)
    _revise(sessions, model, 900, 0.80)
    assert _revise(sessions, model, 400, 0.85) == 2
    with sessions() as session:
        (accuracy,) = metric_history(session, model, "accuracy", None, None)
    assert (accuracy.value, accuracy.revision) == (0.80, 2)


def test_corrected_labels_with_the_same_count_are_a_new_revision(
    sessions: sessionmaker[Session], model: str
) -> None:
    _first_evaluation(sessions, model)
    assert _revise(sessions, model, 400, 0.85) == 1
    assert _revise(sessions, model, 400, 0.84) == 2


def test_replaying_the_first_evaluation_keeps_the_revised_quality(
    sessions: sessionmaker[Session], model: str
) -> None:
    _first_evaluation(sessions, model)
    _revise(sessions, model, 400, 0.85)
    with sessions.begin() as session:  # stage 2 writes the window again, as at first
        write_window_results(
            session,
            window(model, n_rows=1001, n_labeled=100, label_coverage=0.1),
            metrics=[metric("volume", 1001.0)],
        )
    with sessions() as session:
        details = window_details(session, model, T0)
    assert details is not None
    assert details.window.n_rows == 1001  # the window's own columns are rewritten
    assert details.window.quality_revision == 1  # the label columns are not
    assert (details.window.n_labeled, details.window.label_coverage) == (400, 0.4)
    by_name = {m.metric: (m.value, m.revision) for m in details.metrics}
    assert by_name == {"accuracy": (0.85, 1), "volume": (1001.0, 0)}


def test_labels_for_a_window_without_results_make_a_placeholder(
    sessions: sessionmaker[Session], model: str
) -> None:
    assert _revise(sessions, model, 50, 0.7) == 1
    with sessions() as session:
        placeholder = window_details(session, model, T0)
    assert placeholder is not None
    assert placeholder.window.finalized_at is None
    assert placeholder.window.n_labeled == 50
    _first_evaluation(sessions, model)
    with sessions() as session:
        details = window_details(session, model, T0)
    assert details is not None
    assert (details.window.quality_revision, details.window.n_labeled) == (1, 50)
    assert details.window.finalized_at is not None
    assert {m.metric: m.value for m in details.metrics} == {"accuracy": 0.7, "volume": 1000.0}


def test_nan_metrics_count_as_unchanged_when_replayed(
    sessions: sessionmaker[Session], model: str
) -> None:
    _first_evaluation(sessions, model)
    assert _revise(sessions, model, 400, math.nan) == 1
    assert _revise(sessions, model, 400, math.nan) == 1
    with sessions() as session:
        (accuracy,) = metric_history(session, model, "accuracy", None, None)
    assert accuracy.value is None


def test_revisions_are_per_window(sessions: sessionmaker[Session], model: str) -> None:
    _first_evaluation(sessions, model)
    with sessions.begin() as session:
        write_window_results(session, window(model, 1), metrics=[metric("accuracy", 0.5)])
    _revise(sessions, model, 400, 0.85)
    with sessions() as session:
        later = window_details(session, model, at(1))
    assert later is not None
    assert later.window.quality_revision == 0
    assert [m.value for m in later.metrics] == [0.5]


def test_a_revision_writes_its_anomalies_and_keeps_the_other_series(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        write_window_results(
            session,
            window(model),
            anomalies=[anomaly("volume"), anomaly("metric:accuracy", value=0.8, anomaly=False)],
        )
    revised = [anomaly("metric:accuracy", value=0.4, anomaly=True)]
    assert _revise(sessions, model, 500, 0.4, revised) == 1
    with sessions() as session:
        details = window_details(session, model, T0)
    assert details is not None
    assert {a.series: (a.value, a.anomaly) for a in details.anomalies} == {
        "metric:accuracy": (0.4, True),
        "volume": (1000.0, False),
    }


def test_a_revision_checks_the_model_and_the_window_row_once(
    engine: Engine, sessions: sessionmaker[Session], model: str
) -> None:
    _first_evaluation(sessions, model)
    statements: list[str] = []

    def record(connection: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        _revise(sessions, model, 400, 0.8, [anomaly("metric:accuracy", value=0.8, anomaly=True)])
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # A revision runs for every window a label backfill touches, each a transaction.
    assert statements.count("SELECT models.model_id FROM") == 1
    assert statements.count("INSERT INTO windows") == 1
    assert statements.count("INSERT INTO anomalies") == 1
