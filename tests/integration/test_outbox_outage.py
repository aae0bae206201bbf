"""A real PostgreSQL goes away while stage 2 writes, and comes back: nothing is lost, nothing
is written twice, the trigger is published once.

The server is this test's own (own port, own cluster under the test's run dir), started and
stopped with :mod:`driftline.local.postgres`: the shared server other tests use stays up.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from driftline.local import postgres
from storage import make_engine, session_factory, upgrade
from storage.repository import upsert_model
from stream_app.outbox_relay import OutboxRelay, SqlTriggerOutbox
from stream_app.results import WindowOutcome
from stream_app.sql_writer import SqlResultWriter, Transactions
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.outage import WINDOWS, run_stream
from tests.stream_app.test_outcome import RUNTIME, _dump

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def own_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The port of a PostgreSQL server only this test uses."""
    port = _free_port()
    monkeypatch.setenv("DRIFTLINE_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DRIFTLINE_POSTGRES_PORT", str(port))
    quiet = lambda line: None  # noqa: E731
    home = postgres.PostgresConfig.from_env(port).home
    postgres.start(port, report=quiet)
    try:
        yield port
    finally:
        postgres.stop(port, report=quiet)
        shutil.rmtree(home, ignore_errors=True)


class GatedWriter(SqlResultWriter):
    """Holds stage 2 after its second window until the test has stopped the server."""

    def __init__(self, transactions: Transactions) -> None:
        super().__init__(transactions)
        self.committed = 0
        self.two_committed = asyncio.Event()
        self.server_stopped = asyncio.Event()

    async def commit_window(self, outcome: WindowOutcome) -> int:
        new = await super().commit_window(outcome)
        self.committed += 1
        if self.committed == 2:
            self.two_committed.set()
            await self.server_stopped.wait()
        return new


def _pipeline(sessions: Any, writer: SqlResultWriter) -> LocalPipeline:
    pipeline = LocalPipeline(RUNTIME, 2)
    pipeline.use_writer(writer)
    outbox = SqlTriggerOutbox(
        Transactions(sessions, "the outbox relay", first_delay=0.05, max_delay=0.5)
    )
    pipeline.relay = OutboxRelay([(outbox, pipeline._publish)], owner="test-relay")
    return pipeline


def _migrated(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine).begin() as session:
        upsert_model(session, scenario.MODEL_ID, scenario.model_config().model_dump(mode="json"))
    return engine


def test_stage2_waits_out_a_postgres_outage_and_loses_nothing(
    own_postgres: int, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = own_postgres
    engine = _migrated(postgres.create_database("outage", port=port))
    sessions = session_factory(engine)
    writer = GatedWriter(Transactions(sessions, "stage 2", first_delay=0.05, max_delay=0.5))
    pipeline = _pipeline(sessions, writer)
    quiet = lambda line: None  # noqa: E731
    timings: dict[str, float] = {}

    async def outage() -> None:
        await writer.two_committed.wait()
        began = time.monotonic()
        await asyncio.to_thread(postgres.stop, port, report=quiet)
        timings["stop"] = time.monotonic() - began
        writer.server_stopped.set()
        while writer.transactions.waits == 0:  # stage 2 is now waiting for the database
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        restart = time.monotonic()
        await asyncio.to_thread(postgres.start, port, report=quiet)
        timings["start"] = time.monotonic() - restart
        timings["down"] = time.monotonic() - began

    async def main() -> None:
        await asyncio.gather(run_stream(pipeline), outage())

    with caplog.at_level(logging.INFO, logger="storage.transactions"):
        asyncio.run(main())

    # The same results as a run that never lost its database (SQLite here).
    clean_engine = _migrated(sqlite_url)
    clean = _pipeline(session_factory(clean_engine), SqlResultWriter(session_factory(clean_engine)))
    asyncio.run(run_stream(clean))
    stored = _dump(engine)
    assert stored == _dump(clean_engine)
    assert len(stored["windows"]) == WINDOWS and len(stored["triggers"]) == 1
    assert [t.trigger_id for t in pipeline.published] == [stored["triggers"][0][0]]

    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    waiting = [m for level, m in lines if level == "WARNING" and m.startswith("stage 2 is waiting")]
    back = [m for level, m in lines if level == "INFO" and m.startswith("stage 2: the database")]
    assert len(waiting) == 1 and len(back) == 1, lines
    assert f"127.0.0.1:{port}/outage" in waiting[0]
    print(f"\noutage timings: {timings}; {back[0]}")  # shown with -s, for the docs
    engine.dispose()
    clean_engine.dispose()
