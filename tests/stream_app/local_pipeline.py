"""Stage 1 and stage 2 wired together in memory: the stream's logic without a broker.

Unit tests only: the integration tests run the same stages inside Faust on a real broker.
Messages between the stages are delivered in order, partition by partition, as Kafka would.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors import ReferenceProfile
from schemas.outbound import RetrainTrigger
from storage.rows import TriggerRow
from stream_app import messages
from stream_app.counters import Counters
from stream_app.label_join import join_partition
from stream_app.outbox_relay import OutboxMessage, OutboxRelay, trigger_message
from stream_app.registry import ModelRegistry, ModelRuntime
from stream_app.results import QualityRevision, ReportRows, WindowOutcome
from stream_app.revision_pace import RevisionPace
from stream_app.stage1 import Stage1, Stage1Sink
from stream_app.stage1_inputs import InputMessage, StageInput
from stream_app.stage2 import ResultWriter, Stage2
from stream_app.state_store import MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingWriter:
    """Stage 2's writer in memory; its ``triggers`` are the outbox (see :class:`MemoryOutbox`).

    ``fail`` is called with the operation's name before each one; a test makes it raise to
    stand for a write that did not commit.
    """

    windows: dict[tuple[str, float], ReportRows] = field(default_factory=dict)
    revisions: list[tuple[str, float, ReportRows]] = field(default_factory=list)
    late: dict[tuple[str, float], int] = field(default_factory=dict)
    triggers: dict[str, TriggerRow] = field(default_factory=dict)
    published: set[str] = field(default_factory=set)
    profiles: list[tuple[str, ReferenceProfile, str]] = field(default_factory=list)
    empty: list[WindowOutcome] = field(default_factory=list)  # windows without events
    fail: Any = None

    def _attempt(self, operation: str) -> None:
        if self.fail is not None:
            self.fail(operation)

    def _outbox(self, rows: tuple[TriggerRow, ...]) -> int:
        new = [row for row in rows if row.trigger_id not in self.triggers]
        self.triggers.update((row.trigger_id, row) for row in new)
        return len(new)

    async def commit_window(self, outcome: WindowOutcome) -> int:
        self._attempt("commit_window")
        if not outcome.write_results:
            self.empty.append(outcome)
            return 0
        self.windows[(outcome.model_id, outcome.start)] = outcome.rows
        self.late[(outcome.model_id, outcome.start)] = outcome.rows.n_late
        return self._outbox(outcome.triggers)

    async def commit_revision(self, revision: QualityRevision) -> int:
        self._attempt("commit_revision")
        self.revisions.append((revision.model_id, revision.start, revision.rows))
        return self._outbox(revision.triggers)

    async def set_late(self, model_id: str, start: float, end: float, total: int) -> None:
        self._attempt("set_late")
        self.late[(model_id, start)] = total

    async def save_profile(self, model_id: str, profile: ReferenceProfile, source: str) -> None:
        self._attempt("save_profile")
        self.profiles.append((model_id, profile, source))


class MemoryOutbox:
    """The relay's view of a :class:`RecordingWriter`'s triggers (no leases: one relay)."""

    name = "retraining triggers"

    def __init__(self, writer: RecordingWriter) -> None:
        self.writer = writer

    async def claim(self, owner: str, lease_seconds: float, limit: int) -> list[OutboxMessage]:
        rows = [
            row for key, row in self.writer.triggers.items() if key not in self.writer.published
        ]
        return [trigger_message(row) for row in rows[:limit]]

    async def mark_sent(self, message_id: str) -> None:
        self.writer.published.add(message_id)


class LocalPipeline:
    def __init__(
        self,
        runtime: ModelRuntime,
        n_partitions: int = 1,
        idle_timeout: float = 5.0,
        auto_register: Any = None,
        decode_threads: int = 1,
        revision_seconds: float = 0.0,
    ):
        self.n_partitions = n_partitions
        self.clock = FakeClock()
        self.counters = Counters()
        self.registry = ModelRegistry(lambda m: runtime if m == runtime.model_id else None, 1e9)
        self.to_stage2: list[tuple[str | None, bytes, int | None]] = []
        self.forwarded: list[tuple[int, bytes]] = []
        self.dead_letters: list[tuple[InputMessage, str]] = []
        self.published: list[RetrainTrigger] = []
        self.writer = RecordingWriter()
        self.offsets: dict[tuple[str, int], int] = {}  # next offset per (topic kind, partition)
        self.stage1 = Stage1(
            self.registry,
            MemoryStore(),
            MemoryStore(),
            Stage1Sink(self._to_stage2, self._dead_letter, self._forward, 1),
            n_partitions=n_partitions,
            idle_timeout=idle_timeout,
            counters=self.counters,
            clock=self.clock,
            auto_register=auto_register,
            decode_threads=decode_threads,
        )
        pace = RevisionPace(revision_seconds, self.clock) if revision_seconds else None
        self.stage2 = Stage2(self.registry, MemoryStore(), self.writer, self.counters, pace)
        self.relay = OutboxRelay([(MemoryOutbox(self.writer), self._publish)], owner="local")

    async def _to_stage2(self, key: str | None, value: bytes, partition: int | None) -> None:
        self.to_stage2.append((key, value, partition))

    async def _dead_letter(self, message: InputMessage, reason: str) -> None:
        self.dead_letters.append((message, reason))

    async def _forward(self, partition: int, value: bytes) -> None:
        self.forwarded.append((partition, value))

    async def _publish(self, message: OutboxMessage) -> None:
        self.published.append(RetrainTrigger.from_json_bytes(message.value))

    def use_writer(self, writer: ResultWriter) -> None:
        """Stage 2 writes through ``writer`` (e.g. a real SQL writer) from now on."""
        self.stage2.writer = writer

    def message(
        self, kind: Any, key: str, value: bytes, partition: int | None = None
    ) -> InputMessage:
        p = join_partition(key, self.n_partitions) if partition is None else partition
        offset = self.offsets.get((kind, p), 0)
        self.offsets[(kind, p)] = offset + 1
        return InputMessage(kind, f"{kind}s", p, offset, key.encode(), value)

    async def feed_predictions(self, events: Iterable[Any]) -> None:
        """One batch of single-event prediction messages (``scenario.Event``s)."""
        await self.feed(
            self.message("prediction", e.prediction_id, e.prediction_json()) for e in events
        )

    async def feed(self, batch: Iterable[StageInput]) -> None:
        await self.stage1.process(list(batch))
        await self.deliver()

    async def deliver(self, forwarded: bool = True) -> None:
        """What stage 1 sent; ``forwarded=False`` holds the label-join topic back unread."""
        while (forwarded and self.forwarded) or self.to_stage2:
            sent, self.forwarded = (self.forwarded, []) if forwarded else ([], self.forwarded)
            if sent:
                joins = [self.message("join", "", value, partition) for partition, value in sent]
                await self.stage1.process(joins)
            pending, self.to_stage2 = self.to_stage2, []
            # In batches as the stage-2 agent takes them (``take_events(500, ...)``).
            for start in range(0, len(pending), 500):
                chunk = pending[start : start + 500]
                await self.stage2.handle_batch(
                    [
                        (0, message, None)
                        for _key, value, _partition in chunk
                        for message in messages.decode_all(value)
                    ]
                )

    async def idle(self, seconds: float) -> None:
        """Let wall-clock time pass with no events, then run the timers (the relay's too)."""
        self.clock.now += seconds
        await self.stage1.tick(list(range(self.n_partitions)))
        await self.deliver()
        await self.stage2.tick([0])
        await self.deliver()
        await self.relay.run_once()


def cut_with_replays(
    messages: Sequence[InputMessage], cuts: Sequence[int], rng: random.Random, rounds: int
) -> list[tuple[list[InputMessage], bool]]:
    """``messages`` cut into batches of the sizes ``cuts`` names (cycled ``rounds`` times, the
    rest one batch), each marked to be read twice (a replay) one time in five."""
    plan: list[tuple[list[InputMessage], bool]] = []
    start = 0
    for cut in list(cuts) * rounds:
        if start >= len(messages):
            break
        plan.append((list(messages[start : start + cut]), rng.random() < 0.2))
        start += cut
    if start < len(messages):
        plan.append((list(messages[start:]), False))
    return plan
