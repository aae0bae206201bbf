"""Stage 1 and stage 2 wired together in memory: the stream's logic without a broker.

Unit tests only: the integration tests run the same stages inside Faust on a real broker.
Messages between the stages are delivered in order, partition by partition, as Kafka would.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from detectors import ReferenceProfile
from schemas.outbound import RetrainTrigger
from stream_app import messages
from stream_app.counters import Counters
from stream_app.registry import ModelRegistry, ModelRuntime
from stream_app.results import ReportRows
from stream_app.stage1 import InputMessage, Stage1, Stage1Sink, join_partition
from stream_app.stage2 import Stage2
from stream_app.state_store import MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingWriter:
    windows: dict[tuple[str, float], ReportRows] = field(default_factory=dict)
    revisions: list[tuple[str, float, ReportRows]] = field(default_factory=list)
    late: dict[tuple[str, float], int] = field(default_factory=dict)
    triggers: dict[str, RetrainTrigger] = field(default_factory=dict)
    published: set[str] = field(default_factory=set)
    profiles: list[tuple[str, ReferenceProfile, str]] = field(default_factory=list)

    async def write_window(self, model_id: str, start: float, end: float, rows: ReportRows) -> None:
        self.windows[(model_id, start)] = rows
        self.late[(model_id, start)] = rows.n_late

    async def write_quality(
        self, model_id: str, start: float, end: float, rows: ReportRows
    ) -> None:
        self.revisions.append((model_id, start, rows))

    async def set_late(self, model_id: str, start: float, end: float, total: int) -> None:
        self.late[(model_id, start)] = total

    async def save_trigger(self, trigger: RetrainTrigger) -> bool:
        if trigger.trigger_id in self.triggers:
            return trigger.trigger_id not in self.published
        self.triggers[trigger.trigger_id] = trigger
        return True

    async def mark_published(self, trigger_id: str) -> None:
        self.published.add(trigger_id)

    async def save_profile(self, model_id: str, profile: ReferenceProfile, source: str) -> None:
        self.profiles.append((model_id, profile, source))


class LocalPipeline:
    def __init__(
        self,
        runtime: ModelRuntime,
        n_partitions: int = 1,
        idle_timeout: float = 5.0,
        auto_register: Any = None,
        decode_threads: int = 1,
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
        self.offsets: dict[int, int] = {}
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
        self.stage2 = Stage2(
            self.registry, MemoryStore(), self.writer, self._publish, self.counters
        )

    async def _to_stage2(self, key: str | None, value: bytes, partition: int | None) -> None:
        self.to_stage2.append((key, value, partition))

    async def _dead_letter(self, message: InputMessage, reason: str) -> None:
        self.dead_letters.append((message, reason))

    async def _forward(self, partition: int, value: bytes) -> None:
        self.forwarded.append((partition, value))

    async def _publish(self, trigger: RetrainTrigger) -> None:
        self.published.append(trigger)

    def message(
        self, kind: Any, key: str, value: bytes, partition: int | None = None
    ) -> InputMessage:
        p = join_partition(key, self.n_partitions) if partition is None else partition
        offset = self.offsets.get(p, 0)
        self.offsets[p] = offset + 1
        return InputMessage(kind, f"{kind}s", p, offset, key.encode(), value)

    async def feed_predictions(self, events: Iterable[Any]) -> None:
        """One batch of single-event prediction messages (``scenario.Event``s)."""
        await self.feed(
            self.message("prediction", e.prediction_id, e.prediction_json()) for e in events
        )

    async def feed(self, batch: Iterable[InputMessage]) -> None:
        await self.stage1.process(list(batch))
        await self.deliver()

    async def deliver(self) -> None:
        while self.forwarded or self.to_stage2:
            forwarded, self.forwarded = self.forwarded, []
            if forwarded:
                joins = [
                    self.message("join", "", value, partition) for partition, value in forwarded
                ]
                await self.stage1.process(joins)
            pending, self.to_stage2 = self.to_stage2, []
            for _key, value, _partition in pending:
                await self.stage2.handle(0, messages.decode(value))

    async def idle(self, seconds: float) -> None:
        """Let wall-clock time pass with no events, then run the timer."""
        self.clock.now += seconds
        await self.stage1.tick(list(range(self.n_partitions)))
        await self.deliver()
        await self.stage2.tick([0])
        await self.deliver()
