"""Quality metrics revised by late labels, with a revision number that only goes up.

Labels arrive hours or days after the predictions, so a window's quality metrics are
computed again as they come. Each change is a new revision of the window; a replay of one
already stored, or an older one arriving late, changes nothing. See :mod:`storage.results`
for how a revision survives a replay of the window's first evaluation.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.catalog import require_model
from storage.models import quality_metrics, windows
from storage.results import upsert_anomalies
from storage.rows import AnomalyRow, MetricRow
from storage.types import require_aware, utcnow
from storage.upsert import upsert
from storage.window_keys import (
    WINDOW_KEY,
    ensure_window,
    not_older_revision,
    of_window,
    require_unique,
)

_COMPARED = ("value", "n_labeled", "label_coverage")


def _same(a: object, b: object) -> bool:
    """Equal as stored (NaN is stored as NULL)."""

    def stored(x: object) -> object:
        return None if isinstance(x, float) and math.isnan(x) else x

    return stored(a) == stored(b)


def _unchanged(
    session: Session, model_id: str, window_start: datetime, new: Sequence[Mapping[str, Any]]
) -> bool:
    names = [row["metric"] for row in new]
    stored = {
        row.metric: row
        for row in session.execute(
            select(quality_metrics).where(
                of_window(quality_metrics, model_id, window_start),
                quality_metrics.c.metric.in_(names),
            )
        )
    }
    return all(
        row["metric"] in stored
        and all(_same(row[name], getattr(stored[row["metric"]], name)) for name in _COMPARED)
        for row in new
    )


def write_quality_revision(
    session: Session,
    model_id: str,
    window_start: datetime,
    metrics: Sequence[MetricRow],
    n_labeled: int,
    label_coverage: float | None,
    anomalies: Sequence[AnomalyRow] = (),
) -> int:
    """Record quality metrics recomputed after late labels; return the window's revision.

    The window's ``quality_revision`` goes up by one when anything changed, and the metrics,
    ``n_labeled`` and ``label_coverage`` are stored with it. Writing the same values again
    (a replay) changes nothing, and neither does a write with fewer labels than stored (an
    older revision arriving late): labels only accumulate. A metric's own ``n_labeled`` and
    ``label_coverage`` default to the window's. A window without a row gets a placeholder.
    ``anomalies``, the revised metrics' 3-sigma verdicts, are upserted as by
    :func:`storage.results.write_anomalies` (the window's other series keep theirs).

    Raises
    ------
    UnknownModelError
        If the model is not registered.
    InvalidInputError
        For a metric given twice or a naive ``window_start``.
    """
    require_aware("window_start", window_start)
    require_model(session, model_id)
    require_unique(metrics, operator.attrgetter("metric"), "metric")
    require_unique(anomalies, operator.attrgetter("series"), "anomaly series")
    now = utcnow()
    ensure_window(session, model_id, window_start, now)
    # Written whatever the metrics below turn out to be, as write_anomalies would; here
    # the model and window checks above serve both (a revision is a dozen statements,
    # run for every window a label backfill touches).
    upsert_anomalies(session, model_id, window_start, anomalies)
    stored = session.execute(
        select(windows.c.n_labeled, windows.c.label_coverage, windows.c.quality_revision)
        .where(of_window(windows, model_id, window_start))
        .with_for_update()  # PostgreSQL: concurrent revisions of one window take turns
    ).one()
    new = [
        {
            "metric": metric.metric,
            "value": metric.value,
            "n_labeled": n_labeled if metric.n_labeled is None else metric.n_labeled,
            "label_coverage": label_coverage
            if metric.label_coverage is None
            else metric.label_coverage,
        }
        for metric in metrics
    ]
    older = n_labeled < stored.n_labeled
    replayed = (
        n_labeled == stored.n_labeled
        and _same(label_coverage, stored.label_coverage)
        and _unchanged(session, model_id, window_start, new)
    )
    if older or replayed:
        return int(stored.quality_revision)

    revision = int(stored.quality_revision) + 1
    session.execute(
        windows.update()
        .where(of_window(windows, model_id, window_start))
        .values(
            n_labeled=n_labeled,
            label_coverage=label_coverage,
            quality_revision=revision,
            updated_at=now,
        )
    )
    key = {"model_id": model_id, "window_start": window_start}
    rows = [{**key, **row, "revision": revision, "updated_at": now} for row in new]
    upsert(session, quality_metrics, rows, [*WINDOW_KEY, "metric"], where=not_older_revision)
    return revision
