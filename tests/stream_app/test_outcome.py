"""Stage 2 commits each window (and each quality revision) with its trigger as one outcome,
and changes its changelog only after the commit: failures and crashes lose nothing and
write nothing twice."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import StorageUnavailableError
from registration import profile_reference
from storage import make_engine, models, session_factory, upgrade
from storage.repository import upsert_model
from stream_app import messages
from stream_app.outbox_relay import OutboxRelay, SqlTriggerOutbox
from stream_app.registry import ModelRuntime
from stream_app.results import QualityRevision, WindowOutcome
from stream_app.sql_writer import SqlResultWriter, Transactions
from stream_app.stage2 import WindowRecord
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline, RecordingWriter
from tests.stream_app.outage import (
    WINDOWS,
    FlakySessions,
    WorkerCrashError,
    fingerprint,
    run_stream,
    window_start,
)

RUNTIME = ModelRuntime(
    scenario.model_config(), profile_reference(scenario.model_config(), scenario.reference())
)


async def no_sleep(seconds: float) -> None:
    return None


# -- against SQL: transactions that fail, then commit ------------------------------------


def _database(path: Path) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(f"sqlite+pysqlite:///{path}")
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        upsert_model(session, scenario.MODEL_ID, scenario.model_config().model_dump(mode="json"))
    return engine, sessions


def _sql_pipeline(sessions: Any) -> LocalPipeline:
    pipeline = LocalPipeline(RUNTIME, 2)
    pipeline.use_writer(SqlResultWriter(Transactions(sessions, "stage 2", sleep=no_sleep)))
    outbox = SqlTriggerOutbox(Transactions(sessions, "the outbox relay", sleep=no_sleep))
    pipeline.relay = OutboxRelay([(outbox, pipeline._publish)], owner="test-relay")
    return pipeline


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored result, without the wall-clock columns."""
    tables = {
        "windows": (
            models.windows,
            ("window_start", "n_rows", "n_late", "n_drifted", "n_labeled", "quality_revision"),
        ),
        "drift": (models.drift_results, ("window_start", "feature", "method", "score")),
        "metrics": (models.quality_metrics, ("window_start", "metric", "value", "revision")),
        "anomalies": (models.anomalies, ("window_start", "series", "value", "anomaly")),
        "triggers": (models.retrain_triggers, ("trigger_id", "window_start", "reason")),
    }
    with engine.connect() as connection:
        return {
            name: sorted(
                tuple(row) for row in connection.execute(select(*(table.c[c] for c in columns)))
            )
            for name, (table, columns) in tables.items()
        }


def test_transactions_that_fail_then_commit_land_every_result_and_trigger_once(
    tmp_path: Path,
) -> None:
    clean_engine, clean_sessions = _database(tmp_path / "clean.db")
    clean = _sql_pipeline(clean_sessions)
    asyncio.run(run_stream(clean))

    engine, sessions = _database(tmp_path / "flaky.db")
    flaky_sessions = FlakySessions(sessions, fail_each=2)  # every transaction: 2 failures
    flaky = _sql_pipeline(flaky_sessions)
    asyncio.run(run_stream(flaky))

    assert flaky_sessions.failures == 2 * flaky_sessions.commits > 0
    stored = _dump(engine)
    assert stored == _dump(clean_engine)
    assert len(stored["windows"]) == WINDOWS
    assert max(revision for *_, revision in stored["windows"]) >= 1  # labels revised them
    (trigger,) = stored["triggers"]
    assert [t.trigger_id for t in flaky.published] == [trigger[0]]  # published once
    with engine.connect() as connection:
        published_at = connection.execute(select(models.retrain_triggers.c.published_at)).one()
    assert published_at[0] is not None
    assert flaky.counters.triggers == 1 and flaky.counters.windows_finalized == WINDOWS
    clean_engine.dispose()
    engine.dispose()


# -- crashes before and after a commit ----------------------------------------------------


class CrashingWriter(RecordingWriter):
    """Dies once per window and per revision: before or after committing it."""

    def __init__(self, when: str, only_with_triggers: bool = False) -> None:
        super().__init__()
        self.when = when
        self.only_with_triggers = only_with_triggers
        self.crashed: set[tuple[str, float, int]] = set()
        self.seen_at_crash: list[Any] = []
        self.stage2: Any = None

    def _crash_once(self, kind: str, outcome: WindowOutcome | QualityRevision) -> bool:
        if self.only_with_triggers and not outcome.triggers:
            return False
        key = (kind, outcome.start, outcome.rows.window.quality_revision)
        if key in self.crashed:
            return False
        self.crashed.add(key)
        if self.stage2 is not None:  # what the changelog says while the commit is in doubt
            self.seen_at_crash.append(self.stage2._history(0, outcome.model_id))
        return True

    async def commit_window(self, outcome: WindowOutcome) -> int:
        crash = self._crash_once("window", outcome)
        if crash and self.when == "before":
            raise WorkerCrashError
        new = await super().commit_window(outcome)
        if crash:
            raise WorkerCrashError
        return new

    async def commit_revision(self, revision: QualityRevision) -> int:
        crash = self._crash_once("revision", revision)
        if crash and self.when == "before":
            raise WorkerCrashError
        new = await super().commit_revision(revision)
        if crash:
            raise WorkerCrashError
        return new


def _with_writer(writer: RecordingWriter) -> LocalPipeline:
    pipeline = LocalPipeline(RUNTIME, 2)
    pipeline.writer.__dict__.update(writer.__dict__)  # the relay's outbox reads pipeline.writer
    pipeline.writer = writer
    pipeline.use_writer(writer)
    pipeline.relay.routes[0][0].writer = writer  # type: ignore[attr-defined]
    return pipeline


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_around_each_commit_loses_nothing_and_writes_nothing_twice(when: str) -> None:
    clean = LocalPipeline(RUNTIME, 2)
    asyncio.run(run_stream(clean))
    writer = CrashingWriter(when)
    crashing = _with_writer(writer)
    asyncio.run(run_stream(crashing))

    assert len(writer.crashed) > WINDOWS
    assert fingerprint(crashing) == fingerprint(clean)
    assert len(crashing.writer.triggers) == 1
    assert [t.trigger_id for t in crashing.published] == list(clean.writer.triggers)
    assert crashing.counters.windows_finalized == WINDOWS  # counted once, after the commit


def test_a_trigger_whose_commit_failed_does_not_start_its_cooldown() -> None:
    writer = CrashingWriter("before", only_with_triggers=True)
    pipeline = _with_writer(writer)
    writer.stage2 = pipeline.stage2
    asyncio.run(run_stream(pipeline))

    (history_at_crash, *_) = writer.seen_at_crash
    assert history_at_crash["last_trigger_end"] is None  # the failed trigger left no cooldown
    (trigger,) = pipeline.writer.triggers.values()
    assert [t.trigger_id for t in pipeline.published] == [trigger.trigger_id]
    history = pipeline.stage2._history(0, scenario.MODEL_ID)
    assert history["last_trigger_end"] == trigger.window_end.timestamp()


def _record(pipeline: LocalPipeline, w: int) -> WindowRecord:
    raw = pipeline.stage2.records.get(f"0|r|{scenario.MODEL_ID}|{window_start(w)!r}")
    assert raw is not None
    quality = pipeline.stage2.records.get(f"0|q|{scenario.MODEL_ID}|{window_start(w)!r}")
    return WindowRecord.from_bytes(raw, quality)


def test_a_failed_revision_write_is_not_lost() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    events = list(scenario.events(1, 40, drift_from=99, decay_from=99))
    asyncio.run(pipeline.feed_predictions(events))
    asyncio.run(pipeline.idle(200))  # window 0 is final
    labels = [pipeline.message("label", e.prediction_id, e.label_json()) for e in events[:10]]
    asyncio.run(pipeline.feed(labels))
    assert _record(pipeline, 0).revision_pending

    def fail(operation: str) -> None:
        if operation == "commit_revision":
            raise WorkerCrashError

    pipeline.writer.fail = fail
    with pytest.raises(WorkerCrashError):
        asyncio.run(pipeline.stage2.tick([0]))
    record = _record(pipeline, 0)
    assert record.revision_pending and record.revision == 0  # still to do
    assert pipeline.writer.revisions == []

    pipeline.writer.fail = None
    asyncio.run(pipeline.stage2.tick([0]))
    record = _record(pipeline, 0)
    assert not record.revision_pending and record.revision == 1
    ((_, _, rows),) = pipeline.writer.revisions
    assert rows.window.n_labeled == 10 and rows.window.quality_revision == 1


def test_a_late_count_is_kept_only_once_sql_has_it() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    asyncio.run(pipeline.feed_predictions(scenario.events(1, 20, drift_from=99, decay_from=99)))
    asyncio.run(pipeline.idle(200))
    late = messages.LateMessage(scenario.MODEL_ID, window_start(0), window_start(1), 3)

    def fail(operation: str) -> None:
        raise WorkerCrashError

    pipeline.writer.fail = fail
    with pytest.raises(WorkerCrashError):
        asyncio.run(pipeline.stage2.handle(0, late))
    assert _record(pipeline, 0).late == 0  # redelivered, it is counted once
    pipeline.writer.fail = None
    asyncio.run(pipeline.stage2.handle(0, late))
    assert _record(pipeline, 0).late == 3
    assert pipeline.writer.late[(scenario.MODEL_ID, window_start(0))] == 3


# -- a message that cannot be used ----------------------------------------------------------


def test_a_label_outside_the_classes_is_skipped_and_the_rest_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    asyncio.run(pipeline.feed_predictions(scenario.events(1, 20, drift_from=99, decay_from=99)))
    start, end = window_start(0), window_start(1)
    bad = messages.LabelsMessage(scenario.MODEL_ID, start, end, ["1", "7"], ["1", "1"], [0.9, 0.8])
    good = messages.LabelsMessage(scenario.MODEL_ID, start, end, ["1", "0"], ["1", "1"], [0.9, 0.8])
    with caplog.at_level(logging.ERROR, logger="stream_app.stage2"):
        for message in (bad, good):
            asyncio.run(pipeline.stage2.handle(0, message))
    assert pipeline.counters.skipped_stage2_messages == 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert "skipping a stage-2 labels for churn window 2026-01-01T00:00:00" in line
    assert "'7' is not one of the classes" in line
    asyncio.run(pipeline.idle(200))
    rows = pipeline.writer.windows[(scenario.MODEL_ID, start)]
    assert rows.window.n_labeled == 2  # the good message only


# -- waiting for the database -------------------------------------------------------------


@pytest.fixture
def sessions(sqlite_url: str) -> sessionmaker[Session]:
    return session_factory(make_engine(sqlite_url))


def test_waiting_for_the_database_is_logged_once_with_what_to_check(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    flaky = FlakySessions(sessions, fail_each=9)
    transactions = Transactions(cast(Any, flaky), "stage 2", sleep=sleep)
    with caplog.at_level(logging.DEBUG, logger="storage.transactions"):
        answer = asyncio.run(transactions.run(lambda s: s.execute(text("SELECT 42")).scalar()))
    assert answer == 42
    assert slept == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]  # capped at 5 s
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 2
    (level, warning), (info_level, info) = lines
    assert level == "WARNING" and info_level == "INFO"
    assert warning.startswith("stage 2 is waiting for the database (OperationalError): ")
    assert "connection refused;" in warning and "Is the server running" not in warning
    assert "check that the database is running and reachable at sqlite+pysqlite:///" in warning
    assert info.startswith("stage 2: the database is reachable again after ")
    assert "(9 failed attempts)" in info
    assert transactions.waits == 1


def test_errors_that_waiting_cannot_fix_are_raised_at_once(
    sessions: sessionmaker[Session],
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def broken(session: Session) -> None:
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(IntegrityError):
        asyncio.run(Transactions(sessions, "stage 2", sleep=sleep).run(broken))
    assert slept == []


def test_callers_that_must_not_wait_get_storage_unavailable(
    sessions: sessionmaker[Session],
) -> None:
    flaky = FlakySessions(sessions)
    flaky.down = True
    transactions = Transactions(cast(Any, flaky), "the API")
    with pytest.raises(StorageUnavailableError, match="is unreachable \\(connection refused\\)"):
        asyncio.run(transactions.run_once(lambda s: s.execute(text("SELECT 1"))))


def test_waiting_for_the_database_leaves_the_event_loop_free(
    sessions: sessionmaker[Session],
) -> None:
    flaky = FlakySessions(sessions)
    flaky.down = True
    transactions = Transactions(cast(Any, flaky), "stage 2", first_delay=0.01, max_delay=0.02)
    beats: list[float] = []

    async def heartbeat() -> None:
        for _ in range(10):
            beats.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.01)
        flaky.down = False  # the database comes back

    async def main() -> int:
        waiting = asyncio.create_task(transactions.run(lambda s: 1))
        await heartbeat()
        return await waiting

    assert asyncio.run(main()) == 1
    assert len(beats) == 10 and flaky.failures >= 3


def test_the_stage2_record_of_a_final_window_keeps_its_history_as_json() -> None:
    # The history is saved after the commit as plain JSON, as before (a restart reads it).
    pipeline = LocalPipeline(RUNTIME, 1)
    asyncio.run(pipeline.feed_predictions(scenario.events(2, 20, drift_from=99, decay_from=99)))
    asyncio.run(pipeline.idle(200))
    raw = pipeline.stage2.records.get(f"0|h|{scenario.MODEL_ID}")
    assert raw is not None
    assert set(orjson.loads(raw)["windows"]) == {repr(window_start(0)), repr(window_start(1))}
