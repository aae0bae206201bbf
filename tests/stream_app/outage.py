"""Database outages and worker crashes for the stage-2 outbox tests, without a broker.

- :class:`FlakySessions`: a session factory whose transactions run their work and then fail
  with the error a refused connection gives, as often as a test says: what stage 2's
  writer sees while the database is down.
- :func:`run_stream`: a small stream (drift from window 2, delayed labels) fed through a
  :class:`~tests.stream_app.local_pipeline.LocalPipeline`, where a stage-2 message or a
  timer tick that raised :class:`WorkerCrashError` is handled again, as Kafka redelivers a message a
  crashed worker never acknowledged.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from stream_app import messages
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline

T = TypeVar("T")
WINDOWS, PER_WINDOW, DRIFT_FROM = 6, 150, 2


class WorkerCrashError(Exception):
    """The worker died here (the test catches it and carries on as a restarted worker)."""


def refused() -> OperationalError:
    return OperationalError(
        "COMMIT", {}, ConnectionRefusedError("connection refused\nIs the server running?")
    )


class FlakySessions:
    """A ``sessionmaker`` stand-in: each transaction fails ``fail_each`` times in a row before
    one commits (the work runs and is rolled back); while ``down`` every one fails."""

    def __init__(self, real: sessionmaker[Session], fail_each: int = 0) -> None:
        self.real = real
        self.kw = real.kw
        self.fail_each = fail_each
        self.down = False
        self.failures = 0
        self.commits = 0
        self._streak = 0

    @contextmanager
    def begin(self) -> Iterator[Session]:
        with self.real.begin() as session:
            yield session
            if self.down or self._streak < self.fail_each:
                self._streak += 1
                self.failures += 1
                raise refused()
        self._streak = 0
        self.commits += 1


async def retrying(step: Callable[[], Awaitable[T]]) -> T:
    """Run ``step`` until it does not crash (a restarted worker does the same work again)."""
    while True:
        try:
            return await step()
        except WorkerCrashError:
            continue


async def deliver(pipeline: LocalPipeline) -> None:
    """:meth:`LocalPipeline.deliver`, where a stage-2 message that crashed is redelivered."""
    while pipeline.forwarded or pipeline.to_stage2:
        forwarded, pipeline.forwarded = pipeline.forwarded, []
        if forwarded:
            joins = [pipeline.message("join", "", value, p) for p, value in forwarded]
            await pipeline.stage1.process(joins)
        pending, pipeline.to_stage2 = pipeline.to_stage2, []
        for _key, value, _partition in pending:
            for message in messages.decode_all(value):
                await retrying(functools.partial(pipeline.stage2.handle, 0, message))


async def idle(pipeline: LocalPipeline, seconds: float) -> None:
    pipeline.clock.now += seconds
    await pipeline.stage1.tick(list(range(pipeline.n_partitions)))
    await deliver(pipeline)
    await retrying(lambda: pipeline.stage2.tick([0]))
    await deliver(pipeline)
    await retrying(pipeline.relay.run_once)


async def run_stream(pipeline: LocalPipeline) -> None:
    """Predictions window by window; 40 % labeled two windows later (revising final ones)."""
    rng = np.random.default_rng(7)
    delayed: dict[int, list[scenario.Event]] = defaultdict(list)
    by_window: dict[int, list[scenario.Event]] = defaultdict(list)
    for event in scenario.events(WINDOWS, PER_WINDOW, DRIFT_FROM, decay_from=99):
        by_window[event.window].append(event)
    for w in range(WINDOWS):
        batch = [
            pipeline.message("label", e.prediction_id, e.label_json()) for e in delayed.pop(w, [])
        ]
        for e in by_window[w]:
            if rng.random() < 0.4:
                delayed[w + 2].append(e)
            batch.append(pipeline.message("prediction", e.prediction_id, e.prediction_json()))
        await pipeline.stage1.process(batch)
        await deliver(pipeline)
        await idle(pipeline, 0.0)
    await idle(pipeline, 60.0)
    rest = [e for events in delayed.values() for e in events]
    await pipeline.stage1.process(
        [pipeline.message("label", e.prediction_id, e.label_json()) for e in rest]
    )
    await deliver(pipeline)
    await idle(pipeline, 0.0)


def window_start(w: int) -> float:
    return scenario.START + w * scenario.WINDOW


def fingerprint(pipeline: LocalPipeline) -> dict[str, Any]:
    """What a run wrote through a recording writer, without wall-clock times."""
    windows = {
        start: (
            rows.window.n_rows,
            rows.n_late,
            sorted((r.feature, r.method, r.score) for r in rows.drift),
            sorted((m.metric, m.value) for m in rows.metrics),
        )
        for (_, start), rows in pipeline.writer.windows.items()
    }
    # A set: a revision committed again with the same labels changes nothing in SQL
    # (storage.revisions), while the recording writer lists every commit.
    revisions = sorted(
        {(start, rows.window.quality_revision) for _, start, rows in pipeline.writer.revisions}
    )
    return {
        "windows": windows,
        "revisions": revisions,
        "triggers": sorted(pipeline.writer.triggers),
    }
