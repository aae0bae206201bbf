"""Writing a window's results, idempotently.

Several writers touch a window row, and each owns some of its columns:

- :func:`write_window_results` (stage 2, when the window is finalized) owns the drift,
  data-quality and volume columns, and writes the window's drift, data-quality, metric and
  anomaly rows. Writing the same window again leaves exactly the rows of the last write:
  rows of an earlier write that are not repeated are deleted, so a replay after a
  reference change does not leave results of the old reference behind.
- :func:`storage.revisions.write_quality_revision` (late labels) owns ``n_labeled``,
  ``label_coverage`` and ``quality_revision`` once it has revised them: a later replay of
  the window's first evaluation (a lower revision) does not undo a revision, and neither do
  the metrics it carries, since a stored metric is only replaced or deleted by a write of
  the same or a higher revision.
- :mod:`storage.late_events` owns ``n_late``; the other writers never reset it.

Late events and labels can arrive for a window that has no results yet (stage 2 has not
written it, or it had no on-time events). They are not lost: the window row is created as a
placeholder (``finalized_at`` NULL, zero counts) that the window's results fill in later.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, case, tuple_
from sqlalchemy.orm import Session

from storage.catalog import require_model
from storage.models import anomalies as anomaly_table
from storage.models import data_quality_results, drift_results, quality_metrics, windows
from storage.rows import AnomalyRow, DataQualityRow, DriftRow, MetricRow, WindowRow
from storage.types import require_aware, utcnow
from storage.upsert import Excluded, upsert
from storage.window_keys import (
    WINDOW_KEY,
    ensure_window,
    not_older_revision,
    of_window,
    placeholder_window,
    require_unique,
    row_values,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_QUALITY_COLUMNS = ("label_coverage", "n_labeled", "quality_revision")
# Columns write_window_results replaces outright: all but the key, n_late and quality ones.
_RESULT_COLUMNS = tuple(
    column.name
    for column in windows.columns
    if column.name not in (*WINDOW_KEY, "n_late", *_QUALITY_COLUMNS)
)


def _update_window(table: Table, excluded: Excluded) -> Mapping[str, Any]:
    # Keep the stored label fields when a label revision already got past this write.
    stored_is_newer = table.c.quality_revision > excluded.quality_revision
    return {
        **{name: excluded[name] for name in _RESULT_COLUMNS},
        **{
            name: case((stored_is_newer, table.c[name]), else_=excluded[name])
            for name in _QUALITY_COLUMNS
        },
    }


def _replace_rows(
    session: Session,
    table: Table,
    window: WindowRow,
    key_columns: Sequence[str],
    rows: Sequence[DataclassInstance],
    *,
    extra: Mapping[str, Any] | None = None,
    revision: int | None = None,
) -> None:
    """Make ``rows`` (plus ``extra`` values) the window's rows of ``table``: upsert them and
    delete the window's other rows. With a ``revision``, rows are stored with it, and rows
    stored with a higher one are left alone, neither replaced nor deleted."""
    key = {"model_id": window.model_id, "window_start": window.window_start}
    versioned = {} if revision is None else {"revision": revision}
    values = [{**key, **row_values(row), **(extra or {}), **versioned} for row in rows]
    stale = of_window(table, window.model_id, window.window_start)
    if revision is not None:
        stale &= table.c.revision <= revision
    if len(key_columns) == 1 and values:
        stale &= table.c[key_columns[0]].not_in([row[key_columns[0]] for row in values])
    elif values:
        given = [tuple(row[name] for name in key_columns) for row in values]
        stale &= tuple_(*(table.c[name] for name in key_columns)).not_in(given)
    session.execute(table.delete().where(stale))
    upsert(
        session,
        table,
        values,
        [*WINDOW_KEY, *key_columns],
        where=None if revision is None else not_older_revision,
    )


def write_window_results(
    session: Session,
    window: WindowRow,
    drift: Sequence[DriftRow] = (),
    data_quality: Sequence[DataQualityRow] = (),
    metrics: Sequence[MetricRow] = (),
    anomalies: Sequence[AnomalyRow] = (),
) -> None:
    """Write one evaluated window and all its results, replacing any earlier write.

    The metrics get the window's ``quality_revision``. Keys must be unique within each
    sequence (feature and method for drift; feature; metric; series).

    Raises
    ------
    UnknownModelError
        If the window's model is not registered.
    InvalidInputError
        For a key given twice.
    """
    require_model(session, window.model_id)
    require_unique(drift, operator.attrgetter("feature", "method"), "drift result")
    require_unique(data_quality, operator.attrgetter("feature"), "data-quality feature")
    require_unique(metrics, operator.attrgetter("metric"), "metric")
    require_unique(anomalies, operator.attrgetter("series"), "anomaly series")
    now = utcnow()
    row = {
        **placeholder_window(window.model_id, window.window_start, now),
        **row_values(window),
        "finalized_at": window.finalized_at or now,
    }
    upsert(session, windows, [row], WINDOW_KEY, update=_update_window)

    _replace_rows(session, drift_results, window, ("feature", "method"), drift)
    _replace_rows(session, data_quality_results, window, ("feature",), data_quality)
    _replace_rows(session, anomaly_table, window, ("series",), anomalies)
    _replace_rows(
        session,
        quality_metrics,
        window,
        ("metric",),
        metrics,
        extra={"updated_at": now},
        revision=window.quality_revision,
    )


def write_anomalies(
    session: Session, model_id: str, window_start: datetime, anomalies: Sequence[AnomalyRow]
) -> None:
    """Upsert some of a window's 3-sigma verdicts, keeping its other series' verdicts.

    For series evaluated again after the window was written (quality metrics revised by late
    labels). A window without a row gets a placeholder, as for late labels.
    """
    require_aware("window_start", window_start)
    require_model(session, model_id)
    require_unique(anomalies, operator.attrgetter("series"), "anomaly series")
    ensure_window(session, model_id, window_start, utcnow())
    upsert_anomalies(session, model_id, window_start, anomalies)


def upsert_anomalies(
    session: Session, model_id: str, window_start: datetime, anomalies: Sequence[AnomalyRow]
) -> None:
    """The upsert of :func:`write_anomalies`, for a writer that has already checked the
    model, the series and the window row in this transaction."""
    key = {"model_id": model_id, "window_start": window_start}
    values = [{**key, **row_values(row)} for row in anomalies]
    upsert(session, anomaly_table, values, [*WINDOW_KEY, "series"])
