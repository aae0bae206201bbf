"""Stage 2's results go to SQL: one transaction per outcome, off the event loop, outage-proof.

SQLAlchemy sessions are synchronous; each transaction runs in a worker thread
(``asyncio.to_thread``) so a slow commit never stalls the consumer's heartbeats. A
finalized window (:class:`~stream_app.results.WindowOutcome`) or a quality revision
(:class:`~stream_app.results.QualityRevision`) is committed whole, with the outbox rows of
the triggers it fired and the alerts it fired or resolved (:mod:`alerting.evaluation`), or
not at all. Writes are upserts by natural keys, so an outcome
committed again (a replay, a retry after a commit whose reply was lost) rewrites the same
rows.

When the database is unreachable, :class:`storage.transactions.Transactions` waits and
tries again: stage 2, which handles one message at a time, does not get to acknowledge the
message it is on until the database is back.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from alerting import evaluation
from detectors import ReferenceProfile
from storage import repository
from storage.transactions import Transactions
from stream_app.results import QualityRevision, WindowOutcome, utc

__all__ = ["SqlResultWriter", "Transactions"]


class SqlResultWriter:
    """The :class:`stream_app.stage2.ResultWriter` of a running worker."""

    def __init__(self, sessions: sessionmaker[Session] | Transactions) -> None:
        self.transactions = (
            sessions if isinstance(sessions, Transactions) else Transactions(sessions, "stage 2")
        )

    async def commit_window(self, outcome: WindowOutcome) -> int:
        """Commit a finalized window and its triggers; return how many triggers are new."""

        def work(session: Session) -> int:
            rows = outcome.rows
            new = 0
            if outcome.write_results:
                repository.write_window_results(
                    session,
                    rows.window,
                    rows.drift,
                    rows.data_quality,
                    rows.metrics,
                    rows.anomalies,
                )
                _set_late(session, outcome.model_id, outcome.start, rows.n_late)
                new = _insert_triggers(session, outcome.triggers)
            alerts = outcome.alerts
            evaluation.record_window(session, alerts.rules, outcome.evidence(), alerts.labels)
            return new

        return await self.transactions.run(work)

    async def commit_revision(self, revision: QualityRevision) -> int:
        """Commit a quality revision and its triggers; return how many triggers are new."""

        def work(session: Session) -> int:
            rows = revision.rows
            repository.write_quality_revision(
                session,
                revision.model_id,
                utc(revision.start),
                rows.metrics,
                n_labeled=rows.window.n_labeled,
                label_coverage=rows.window.label_coverage,
                anomalies=revision.metric_anomalies,
            )
            new = _insert_triggers(session, revision.triggers)
            alerts = revision.alerts
            evaluation.record_revision(session, alerts.rules, revision.evidence(), alerts.labels)
            return new

        return await self.transactions.run(work)

    async def set_late(self, model_id: str, start: float, end: float, total: int) -> None:
        await self.transactions.run(lambda session: _set_late(session, model_id, start, total))

    async def save_profile(self, model_id: str, profile: ReferenceProfile, source: str) -> None:
        def work(session: Session) -> None:
            repository.save_reference_profile(
                session, model_id, profile.fingerprint, profile.to_json(), source, profile.n_rows
            )

        await self.transactions.run(work)


def _insert_triggers(session: Session, triggers: tuple[repository.TriggerRow, ...]) -> int:
    # Absent ones only: a replay of the window yields the same trigger ids, and a trigger
    # already in the outbox keeps its publication state.
    return sum(repository.insert_trigger(session, trigger) for trigger in triggers)


def _set_late(session: Session, model_id: str, start: float, total: int) -> None:
    # Absolute, not an increment: writing the same window twice must not double it.
    repository.set_late_events(session, model_id, utc(start), total)
