"""Stage 2, per model: merge partials into the final window, judge it, commit it with its trigger.

Messages arrive keyed by model id (see :mod:`stream_app.messages`). Per (model, window)
stage 2 keeps one record: the merged window state, which input partitions it came from
(a partial replayed after a crash is recognised and not counted twice), the late count and
whether the window is final. Labeled pairs and late counts that stage 1 sends again after
its own crash are recognised and applied once: a pair by its label's offset, kept while a
replay could send it again (``WindowRecord.recent_labels``), a late count by the highest
predictions offset counted (``WindowRecord.origins``). Watermarks from every input partition tell it
when all of them have passed a window's end plus its allowed lateness; then the window is
finalized:

1. drift, data quality and output drift against the reference (``evaluate_window``);
2. 3-sigma control limits of every series against the model's previous windows;
3. the retraining policy on the model's history with this window added (in memory);
4. everything as one :class:`~stream_app.results.WindowOutcome` (rows and the outbox row of
   a trigger that fired) committed to SQL in **one** transaction by the writer;
5. only then the changelog: the record becomes final, the history (with the cooldown's
   ``last_trigger_end``) is saved.

Stage 2 never publishes: the outbox relay (:mod:`stream_app.outbox_relay`) sends committed
triggers to Kafka. A crash anywhere before step 5 replays the window from the input topic,
and the replay commits the same rows and the same trigger id (upserts, deterministic ids),
so nothing is written twice and nothing is lost. While the database is unreachable the
writer waits (:mod:`stream_app.sql_writer`) and the message in hand stays unacknowledged.

A final window stays in the table until its label horizon has passed. Labels that arrive
for it revise its quality metrics on the next tick (a :class:`~stream_app.results.QualityRevision`,
the report's drift part reused while the binned state is the same: :mod:`stream_app.drift_reports`,
committed the same way before ``revision_pending`` is cleared); a partial or a late count
that arrives for it rewrites the same rows, and the record keeps it only once SQL has it.
A message that cannot be used (a label outside the model's classes, a state that does not
merge) is logged, counted (``skipped_stage2_messages``) and skipped; the others go on.
Nothing grows with the event count: records are per window, histories are cut to what the
control limits and the policy read.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import orjson

from detectors import ControlLimitResult, ReferenceProfile, WindowState
from detectors.quality import ClassificationState, quality_state_from_dict
from driftline.errors import DriftlineError, IncompatibleStateError, InvalidInputError
from schemas.outbound import RetrainTrigger
from stream_app import baseline, messages, results
from stream_app import table_keys as keys
from stream_app.counters import Counters
from stream_app.drift_reports import DriftReports
from stream_app.empty_windows import empty_window_starts, evaluations_needed
from stream_app.label_quality import HeldLabels, QualityBuffer
from stream_app.registry import ModelRegistry, ModelRuntime
from stream_app.retraining import WindowSummary, evaluate_policy
from stream_app.revision_pace import RevisionPace
from stream_app.state_store import PartitionedStore
from stream_app.windows import window_closes_at

log = logging.getLogger(__name__)


class ResultWriter(Protocol):
    """Where finalized results go: SQL (:class:`~stream_app.sql_writer.SqlResultWriter`).

    Each call is one transaction: it returns once committed (waiting out a database outage)
    or raises, and committing the same thing again changes nothing. The commits return how
    many of the outcome's triggers were new to the outbox.
    """

    async def commit_window(self, outcome: results.WindowOutcome) -> int: ...

    async def commit_revision(self, revision: results.QualityRevision) -> int: ...

    async def set_late(self, model_id: str, start: float, end: float, total: int) -> None: ...

    async def save_profile(self, model_id: str, profile: ReferenceProfile, source: str) -> None: ...


@dataclass
class WindowRecord:
    model_id: str
    start: float
    end: float
    state: bytes | None = None
    sources: tuple[int, ...] = ()
    late: int = 0
    final: bool = False
    revision: int = 0
    version: str = ""
    # Labeled pairs live apart from the binned state until finalization, so they can be
    # counted before any partial arrives and for baseline windows, which have no bins.
    quality: dict[str, Any] | None = None
    # Windows sampled while the model had no reference: exact count and a row sample.
    sample: dict[str, Any] | None = None
    # Finalized as part of the baseline (no reference yet): it stays a baseline window.
    baseline_role: bool = False
    # Labels arrived after finalization; the next tick revises the quality metrics.
    revision_pending: bool = False
    # The last window-partials offset applied to each part of the record (-1: none known):
    # the drift part's by partials and late counts, the quality part's by labels. Each is
    # stored in its own part, and each kind of message is checked against the part it
    # changes only. The two parts are two changelog keys, and a flush makes each key's last
    # value durable where the key was first written in the batch, so a kill can keep one
    # part and lose the other: one offset for both let a durable drift part claim a labels
    # message whose pairs were in the quality part that was lost (a real worker lost 110
    # pairs so), or a durable quality part claim partials the lost drift part held.
    applied_offset: int = -1
    quality_applied_offset: int = -1
    # Stage 1 replays its input from its checkpoint after a crash and sends pairs and late
    # counts again in new window-partials messages (new offsets, batches cut elsewhere),
    # which ``applied_offset`` cannot recognise; these can. Both are saved in the same
    # write as the quality state and late count they guard.
    # Late counts: the highest predictions offset counted, per input partition ("L3").
    origins: dict[str, int] = field(default_factory=dict)
    # Label pairs a replay could still send again, per input partition: [label offset,
    # summary topic, summary offset]. Dropped once stage 1's checkpoint covers both offsets.
    recent_labels: dict[str, list[list[Any]]] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """The drift part: everything but :data:`QUALITY_FIELDS` (see :meth:`quality_bytes`)."""
        data = asdict(self)
        for name in QUALITY_FIELDS:
            del data[name]
        del data["quality_applied_offset"]  # stored in the quality part as its applied_offset
        data["state"] = base64.b64encode(self.state).decode() if self.state else None
        return orjson.dumps(data)

    def quality_bytes(self) -> bytes | None:
        """The quality part, which labels rewrite without the ~20 KB drift part; None while
        the window has no labels (nothing to keep apart)."""
        if (
            self.quality is None
            and not self.recent_labels
            and not self.revision_pending
            and not self.revision
        ):
            return None
        data = {name: getattr(self, name) for name in QUALITY_FIELDS}
        data["applied_offset"] = self.quality_applied_offset
        # The state may hold numpy arrays (``to_dict(as_arrays=True)``): the same JSON.
        return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)

    def quality_fields(self) -> dict[str, Any]:
        """What the quality part holds besides the state (see :meth:`quality_bytes`)."""
        fields = {name: getattr(self, name) for name in QUALITY_FIELDS if name != "quality"}
        fields["applied_offset"] = self.quality_applied_offset
        return fields

    @classmethod
    def from_bytes(
        cls,
        raw: bytes,
        quality: bytes | None = None,
        quality_fields: dict[str, Any] | None = None,
    ) -> WindowRecord:
        """The record from its drift part and, when there is one, its quality part, or
        that part's fields but the state (``quality_fields``; ``quality`` stays None)."""
        data = orjson.loads(raw)
        data["state"] = base64.b64decode(data["state"]) if data["state"] else None
        data["sources"] = tuple(data["sources"])
        # Records written before ``origins`` and ``recent_labels`` existed lack the keys:
        # the defaults (nothing known applied) make them take everything, as they did. Ones
        # written before the quality part existed hold its fields themselves, and their one
        # offset guards both parts. A drift part without them has no labels applied that a
        # quality part (missing here: never written, or lost with a kill) does not show.
        whole = any(name in data for name in QUALITY_FIELDS)
        data["quality_applied_offset"] = data.get("applied_offset", -1) if whole else -1
        if quality_fields is not None:
            data["quality_applied_offset"] = quality_fields["applied_offset"]
            data.update({k: v for k, v in quality_fields.items() if k != "applied_offset"})
        elif quality is not None:
            part = orjson.loads(quality)
            data["quality_applied_offset"] = part["applied_offset"]
            # ``revision`` moved here later: an older quality part leaves the drift part's.
            data.update({name: part[name] for name in QUALITY_FIELDS if name in part})
        return cls(**data)


# What a labels message and a quality revision change, stored under a key of its own
# (``WindowKey.quality``), so neither rewrites the drift part.
QUALITY_FIELDS = ("quality", "recent_labels", "revision_pending", "revision")


class Stage2:
    """Per-model finalization; ``records`` is a changelog-backed store."""

    def __init__(
        self,
        registry: ModelRegistry,
        records: PartitionedStore,
        writer: ResultWriter,
        counters: Counters,
        revision_pace: RevisionPace | None = None,
    ) -> None:
        self.registry = registry
        self.records = records
        self.writer = writer
        self.counters = counters
        # Keys of records known to be final (in memory; rebuilt by the first scan after a
        # restart, since a final record stays final).
        self._final_keys: set[str] = set()
        # Keys of final records whose labels await their revision at the next tick: the
        # finalization scan has nothing to do with them either (labels stream in for
        # hundreds of final windows; decoding each on every watermark was a fifth of a
        # worker joining label envelopes).
        self._revising: set[str] = set()
        # Records last seen open, with their window's length: until the watermark reaches
        # their close they are not decoded again (every watermark message runs the scan, and
        # decoding each open record there was a tenth of a worker reading single events).
        self._open: dict[str, float] = {}
        self._quality = QualityBuffer()
        # None: every window whose labels changed is revised at the next tick.
        self._pace = revision_pace
        # A final window's report, whose drift part its quality revisions reuse.
        self._reports = DriftReports()

    # -- messages -------------------------------------------------------------------------

    async def handle(
        self, partition: int, message: messages.StageMessage, offset: int | None = None
    ) -> None:
        """Apply one message (see :meth:`handle_batch`)."""
        await self.handle_batch([(partition, message, offset)])

    async def handle_batch(
        self, batch: Sequence[tuple[int, messages.StageMessage, int | None]]
    ) -> None:
        """Apply ``(partition, message, offset)`` triples in order; every change is in the
        store when this returns.

        Labels change a window's quality part in memory until the batch settles: before
        any other kind of message (which reads the store) and at the end, so a window that
        several labels messages touch is read and written once. If anything raises, the
        held changes are dropped with the batch, which is not acknowledged.

        The batch's models are loaded first, in a thread, if missing or stale: a
        registry lookup reading SQL on the event loop would hold every other task.
        """
        await self.registry.refresh_ahead(
            {m.model_id for _, m, _ in batch if not isinstance(m, messages.WatermarkMessage)}
        )
        try:
            for partition, message, offset in batch:
                if self._quality and not isinstance(message, messages.LabelsMessage):
                    self._settle_labels()
                await self._handle_one(partition, message, offset)
            self._settle_labels()
        except BaseException:
            self._quality.discard()
            raise

    async def _handle_one(
        self, partition: int, message: messages.StageMessage, offset: int | None
    ) -> None:
        """Apply one message; a message that cannot be used is logged, counted and skipped.

        Only errors the message's content causes are caught here (bad input, states that do
        not merge): the rest of the batch must go on. Database outages never get here (the
        writer waits them out); other errors are bugs and propagate.

        ``offset`` is the message's offset in its window-partials partition. A window record
        remembers the last offset applied to it, in the same changelog write as what it
        applied, so a message read again after a crash (its offset not committed yet) is
        recognised and not counted twice.
        """
        try:
            await self._handle(partition, message, offset)
        except (InvalidInputError, IncompatibleStateError) as error:
            self.counters.skipped_stage2_messages += 1
            if isinstance(message, messages.WatermarkMessage):
                where = f"from input partition {message.source_partition}"
            else:
                start = results.utc(message.window_start).isoformat()
                where = f"for {message.model_id} window {start}"
            log.error("skipping a stage-2 %s %s: %s", message.kind, where, error)

    async def _handle(
        self, partition: int, message: messages.StageMessage, offset: int | None
    ) -> None:
        if isinstance(message, messages.WatermarkMessage):
            source = message.source_partition
            key = keys.watermark_key(partition, source)
            self.records.set(partition, key, orjson.dumps(message.watermark))
            labels = {"w": message.label_watermark, "behind": message.labels_behind}
            self.records.set(
                partition, keys.label_watermark_key(partition, source), orjson.dumps(labels)
            )
            self.records.set(
                partition, keys.sources_key(partition), orjson.dumps(message.n_partitions)
            )
            await self.finalize_ready(partition)
            return
        runtime = self.registry.get(message.model_id)
        if runtime is None:
            log.warning("dropping stage-2 message for unregistered model %s", message.model_id)
            return
        window = keys.WindowKey(partition, message.model_id, message.window_start)
        key = window.record
        held = known = None
        if isinstance(message, messages.LabelsMessage):
            held = self._quality.held(key)
            if held is None:  # its quality state kept decoded: the part is not parsed
                known = self._quality.known(key, self.records.get(window.quality))
        record = (
            held.record
            if held is not None
            else self._record(
                partition, message.model_id, message.window_start, message.window_end, known
            )
        )
        # Each kind of message is recognised by the offset of the part it changes.
        guard = (
            "quality_applied_offset"
            if isinstance(message, messages.LabelsMessage)
            else "applied_offset"
        )
        applied_before = getattr(record, guard)
        if offset is not None:
            if offset <= applied_before:
                self.counters.replayed_messages += 1
                return
            setattr(record, guard, offset)
        # A window whose quality state is kept has labels: kept, not expired.
        if held is None and known is None and self._expired(partition, runtime, record):
            # Its window was dropped after the label horizon: recreating it from this one
            # message would overwrite complete results with a fragment.
            self.counters.expired_messages += 1
            log.warning(
                "dropping %s for %s window %s: past its label horizon",
                message.kind,
                record.model_id,
                record.start,
            )
            return
        if isinstance(message, messages.PartialMessage):
            await self._partial(partition, runtime, record, message)
        elif isinstance(message, messages.LabelsMessage):
            changed = False
            try:
                changed = self._labels(partition, runtime, record, message, held)
            finally:
                if not changed:
                    # A held record is written with the batch: one that this message left
                    # unchanged (skipped, or nothing new) keeps the offset it had, as a
                    # record read and not written again does.
                    record.quality_applied_offset = applied_before
        else:
            fresh = _new_late(message, record.origins)
            if fresh is None:
                count = message.count
            else:
                count, highest, any_new = fresh
                self.counters.replayed_pairs += message.count - count
                if not any_new:
                    # All of it sent again after stage 1's crash: counted already, and in
                    # SQL already if the window is final. Nothing to write.
                    return
                record.origins.update(highest)
            record.late += count
            if record.final:  # SQL first: a crash before the save replays this message
                await self.writer.set_late(record.model_id, record.start, record.end, record.late)
            self._save(partition, record)

    async def _partial(
        self,
        partition: int,
        runtime: ModelRuntime,
        record: WindowRecord,
        message: messages.PartialMessage,
    ) -> None:
        if message.source_partition in record.sources:
            return  # replayed after a crash: already merged
        if baseline.is_sample(message.state):
            incoming = baseline.BaselineSample.from_bytes(message.state)
            current = baseline.BaselineSample(**record.sample) if record.sample else None
            seed = f"{record.model_id}|{record.start!r}"
            merged = (current or baseline.BaselineSample()).merge(
                incoming, baseline.WINDOW_SAMPLE, seed
            )
            record.sample = {"n": merged.n, "rows": merged.rows}
        else:
            state = WindowState.from_bytes(message.state)
            if record.state is not None:
                state = WindowState.from_bytes(record.state).merge(state)
            record.state = state.to_bytes()
        record.sources = (*record.sources, message.source_partition)
        record.version = message.model_version or record.version
        if record.final:
            # A partition that was behind: the same rows, rewritten complete. The record
            # (which now lists this partition) is saved after the commit: saved before, a
            # crash in between would make the replayed partial look merged already.
            await self._finalize(partition, runtime, record)
        else:
            self._save(partition, record)

    def _labels(
        self,
        partition: int,
        runtime: ModelRuntime,
        record: WindowRecord,
        message: messages.LabelsMessage,
        held: HeldLabels | None,
    ) -> bool:
        """Count the message's new pairs in the window's quality state, held until the
        batch settles (:meth:`_settle_labels`); whether there were any."""
        if runtime.task is None:
            return False
        y_true, y_pred, scores = message.y_true, message.y_pred, message.scores
        # Changed on a copy: a message whose labels turn out invalid changes nothing.
        recent = dict(record.recent_labels)
        fresh = _new_label_pairs(message, recent)
        if fresh is not None:
            keep = fresh
            self.counters.replayed_pairs += len(y_true) - len(keep)
            if not keep:
                # Every pair was applied before (stage 1 sent them again after a crash):
                # saving or flagging a revision would only redo what is done.
                return False
            if len(keep) < len(y_true):
                y_true = [y_true[i] for i in keep]
                y_pred = [y_pred[i] for i in keep]
                # Scores are per pair when there are any; an empty list stays empty.
                if len(scores) == len(message.y_true):
                    scores = [scores[i] for i in keep]
        key = keys.WindowKey(partition, record.model_id, record.start).record
        if held is not None:
            quality = held.state
        else:
            stored = self.records.get(keys.quality_key_of(key))
            quality = self._quality.state_for(key, stored, record.quality, runtime.task)
        # Both check the whole batch before counting: an invalid one leaves the state as is.
        if isinstance(quality, ClassificationState):
            quality.update(y_true, y_pred, scores)
        else:
            quality.update(y_true, y_pred)
        record.recent_labels = recent
        # A final window's metrics are revised on the next tick, once for all the labels
        # that arrived meanwhile: labels for hundreds of windows arrive mixed, and revising
        # per message would evaluate and write every window again for each batch.
        record.revision_pending = record.final
        self._quality.hold(key, partition, record, quality)
        # Until it is revised, the window must not be retired by its key alone: a watermark
        # arriving before the next tick would drop the labels it just took.
        self._final_keys.discard(key)
        if record.final:
            self._revising.add(key)
        return True

    def _settle_labels(self) -> None:
        """Write the windows labels changed since the last settle, once each."""
        for key, held in self._quality.release().items():
            record = held.record
            record.quality = held.state.to_dict(as_arrays=True)  # for quality_bytes only
            if self.records.get(key) is None:
                self._save(held.partition, record)  # labels before any partial: it begins here
            else:
                self._save_quality(held.partition, record)
            written = self.records.get(keys.quality_key_of(key))
            if written is not None:
                self._quality.remember(key, written, held.state, record.quality_fields())

    def _expired(self, partition: int, runtime: ModelRuntime, record: WindowRecord) -> bool:
        if record.state or record.final or record.late or record.sources or record.quality:
            return False  # a record we keep: not expired
        watermark = self.retire_watermark(partition)
        size = record.end - record.start
        closes = window_closes_at(record.start, size, runtime.lateness_seconds)
        return watermark is not None and closes + runtime.label_horizon_seconds < watermark

    # -- finalization ---------------------------------------------------------------------

    def low_watermark(self, partition: int) -> float | None:
        """The watermark every input partition has passed, once all of them have reported.

        A partition that has seen no event reports ``None`` and does not hold windows back
        (its data, if any comes, arrives as a late partial and rewrites the window).
        """
        expected = self.records.get(keys.sources_key(partition))
        prefix = keys.watermark_prefix(partition)
        reported = [orjson.loads(v) for k, v in self.records.items() if k.startswith(prefix)]
        if expected is None or len(reported) < orjson.loads(expected):
            return None
        marks = [mark for mark in reported if mark is not None]
        return min(marks) if marks else None

    def retire_watermark(self, partition: int) -> float | None:
        """The watermark that both the predictions and the labels of every partition passed.

        A final window is kept for label revisions until this passes its label horizon:
        judged by predictions alone, a replay whose labels are read behind its predictions
        would retire windows whose labels have not been read yet. A partition whose labels
        wait unread holds everything; one that has seen no label (nor event) holds nothing.
        """
        predictions = self.low_watermark(partition)
        expected = self.records.get(keys.sources_key(partition))
        prefix = keys.label_watermark_prefix(partition)
        reported = [orjson.loads(v) for k, v in self.records.items() if k.startswith(prefix)]
        if predictions is None or expected is None or len(reported) < orjson.loads(expected):
            return None
        if any(mark["behind"] for mark in reported):
            return None
        labels = [float(mark["w"]) for mark in reported if mark["w"] is not None]
        return min(predictions, *labels)

    async def finalize_ready(self, partition: int) -> None:
        watermark = self.low_watermark(partition)
        if watermark is None:
            return
        retire = self.retire_watermark(partition)
        prefix = keys.record_prefix(partition)
        history_prefix = keys.history_prefix(partition)
        ready: list[WindowRecord] = []
        models: list[str] = []  # those with a history here: they may have gone quiet
        for key, raw in self.records.items():
            if key.startswith(history_prefix):
                models.append(key[len(history_prefix) :])
                continue
            if not key.startswith(prefix):
                continue
            if key in self._final_keys:
                if retire is not None:
                    self._expire_final(partition, key, prefix, retire)
                continue
            if key in self._revising:
                continue  # final, and kept until revised: nothing to finalize or retire
            if key in self._open and not self._may_close(key, prefix, watermark):
                continue
            record = WindowRecord.from_bytes(raw, self.records.get(keys.quality_key_of(key)))
            if record.final:
                (self._revising if record.revision_pending else self._final_keys).add(key)
                self._open.pop(key, None)
            else:
                self._open[key] = record.end - record.start
            runtime = self.registry.get(record.model_id)
            if runtime is None:
                continue
            closes = window_closes_at(
                record.start, record.end - record.start, runtime.lateness_seconds
            )
            if not record.final and closes <= watermark:
                ready.append(record)
            elif (
                record.final
                and not record.revision_pending
                and retire is not None
                and closes + runtime.label_horizon_seconds < retire
            ):
                self._delete(partition, key)  # labels can no longer revise it
                self._final_keys.discard(key)
        # Oldest first: control limits compare a window with the ones before it, and a
        # baseline is made of a model's first windows.
        for record in sorted(ready, key=lambda r: (r.model_id, r.start)):
            runtime = self.registry.get(record.model_id)
            if runtime is not None:
                await self._finalize(partition, runtime, record)
        await self._evaluate_empty_windows(partition, watermark, models)

    def _may_close(self, key: str, prefix: str, watermark: float) -> bool:
        """Whether an open record's window may close at ``watermark`` (by its key, the
        length it had and the model's lateness now; an unregistered model's never does)."""
        window = keys.window_of(key, prefix)
        runtime = self.registry.get(window.model_id)
        if runtime is None:
            return False
        closes = window_closes_at(window.start, self._open[key], runtime.lateness_seconds)
        return closes <= watermark

    async def _evaluate_empty_windows(
        self, partition: int, watermark: float, models: list[str]
    ) -> None:
        """Alert on the windows models with a volume rule had no events in (see
        :mod:`stream_app.empty_windows`); their alerts are committed, no result rows."""
        for model_id in models:
            runtime = self.registry.get(model_id)
            if runtime is None or runtime.profile is None:
                continue
            rules = runtime.config.alerts.effective_rules()
            limit = evaluations_needed(rules)
            if not limit:
                continue
            # Read now, not during the scan: finalizing this tick's windows rewrote it.
            history = self._history(partition, model_id)
            seen = [float(start) for start in history["windows"]]
            if not seen:
                continue
            after = max(max(seen), history.get("empty_until") or -math.inf)
            size = float(runtime.window_seconds)
            starts = empty_window_starts(
                after, size, runtime.lateness_seconds, watermark, limit=limit
            )
            starts = [
                s
                for s in starts
                if self.records.get(keys.WindowKey(partition, runtime.model_id, s).record) is None
            ]
            if not starts:
                continue
            alerts = results.AlertInputs.of(runtime.config, "")
            for start in starts:
                outcome = results.WindowOutcome.empty(runtime.model_id, start, start + size, alerts)
                await self.writer.commit_window(outcome)
                history["empty_until"] = start
                self._save_history(partition, runtime.model_id, history)
            log.info(
                "model %s had no events in %d window(s) up to %s",
                runtime.model_id,
                len(starts),
                results.utc(starts[-1]).isoformat(),
            )

    def _expire_final(self, partition: int, key: str, prefix: str, watermark: float) -> None:
        """Drop a final window past its label horizon, judged from its key alone.

        Final windows stay until their label horizon (a day of one-minute windows is 1,440
        records per model); parsing each of them on every watermark would cost more than
        everything else stage 2 does, and a final record stays final.
        """
        window = keys.window_of(key, prefix)
        runtime = self.registry.get(window.model_id)
        if runtime is None:
            return
        closes = window_closes_at(window.start, runtime.window_seconds, runtime.lateness_seconds)
        if closes + runtime.label_horizon_seconds < watermark:
            self._delete(partition, key)
            self._final_keys.discard(key)

    async def _finalize(self, partition: int, runtime: ModelRuntime, record: WindowRecord) -> None:
        if record.baseline_role or runtime.profile is None:
            await self._finalize_baseline(partition, runtime, record)
            return
        runtime = await self._bound(runtime, record)
        assert runtime.profile is not None
        state = self._state(runtime, record)
        key = keys.WindowKey(partition, record.model_id, record.start).record
        report = self._reports.evaluate(key, runtime, record, state)
        series = results.window_series(runtime, report, state)
        exact_rows = self._exact_rows(record, state)
        series["volume"] = float(exact_rows)
        history = self._history(partition, runtime.model_id)
        verdicts = self._control_limits(runtime, history, record.start, series)
        rows = results.ReportRows.of(runtime.model_id, record, report, state, verdicts)
        rows = rows.with_row_count(exact_rows)
        summary = WindowSummary(
            window_start=record.start,
            window_end=record.end,
            drifted=tuple(report.drifted_features),
            drift_scores={f.feature: f.primary.score for f in report.features},
            output_drift=report.output_drift,
            metrics=results.metric_values(report.quality),
            anomalous_metrics=_anomalous_metrics(verdicts),
        )
        # ``history`` is this call's own copy: the changelog keeps the old one until the
        # commit below succeeded.
        trigger = self._remember(runtime, record, summary, series, history)
        alerts = results.AlertInputs.of(runtime.config, record.version)
        outcome = results.WindowOutcome.of(runtime.model_id, record, rows, trigger, alerts)
        new_triggers = await self.writer.commit_window(outcome)
        record.final = True
        self._save(partition, record)
        self._save_history(partition, runtime.model_id, history)
        self.counters.finalized_window(record.end)
        self.counters.triggers += new_triggers

    async def _revise_quality(
        self, partition: int, runtime: ModelRuntime, record: WindowRecord
    ) -> None:
        """Commit the revision the labels since the last tick call for, then clear the flag.

        The record is changed only after the commit: a failed write leaves it pending, and
        the next tick tries again.
        """
        revised = replace(record, revision=record.revision + 1, revision_pending=False)
        history: dict[str, Any] | None = None
        trigger = None
        if record.baseline_role or runtime.profile is None:
            rows = self._baseline_rows(runtime, revised)
        else:
            runtime = await self._bound(runtime, revised)
            assert runtime.profile is not None
            state = self._state(runtime, revised)
            key = keys.WindowKey(partition, revised.model_id, revised.start).record
            report = self._reports.evaluate(key, runtime, revised, state)
            series = results.quality_series(report)
            history = self._history(partition, runtime.model_id)
            verdicts = self._control_limits(runtime, history, revised.start, series)
            rows = results.ReportRows.of(runtime.model_id, revised, report, state, verdicts)
            entry = history["windows"].get(repr(revised.start))
            if entry is None:
                history = None  # cut from the history: nothing for the policy to revise
            else:
                entry["series"].update(series)
                entry["summary"]["metrics"] = results.metric_values(report.quality)
                entry["summary"]["anomalous_metrics"] = list(_anomalous_metrics(verdicts))
                summary = _summary_from(entry["summary"])
                trigger = self._remember(runtime, revised, summary, entry["series"], history)
        alerts = results.AlertInputs.of(runtime.config, revised.version)
        revision = results.QualityRevision.of(runtime.model_id, revised, rows, trigger, alerts)
        new_triggers = await self.writer.commit_revision(revision)
        self._save_quality(partition, revised)  # what a revision changes is all there
        if history is not None:
            self._save_history(partition, runtime.model_id, history)
        self.counters.quality_revisions += 1
        self.counters.triggers += new_triggers

    def _control_limits(
        self,
        runtime: ModelRuntime,
        history: dict[str, Any],
        start: float,
        series: results.Series,
    ) -> dict[str, ControlLimitResult]:
        previous = sorted(
            (float(k), v["series"]) for k, v in history["windows"].items() if float(k) < start
        )
        return {
            name: runtime.control_limits(name).evaluate([s.get(name) for _, s in previous], value)
            for name, value in series.items()
        }

    def _remember(
        self,
        runtime: ModelRuntime,
        record: WindowRecord,
        summary: WindowSummary,
        series: results.Series,
        history: dict[str, Any],
    ) -> RetrainTrigger | None:
        """Add the window to ``history`` (in memory) and return the trigger the policy fires.

        The caller saves ``history`` once the trigger is committed, so a trigger that failed
        to commit does not start the cooldown that would suppress it on the retry.
        """
        windows = history["windows"]
        windows[repr(record.start)] = {"series": series, "summary": _summary_dict(summary)}
        keep = max(runtime.config.anomaly.window, runtime.config.retrain.of_last_windows) + 1
        for old in sorted(windows, key=float)[:-keep]:
            del windows[old]
        ordered = [_summary_from(windows[k]["summary"]) for k in sorted(windows, key=float)]
        upto = [w for w in ordered if w.window_start <= record.start]
        trigger = evaluate_policy(
            runtime.config.retrain,
            runtime.model_id,
            record.version,
            upto,
            history.get("last_trigger_end"),
        )
        if trigger is not None:
            history["last_trigger_end"] = record.end
        return trigger

    def _save_history(self, partition: int, model_id: str, history: dict[str, Any]) -> None:
        self.records.set(partition, keys.history_key(partition, model_id), orjson.dumps(history))

    # -- records --------------------------------------------------------------------------

    def _record(
        self,
        partition: int,
        model_id: str,
        start: float,
        end: float,
        quality_fields: dict[str, Any] | None = None,
    ) -> WindowRecord:
        """The stored record (a new one if none is); with ``quality_fields`` (known to be
        the stored quality part's) that part is not parsed and ``quality`` is None."""
        window = keys.WindowKey(partition, model_id, start)
        raw = self.records.get(window.record)
        if raw is None:
            raw = WindowRecord(model_id, start, end).to_bytes()
        if quality_fields is not None:
            return WindowRecord.from_bytes(raw, quality_fields=quality_fields)
        return WindowRecord.from_bytes(raw, self.records.get(window.quality))

    def _save(self, partition: int, record: WindowRecord) -> None:
        """Write both parts of the record."""
        key = keys.WindowKey(partition, record.model_id, record.start).record
        self.records.set(partition, key, record.to_bytes())
        self._save_quality(partition, record)

    def _save_quality(self, partition: int, record: WindowRecord) -> None:
        """Write the quality part only (the drift part is as stored)."""
        quality = record.quality_bytes()
        if quality is not None:
            key = keys.WindowKey(partition, record.model_id, record.start).quality
            self.records.set(partition, key, quality)

    def _delete(self, partition: int, key: str) -> None:
        """Drop a record's two parts, by its drift part's key."""
        self._quality.forget(key)
        self._reports.forget(key)
        self._revising.discard(key)
        self._open.pop(key, None)
        self.records.delete(partition, key)
        quality_key = keys.quality_key_of(key)
        if self.records.get(quality_key) is not None:
            self.records.delete(partition, quality_key)

    async def _bound(self, runtime: ModelRuntime, record: WindowRecord) -> ModelRuntime:
        """The model as its window is judged: against the reference its state was built on."""
        if record.state is None:
            bound = runtime.fingerprint_for(record.start)
        else:
            bound = WindowState.fingerprint_of(record.state)
        return runtime if bound is None else await self.registry.bound_to(runtime, bound)

    def _state(self, runtime: ModelRuntime, record: WindowRecord) -> WindowState:
        """The window's binned state with its labeled pairs; needs the model's profile.

        A window that partitions began sampling before the baseline profile existed (a
        backlog replayed at once, say) is binned from its sample: exact while the window
        held no more rows than the sample keeps, an unbiased estimate beyond that (its row
        count stays exact, see :meth:`_exact_rows`).
        """
        profile = runtime.profile
        assert profile is not None
        if record.state is None:
            state = WindowState.empty(profile, runtime.task)
        else:
            state = WindowState.from_bytes(record.state)
        if record.sample is not None and record.sample["rows"]:
            rows = record.sample["rows"]
            columns = {name: [row.get(name) for row in rows] for name in profile.columns}
            state = state.merge(WindowState.empty(profile, runtime.task).update(profile, columns))
        if record.quality and state.quality is not None:
            state.quality = state.quality.merge(quality_state_from_dict(record.quality))  # type: ignore[arg-type]
        return state

    @staticmethod
    def _exact_rows(record: WindowRecord, state: WindowState) -> int:
        if record.sample is None:
            return state.n_rows
        return state.n_rows - len(record.sample["rows"]) + int(record.sample["n"])

    # -- baselines --------------------------------------------------------------------------

    def _baseline_rows(self, runtime: ModelRuntime, record: WindowRecord) -> results.ReportRows:
        n_rows = (record.sample or {}).get("n", 0)
        if record.state is not None:
            n_rows += WindowState.from_bytes(record.state).n_rows
        quality = quality_state_from_dict(record.quality) if record.quality else None
        return results.ReportRows.baseline(runtime.model_id, record, n_rows, quality)

    async def _finalize_baseline(
        self, partition: int, runtime: ModelRuntime, record: WindowRecord
    ) -> None:
        rows = self._baseline_rows(runtime, record)
        await self.writer.commit_window(results.WindowOutcome.of(runtime.model_id, record, rows))
        record.final = True
        record.baseline_role = True
        self._save(partition, record)
        self.counters.finalized_window(record.end)
        if runtime.profile is None:
            await self._maybe_publish_baseline(partition, runtime)

    async def _maybe_publish_baseline(self, partition: int, runtime: ModelRuntime) -> None:
        """Once enough baseline windows are final, their rows become the model's reference."""
        prefix = keys.record_prefix(partition, runtime.model_id)
        done = sorted(
            (
                WindowRecord.from_bytes(raw, self.records.get(keys.quality_key_of(key)))
                for key, raw in self.records.items()
                if key.startswith(prefix)
            ),
            key=lambda r: r.start,
        )
        done = [r for r in done if r.final and r.sample is not None]
        wanted = runtime.config.baseline_windows
        if len(done) < wanted:
            return
        chosen = done[:wanted]
        samples = [baseline.BaselineSample(**r.sample) for r in chosen if r.sample is not None]
        try:
            profile = baseline.profile_from_samples(runtime, samples)
        except DriftlineError as exc:
            log.warning("cannot build the baseline of %s yet: %s", runtime.model_id, exc)
            return
        first, last = results.utc(chosen[0].start), results.utc(chosen[-1].end)
        source = f"baseline: {wanted} windows {first.isoformat()} to {last.isoformat()}"
        await self.writer.save_profile(runtime.model_id, profile, source)
        self.registry.put(ModelRuntime(runtime.config, profile))
        log.info("model %s: %s became its reference", runtime.model_id, source)

    def _history(self, partition: int, model_id: str) -> dict[str, Any]:
        raw = self.records.get(keys.history_key(partition, model_id))
        return orjson.loads(raw) if raw else {"windows": {}, "last_trigger_end": None}

    async def flush(self) -> None:
        """Wait until this stage's state writes are on the changelog (before an ack)."""
        await self.records.flush()

    async def tick(self, partitions: Sequence[int]) -> None:
        for partition in partitions:
            await self.finalize_ready(partition)
            await self.revise_pending(partition)

    async def revise_pending(self, partition: int) -> None:
        """Write the quality revisions that labels since the last tick call for."""
        # The quality parts say which windows labels changed: only those are read whole.
        prefix = keys.quality_prefix(partition)
        pace = self._pace
        if pace is not None:
            pace.forget_past()
        pending = []
        waiting = set()
        for key, raw in self.records.items():
            # Most quality parts are not pending, and parsing each (sparse histograms) every
            # tick cost more than the revisions: the flag is looked for first. (orjson
            # escapes a quote inside a string, so no class name can look like it.)
            if not key.startswith(prefix) or b'"revision_pending":true' not in raw:
                continue
            window = keys.window_of(key, prefix)
            record_key = keys.WindowKey(partition, window.model_id, window.start).record
            if pace is not None and not pace.due(record_key):
                # Revised within the pace: nothing is read until it is due (a record is
                # ~20 KB, and hundreds wait during a label backfill).
                waiting.add(record_key)
            elif orjson.loads(raw)["revision_pending"]:
                record = self._record(partition, window.model_id, window.start, window.start)
                if record.final:
                    pending.append((record_key, record))
                else:
                    # A crash between a flush's writes kept the quality part of labels
                    # that came after the finalization, not the final drift part: the
                    # replayed partials finalize the window again, and it is revised then.
                    # Revised now, it would be written without its rows.
                    waiting.add(record_key)
        # Loaded in a thread where stale: get() would read the database on the event loop.
        await self.registry.prefetch({record.model_id for _, record in pending})
        for key, record in sorted(pending, key=lambda p: (p[1].model_id, p[1].start)):
            runtime = self.registry.get(record.model_id)
            if runtime is None:
                waiting.add(key)  # pending still: a later tick revises it
                continue
            await self._revise_quality(partition, runtime, record)
            if pace is not None:
                pace.revised(key)
        # Revised here, or elsewhere while the partition was away: final and not pending.
        mine = keys.record_prefix(partition)
        for key in [k for k in self._revising if k.startswith(mine) and k not in waiting]:
            self._revising.discard(key)
            if self.records.get(key) is not None:
                self._final_keys.add(key)


_SUMMARY_KINDS = frozenset("pj")


def _new_label_pairs(
    message: messages.LabelsMessage, recent: dict[str, list[list[Any]]]
) -> list[int] | None:
    """The positions of the pairs not applied yet; ``recent`` is updated in place.

    ``None``: the message says nothing of its origins (sent before they existed), so all of
    its pairs apply. A pair is identified by its label's offset and position in that message
    (a label joins once). Which
    message completes a join depends on where Kafka cut the batches, so after a crash the
    same pair may come back made by another message, in another order: stage 2 remembers
    the labels it applied for as long as a replay could send them again, which ends when
    stage 1's checkpoint covers both the label and the summary it joined.
    """
    if message.source_partition < 0 or not message.label_offsets:
        return None
    n_pairs = len(message.y_true)
    sizes = {len(message.origin_kinds), len(message.origin_offsets), len(message.label_offsets)}
    if sizes != {n_pairs}:
        raise InvalidInputError(
            f"labels message with {n_pairs} pairs but origins of other lengths {sorted(sizes)}"
        )
    if not set(message.origin_kinds) <= _SUMMARY_KINDS:
        raise InvalidInputError(
            f"labels message with unknown origin kinds {message.origin_kinds!r}"
        )
    key = str(message.source_partition)
    done_label, done_origin = message.checkpoint.get("l", -1), message.checkpoint.get
    kept_entries = [
        entry
        for entry in recent.get(key, [])
        if not (done_label >= entry[0] and done_origin(entry[1], -1) >= entry[2])
    ]
    # A label is its offset and its position in that message (entries written before label
    # envelopes existed have no position: 0, a label alone in its message).
    seen = {(entry[0], entry[3]) if len(entry) > 3 else (entry[0], 0) for entry in kept_entries}
    positions = message.label_indexes or [0] * n_pairs
    if len(positions) != n_pairs:
        raise InvalidInputError(
            f"labels message with {n_pairs} pairs but {len(positions)} label positions"
        )
    keep: list[int] = []
    for index, (kind, offset, label_offset, position) in enumerate(
        zip(
            message.origin_kinds,
            message.origin_offsets,
            message.label_offsets,
            positions,
            strict=True,
        )
    ):
        pair = (label_offset, position)
        if label_offset < 0:  # a label stored before offsets were: applied, not remembered
            keep.append(index)
        elif pair not in seen:
            keep.append(index)
            seen.add(pair)
            kept_entries.append(
                [label_offset, kind, offset, position] if position else [label_offset, kind, offset]
            )
    if kept_entries:
        recent[key] = kept_entries
    else:
        recent.pop(key, None)
    return keep


def _new_late(
    message: messages.LateMessage, applied: dict[str, int]
) -> tuple[int, dict[str, int], bool] | None:
    """How many of the message's late events were not counted yet, the maximum it raises,
    and whether any entry was new.

    ``None``: the message says nothing of its origins, so all of ``count`` applies. An entry
    (a predictions message's offset, its late events in this window) is new when its offset
    is above the highest counted for ``L{source_partition}``.
    """
    if message.source_partition < 0 or not message.origin_offsets:
        return None
    if len(message.origin_counts) != len(message.origin_offsets):
        raise InvalidInputError(
            f"late message with {len(message.origin_offsets)} origin offsets but "
            f"{len(message.origin_counts)} origin counts"
        )
    if sum(message.origin_counts) != message.count:
        raise InvalidInputError(
            f"late message counting {message.count} but its origins {sum(message.origin_counts)}"
        )
    key = f"L{message.source_partition}"
    before = applied.get(key, -1)
    count = 0
    highest: dict[str, int] = {}
    any_new = False
    for offset, late in zip(message.origin_offsets, message.origin_counts, strict=True):
        if offset < 0:  # no input offset known (as for labels): counted, not remembered
            count += late
            any_new = True
        elif offset > before:
            count += late
            any_new = True
            highest[key] = max(offset, highest.get(key, -1))
    return count, highest, any_new


def _anomalous_metrics(verdicts: dict[str, ControlLimitResult]) -> tuple[str, ...]:
    return tuple(
        name.removeprefix("metric:")
        for name, verdict in verdicts.items()
        if name.startswith("metric:") and verdict.anomaly
    )


def _summary_dict(summary: WindowSummary) -> dict[str, Any]:
    data = asdict(summary)
    data["drifted"] = list(summary.drifted)
    data["anomalous_metrics"] = list(summary.anomalous_metrics)
    return data


def _summary_from(data: dict[str, Any]) -> WindowSummary:
    return WindowSummary(
        window_start=data["window_start"],
        window_end=data["window_end"],
        drifted=tuple(data["drifted"]),
        drift_scores=data["drift_scores"],
        output_drift=data["output_drift"],
        metrics=data["metrics"],
        anomalous_metrics=tuple(data["anomalous_metrics"]),
    )
