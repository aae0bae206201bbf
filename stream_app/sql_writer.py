"""Stage 2's results go to SQL: one transaction per window, off the event loop.

SQLAlchemy sessions are synchronous; each write runs in a worker thread
(``asyncio.to_thread``) so a slow commit never stalls the consumer's heartbeats. Writes are
upserts by natural keys, so a window written again (a replay, a late partition) rewrites
the same rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from detectors import ReferenceProfile
from schemas.outbound import RetrainTrigger
from storage import repository
from storage.rows import TriggerRow
from stream_app.results import ReportRows, utc

T = TypeVar("T")


class SqlResultWriter:
    """The :class:`stream_app.stage2.ResultWriter` of a running worker."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    async def _run(self, work: Callable[[Session], T]) -> T:
        def in_thread() -> T:
            with self._sessions.begin() as session:
                return work(session)

        return await asyncio.to_thread(in_thread)

    async def write_window(self, model_id: str, start: float, end: float, rows: ReportRows) -> None:
        def work(session: Session) -> None:
            repository.write_window_results(
                session, rows.window, rows.drift, rows.data_quality, rows.metrics, rows.anomalies
            )
            _set_late(session, model_id, start, rows.n_late)

        await self._run(work)

    async def write_quality(
        self, model_id: str, start: float, end: float, rows: ReportRows
    ) -> None:
        def work(session: Session) -> None:
            repository.write_quality_revision(
                session,
                model_id,
                utc(start),
                rows.metrics,
                n_labeled=rows.window.n_labeled,
                label_coverage=rows.window.label_coverage,
            )
            metric_anomalies = [a for a in rows.anomalies if a.series.startswith("metric:")]
            if metric_anomalies:
                repository.write_anomalies(session, model_id, utc(start), metric_anomalies)

        await self._run(work)

    async def set_late(self, model_id: str, start: float, end: float, total: int) -> None:
        await self._run(lambda session: _set_late(session, model_id, start, total))

    async def save_trigger(self, trigger: RetrainTrigger) -> bool:
        row = TriggerRow(
            trigger_id=trigger.trigger_id,
            model_id=trigger.model_id,
            model_version=trigger.model_version,
            reason=trigger.reason,
            evidence=trigger.evidence,
            window_start=trigger.window_start,
            window_end=trigger.window_end,
            data_start=trigger.data_start,
            data_end=trigger.data_end,
            created_at=trigger.created_at,
        )

        def work(session: Session) -> bool:
            inserted = repository.insert_trigger(session, row)
            if inserted:
                return True
            # Stored before but maybe never published (a crash in between): publish now.
            stored = repository.get_trigger(session, trigger.trigger_id)
            return stored is not None and stored.published_at is None

        return await self._run(work)

    async def save_profile(self, model_id: str, profile: ReferenceProfile, source: str) -> None:
        def work(session: Session) -> None:
            repository.save_reference_profile(
                session, model_id, profile.fingerprint, profile.to_json(), source, profile.n_rows
            )

        await self._run(work)

    async def mark_published(self, trigger_id: str) -> None:
        await self._run(lambda session: repository.mark_trigger_published(session, trigger_id))


def _set_late(session: Session, model_id: str, start: float, total: int) -> None:
    # Absolute, not an increment: writing the same window twice must not double it.
    repository.set_late_events(session, model_id, utc(start), total)
