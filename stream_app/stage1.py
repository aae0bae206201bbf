"""Stage 1, per input partition: validate, count into partial window states, join labels.

One call of :meth:`Stage1.process` handles a batch of messages from the predictions,
labels and label-join topics (any mix of partitions). For each prediction it

1. parses and validates the message (a bad one goes to the dead-letter topic, with the
   reason, and the batch goes on);
2. assigns it to its model's event-time window; a window already closed in this partition
   makes it *late*: counted and reported to stage 2, not added;
3. collects its values per (partition, model, window), so each window state is updated
   once per batch with columns, which is where the cost per event stays low;
4. keeps a compact summary (window, prediction, score) for the label join, keyed by
   prediction id, until the label horizon passes.

Labels are joined to summaries (in either order of arrival) and the labeled pairs go to
stage 2 for the window of the *prediction*. Windows whose end plus allowed lateness the
partition's watermark has passed are sent to stage 2 and dropped from the table, followed
by the partition's watermark, so stage 2 can tell when every partition is past a window.

Predictions and labels are joined on the partition a ``prediction_id`` hashes to with
Kafka's default partitioner (murmur2). A prediction that arrives elsewhere (a batch
envelope, keyed by anything) has its summary forwarded on the label-join topic to that
partition, where its label will arrive.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
import orjson
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from detectors import WindowState
from detectors.encoding import BinnedColumn
from driftline.errors import InvalidEventError, StorageUnavailableError
from schemas.control import is_control, parse_end_of_stream
from schemas.events import LabelColumns, PredictionEvent
from schemas.fast_batch import (
    EnvelopeColumns,
    FeatureColumn,
    SingleEvent,
    parse_envelope,
    parse_single,
)
from schemas.parsing import parse_label_columns, parse_prediction_message
from schemas.typed_envelope import SINGLES_TAIL, ModelEnvelopeDecoder, peek_model_id
from stream_app import baseline, messages, window_stamps
from stream_app import table_keys as keys
from stream_app.counters import Counters
from stream_app.dedup import WindowDedup, envelope_identity
from stream_app.forward_buffer import ForwardBuffer
from stream_app.input_order import HoleGuard
from stream_app.join_entries import summary_of
from stream_app.label_join import (
    KEEP_FORWARDED_FROM_ROWS,
    Joined,
    JoinedColumns,
    LabelJoin,
    WindowPairs,
    join_partition,
    join_partitions,
)
from stream_app.label_runs import LabelRun, fetch_run, label_runs
from stream_app.partition_clocks import PartitionClocks
from stream_app.registry import ModelRegistry, ModelRuntime
from stream_app.segment_spill import SegmentSpill
from stream_app.stage1_inputs import (
    CertifiedRun,
    FetchedEvents,
    FetchedLabels,
    FetchedRecords,
    InputMessage,
    StageInput,
    TopicKind,
    last_offset_of,
)
from stream_app.state_store import PartitionedStore
from stream_app.summary_columns import (
    Summary,
    SummaryColumnsIn,
    is_summary_segment,
)
from stream_app.task_checks import TaskCheck
from stream_app.window_chunks import joined_chunks
from stream_app.windows import PartitionClock, window_closes_at, window_start

log = logging.getLogger(__name__)

# Errors that say nothing about the message being processed: the batch is not acknowledged.
_Job = TypeVar("_Job")
_Result = TypeVar("_Result")
_Value = TypeVar("_Value")

NOT_THE_MESSAGES_FAULT: tuple[type[BaseException], ...] = (
    StorageUnavailableError,
    SQLAlchemyError,
    KafkaError,
)

# How a topic is named in checkpoints and in the origins of what stage 1 sends.
ORIGIN_OF: dict[str, str] = {"prediction": "p", "label": "l", "join": "j"}
KIND_OF: dict[str, str] = {origin: kind for kind, origin in ORIGIN_OF.items()}
_KIND_ORDER: dict[str, int] = {"label": 0, "join": 1, "prediction": 2}
# Most summaries per label-join message: ~156 KB with 36-character ids, ~606 KB with the
# longest ids the contract allows (256), so under Kafka's 1 MB default. Twice the smallest
# segment a receiver keeps as it is: cut in even chunks, more than this many rows make
# chunks of at least that many.
FORWARD_CHUNK = 2 * KEEP_FORWARDED_FROM_ROWS
# The columns of the JSON form that versions before 2026-12-03 forwarded (still read),
# named as a summary's table entry names them; the origin is the label-join message itself.
FORWARDED_COLUMNS = ("m", "ws", "we", "y", "s", "x")


@dataclass
class Stage1Sink:
    """Where stage 1 sends things (the Faust wiring or a test double).

    Each call queues a message and may return an awaitable that resolves once the broker
    has it: stage 1 waits for those before it writes the state that follows from them.
    """

    to_stage2: Callable[[str | None, bytes, int | None], Awaitable[Awaitable[Any] | None]]
    dead_letter: Callable[[InputMessage, str], Awaitable[Awaitable[Any] | None]]
    # (target partition, summaries)
    forward_join: Callable[[int, bytes], Awaitable[Awaitable[Any] | None]]
    stage2_partitions: int
    # Read (topic kind, partition) again from an offset, when input skipped ahead of what
    # stage 1 processed; returns the offset reading resumes at (higher when the log no
    # longer holds the one asked for). None: no consumer to ask; a gap is only logged.
    rewind: Callable[[str, int, int], Awaitable[int]] | None = None


@dataclass(frozen=True)
class _Run:
    """Consecutive single-event messages decoded at once (positions in their batch)."""

    runtime: ModelRuntime
    columns: EnvelopeColumns
    indexes: tuple[int, ...]
    offsets: tuple[int, ...]  # of each row's message (a run is one partition)


@dataclass
class _Batch:
    """What one batch accumulates before the state is written once."""

    rows: dict[tuple[int, str, float], list[PredictionEvent]] = field(
        default_factory=lambda: defaultdict(list)
    )
    singles: dict[tuple[int, str, float], list[SingleEvent]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Column chunks from batch envelopes, already in the shape WindowState.update takes.
    columns: dict[tuple[int, str, float], list[Mapping[str, FeatureColumn | BinnedColumn]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Labeled pairs by (partition, model, window), as columns: what identifies a pair
    # (see messages).
    labeled: dict[tuple[int, str, float, float], WindowPairs] = field(default_factory=dict)
    # Late events by (partition, model, window): {offset of their predictions message: n}.
    late: dict[tuple[int, str, float, float], dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    partitions: set[int] = field(default_factory=set)
    # Prediction summaries for other partitions' label joins, by target partition.
    forward: dict[int, ForwardBuffer] = field(default_factory=lambda: defaultdict(ForwardBuffer))


class Stage1:
    """Partition-local processing; state lives in two changelog-backed stores."""

    def __init__(
        self,
        registry: ModelRegistry,
        windows: PartitionedStore,
        joins: PartitionedStore,
        sink: Stage1Sink,
        n_partitions: int,
        idle_timeout: float,
        counters: Counters,
        clock: Callable[[], float] | None = None,
        auto_register: Callable[[PredictionEvent], Awaitable[ModelRuntime | None]] | None = None,
        decode_threads: int = 1,
        max_future_seconds: float = 86_400.0,
        wall_clock: Callable[[], float] = time.time,
        spill: SegmentSpill | None = None,
    ) -> None:
        self.registry = registry
        # One event stamped in year 2199 would move its partition's watermark there and
        # make every later event of the partition late: such times are refused instead.
        self.max_future_seconds = max_future_seconds
        self.wall_clock = wall_clock
        # The native decoder releases the GIL while it parses: a batch's envelopes are
        # decoded on this many threads at once (one: in the event loop, as everything else).
        self._decode_pool = (
            ThreadPoolExecutor(decode_threads, thread_name_prefix="driftline-decode")
            if decode_threads > 1
            else None
        )
        self.auto_register = auto_register
        self.windows = windows
        self.dedup = WindowDedup(windows)
        self.joins = joins
        self.join = LabelJoin(joins, n_partitions, counters, spill)
        self.sink = sink
        self.n_partitions = n_partitions
        self.idle_timeout = idle_timeout
        self.counters = counters
        self.clocks = PartitionClocks(windows, idle_timeout, clock)
        # Latest model version seen per (partition, model): reported with the partial so a
        # retraining trigger can name the version that drifted. Not persisted: the next
        # event brings it back.
        self.versions: dict[tuple[int, str], str] = {}
        self._heartbeats: dict[int, tuple[float, float]] = {}  # partition: (watermark, sent at)
        self.heartbeat_interval = 0.5
        # Per partition and input topic, the offset of the last message whose effects are
        # all on the changelogs (see flush); input at or below it is skipped on a replay.
        self.checkpoints: dict[int, dict[str, int]] = {}
        self._unsaved_checkpoints: set[int] = set()
        self._deliveries: list[Awaitable[Any]] = []
        # The message being processed, as (topic kind, offset): the origin of the pairs
        # and late counts it makes, by which stage 2 recognises them when sent again.
        self._origin: tuple[str, int] = ("p", -1)
        # Per partition: the highest window stamp above its checkpoint (a replay after a
        # crash in the middle of a flush; -1: none), and closed-window markers to drop
        # once a checkpoint covers them (see stream_app.window_stamps).
        self._replay_until: dict[int, int] = {}
        self._markers: dict[int, list[tuple[str, int]]] = defaultdict(list)
        self._durable_checkpoints: dict[int, dict[str, int]] = {}
        # Per (topic origin, partition): the next offset stage 1 must read (see _in_order).
        self._next_offsets: dict[tuple[str, int], int] = {}
        self._holes = self._hole_guard(sink.rewind)

    def _hole_guard(
        self, rewind: Callable[[str, int, int], Awaitable[int]] | None
    ) -> HoleGuard | None:
        if rewind is None:
            return None

        async def rewind_key(key: Hashable, offset: int) -> int:
            origin, partition = cast(tuple[str, int], key)
            return await rewind(KIND_OF[origin], partition, offset)

        def counted() -> None:
            self.counters.input_rewinds += 1

        return HoleGuard(rewind_key, counted)

    # -- clocks -------------------------------------------------------------------------

    def clock(self, partition: int) -> PartitionClock:
        """Event-time progress of the predictions of a partition."""
        return self.clocks.predictions(partition)

    def label_clock(self, partition: int) -> PartitionClock:
        """Event-time progress of the labels of a partition (its label-join entries)."""
        return self.clocks.labels(partition)

    def label_watermark(self, partition: int) -> float | None:
        """How far labels of the partition have got (see PartitionClocks.label_watermark)."""
        return self.clocks.label_watermark(partition)

    def label_progress(self, partition: int) -> tuple[float | None, bool]:
        """What the partition tells stage 2 about its labels: (watermark, still behind).

        Stage 2 retires a window once every partition's labels passed its horizon; but a
        label read before its prediction is joined only when the prediction's summary
        comes, forwarded on the label-join topic, which may be read far behind the labels
        (with whole fetches a replay's label-join topic lagged a week of event time). So
        the mark is also held to what every partition forwarded and this one has read:
        their prediction watermarks heard on the label-join topic (a partition that has
        seen no prediction forwarded nothing and holds nothing, as in stage 2's low
        watermark). Until every partition was heard there, it is behind.
        """
        labels = self.label_watermark(partition)
        if self.label_clock(partition).backlog:
            return labels, True
        all_heard, forwarded = self.join.forwarded_up_to(partition)
        if not all_heard:
            return None, True
        if labels is None or forwarded is None:
            return labels, False
        return min(labels, forwarded), False

    def checkpoint(self, partition: int) -> dict[str, int]:
        """The partition's checkpoint: {topic kind: last offset applied}, from its store."""
        found = self.checkpoints.get(partition)
        if found is None:
            stored = self.windows.get(keys.checkpoint_key(partition))
            found = self.checkpoints[partition] = orjson.loads(stored) if stored else {}
            self._durable_checkpoints[partition] = dict(found)
            self._restore_stamps(partition, found.get("p", -1))
        return found

    def _restore_stamps(self, partition: int, done: int) -> None:
        """After a restart: which windows hold events past the checkpoint, and the markers."""
        prefix = keys.window_prefix(partition)
        highest = -1
        self._markers.pop(partition, None)
        for key, value in self.windows.items():
            if key.startswith(prefix):
                stored = window_stamps.read(value)
                highest = max(highest, stored.stamp)
                if stored.closed:
                    self._markers[partition].append((key, stored.stamp))
        self._replay_until[partition] = highest if highest > done else -1
        self.join.restore_joined_marks(partition)

    def _replayed(self, partition: int, model_id: str, start: float, offset: int) -> str | None:
        """For an event of a replay: "applied" (its window has it), "late" (its window was
        closed after it had arrived), or None (process it)."""
        if offset > self._replay_until.get(partition, -1):
            return None
        value = self.windows.get(keys.WindowKey(partition, model_id, start).window)
        if value is None:
            return None
        stored = window_stamps.read(value)
        if offset <= stored.stamp:
            return "applied"
        return "late" if stored.closed else None

    async def _in_order(self, batch: Sequence[StageInput]) -> list[StageInput]:
        """The messages to process: each input partition's next ones, in offset order.

        A message at or below the checkpoint is skipped: its effects are in the restored
        state. A message past the next expected offset means input was skipped: Faust acks
        (and may commit) messages it drops while flow control is off or after a rebalance,
        expecting them to be read again from the committed offset, which can then be past
        them. Stage 1 asks the consumer to read again from the next expected offset and
        drops that partition's messages until that one arrives (the timer asks again every
        ``RETRY_SECONDS``: :meth:`retry_rewinds`). When the log no longer holds it
        (retention), reading goes on from the oldest offset it holds, with a warning.
        """
        fresh: list[StageInput] = []
        for message in batch:
            key = (ORIGIN_OF[message.kind], message.partition)
            if isinstance(message, FetchedRecords):
                # Certified by _certify_fetches: it starts at the expected offset and its
                # offsets follow each other, so each record would pass on its own.
                if self._holes is not None:
                    self._holes.in_order(key)
                self._next_offsets[key] = message.last_offset + 1
                fresh.append(message)
                continue
            done = self.checkpoint(message.partition).get(key[0], -1)
            expected = self._expected(key, done)
            if message.offset <= done or message.offset < expected:
                self.counters.replayed_input += 1
                continue
            if message.offset == expected:
                if self._holes is not None:  # the common case, without an await per message
                    self._holes.in_order(key)
            elif self._holes is None:
                gap = (expected, message.offset - 1)
                log.warning("%s: offsets %d to %d skipped", _tp(message), *gap)
            elif not await self._holes.passes(key, message.offset, expected, _tp(message)):
                continue
            self._next_offsets[key] = message.offset + 1
            fresh.append(message)
        return fresh

    def next_needed(self, kind: TopicKind, partition: int) -> int:
        """The next offset of a topic partition to process (0: nothing was ever processed)."""
        key = (ORIGIN_OF[kind], partition)
        return self._expected(key, self.checkpoint(partition).get(key[0], -1))

    def _expected(self, key: tuple[str, int], done: int) -> int:
        # Where reading left off, or else just past the checkpoint. Without a checkpoint,
        # nothing from the partition was ever made durable, so the first offset is next:
        # a group offset Faust committed past messages it fetched and dropped around the
        # worker's first rebalance is no reason to start later (a CI run lost the first
        # 298 messages of a partition that way). On a log whose start was deleted by
        # retention, the rewind resumes at the oldest offset it holds, with a warning.
        return self._next_offsets.get(key, done + 1)

    def durable_done(self, kind: TopicKind, partition: int) -> int | None:
        """The last offset of a topic partition whose effects are on the changelogs."""
        return self._durable_checkpoints.get(partition, {}).get(ORIGIN_OF[kind])

    async def retry_rewinds(self) -> None:
        """Ask again for every hole not filled ``RETRY_SECONDS`` after it was asked."""
        if self._holes is not None:
            await self._holes.retry()

    def forget_partitions(self, partitions: Sequence[int]) -> None:
        """Drop in-memory clocks of revoked partitions (their tables move with them)."""
        for partition in partitions:
            self.clocks.forget(partition)
            self.checkpoints.pop(partition, None)
            self._replay_until.pop(partition, None)
            self._markers.pop(partition, None)
            self.join.forget(partition)
            self._durable_checkpoints.pop(partition, None)
            for kind in ORIGIN_OF.values():
                self._next_offsets.pop((kind, partition), None)
                if self._holes is not None:
                    self._holes.forget((kind, partition))
        self.dedup.forget_partitions(list(partitions))

    # -- the batch ----------------------------------------------------------------------

    async def process(self, batch: Sequence[StageInput]) -> None:
        """Process one batch; a message that cannot be processed goes to the dead letters.

        Isolation is per message: whatever one message causes (it breaks the contract, or
        it trips an error nobody foresaw) sends that message to the dead-letter topic with
        the reason, and the rest of the batch goes on. An error that is not a message's
        fault (the database, the broker) propagates: the caller must not acknowledge the
        batch. The models the batch names are loaded first, waiting out a database outage,
        so that such an error cannot strike half-way through the batch.
        """
        batch = await self._certify_fetches(batch)
        for message in batch:
            self.clocks.read(message.kind, message.partition, last_offset_of(message))
        fresh = await self._in_order(batch)
        # One order for the same messages however a batch was cut: by partition, then
        # labels, forwarded summaries, predictions. What a batch sends then depends less on
        # where Kafka cut it, so what a replay sends again matches what went out before;
        # and a replayed label meets its own stored entry before a summary can take it.
        batch = sorted(fresh, key=lambda m: (m.partition, _KIND_ORDER[m.kind], m.offset))
        heads = _model_ids(batch)
        await self.registry.prefetch({model_id for model_id in heads if model_id is not None})
        work = _Batch()
        decoded = self._decode_envelopes(batch, heads)
        runs, in_runs = self._decode_single_runs(batch, heads)
        label_runs_found, in_label_runs = label_runs(batch, self.registry.get, self._future_error)
        in_runs |= in_label_runs
        for index, message in enumerate(batch):
            if message.kind != "join":  # forwarded summaries move no watermark of theirs
                work.partitions.add(message.partition)
            self.checkpoint(message.partition)[ORIGIN_OF[message.kind]] = last_offset_of(message)
            self._unsaved_checkpoints.add(message.partition)
            if index in in_runs:
                continue
            run: _Run | CertifiedRun | LabelRun | None = (
                message.run
                if isinstance(message, FetchedRecords)
                else runs.get(index) or label_runs_found.get(index)
            )
            self._origin = (ORIGIN_OF[message.kind], message.offset)
            try:
                await self._one(message, work, run, decoded.get(index))
            except NOT_THE_MESSAGES_FAULT:
                raise
            except Exception as exc:
                members = _members(message, run, batch)
                log.exception(
                    "unexpected error on %s[%d]@%d; dead-lettering %d message(s)",
                    message.topic,
                    message.partition,
                    message.offset,
                    len(members),
                )
                for member in members:
                    await self._reject(member, f"could not be processed: {_describe(exc)}")
            # Outside the message's isolation: the chunks hold rows of earlier messages too,
            # so an error here is not this message's fault (as at the batch's end).
            if work.forward:
                await self._forward_ready(work)
        await self._write_windows(work)
        await self._send_forwarded(work)
        await self._send_labels_and_late(work)
        for partition in sorted(work.partitions):
            await self.close_ready_windows(partition)
        await self.flush()

    async def flush(self) -> None:
        """Make what was processed durable, in the order a crash replay relies on.

        1. Everything sent (to stage 2, the label-join topic, the dead letters) is on the
           broker; 2. then the state that follows from it is on the changelogs; 3. then the
           checkpoint: the input offsets that state covers. A crash before 3 replays the
           input after the previous checkpoint (whatever Faust committed): the state writes
           repeat, and stage 2 recognises the pairs and late counts it already has by their
           origin offsets (a repeated partial, by its source partition). Input at or below
           a checkpoint is skipped, its effects being in the restored state.
        """
        deliveries, self._deliveries = self._deliveries, []
        for delivery in deliveries:
            await delivery
        # Marks the last checkpoint covers go now, with this flush: queued at the end of the
        # previous one, they could reach the changelog after a rebalance had given their
        # partition to another worker, and delete what that worker wrote since.
        self._drop_covered_markers()
        self.join.seal()
        await self.joins.flush()
        # One changelog partition per input partition keeps these in order, so whatever
        # part of them a crash lets through is a prefix: window states and closed markers
        # (stamped), then dedup identities, then the watermarks, then the checkpoint.
        self.dedup.save()
        for partition in sorted(self._unsaved_checkpoints):
            self.clocks.save(partition)
            checkpoint = orjson.dumps(self.checkpoint(partition))
            self.windows.set(partition, keys.checkpoint_key(partition), checkpoint)
        saved = {p: dict(self.checkpoint(p)) for p in self._unsaved_checkpoints}
        self._unsaved_checkpoints.clear()
        await self.windows.flush()
        self._durable_checkpoints.update(saved)

    def _drop_covered_markers(self) -> None:
        # By the durable checkpoint: a mark outliving its use by a batch is harmless.
        self.join.drop_covered(lambda p: self._durable_checkpoints.get(p, {}).get("l", -1))
        for partition, markers in self._markers.items():
            done = self._durable_checkpoints.get(partition, {}).get("p", -1)
            for key, _ in [m for m in markers if m[1] <= done]:
                if window_stamps.read(self.windows.get(key) or b"").closed:
                    self.windows.delete(partition, key)
            markers[:] = [m for m in markers if m[1] > done]

    async def _one(
        self,
        message: StageInput,
        work: _Batch,
        run: _Run | CertifiedRun | LabelRun | None,
        columns: EnvelopeColumns | None,
    ) -> None:
        if isinstance(message, FetchedEvents):
            assert isinstance(run, CertifiedRun)  # certified before it was let in
            offsets = message.columns.offsets.tolist()
            await self._envelope(
                message.partition, run.runtime, run.columns, work, singles=True, offsets=offsets
            )
        elif isinstance(message, FetchedLabels):
            assert isinstance(run, LabelRun)  # certified before it was let in
            await self._label(message, work, run)
        elif message.kind == "label":
            await self._label(message, work, run if isinstance(run, LabelRun) else None)
        elif message.kind == "join":
            self._forwarded_summary(message, work)
        elif is_control(message.value):
            await self._control(message)
        elif isinstance(run, _Run):
            await self._envelope(
                message.partition, run.runtime, run.columns, work, singles=True, offsets=run.offsets
            )
        else:
            await self._prediction(message, work, columns)

    def _future_error(self, latest: float) -> str | None:
        """Why an event time cannot be believed, if it is too far ahead of the clock."""
        ahead = latest - self.wall_clock()
        if ahead <= self.max_future_seconds:
            return None
        return (
            f"timestamp is {ahead / 86_400:.1f} days ahead of the worker's clock (more than "
            f"{self.max_future_seconds:g} s): check the producer's clock and time unit"
        )

    async def _control(self, message: InputMessage) -> None:
        """An end-of-stream marker: the partition's watermark moves to the time it names."""
        try:
            watermark = parse_end_of_stream(message.value)
        except InvalidEventError as exc:
            await self._reject(message, str(exc))
            return
        if watermark is not None:
            reason = self._future_error(watermark)
            if reason is not None:
                await self._reject(message, reason)
                return
            self.clock(message.partition).observe(watermark)
            self.counters.end_of_stream_markers += 1

    async def _prediction(
        self,
        message: InputMessage,
        work: _Batch,
        columns: EnvelopeColumns | None = None,
    ) -> None:
        # Plain messages take a fast path (envelopes were decoded ahead, by the batch);
        # anything it cannot certify, and every model still building its baseline, takes
        # the strict parser below.
        if b'"records"' in message.value:
            runtime = self.registry.get(columns.model_id) if columns is not None else None
            if columns is not None and runtime is not None and runtime.profile is not None:
                reason = _outcome_error(runtime, columns) or self._future_error(
                    float(columns.timestamps.max())
                )
                if reason is not None:
                    await self._reject(message, reason)
                    return
                await self._envelope(message.partition, runtime, columns, work, singles=False)
                return
        else:
            single = parse_single(message.value)
            runtime = self.registry.get(single.model_id) if single is not None else None
            if single is not None and runtime is not None and runtime.profile is not None:
                reason = _outcome_error(runtime, single) or self._future_error(single.timestamp)
                if reason is not None:
                    await self._reject(message, reason)
                    return
                await self._single(message.partition, runtime, single, work)
                return
        try:
            events = parse_prediction_message(message.value)
        except ValueError as exc:
            await self._reject(message, str(exc))
            return
        runtime = self.registry.get(events[0].model_id)
        deleted = self.registry.deletion(events[0].model_id) if runtime is None else None
        if runtime is None and deleted is None and self.auto_register is not None:
            runtime = await self.auto_register(events[0])
        if runtime is None:
            await self._reject(message, _no_model(self.registry, events[0].model_id))
            return
        reason = self._future_error(max(event.timestamp.timestamp() for event in events))
        if reason is None and runtime.task_check is not None:
            reason = runtime.task_check.predictions_error(
                [event.prediction for event in events], [event.score for event in events]
            )
        if reason is not None:
            await self._reject(message, reason)
            return
        partition = message.partition
        clock = self.clock(partition)
        if events[-1].model_version:
            self.versions[(partition, runtime.model_id)] = events[-1].model_version
        identity = (
            envelope_identity(
                events[0].prediction_id,
                events[-1].prediction_id,
                len(events),
                events[0].timestamp.timestamp(),
            )
            if b'"records"' in message.value
            else None
        )
        replaying = self._origin[1] <= self._replay_until.get(partition, -1)
        if (
            identity is not None
            and not replaying
            and not self._first_envelope_copy(partition, runtime, events, identity)
        ):
            return
        for event in events:
            timestamp = event.timestamp.timestamp()
            start = window_start(timestamp, runtime.window_seconds)
            end = start + runtime.window_seconds
            watermark = clock.watermark()
            group = (partition, runtime.model_id, start)
            verdict = (
                self._replayed(partition, runtime.model_id, start, self._origin[1])
                if replaying
                else None
            )
            if verdict == "applied":  # in its window already: only the clock moves again
                clock.observe(timestamp)
                self.dedup.first_time(group, identity or event.prediction_id)
                continue
            if verdict == "late" or (
                watermark is not None
                and window_closes_at(start, runtime.window_seconds, runtime.lateness_seconds)
                <= watermark
            ):
                work.late[(partition, runtime.model_id, start, end)][self._origin[1]] += 1
                self.counters.late += 1
                continue
            if identity is None and not self.dedup.first_time(group, event.prediction_id):
                self.counters.duplicates += 1
                continue
            clock.observe(timestamp)
            work.rows[group].append(event)
            if runtime.task is not None:
                summary = (event.prediction_id, timestamp, event.prediction, event.score)
                self._keep_summary(partition, runtime, summary, start, end, work)
        self.counters.saw_predictions(len(events))

    def _first_envelope_copy(
        self,
        partition: int,
        runtime: ModelRuntime,
        events: Sequence[PredictionEvent],
        identity: str,
    ) -> bool:
        """Whether a strictly parsed envelope was not counted before (as :meth:`_first_copies`)."""
        watermark = self.clock(partition).watermark()
        size, lateness = runtime.window_seconds, runtime.lateness_seconds
        starts = {window_start(event.timestamp.timestamp(), size) for event in events}
        open_starts = [
            start
            for start in sorted(starts)
            if watermark is None or window_closes_at(start, size, lateness) > watermark
        ]
        groups = [(partition, runtime.model_id, start) for start in open_starts]
        if all([self.dedup.first_time(group, identity) for group in groups]):
            return True
        self.counters.duplicates += len(events)
        return False

    def _decode_envelopes(
        self, batch: Sequence[StageInput], heads: Sequence[str | None]
    ) -> dict[int, EnvelopeColumns]:
        """The batch's envelopes that a fast path certifies, by position in the batch.

        The model's own decoder when the message names the model up front (on the pool when
        there is one: the native decoder parses without the GIL); the model-agnostic fast
        path when it does not, or when that decoder declines. Registry lookups stay on the
        event loop. An envelope missing from the result takes the strict parser.
        """
        jobs: list[tuple[int, ModelEnvelopeDecoder | None, bytes]] = []
        for index, message in enumerate(batch):
            if message.kind == "prediction" and b'"records"' in message.value:
                runtime = self._model_at_head(heads[index])
                decoder = runtime.envelope_decoder if runtime is not None else None
                jobs.append((index, decoder, message.value))

        def decode(job: tuple[int, ModelEnvelopeDecoder | None, bytes]) -> EnvelopeColumns | None:
            return job[1].decode(job[2]) if job[1] is not None else None

        results = self._decoded(decode, jobs)
        decoded: dict[int, EnvelopeColumns] = {}
        for (index, _, raw), columns in zip(jobs, results, strict=True):
            found = columns if columns is not None else parse_envelope(raw)
            if found is not None:
                decoded[index] = found
        return decoded

    async def _certify_fetches(self, batch: Sequence[StageInput]) -> list[StageInput]:
        """The batch, each fetch either certified whole or taken apart.

        A fetch stays whole (with its decoded run) when the per-message path would take
        each of its records, in order, as one run: it starts at its topic partition's next
        expected offset, its offsets follow each other, and its records are one model's
        plain single events that the model's decoder certifies (the same decoder and checks
        as :meth:`_decode_single_runs`), or single labels that :func:`label_runs` would
        join as one run. Anything else takes the per-message path, record by record, which
        gives each record its precise answer.
        """
        fetched = [m for m in batch if isinstance(m, FetchedRecords)]
        if not fetched:
            return list(batch)
        heads = {id(m): peek_model_id(m.value) for m in fetched}
        await self.registry.prefetch({h for h in heads.values() if h is not None})
        runs = self._decode_fetches([m for m in fetched if isinstance(m, FetchedEvents)], heads)
        certified: list[StageInput] = []
        expected: dict[tuple[TopicKind, int], int | None] = {}  # past the fetches before
        for message in batch:
            if not isinstance(message, FetchedRecords):
                certified.append(message)
                continue
            line = (message.kind, message.partition)
            message.run = None
            if self._next_in_line(message, expected):
                message.run = (
                    runs.get(id(message))
                    if isinstance(message, FetchedEvents)
                    else fetch_run(message, self.registry.get, self._future_error)
                )
            if message.run is not None:
                expected[line] = message.last_offset + 1
                certified.append(message)
                self._count_whole(message)
            else:
                expected[line] = None  # what follows is decided message by message
                certified.extend(message.messages())
                self.counters.fetches_taken_apart += 1
        return certified

    def _count_whole(self, message: FetchedRecords) -> None:
        if isinstance(message, FetchedLabels):
            self.counters.whole_label_fetches += 1
        else:
            self.counters.whole_fetch_runs += 1

    def _next_in_line(
        self, message: FetchedRecords, expected: Mapping[tuple[TopicKind, int], int | None]
    ) -> bool:
        """Whether a fetch starts at its topic partition's next expected offset (after the
        fetches before it in the batch, ``expected``), its offsets follow each other, and
        nothing in it was processed before."""
        line = (message.kind, message.partition)
        key = (ORIGIN_OF[message.kind], message.partition)
        done = self.checkpoint(message.partition).get(key[0], -1)
        next_offset = expected[line] if line in expected else self._expected(key, done)
        return (
            next_offset is not None
            and message.offset == next_offset
            and message.offset > done
            and message.columns.contiguous
        )

    def _decode_fetches(
        self, fetched: Sequence[FetchedEvents], heads: Mapping[int, str | None]
    ) -> dict[int, CertifiedRun]:
        """The fetches whose records the model's decoder certifies as its plain single
        events, by ``id``; on the pool when there is one (the native decoder reads without
        the GIL, so two fetches decode at once, and the consumer thread runs meanwhile)."""
        jobs: list[tuple[FetchedEvents, ModelRuntime, ModelEnvelopeDecoder]] = []
        for message in fetched:
            runtime = self._single_event_model(message.value, heads[id(message)])
            if runtime is None or runtime.envelope_decoder is None:
                continue
            if message.columns.contiguous:
                jobs.append((message, runtime, runtime.envelope_decoder))

        def decode(job: tuple[FetchedEvents, ModelRuntime, ModelEnvelopeDecoder]) -> Any:
            message, _, decoder = job
            joined = message.columns.joined(decoder.singles_head, SINGLES_TAIL)
            return decoder.decode_joined(*joined) if joined is not None else None

        results = self._decoded(decode, jobs)
        runs: dict[int, CertifiedRun] = {}
        for (message, runtime, _), decoded in zip(jobs, results, strict=True):
            if (
                decoded is not None
                and _outcome_error(runtime, decoded) is None
                and self._future_error(float(decoded.timestamps.max())) is None
            ):
                runs[id(message)] = CertifiedRun(runtime, decoded)
        return runs

    def _decoded(
        self, decode: Callable[[_Job], _Result], jobs: Sequence[_Job]
    ) -> Iterable[_Result]:
        """``decode`` of each job, in order: on the pool when there is one and more than one
        job (the native decoder parses without the GIL), else here."""
        pool = self._decode_pool if len(jobs) > 1 else None
        return pool.map(decode, jobs) if pool is not None else map(decode, jobs)

    def _decode_single_runs(
        self, batch: Sequence[StageInput], heads: Sequence[str | None]
    ) -> tuple[dict[int, _Run], set[int]]:
        """Runs of single-event messages decoded at once, like one envelope each.

        A run is consecutive single events of one model on one partition (other prediction
        messages of the partition end it, so the order of events within a partition, which
        decides what is late, is kept). Returns the decoded runs by the position of their
        first message, and the positions of every other message they cover. A run the
        decoder declines is left to the per-message path.
        """
        runs: dict[int, _Run] = {}
        covered: set[int] = set()
        open_runs: dict[int, tuple[ModelRuntime, list[int]]] = {}
        finished: list[tuple[ModelRuntime, list[int]]] = []
        for index, message in enumerate(batch):
            if message.kind != "prediction":
                continue
            if isinstance(message, FetchedRecords):  # a run of its own: it ends the open one
                if message.partition in open_runs:
                    finished.append(open_runs.pop(message.partition))
                continue
            runtime = self._single_event_model(message.value, heads[index])
            current = open_runs.get(message.partition)
            if current is not None and (runtime is None or runtime is not current[0]):
                finished.append(open_runs.pop(message.partition))
                current = None
            if runtime is None:
                continue
            if current is None:
                open_runs[message.partition] = (runtime, [index])
            else:
                current[1].append(index)
        for runtime, indexes in [*finished, *open_runs.values()]:
            if len(indexes) < 2 or runtime.envelope_decoder is None:
                continue
            columns = runtime.envelope_decoder.decode_singles([batch[i].value for i in indexes])
            if (
                columns is None
                or _outcome_error(runtime, columns) is not None
                or self._future_error(float(columns.timestamps.max())) is not None
            ):
                continue  # each message on its own: only the bad one is dead-lettered
            offsets = tuple(batch[i].offset for i in indexes)
            runs[indexes[0]] = _Run(runtime, columns, tuple(indexes), offsets)
            covered.update(indexes[1:])
        return runs, covered

    def _single_event_model(self, raw: bytes, head: str | None) -> ModelRuntime | None:
        """The model of a single-event message that has a reference, else None."""
        if b'"records"' in raw:
            return None
        runtime = self._model_at_head(head)
        return runtime if runtime is not None and runtime.profile is not None else None

    def _model_at_head(self, head: str | None) -> ModelRuntime | None:
        """The registered model a message names first (as producers write it), else None."""
        return self.registry.get(head) if head is not None else None

    async def _single(
        self, partition: int, runtime: ModelRuntime, event: SingleEvent, work: _Batch
    ) -> None:
        """One plain event: the per-event loop of the strict path without the models."""
        clock = self.clock(partition)
        if event.model_version:
            self.versions[(partition, runtime.model_id)] = event.model_version
        size = runtime.window_seconds
        start = window_start(event.timestamp, size)
        self.counters.saw_predictions(1)
        watermark = clock.watermark()
        verdict = self._replayed(partition, runtime.model_id, start, self._origin[1])
        if verdict == "applied":  # in its window already: only the clock moves again
            clock.observe(event.timestamp)
            self.dedup.first_time((partition, runtime.model_id, start), event.prediction_id)
            return
        if verdict == "late" or (
            watermark is not None and start + size + runtime.lateness_seconds <= watermark
        ):
            work.late[(partition, runtime.model_id, start, start + size)][self._origin[1]] += 1
            self.counters.late += 1
            return
        if not self.dedup.first_time((partition, runtime.model_id, start), event.prediction_id):
            self.counters.duplicates += 1
            return
        clock.observe(event.timestamp)
        work.singles[(partition, runtime.model_id, start)].append(event)
        if runtime.task is not None:
            summary = (event.prediction_id, event.timestamp, event.prediction, event.score)
            self._keep_summary(partition, runtime, summary, start, start + size, work)

    async def _envelope(
        self,
        partition: int,
        runtime: ModelRuntime,
        columns: EnvelopeColumns,
        work: _Batch,
        *,
        singles: bool,
        offsets: Sequence[int] | None = None,
    ) -> None:
        """A valid batch envelope, a column at a time: what the per-event loop does, in numpy.

        ``offsets``: for a run of single events, each row's message offset (their origin);
        an envelope's rows all come from the message being processed.
        """
        clock = self.clock(partition)
        if columns.model_version:
            self.versions[(partition, runtime.model_id)] = columns.model_version
        times = columns.timestamps
        size, lateness = runtime.window_seconds, runtime.lateness_seconds
        starts = np.floor(times / size) * size
        watermark = clock.watermark()
        # Each event is late against the watermark before it: the partition's, raised by the
        # events ahead of it in the envelope (late ones never raise it: they are older).
        before = np.concatenate(([-np.inf if watermark is None else watermark], times[:-1]))
        late = starts + size + lateness <= np.maximum.accumulate(before)
        first = min(offsets) if offsets is not None else self._origin[1]
        if first <= self._replay_until.get(partition, -1):
            applied, closed = self._replayed_rows(partition, runtime.model_id, starts, offsets)
            late = (late | closed) & ~applied
            self._reapply(partition, runtime.model_id, columns, starts, applied, singles)
            kept_or_late = ~applied
        else:
            kept_or_late = None
        for i in np.nonzero(late)[0].tolist():
            start = float(starts[i])
            origin = offsets[i] if offsets is not None else self._origin[1]
            work.late[(partition, runtime.model_id, start, start + size)][origin] += 1
        self.counters.late += int(late.sum())
        kept = np.nonzero(~late if kept_or_late is None else ~late & kept_or_late)[0]
        self.counters.saw_predictions(len(columns))
        kept = self._first_copies(partition, runtime.model_id, columns, starts, kept, singles)
        if kept.size == 0:
            return
        clock.observe(float(times[kept].max()))
        names = [*runtime.feature_names, *runtime.output_names]
        full = {name: _envelope_column(columns, name) for name in names}
        for start in np.unique(starts[kept]).tolist():
            rows = kept[starts[kept] == start]
            chunk = full if rows.size == len(columns) else _take_rows(full, rows)
            work.columns[(partition, runtime.model_id, start)].append(chunk)
        if runtime.task is not None:
            self._keep_summaries(partition, runtime, columns, kept, starts, offsets, work)

    def _replayed_rows(
        self,
        partition: int,
        model_id: str,
        starts: npt.NDArray[np.float64],
        offsets: Sequence[int] | None,
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Rows of a replayed envelope or run its windows hold already, and rows whose window
        was closed after they had arrived (see :meth:`_replayed`)."""
        applied = np.zeros(len(starts), dtype=bool)
        closed = np.zeros(len(starts), dtype=bool)
        for i, start in enumerate(starts.tolist()):
            offset = offsets[i] if offsets is not None else self._origin[1]
            verdict = self._replayed(partition, model_id, start, offset)
            applied[i] = verdict == "applied"
            closed[i] = verdict == "late"
        return applied, closed

    def _reapply(
        self,
        partition: int,
        model_id: str,
        columns: EnvelopeColumns,
        starts: npt.NDArray[np.float64],
        applied: npt.NDArray[np.bool_],
        singles: bool,
    ) -> None:
        """Rows already in their windows: the clock and the dedup memory see them again."""
        rows = np.nonzero(applied)[0]
        if rows.size == 0:
            return
        self.clock(partition).observe(float(columns.timestamps[rows].max()))
        if singles:
            self.dedup.first_times(
                partition, model_id, starts.tolist(), columns.prediction_ids, rows.tolist()
            )
            return
        identity = _identity_of(columns)
        for start in np.unique(starts[rows]).tolist():
            self.dedup.first_time((partition, model_id, start), identity)

    def _first_copies(
        self,
        partition: int,
        model_id: str,
        columns: EnvelopeColumns,
        starts: npt.NDArray[np.float64],
        kept: npt.NDArray[np.intp],
        singles: bool,
    ) -> npt.NDArray[np.intp]:
        """The kept rows not counted before in their window (see :mod:`stream_app.dedup`)."""
        if kept.size == 0:
            return kept
        if singles:  # a run of single-event messages: each is its own identity
            fresh = self.dedup.first_times(
                partition, model_id, starts.tolist(), columns.prediction_ids, kept.tolist()
            )
            self.counters.duplicates += kept.size - len(fresh)
            return kept if len(fresh) == kept.size else np.asarray(fresh, dtype=np.intp)
        identity = _identity_of(columns)
        # Recorded in every window the envelope touches: a retry whose first rows turned
        # late meanwhile is still recognised in the windows it would add to.
        groups = [(partition, model_id, start) for start in np.unique(starts[kept]).tolist()]
        fresh_in = [self.dedup.first_time(group, identity) for group in groups]
        if all(fresh_in):
            return kept
        self.counters.duplicates += kept.size
        return kept[:0]

    def _keep_summary(
        self,
        partition: int,
        runtime: ModelRuntime,
        prediction: tuple[str, float, Any, Any],
        start: float,
        end: float,
        work: _Batch,
    ) -> None:
        """Keep ``(prediction_id, timestamp, prediction, score)`` for the label join."""
        prediction_id, timestamp, predicted, score = prediction
        expires = timestamp + runtime.label_horizon_seconds
        target = join_partition(prediction_id, self.n_partitions)
        if target != partition:  # its origin is the label-join message that brings it there
            summary = Summary(runtime.model_id, start, end, predicted, score, expires, "j", -1)
            work.forward[target].append(prediction_id, summary)
            return
        kind, offset = self._origin  # the message being processed: the pair's identity
        summary = Summary(runtime.model_id, start, end, predicted, score, expires, kind, offset)
        self._join_summary(partition, prediction_id, summary, work)

    def _keep_summaries(
        self,
        partition: int,
        runtime: ModelRuntime,
        columns: EnvelopeColumns,
        kept: npt.NDArray[np.intp],
        starts: npt.NDArray[np.float64],
        offsets: Sequence[int] | None,
        work: _Batch,
    ) -> None:
        """:meth:`_keep_summary` of an envelope's kept rows, as columns per join partition."""
        all_ids = columns.prediction_ids
        whole = kept.size == len(all_ids)
        targets = join_partitions(all_ids if whole else _gather(all_ids, kept), self.n_partitions)
        # The rows in the order of their join partition (stable: arrival order within
        # one), so that each column is gathered once and cut into a slice per partition.
        order = np.argsort(targets, kind="stable")
        by_target = targets[order]
        distinct = np.flatnonzero(np.diff(by_target)) + 1
        bounds = [0, *distinct.tolist(), int(kept.size)]
        at = kept[order]
        ids = _gather(all_ids, at)
        predictions = _gather(columns.predictions, at)
        scores = _gather(columns.scores, at)
        window_starts = starts[at]
        window_ends = window_starts + runtime.window_seconds
        expires = columns.timestamps[at] + runtime.label_horizon_seconds
        model_id = runtime.model_id
        for lo, hi in itertools.pairwise(bounds):
            target = int(by_target[lo])
            if target != partition:  # kept as arrays: the receiver gives them their origin
                work.forward[target].add_columns(
                    ids[lo:hi],
                    model_id,
                    window_starts[lo:hi],
                    window_ends[lo:hi],
                    predictions[lo:hi],
                    scores[lo:hi],
                    expires[lo:hi],
                )
                continue
            origins = _gather(offsets, at[lo:hi]) if offsets is not None else None
            summaries = SummaryColumnsIn(
                [model_id] * (hi - lo),
                window_starts[lo:hi].tolist(),
                window_ends[lo:hi].tolist(),
                predictions[lo:hi],
                scores[lo:hi],
                expires[lo:hi].tolist(),
                ["p"] * (hi - lo),
                origins if origins is not None else [self._origin[1]] * (hi - lo),
            )
            for joined in self.join.add_summaries(partition, ids[lo:hi], summaries):
                self._pair(partition, joined, work)

    def _forwarded_summary(self, message: InputMessage, work: _Batch) -> None:
        if is_summary_segment(message.value):  # summaries as a segment: what this version sends
            for joined in self.join.add_forwarded(message.partition, message.value, message.offset):
                self._pair(message.partition, joined, work)
            return
        forwarded = orjson.loads(message.value)
        if isinstance(forwarded, dict) and "ids" in forwarded:  # summaries, as columns
            ids: list[str] = forwarded["ids"]
            n = len(ids)
            summaries = SummaryColumnsIn._make(
                [*(forwarded[name] for name in FORWARDED_COLUMNS), ["j"] * n, [message.offset] * n]
            )
            for joined in self.join.add_summaries(message.partition, ids, summaries):
                self._pair(message.partition, joined, work)
            return
        if isinstance(forwarded, dict):  # a partition's watermark, after its summaries
            self.join.hear(message.partition, int(forwarded["source"]), forwarded["watermark"])
            return
        for data in forwarded:  # a list of summaries: what earlier versions forward
            summary = summary_of(data)._replace(origin_kind="j", origin_offset=message.offset)
            self._join_summary(message.partition, data["id"], summary, work)

    async def _forward_ready(self, work: _Batch) -> None:
        # Whole chunks go while the batch is still being processed, and the event loop is
        # given a turn so that the producer puts them on the wire: the broker then stores
        # them on its own core while this one goes on. Sent at the end of the batch, a
        # batch's few megabytes of summaries waited on one produce request after another
        # (aiokafka has one in flight per broker), with the loop idle.
        sent = False
        for target, summaries in sorted(work.forward.items()):
            for segment in summaries.ready(FORWARD_CHUNK):
                self._delivering(await self.sink.forward_join(target, segment))
                sent = True
        if sent:
            await asyncio.sleep(0)

    async def _send_forwarded(self, work: _Batch) -> None:
        # One message per target partition and batch, not one per prediction: consuming a
        # message costs a Faust worker ~100 µs, so per-prediction forwarding capped
        # enveloped traffic with labels near 4,000 predictions/s. A segment, not JSON: the
        # receiver keeps it as it is, where JSON columns cost an encode, a decode and a
        # dict entry per summary until its flush built the segment. Chunks of even size:
        # 6,500 rows went as three of 2,000 and one of 500, and the receiver takes a
        # segment under KEEP_FORWARDED_FROM_ROWS apart into summaries kept until its flush.
        for target, summaries in sorted(work.forward.items()):
            for segment in summaries.segments(FORWARD_CHUNK):
                self._delivering(await self.sink.forward_join(target, segment))

    def _join_summary(
        self, partition: int, prediction_id: str, summary: Summary, work: _Batch
    ) -> None:
        joined = self.join.add_summary(partition, prediction_id, summary)
        if joined is not None:
            self._pair(partition, joined, work)

    async def _label(self, message: StageInput, work: _Batch, run: LabelRun | None) -> None:
        if run is not None:  # single labels, checked and parsed together
            labels, runtime = run.labels, run.runtime
            identities = [(offset, 0) for offset in run.offsets]
        else:
            assert isinstance(message, InputMessage)  # a whole fetch comes with its run
            checked = await self._checked_labels(message)
            if checked is None:
                return
            labels, runtime = checked
            identities = [(message.offset, index) for index in range(len(labels))]
        ids, times = labels.prediction_ids, labels.timestamps
        horizon = runtime.label_horizon_seconds
        clock = self.label_clock(message.partition)
        if len(ids) > 1 and len(set(ids)) == len(ids):
            # Distinct ids (an envelope's, or a run's): joined together (a repeated id goes
            # one by one, so that its second label meets what its first left).
            # Within one batch the clock does not move: the latest time is what counts.
            clock.observe(max(times))
            joined = self.join.add_labels(
                message.partition,
                ids,
                labels.model_id,
                labels.labels,
                identities,
                [t + horizon for t in times],
            )
            self._pair_columns(message.partition, joined, work)
        else:
            for prediction_id, label, at, identity in zip(
                ids, labels.labels, times, identities, strict=True
            ):
                clock.observe(at)
                pair = self.join.add_label(
                    message.partition, prediction_id, labels.model_id, label, identity, at + horizon
                )
                if pair is not None:
                    self._pair(message.partition, pair, work)
        self.counters.labels += len(ids)

    async def _checked_labels(
        self, message: InputMessage
    ) -> tuple[LabelColumns, ModelRuntime] | None:
        """The message's labels and their model, or None: the message went to the dead
        letters with the reason."""
        try:
            labels = parse_label_columns(message.value)
        except ValueError as exc:
            await self._reject(message, str(exc))
            return None
        model_id = labels.model_id
        runtime = self.registry.get(model_id)
        if runtime is None:
            await self._reject(message, _no_model(self.registry, model_id))
            return None
        if runtime.task_check is None:
            await self._reject(message, f"model {model_id!r} has no task: labels unused")
            return None
        # An envelope is judged whole, like a predictions envelope: one bad label sends the
        # message to the dead letters, and none of its labels is applied.
        reason = self._labels_error(runtime.task_check, labels, message)
        if reason is not None:
            await self._reject(message, reason)
            return None
        return labels, runtime

    def _labels_error(
        self, check: TaskCheck, labels: LabelColumns, message: InputMessage
    ) -> str | None:
        """Why the message's labels cannot be used (the first label's that cannot), or None.

        The whole message is checked at once first; only a message with a problem is gone
        through label by label, for the first one and its reason.
        """
        many = len(labels) > 1 or b'"records"' in message.value
        ids = labels.prediction_ids
        homes: list[int] | None = None
        if many:
            homes = (
                join_partitions(ids, self.n_partitions).tolist()
                if len(ids) > 1
                else [join_partition(ids[0], self.n_partitions)]
            )
        if (
            check.labels_certainly_ok(labels.labels)
            and self._future_error(max(labels.timestamps)) is None
            and (homes is None or homes.count(message.partition) == len(homes))
        ):
            return None
        for index, (prediction_id, label, at) in enumerate(
            zip(ids, labels.labels, labels.timestamps, strict=True)
        ):
            reason = check.label_error(label) or self._future_error(at)
            if reason is None and homes is not None and homes[index] != message.partition:
                reason = (
                    f"prediction_id {prediction_id!r} belongs to partition {homes[index]} of "
                    f"the labels topic, not {message.partition}: send each label envelope "
                    "to the partition its labels hash to (driftline.producer groups them)"
                )
            if reason is not None:
                return f"records[{index}]: {reason}" if many else reason
        return None

    def _pair(self, partition: int, joined: Joined, work: _Batch) -> None:
        self._add_pairs(partition, [WindowPairs.of_one(joined)], work)
        self.counters.joined += 1

    def _pair_columns(self, partition: int, joined: JoinedColumns, work: _Batch) -> None:
        """:meth:`_pair` of each pair, a window's pairs at a time."""
        self._add_pairs(partition, joined.by_window(), work)
        self.counters.joined += len(joined)

    @staticmethod
    def _add_pairs(
        partition: int, found: list[tuple[tuple[str, float, float], WindowPairs]], work: _Batch
    ) -> None:
        labeled = work.labeled
        for (model_id, start, end), pairs in found:
            key = (partition, model_id, start, end)
            mine = labeled.get(key)
            if mine is None:  # the first pairs of this window in the batch: fresh lists, kept
                labeled[key] = pairs
            else:
                mine.extend(pairs)

    async def _reject(self, message: InputMessage, reason: str) -> None:
        self.counters.dead_lettered(message.topic)
        self._delivering(await self.sink.dead_letter(message, reason))

    # -- writing state and closing windows -------------------------------------------------

    async def _write_windows(self, work: _Batch) -> None:
        for group, singles in work.singles.items():
            runtime = self.registry.get(group[1])
            if runtime is not None:
                work.columns[group].append(_columns_of_singles(runtime, singles))
        for group in {*work.rows, *work.columns}:
            partition, model_id, start = group
            runtime = self.registry.get(model_id)
            if runtime is None:  # unregistered while the batch ran: keep nothing half-done
                continue
            events = work.rows.get(group, [])
            key = keys.WindowKey(partition, model_id, start).window
            found = self.windows.get(key)
            stored = window_stamps.read(found).state if found is not None else None
            if found is not None and window_stamps.read(found).closed:
                # Cannot happen: a replayed event of a closed window is applied or late.
                log.error("events for closed window %s dropped; report this", key)
                continue
            stamp = self.checkpoint(partition).get("p", -1)
            # A window started without a reference stays a sample to its end.
            if runtime.profile is None or (stored is not None and baseline.is_sample(stored)):
                sample = baseline.BaselineSample.from_bytes(stored) if stored else None
                sample = sample or baseline.BaselineSample()
                rows = baseline.rows_of(runtime, events)
                # Events that took a fast path once the reference existed arrive as columns;
                # a window that began as a sample stays one and must count them too.
                for chunk in work.columns.get(group, []):
                    rows.extend(_rows_of_columns(chunk))
                sample.add(rows, baseline.PARTITION_SAMPLE, key)
                self.windows.set(partition, key, window_stamps.stamped(stamp, sample.to_bytes()))
                continue
            state = WindowState.from_bytes(stored) if stored else None
            # A window keeps the reference it began with; a new one starts with the reference
            # its start time calls for (see ModelRuntime.fingerprint_for).
            bound = state.fingerprint if state is not None else runtime.fingerprint_for(start)
            window_runtime = await self.registry.bound_to(runtime, bound or "")
            profile = window_runtime.profile
            assert profile is not None
            if state is None:
                state = WindowState.empty(profile, runtime.task)
            same_bins = window_runtime is runtime
            for chunk in joined_chunks(work.columns.get(group, [])):
                state.update(profile, chunk if same_bins else _unbinned(chunk))
            if events:
                state.update(profile, columns_of(window_runtime, events))
            self.windows.set(partition, key, window_stamps.stamped(stamp, state.to_bytes()))

    async def _send_labels_and_late(self, work: _Batch) -> None:
        # One pack per (input partition, model): a label batch touches hundreds of windows.
        packs: dict[tuple[int, str], list[messages.LabelsMessage]] = {}
        for (partition, model_id, start, end), pairs in work.labeled.items():
            positions = pairs.label_positions
            message = messages.LabelsMessage(
                model_id,
                start,
                end,
                pairs.labels,
                pairs.predicted,
                pairs.scores,
                partition,
                "".join(pairs.origin_kinds),
                pairs.origin_offsets,
                pairs.label_offsets,
                dict(self._durable_checkpoints.get(partition, {})),
                positions if any(positions) else [],
            )
            packs.setdefault((partition, model_id), []).append(message)
        for (_, model_id), windows in packs.items():
            for value in messages.encode_label_windows(windows):
                await self._send(model_id, value, None)
        for (partition, model_id, start, end), counts in work.late.items():
            offsets = sorted(counts)
            message_late = messages.LateMessage(
                model_id,
                start,
                end,
                sum(counts.values()),
                partition,
                offsets,
                [counts[offset] for offset in offsets],
            )
            await self._send(model_id, messages.encode(message_late), None)

    async def _send(self, key: str | None, value: bytes, partition: int | None) -> None:
        self._delivering(await self.sink.to_stage2(key, value, partition))

    def _delivering(self, delivery: Awaitable[Any] | None) -> None:
        if delivery is not None:
            self._deliveries.append(delivery)

    async def close_ready_windows(self, partition: int) -> None:
        """Send every window the partition's watermark has passed, then the watermark."""
        clock = self.clock(partition)
        watermark = clock.watermark()
        if watermark is None:
            # Nothing seen yet; stage 2 still needs to hear that this partition is empty,
            # or it could not tell an empty partition from a slow one. One that has not been
            # read yet (a replay's backlog, or its log end unknown) is slow: it stays silent,
            # so stage 2 waits for it instead of finalizing windows without its events.
            if not clock.backlog:
                await self._heartbeat(partition, None, closed_any=False)
            return
        prefix = keys.window_prefix(partition)
        closed_any = False
        for key, value in self.windows.items():
            if not key.startswith(prefix):
                continue
            stored = window_stamps.read(value)
            if stored.closed:
                continue
            _, model_id, start = keys.window_of(key, prefix)
            runtime = self.registry.get(model_id)
            size = runtime.window_seconds if runtime else 0.0
            lateness = runtime.lateness_seconds if runtime else 0.0
            if runtime is not None and window_closes_at(start, size, lateness) > watermark:
                continue
            version = self.versions.get((partition, model_id), "")
            partial = messages.PartialMessage(
                model_id, start, start + size, partition, stored.state, version
            )
            await self._send(model_id, messages.encode(partial), None)
            self.windows.set(partition, key, window_stamps.closed_marker(stored.stamp))
            self._markers[partition].append((key, stored.stamp))
            self.dedup.forget((partition, model_id, start))
            closed_any = True
        await self._heartbeat(partition, watermark, closed_any)

    async def _heartbeat(self, partition: int, watermark: float | None, closed_any: bool) -> None:
        if not self._heartbeat_due(partition, watermark, closed_any):
            return
        labels, behind = self.label_progress(partition)
        heartbeat = messages.encode(
            messages.WatermarkMessage(partition, self.n_partitions, watermark, labels, behind)
        )
        for target in range(self.sink.stage2_partitions):
            await self._send(None, heartbeat, target)
        # Every label-join partition hears how far this partition's predictions have got,
        # after the summaries it forwarded (same producer, same partition: in order).
        mark = orjson.dumps({"source": partition, "watermark": watermark})
        for target in range(self.n_partitions):
            self._delivering(await self.sink.forward_join(target, mark))

    def _heartbeat_due(self, partition: int, watermark: float | None, closed_any: bool) -> bool:
        # Stage 2 only needs a watermark that moved, and not faster than it can use it;
        # after closing a window it needs it at once.
        now = self.clock(partition).clock()
        last = self._heartbeats.get(partition)
        if watermark is None:
            watermark = float("-inf")
        if last is not None and not closed_any:
            last_watermark, last_sent = last
            if watermark <= last_watermark and now - last_sent < 5 * self.heartbeat_interval:
                return False
            if now - last_sent < self.heartbeat_interval:
                return False
        self._heartbeats[partition] = (watermark, now)
        return True

    def note_label_log_end(self, partition: int, log_end: int | None) -> None:
        """Whether the partition's labels log holds labels not processed yet (unknown: yes)."""
        done = self.checkpoint(partition).get("l", -1)
        self.clocks.note_label_log_end(partition, log_end, done)

    def note_log_end(self, partition: int, log_end: int | None) -> None:
        """Tell the partition's clock whether its log holds events not processed yet."""
        self.clocks.note_log_end(partition, log_end, self.checkpoint(partition).get("p", -1))

    async def tick(self, partitions: Sequence[int]) -> None:
        """Timer work for the partitions this worker owns: idle closing, join expiry."""
        for partition in partitions:
            await self.close_ready_windows(partition)
        self.expire_joins(partitions)

    def expire_joins(self, partitions: Sequence[int]) -> None:
        """Drop join entries past their label horizon (see :meth:`LabelJoin.expire`)."""
        self.join.expire(partitions, self.label_watermark)


def columns_of(runtime: ModelRuntime, events: Sequence[PredictionEvent]) -> dict[str, list[Any]]:
    """Columns of the profile's features and outputs from a list of events."""
    columns: dict[str, list[Any]] = {
        name: [event.features.get(name) for event in events] for name in runtime.feature_names
    }
    if "prediction" in runtime.output_names:
        columns["prediction"] = [event.prediction for event in events]
    if "score" in runtime.output_names:
        columns["score"] = [_scalar_score(event.score) for event in events]
    return columns


def _columns_of_singles(
    runtime: ModelRuntime, events: Sequence[SingleEvent]
) -> dict[str, list[Any]]:
    features = [event.features for event in events]
    columns: dict[str, list[Any]] = {
        name: [row.get(name) for row in features] for name in runtime.feature_names
    }
    if "prediction" in runtime.output_names:
        columns["prediction"] = [event.prediction for event in events]
    if "score" in runtime.output_names:
        columns["score"] = [event.score for event in events]
    return columns


def _rows_of_columns(columns: Mapping[str, FeatureColumn | BinnedColumn]) -> list[dict[str, Any]]:
    """Rows of a column chunk, as :func:`baseline.rows_of` makes them (NaN: missing)."""
    lists: dict[str, list[Any]] = {}
    for name, values in columns.items():
        if isinstance(values, BinnedColumn):
            values = values.values
        if isinstance(values, np.ndarray):
            lists[name] = [None if v != v else v for v in values.tolist()]  # NaN → None
        else:
            lists[name] = list(values)
    names = list(lists)
    return [dict(zip(names, row, strict=True)) for row in zip(*lists.values(), strict=True)]


def _unbinned(
    columns: Mapping[str, FeatureColumn | BinnedColumn],
) -> dict[str, FeatureColumn | BinnedColumn]:
    """A chunk's raw values: the fast paths binned them for the current reference only."""
    return {
        name: values.values if isinstance(values, BinnedColumn) else values
        for name, values in columns.items()
    }


def _take_rows(
    columns: dict[str, FeatureColumn | BinnedColumn], rows: npt.NDArray[np.intp]
) -> dict[str, FeatureColumn | BinnedColumn]:
    picked: dict[str, FeatureColumn | BinnedColumn] = {}
    for name, values in columns.items():
        if isinstance(values, BinnedColumn):
            picked[name] = values.take(rows)
        elif isinstance(values, np.ndarray):
            picked[name] = values[rows]
        else:
            picked[name] = _gather(values, rows)
    return picked


def _gather(values: Sequence[_Value], rows: npt.NDArray[np.intp]) -> list[_Value]:
    """``[values[i] for i in rows]``, iterated in C (a map of ``__getitem__``)."""
    return list(map(values.__getitem__, rows.tolist()))


def _envelope_column(columns: EnvelopeColumns, name: str) -> FeatureColumn | BinnedColumn:
    if name == "prediction":
        return columns.predictions
    if name == "score":
        return list(columns.scores)
    values = columns.column(name)
    bins = columns.feature_bins.get(name) if columns.feature_bins is not None else None
    if bins is not None and isinstance(values, np.ndarray):
        return BinnedColumn(values, bins)
    return values


def _scalar_score(score: Any) -> Any:
    # A multiclass score list is not one value to profile; the highest probability is.
    if isinstance(score, list):
        return max(score) if score else None
    return score


def _outcome_error(runtime: ModelRuntime, decoded: EnvelopeColumns | SingleEvent) -> str | None:
    """Why decoded predictions cannot enter the model's quality state, if they cannot."""
    check = runtime.task_check
    if check is None:
        return None
    if isinstance(decoded, SingleEvent):
        return check.predictions_error([decoded.prediction], [decoded.score])
    return check.predictions_error(decoded.predictions, decoded.scores)


def _members(
    message: StageInput,
    run: _Run | CertifiedRun | LabelRun | None,
    batch: Sequence[StageInput],
) -> list[InputMessage]:
    """The messages an input stands for (what a failure while processing it dead-letters)."""
    if isinstance(message, FetchedRecords):
        return message.messages()
    if isinstance(run, _Run | LabelRun):
        return [cast(InputMessage, batch[i]) for i in run.indexes]
    return [message]


def _model_ids(batch: Sequence[StageInput]) -> list[str | None]:
    """The model id each message names at its head (as producers write it), else None.

    A message laid out otherwise is looked up when it is parsed; only the common layout is
    needed to keep database lookups out of the middle of a batch.
    """
    return [peek_model_id(message.value) if message.kind != "join" else None for message in batch]


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _no_model(registry: ModelRegistry, model_id: str) -> str:
    """Why events of a model the registry does not serve are dead-lettered."""
    deleted = registry.deletion(model_id)
    return deleted.reason if deleted is not None else _unknown_model(model_id)


def _unknown_model(model_id: str) -> str:
    return (
        f"unknown model {model_id!r}: register it with `driftline models register` "
        "(or run the worker with DRIFTLINE_UNKNOWN_MODELS=auto-register)"
    )


def _identity_of(columns: EnvelopeColumns) -> str:
    """A decoded envelope's dedup identity (see :func:`stream_app.dedup.envelope_identity`)."""
    return envelope_identity(
        columns.prediction_ids[0],
        columns.prediction_ids[-1],
        len(columns),
        float(columns.timestamps[0]),
    )


def _tp(message: InputMessage) -> str:
    return f"{message.topic}[{message.partition}]"
