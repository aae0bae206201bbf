"""Stage 2, per model: merge partials into the final window, judge it, write it, trigger.

Messages arrive keyed by model id (see :mod:`stream_app.messages`). Per (model, window)
stage 2 keeps one record: the merged window state, which input partitions it came from
(a partial replayed after a crash is recognised and not counted twice), the late count and
whether the window is final. Watermarks from every input partition tell it when all of them
have passed a window's end plus its allowed lateness; then the window is finalized:

1. drift, data quality and output drift against the reference (``evaluate_window``);
2. 3-sigma control limits of every series against the model's previous windows;
3. one idempotent write of everything to SQL;
4. the retraining policy, and a trigger published to Kafka when it fires.

A final window stays in the table until its label horizon has passed. Labels that arrive
for it revise its quality metrics (a new revision, with the label coverage); a partial or a
late count that arrives for it rewrites the same rows. Nothing grows with the event count:
records are per window, histories are cut to what the control limits and the policy read.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import orjson

from detectors import ControlLimitResult, WindowState, evaluate_window
from schemas.outbound import RetrainTrigger
from stream_app import messages, results
from stream_app.counters import Counters
from stream_app.registry import ModelRegistry, ModelRuntime
from stream_app.retraining import WindowSummary, evaluate_policy
from stream_app.state_store import PartitionedStore
from stream_app.windows import window_closes_at

log = logging.getLogger(__name__)


class ResultWriter(Protocol):
    """Where finalized results go (SQL in the worker)."""

    async def write_window(
        self, model_id: str, start: float, end: float, report_rows: results.ReportRows
    ) -> None: ...

    async def write_quality(
        self, model_id: str, start: float, end: float, report_rows: results.ReportRows
    ) -> None: ...

    async def set_late(self, model_id: str, start: float, end: float, total: int) -> None: ...

    async def save_trigger(self, trigger: RetrainTrigger) -> bool: ...

    async def mark_published(self, trigger_id: str) -> None: ...


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

    def to_bytes(self) -> bytes:
        data = asdict(self)
        data["state"] = base64.b64encode(self.state).decode() if self.state else None
        return orjson.dumps(data)

    @classmethod
    def from_bytes(cls, raw: bytes) -> WindowRecord:
        data = orjson.loads(raw)
        data["state"] = base64.b64decode(data["state"]) if data["state"] else None
        data["sources"] = tuple(data["sources"])
        return cls(**data)


class Stage2:
    """Per-model finalization; ``records`` is a changelog-backed store."""

    def __init__(
        self,
        registry: ModelRegistry,
        records: PartitionedStore,
        writer: ResultWriter,
        publish_trigger: Callable[[RetrainTrigger], Awaitable[None]],
        counters: Counters,
    ) -> None:
        self.registry = registry
        self.records = records
        self.writer = writer
        self.publish_trigger = publish_trigger
        self.counters = counters

    # -- messages -------------------------------------------------------------------------

    async def handle(self, partition: int, message: messages.StageMessage) -> None:
        if isinstance(message, messages.WatermarkMessage):
            key = f"{partition}|wm|{message.source_partition}"
            self.records.set(partition, key, orjson.dumps(message.watermark))
            self.records.set(partition, f"{partition}|np", orjson.dumps(message.n_partitions))
            await self.finalize_ready(partition)
            return
        runtime = self.registry.get(message.model_id)
        if runtime is None:
            log.warning("dropping stage-2 message for unregistered model %s", message.model_id)
            return
        record = self._record(partition, message.model_id, message.window_start, message.window_end)
        if self._expired(partition, runtime, record):
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
            await self._labels(partition, runtime, record, message)
        else:
            record.late += message.count
            self._save(partition, record)
            if record.final:
                await self.writer.set_late(record.model_id, record.start, record.end, record.late)

    async def _partial(
        self,
        partition: int,
        runtime: ModelRuntime,
        record: WindowRecord,
        message: messages.PartialMessage,
    ) -> None:
        if message.source_partition in record.sources:
            return  # replayed after a crash: already merged
        incoming = WindowState.from_bytes(message.state)
        merged = incoming if record.state is None else self._state(runtime, record).merge(incoming)
        record.state = merged.to_bytes()
        record.sources = (*record.sources, message.source_partition)
        record.version = message.model_version or record.version
        self._save(partition, record)
        if record.final:  # a partition that was behind: the same rows, rewritten complete
            await self._finalize(partition, runtime, record)

    async def _labels(
        self,
        partition: int,
        runtime: ModelRuntime,
        record: WindowRecord,
        message: messages.LabelsMessage,
    ) -> None:
        if runtime.task is None:
            return
        state = self._state(runtime, record)
        state.update_labels(message.y_true, message.y_pred, message.scores)
        record.state = state.to_bytes()
        self._save(partition, record)
        if record.final:
            record.revision += 1
            self._save(partition, record)
            await self._revise_quality(partition, runtime, record, state)

    def _expired(self, partition: int, runtime: ModelRuntime, record: WindowRecord) -> bool:
        if record.state is not None or record.final or record.late or record.sources:
            return False  # a record we keep: not expired
        watermark = self.low_watermark(partition)
        size = record.end - record.start
        closes = window_closes_at(record.start, size, runtime.lateness_seconds)
        return watermark is not None and closes + runtime.label_horizon_seconds < watermark

    # -- finalization ---------------------------------------------------------------------

    def low_watermark(self, partition: int) -> float | None:
        """The watermark every input partition has passed, once all of them have reported.

        A partition that has seen no event reports ``None`` and does not hold windows back
        (its data, if any comes, arrives as a late partial and rewrites the window).
        """
        expected = self.records.get(f"{partition}|np")
        prefix = f"{partition}|wm|"
        reported = [orjson.loads(v) for k, v in self.records.items() if k.startswith(prefix)]
        if expected is None or len(reported) < orjson.loads(expected):
            return None
        marks = [mark for mark in reported if mark is not None]
        return min(marks) if marks else None

    async def finalize_ready(self, partition: int) -> None:
        watermark = self.low_watermark(partition)
        if watermark is None:
            return
        prefix = f"{partition}|r|"
        for key, raw in self.records.items():
            if not key.startswith(prefix):
                continue
            record = WindowRecord.from_bytes(raw)
            runtime = self.registry.get(record.model_id)
            if runtime is None:
                continue
            closes = window_closes_at(
                record.start, record.end - record.start, runtime.lateness_seconds
            )
            if not record.final and closes <= watermark:
                await self._finalize(partition, runtime, record)
            elif record.final and closes + runtime.label_horizon_seconds < watermark:
                self.records.delete(partition, key)  # labels can no longer revise it

    async def _finalize(self, partition: int, runtime: ModelRuntime, record: WindowRecord) -> None:
        state = self._state(runtime, record)
        report = evaluate_window(runtime.profile, state, runtime.drift_config)
        series = results.window_series(runtime, report, state)
        history = self._history(partition, runtime.model_id)
        verdicts = self._control_limits(runtime, history, record.start, series)
        rows = results.ReportRows.of(runtime.model_id, record, report, state, verdicts)
        await self.writer.write_window(runtime.model_id, record.start, record.end, rows)
        record.final = True
        self._save(partition, record)
        self.counters.windows_finalized += 1
        summary = WindowSummary(
            window_start=record.start,
            window_end=record.end,
            drifted=tuple(report.drifted_features),
            drift_scores={f.feature: f.primary.score for f in report.features},
            output_drift=report.output_drift,
            metrics=results.metric_values(report.quality),
            anomalous_metrics=_anomalous_metrics(verdicts),
        )
        await self._remember_and_maybe_trigger(partition, runtime, record, summary, series)

    async def _revise_quality(
        self, partition: int, runtime: ModelRuntime, record: WindowRecord, state: WindowState
    ) -> None:
        report = evaluate_window(runtime.profile, state, runtime.drift_config)
        series = results.quality_series(report)
        history = self._history(partition, runtime.model_id)
        verdicts = self._control_limits(runtime, history, record.start, series)
        rows = results.ReportRows.of(runtime.model_id, record, report, state, verdicts)
        await self.writer.write_quality(runtime.model_id, record.start, record.end, rows)
        self.counters.quality_revisions += 1
        entry = history["windows"].get(repr(record.start))
        if entry is None:
            return
        entry["series"].update(series)
        entry["summary"]["metrics"] = results.metric_values(report.quality)
        entry["summary"]["anomalous_metrics"] = list(_anomalous_metrics(verdicts))
        summary = _summary_from(entry["summary"])
        await self._remember_and_maybe_trigger(
            partition, runtime, record, summary, entry["series"], history
        )

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

    async def _remember_and_maybe_trigger(
        self,
        partition: int,
        runtime: ModelRuntime,
        record: WindowRecord,
        summary: WindowSummary,
        series: results.Series,
        history: dict[str, Any] | None = None,
    ) -> None:
        history = history or self._history(partition, runtime.model_id)
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
        self.records.set(
            partition, _history_key(partition, runtime.model_id), orjson.dumps(history)
        )
        if trigger is not None and await self.writer.save_trigger(trigger):
            await self.publish_trigger(trigger)
            await self.writer.mark_published(trigger.trigger_id)
            self.counters.triggers += 1

    # -- records --------------------------------------------------------------------------

    def _record(self, partition: int, model_id: str, start: float, end: float) -> WindowRecord:
        raw = self.records.get(_record_key(partition, model_id, start))
        return WindowRecord.from_bytes(raw) if raw else WindowRecord(model_id, start, end)

    def _save(self, partition: int, record: WindowRecord) -> None:
        key = _record_key(partition, record.model_id, record.start)
        self.records.set(partition, key, record.to_bytes())

    def _state(self, runtime: ModelRuntime, record: WindowRecord) -> WindowState:
        if record.state is None:
            return WindowState.empty(runtime.profile, runtime.task)
        return WindowState.from_bytes(record.state)

    def _history(self, partition: int, model_id: str) -> dict[str, Any]:
        raw = self.records.get(_history_key(partition, model_id))
        return orjson.loads(raw) if raw else {"windows": {}, "last_trigger_end": None}

    async def tick(self, partitions: Sequence[int]) -> None:
        for partition in partitions:
            await self.finalize_ready(partition)


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


def _record_key(partition: int, model_id: str, start: float) -> str:
    return f"{partition}|r|{model_id}|{start!r}"


def _history_key(partition: int, model_id: str) -> str:
    return f"{partition}|h|{model_id}"
