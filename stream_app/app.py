"""Build the Faust app of a worker: topics, tables, the two stage agents and the timer.

Everything is built by :func:`create_pipeline` from settings, nothing at import time, so a
test can run several isolated pipelines (own app id, own topic prefix) in one process. The
agents are thin: they turn Faust events into stage 1's inputs
(:mod:`stream_app.stage1_inputs`: messages, and fetched single events still as columns) and
hand batches to :class:`~stream_app.stage1.Stage1` / :class:`~stream_app.stage2.Stage2`,
which hold the logic and are tested without Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

import faust
from faust.types import TP
from sqlalchemy.orm import Session, sessionmaker

from alerting.dispatch import AlertRelay
from alerting.relay_setup import build_alert_relay
from driftline.errors import InvalidEventError
from schemas.events import PredictionEvent
from schemas.model_config import ModelConfig
from schemas.outbound import DeadLetter
from schemas.topics import Topics
from storage import catalog
from stream_app import messages, record_columns
from stream_app import table_keys as keys
from stream_app.changelog_segments import SegmentedTableStore
from stream_app.consumer_repairs import refresh_metadata, seek_where_fetched
from stream_app.counters import Counters
from stream_app.fetch_events import install as install_whole_fetches
from stream_app.fetch_watch import FETCH_CHECK_SECONDS
from stream_app.input_order import InputOrder
from stream_app.memory_store import RebuildingMemoryStore, store_url
from stream_app.memory_store import register as register_memory_store
from stream_app.model_loader import sql_loader, sql_profile_loader
from stream_app.outbox_relay import (
    RELAY_INTERVAL_SECONDS,
    OutboxMessage,
    OutboxRelay,
    SqlTriggerOutbox,
)
from stream_app.partition_keeper import BROKER_CALL_SECONDS, PartitionKeeper, StageOffsets
from stream_app.producer_repairs import track_sent_topics
from stream_app.rebalance_gate import RebalanceGate
from stream_app.rebalance_gate import install as install_gate
from stream_app.recovery_watch import install as install_recovery_watch
from stream_app.registry import ModelRegistry, ModelRuntime
from stream_app.revision_pace import RevisionPace
from stream_app.segment_spill import SegmentSpill, default_directory
from stream_app.settings import PER_MESSAGE_BATCH, WorkerSettings
from stream_app.sql_writer import SqlResultWriter, Transactions
from stream_app.stage1 import Stage1, Stage1Sink
from stream_app.stage1_inputs import InputMessage, TopicKind, chunks, inputs_of
from stream_app.stage2 import Stage2
from stream_app.stall_watch import Activity, StallWatch
from stream_app.state_store import FaustTableStore, PartitionedStore

log = logging.getLogger(__name__)

EXIT_FATAL = 70  # EX_SOFTWARE: the worker stopped itself; restart it (systemd, Kubernetes)


# Stage 1 takes up to this many partition fetches at once (with whole fetches).
FETCHES_PER_BATCH = 8
# Stage 2 takes up to this many window-partials messages at once, and applies the messages
# they carry (a pack of label windows carries many) in slices of this many.
STAGE2_BATCH = 500


@dataclass
class Pipeline:
    """A built worker: the Faust app and the stage objects (for tests and the CLI)."""

    app: faust.App
    topics: Topics
    stage1: Stage1
    stage2: Stage2
    counters: Counters
    registry: ModelRegistry
    activity: Activity = field(default_factory=lambda: Activity())
    sessions: sessionmaker[Session] | None = None  # the results database (for /metrics)
    alert_relay: AlertRelay | None = None  # when ``alerts_file`` is set

    async def drain(self, quiet_seconds: float = 0.5, timeout: float = 30.0) -> bool:
        """Stop taking new messages and wait until the batch in flight is done.

        Faust acknowledges a batch from ``take_events`` when the agent's loop body exits,
        even by cancellation, so a worker must not be stopped in the middle of a batch:
        SIGTERM drains first (see :mod:`stream_app.worker`). Returns whether it went quiet
        within ``timeout``.
        """
        self.app.flow_control.suspend()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            idle_for = time.monotonic() - self.activity.last_change
            if self.activity.active == 0 and idle_for >= quiet_seconds:
                return True
            await asyncio.sleep(0.05)
        return False


def join_store(table: Any) -> PartitionedStore:
    """The join table's store: its changelog by segment when the table lives in memory.

    One changelog record per partition and flush instead of one per outstanding
    prediction (see stream_app.changelog_segments); another store is written key by key.
    """
    if isinstance(table.data, RebuildingMemoryStore):
        return SegmentedTableStore(table, table.data.segments)
    return FaustTableStore(table)


def join_spill(settings: WorkerSettings, table: Any) -> SegmentSpill | None:
    """Where the join's summaries go beyond their memory budget: files beside Faust's data
    when the table lives in memory (another store keeps them on disk already)."""
    if not isinstance(table.data, RebuildingMemoryStore):
        return None
    spill = SegmentSpill(default_directory(settings.data_dir), int(settings.join_memory_mb * 2**20))
    table.data.spill = spill  # a recovery puts the segments it restores on disk
    return spill


def _log_end(app: faust.App, tp: Any) -> int | None:
    """The partition's log end as of the consumer's last fetch (None before one)."""
    try:
        end = app.consumer.highwater(tp)
    except Exception:
        return None
    return int(end) if end is not None else None


@dataclass
class _Owned:
    """The input partitions of each stage this worker owns, by the rebalance signals."""

    stage1: set[int] = field(default_factory=set)
    stage2: set[int] = field(default_factory=set)

    def take(self, tps: Any, topics: Topics) -> None:
        # Faust passes the whole new assignment, which replaces the previous one.
        self.stage1 = {tp.partition for tp in tps if tp.topic == topics.predictions}
        self.stage2 = {tp.partition for tp in tps if tp.topic == topics.window_partials}

    def give_up(self, tps: Any, topics: Topics) -> None:
        self.stage1 -= {tp.partition for tp in tps if tp.topic == topics.predictions}
        self.stage2 -= {tp.partition for tp in tps if tp.topic == topics.window_partials}


def stop_without_acknowledging(stage: str, exc: BaseException) -> NoReturn:
    """End the process at once: the batch in flight is neither acknowledged nor committed.

    Faust acknowledges a ``take_events`` batch whenever its loop body exits, by an exception
    too, and until its supervisor has restarted the agent, the stream's background drainer
    goes on reading and acknowledging messages that no agent sees. Measured with a plain
    agent on two topics of four partitions: the first crash lost its batch of 100; the
    supervisor, rate-limited, restarted the agent 5 s after the second crash, and the 1,500
    messages that arrived meanwhile were committed without reaching it. A clean shutdown
    would commit the batch too. Exiting without either makes the restarted worker read the
    batch again from the last commit, with state restored from the changelogs.
    """
    log.critical(
        "%s failed with an error that is not one message's fault (%s: %s); stopping the "
        "worker without acknowledging the batch in flight, which is processed again on "
        "restart. If this repeats, report it with this log",
        stage,
        type(exc).__name__,
        exc,
        exc_info=exc,
    )
    logging.shutdown()
    os._exit(EXIT_FATAL)


def faust_credentials(security: Any) -> Any:
    """Faust's form of the connection settings (None: plaintext)."""
    context = security.ssl_context()
    if security.sasl_mechanism is not None:
        assert security.sasl_password is not None
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password.get_secret_value(),
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def create_pipeline(
    settings: WorkerSettings,
    sessions: sessionmaker[Session],
    on_fatal: Callable[[str, BaseException], None] = stop_without_acknowledging,
) -> Pipeline:
    register_memory_store()
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        # TLS, mutual TLS or SASL, as DRIFTLINE_KAFKA_* say (driftline/kafka_security.py).
        broker_credentials=faust_credentials(settings.kafka_security()),
        store=store_url(settings.store),
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        web_enabled=False,
        web_host="127.0.0.1",  # never listen beyond loopback, even if something enables it
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # aiokafka keeps one batch per partition and one produce request in flight per
        # broker: a send to a partition whose batch is full waits for that batch to leave.
        # With Kafka's 16 KB, stage 1 sending a label batch's ~450 window messages to the
        # one window-partials partition waited a round trip per ~10 of them (~0.6 ms a send).
        producer_max_batch_size=settings.producer_batch_kb * 1024,
        # Kafka's default (1 MB) cut batches of enveloped predictions at ~10 envelopes per
        # partition, and each batch pays three awaited broker round trips (Stage1.flush):
        # measured with 4 MB, single events ~1.4-1.8x and predictions with a label task
        # ~1.15x (docs/benchmarks.md, "A model reloaded as itself, and fetches of 4 MB").
        consumer_max_fetch_size=int(settings.partition_fetch_mb * 2**20),
        # aiokafka's one timeout for a produce request and for a batch still unsent (Kafka's
        # own clients give up on a delivery after 120 s). Faust's 1,200 s let a send whose
        # answer never came hold the worker for 20 minutes; failing, it stops the worker
        # without acknowledging (on_fatal), and the restart replays.
        producer_request_timeout=settings.send_timeout_seconds,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_seconds,
        # Messages fetched ahead of the agents: two per-message batches. A count, not
        # bytes, so with ~270 KB envelopes a smaller DRIFTLINE_BATCH_MAX bounds the memory
        # in flight (whole fetches are bounded by whole_fetches_ahead instead, below).
        stream_buffer_maxsize=max(64, (settings.batch_max or PER_MESSAGE_BATCH) * 2),
        # Standby replicas do not work with the in-memory store: Faust drops a standby's
        # restored keys when a recovery completes, and a partition that turns from standby
        # into active is sought both to its start (active) and its end (standby). Measured
        # in the rebalance fault test: the worker that took its partitions back either
        # waited forever for that recovery or worked on a stale mix and lost events.
        table_standby_replicas=0 if settings.store.startswith("memory") else 1,
    )
    # Every topic a send names stays in the producer's metadata (a queued batch otherwise
    # lost its partition's leader after a refresh and waited out the send timeout).
    track_sent_topics(app.producer)
    topics = Topics.with_prefix(settings.topic_prefix)
    join_name = topics.label_join
    input_names = (topics.predictions, topics.labels, join_name)
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    if settings.whole_fetches:
        install_whole_fetches(app, input_names)

    async def announce_reading() -> None:  # a task: once Faust has set up logging
        if settings.whole_fetches:
            log.info(
                "stage 1 reads each partition's fetch as one event (whole_fetches)%s",
                ", its records as columns" if record_columns.native is not None else "",
            )
        else:
            log.info("stage 1 reads one event per message (whole_fetches off: slower)")

    app.task(announce_reading)

    inputs = app.topic(*input_names, partitions=settings.partitions, **raw)
    if settings.whole_fetches:
        # An event is a partition's whole fetch (up to partition_fetch_mb). Set on the
        # topic, which the agent's channels are cloned from: faust-streaming's App.topic
        # drops its maxsize argument, and the queue then held up to stream_buffer_maxsize
        # (4,000) whole fetches: measured, 776 of them and ~2 GB of RSS while a worker read
        # a backlog of 10,000,000 enveloped predictions.
        inputs.maxsize = settings.whole_fetches_ahead
    join_topic = app.topic(join_name, partitions=settings.partitions, **raw)
    partials = app.topic(topics.window_partials, partitions=settings.stage2_partitions, **raw)
    triggers = app.topic(topics.retrain_triggers, partitions=1, **raw)
    dead_letters = app.topic(topics.dead_letter, partitions=1, **raw)

    table: dict[str, Any] = {"key_type": str, "value_type": bytes}  # keys json, values raw
    windows_table = app.Table("stage1-windows", partitions=settings.partitions, **table)
    joins_table = app.Table("stage1-joins", partitions=settings.partitions, **table)
    records_table = app.Table("stage2-records", partitions=settings.stage2_partitions, **table)

    counters = Counters()
    gate = RebalanceGate()
    install_gate(app, gate)

    set_aside_from: dict[Any, int] = {}  # per partition, the first offset set aside

    def set_aside(offsets: list[tuple[str, int, int]]) -> None:
        # Not processed, and acknowledged by Faust when the loop goes on: once the gate
        # opens, each partition still owned is read again from the first of them (both
        # stages recognise what they already hold), as the hole guards would.
        counters.unready_batches += 1
        for topic, partition, offset in offsets:
            tp = TP(topic, partition)
            set_aside_from[tp] = min(offset, set_aside_from.get(tp, offset))
        log.info("set aside %d message(s) while tables recover", len(offsets))

    async def read_set_aside_again(stage_topics: set[str], assigned: Any) -> None:
        for tp in [tp for tp in set_aside_from if tp.topic in stage_topics]:
            offset = set_aside_from.pop(tp)
            if tp in assigned:
                counters.input_rewinds += 1
                await seek(tp, offset)

    registry = ModelRegistry(
        sql_loader(sessions),
        settings.registry_refresh_seconds,
        profile_loader=sql_profile_loader(sessions),
    )

    # The sends return what resolves once the broker has the message: stage 1 waits for
    # it before writing the state that follows (Stage1.flush).
    async def to_stage2(key: str | None, value: bytes, partition: int | None) -> Any:
        return await partials.send(
            key=key.encode() if key else None, value=value, partition=partition
        )

    async def dead_letter(message: InputMessage, reason: str) -> Any:
        letter = DeadLetter.from_message(
            reason,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            value=message.value,
        )
        log.warning(
            "dead letter from %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            reason,
        )
        return await dead_letters.send(key=message.key, value=letter.to_json_bytes())

    async def forward_join(partition: int, value: bytes) -> Any:
        return await join_topic.send(key=None, value=value, partition=partition)

    async def seek(tp: Any, offset: int) -> int:
        """Read ``tp`` again from ``offset`` (from the log start, if retention took it)."""
        # Bounded: the request runs on Faust's consumer thread, which a rebalance holds
        # while our revocation handler waits for the lock this caller holds.
        try:
            oldest = (
                await asyncio.wait_for(app.consumer.earliest_offsets(tp), BROKER_CALL_SECONDS)
            ).get(tp)
        except TimeoutError:
            log.warning("%s[%d]: no answer for the log start; seeking anyway", *tp)
            oldest = None
        resumes_at = max(offset, oldest if oldest is not None else offset)
        await seek_where_fetched(app.consumer, tp, resumes_at)
        return resumes_at

    kind_topics = {"prediction": topics.predictions, "label": topics.labels, "join": join_name}

    async def rewind(kind: str, partition: int, offset: int) -> int:
        return await seek(TP(kind_topics[kind], partition), offset)

    async def publish_trigger(message: OutboxMessage) -> None:
        # Awaiting the send's future waits for the broker's acknowledgement (acks=all):
        # only then may the relay mark the trigger published.
        await (await triggers.send(key=message.key, value=message.value))
        log.info("published retraining trigger %s", message.id)

    async def auto_register(event: PredictionEvent) -> ModelRuntime | None:
        config = ModelConfig.from_dict(
            {
                "model_id": event.model_id,
                "description": "registered automatically from its first prediction event",
            }
        )

        def save() -> None:
            with sessions.begin() as session:
                if catalog.get_model(session, event.model_id) is None:
                    catalog.upsert_model(session, event.model_id, config.model_dump(mode="json"))

        await asyncio.to_thread(save)
        registry.forget(event.model_id)
        runtime = registry.get(event.model_id)
        log.info("auto-registered model %s; its first windows become its baseline", event.model_id)
        return runtime

    stage1 = Stage1(
        registry,
        FaustTableStore(windows_table),
        join_store(joins_table),
        Stage1Sink(to_stage2, dead_letter, forward_join, settings.stage2_partitions, rewind),
        n_partitions=settings.partitions,
        idle_timeout=settings.idle_timeout_seconds,
        counters=counters,
        auto_register=auto_register if settings.unknown_models == "auto-register" else None,
        decode_threads=settings.decode_threads,
        max_future_seconds=settings.max_future_seconds,
        spill=join_spill(settings, joins_table),
    )
    # A model's history (the windows behind its control limits and retraining policy)
    # before the window records: a final record durable without its history entry would
    # never be finalized again, and later windows would draw on a history without it.
    records_store = FaustTableStore(records_table, sent_first=keys.is_history_key)
    pace = RevisionPace(settings.revision_seconds) if settings.revision_seconds > 0 else None
    stage2 = Stage2(registry, records_store, SqlResultWriter(sessions), counters, pace)

    async def rewind_partials(partition: int, offset: int) -> int:
        return await seek(TP(topics.window_partials, partition), offset)

    def count_rewind() -> None:
        counters.input_rewinds += 1

    stage2_order = InputOrder(
        records_store, topics.window_partials, rewind_partials, on_rewind=count_rewind
    )
    # Stage 2 commits triggers to the outbox; this relay publishes them (every worker runs
    # one, leases keep them from sending the same trigger).
    relay = OutboxRelay(
        [(SqlTriggerOutbox(Transactions(sessions, "the outbox relay")), publish_trigger)],
        counters=counters,
    )
    kinds: dict[str, TopicKind] = {
        topics.predictions: "prediction",
        topics.labels: "label",
        join_name: "join",
    }
    lock1, lock2 = asyncio.Lock(), asyncio.Lock()
    owned = _Owned()
    activity = Activity()  # the agents' batches: what a drain waits for
    ticking = Activity()  # the timer's ticks, watched for stalls too

    per_take = FETCHES_PER_BATCH if settings.whole_fetches else settings.stage1_batch

    @app.agent(inputs, name="stage1")
    async def stage1_agent(stream: Any) -> None:
        async for events in stream.take_events(per_take, within=settings.batch_within_seconds):
            batch = inputs_of((event.message for event in events), kinds, settings.stage1_batch)
            activity.begin()
            try:
                async with lock1:
                    if gate.ready:
                        # Faust acknowledges the events when this body ends: every part first.
                        for part in chunks(batch, settings.stage1_batch):
                            await stage1.process(part)
                    else:
                        set_aside([(m.topic, m.partition, m.offset) for m in batch])
            except Exception as exc:
                # Stage 1 dead-letters what a message causes; what is left is not the
                # batch's fault, and leaving this loop body would acknowledge it.
                on_fatal("stage 1", exc)
            finally:
                activity.end()

    @app.agent(partials, name="stage2")
    async def stage2_agent(stream: Any) -> None:
        async for events in stream.take_events(STAGE2_BATCH, within=settings.batch_within_seconds):
            activity.begin()
            try:
                async with lock2:
                    if not gate.ready:
                        set_aside(
                            [
                                (e.message.topic, e.message.partition, e.message.offset)
                                for e in events
                            ]
                        )
                        continue
                    batch: list[tuple[int, messages.StageMessage, int]] = []
                    for event in events:
                        if not await stage2_order.admit(
                            event.message.partition, event.message.offset
                        ):
                            continue
                        try:
                            carried = messages.decode_all(event.value)
                        except InvalidEventError as exc:
                            log.error("skipping malformed internal message: %s", exc)
                            continue
                        where = (event.message.partition, event.message.offset)
                        batch.extend((where[0], message, where[1]) for message in carried)
                    # Packs of label windows make a batch of 500 messages hundreds of times
                    # as many: applied in slices of 500, so one batch neither holds the
                    # event loop (stage 1, the timers) for seconds nor keeps thousands of
                    # windows' quality states decoded at once.
                    for start in range(0, len(batch), STAGE2_BATCH):
                        await stage2.handle_batch(batch[start : start + STAGE2_BATCH])
                        await asyncio.sleep(0)
                    stage2_order.save()  # last: the next offsets cover the state before them
                    await stage2.flush()
            except Exception as exc:
                on_fatal("stage 2", exc)
            finally:
                activity.end()

    async def tick() -> None:
        ticking.begin()
        try:
            await _tick()
        except Exception as exc:
            on_fatal("the timer", exc)
        finally:
            ticking.end()

    async def _tick() -> None:
        # The timer runs through rebalances. Between giving partitions up and the new
        # assignment the consumer still lists the old ones, and while tables recover they
        # are incomplete: a tick then could close another worker's windows from stale
        # state (measured: a window lost 10 of 400 rows when a second worker left). The
        # gate, not Faust's rebalancing flag, says when (stream_app/rebalance_gate.py).
        if not gate.ready or app.rebalancing:
            return

        def current() -> tuple[Any, list[int], list[int]]:
            # Read under the stage's lock: a revocation may have run while the tick waited.
            assigned = app.consumer.assignment() if app.consumer else set()
            mine1 = {tp.partition for tp in assigned if tp.topic == topics.predictions}
            mine2 = {tp.partition for tp in assigned if tp.topic == topics.window_partials}
            return assigned, sorted(mine1 & owned.stage1), sorted(mine2 & owned.stage2)

        async with lock1:
            if not gate.ready:  # a rebalance began while this tick waited
                return
            assigned, mine1, _ = current()
            for tp in assigned:
                if tp.topic == topics.predictions:
                    stage1.note_log_end(tp.partition, _log_end(app, tp))
                elif tp.topic == topics.labels:
                    stage1.note_label_log_end(tp.partition, _log_end(app, tp))
            await read_set_aside_again(set(kinds), assigned)
            await stage1.retry_rewinds()
            await stage1.tick(mine1)
            await stage1.flush()
            await keeper.unblock_commits(tp for tp in assigned if tp.topic in kinds)
        async with lock2:
            if not gate.ready:
                return
            assigned, _, mine2 = current()
            await read_set_aside_again({topics.window_partials}, assigned)
            await stage2_order.retry()
            await stage2.tick(mine2)
            await stage2.flush()
            await keeper.unblock_commits(
                tp for tp in assigned if tp.topic == topics.window_partials
            )

    def next_needed(tp: Any) -> int | None:
        kind = kinds.get(tp.topic)
        if kind is not None:
            return stage1.next_needed(kind, tp.partition)
        if tp.topic == topics.window_partials:
            return stage2_order.next_needed(tp.partition)
        return None

    def durable_done(tp: Any) -> int | None:
        kind = kinds.get(tp.topic)
        if kind is not None:
            return stage1.durable_done(kind, tp.partition)
        if tp.topic == topics.window_partials:
            needed = stage2_order.next_needed(tp.partition)  # saved and flushed with a batch
            return None if needed is None else needed - 1
        return None

    keeper = PartitionKeeper(app, StageOffsets(next_needed, durable_done, seek), counters)

    async def on_revoked(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked = args[0] if args else kwargs.get("revoked", set())
        # A tick in flight finishes first (the agents' batches Faust waited for already):
        # nothing of this worker touches the partitions after it has given them up.
        async with lock1, lock2:
            owned.give_up(revoked, topics)
            for tp in revoked:
                keeper.forget(tp)
            stage2_order.forget(
                sorted({tp.partition for tp in revoked if tp.topic == topics.window_partials})
            )
            stage1.forget_partitions(
                sorted({tp.partition for tp in revoked if tp.topic == topics.predictions})
            )

    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        assigned = args[0] if args else kwargs.get("assigned", set())
        owned.take(assigned, topics)
        missing = missing_state(assigned, app.assignor.assigned_actives())
        first, assignments[0] = assignments[0] == 0, assignments[0] + 1
        if missing and first:
            # This process's first assignment: the changelogs were created a moment ago by
            # this worker and hold nothing to recover, so its input can run; every write
            # still goes to them, and the next rebalance (the refresh below brings it) reads
            # them back whole (the store rebuilds every table at every rebalance).
            log.info(
                "the first assignment lacks the changelog partitions %s (just created): "
                "refreshing the metadata so the group rebalances with them",
                ", ".join(missing),
            )
            task = asyncio.ensure_future(refresh_after_rebalance())
            refreshes.add(task)
            task.add_done_callback(refreshes.discard)
        elif missing:
            # The group leader assigned from metadata that did not list these changelogs
            # yet (created a moment before it joined). Faust would run the input without
            # its state and, at the next rebalance, drop the table's keys. The gate stays
            # closed; fresh metadata makes the group rebalance with them.
            log.warning(
                "the assignment lacks the changelog partitions %s of its input: processing "
                "nothing until a rebalance includes them; refreshing the metadata",
                ", ".join(missing),
            )
            gate.incomplete(app.consumer_generation_id)
            task = asyncio.ensure_future(refresh_after_rebalance())
            refreshes.add(task)
            task.add_done_callback(refreshes.discard)

    refreshes: set[asyncio.Future[None]] = set()
    assignments = [0]  # how many this process had (the first one may lack new changelogs)

    async def refresh_after_rebalance() -> None:
        # Not from the handler itself: the consumer thread waits for it to return.
        await asyncio.sleep(1.0)
        try:
            await asyncio.wait_for(refresh_metadata(app.consumer), BROKER_CALL_SECONDS)
        except Exception as exc:  # the next periodic refresh rebalances too, only later
            log.warning("could not refresh the metadata: %r", exc)

    def missing_state(assigned: Any, actives: Any) -> list[str]:
        """Changelog partitions that must come with an assigned input partition but did not."""
        needs = {
            topics.predictions: (windows_table, joins_table),
            topics.window_partials: (records_table,),
        }
        return sorted(
            f"{table.changelog_topic.get_topic_name()}[{tp.partition}]"
            for tp in assigned
            for table in needs.get(tp.topic, ())
            if TP(table.changelog_topic.get_topic_name(), tp.partition) not in actives
        )

    async def check_fetches() -> None:
        if gate.ready:  # while tables recover, stages' next offsets are not known
            await keeper.check()

    app.timer(settings.tick_seconds)(tick)
    app.timer(RELAY_INTERVAL_SECONDS)(relay.tick)
    alert_relay: AlertRelay | None = None
    if settings.alerts_file:
        alert_relay = build_alert_relay(
            settings.alerts_file,
            sessions,
            lease_seconds=settings.alert_lease_seconds,
            max_retry_seconds=settings.alert_max_retry_seconds,
        )
        app.timer(settings.alert_tick_seconds)(alert_relay.tick)
    stall_watches = [
        StallWatch(activity, settings.stall_seconds, "a batch"),
        StallWatch(ticking, settings.stall_seconds, "a tick"),
    ]

    async def watch_stalls() -> None:
        for watch in stall_watches:
            await watch.tick()
        counters.stalls = sum(watch.stalls for watch in stall_watches)

    app.timer(min(5.0, settings.stall_seconds / 2))(watch_stalls)
    app.timer(FETCH_CHECK_SECONDS)(check_fetches)
    install_recovery_watch(app, on_fatal, FETCH_CHECK_SECONDS)
    app.on_partitions_revoked.connect(cast(Any, on_revoked))  # mode types receivers narrowly
    app.on_partitions_assigned.connect(cast(Any, on_assigned))
    del stage1_agent, stage2_agent  # registered on the app
    return Pipeline(
        app, topics, stage1, stage2, counters, registry, activity, sessions, alert_relay
    )
