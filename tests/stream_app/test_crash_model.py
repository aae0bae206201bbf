"""Stage 1 killed at any point of what it has made durable, restarted from a committed
offset at or below its checkpoint: stage 2 ends with the results of a run never killed.

A worker's broker and changelogs are modelled by one log, in the order things become
durable: messages sent (to stage 2, to the label-join topic) as they are sent, state
writes as a store flushes them (``Stage1.flush`` orders sends, then state, then the
checkpoint). A kill keeps a prefix of that log. The restarted stage 1 rebuilds its stores
from the writes in the prefix and reads its input again from offsets that were committed
(Faust commits a batch only after its flush returned), possibly several batches back; the
label-join topic's input is what the prefix holds. Stage 2 reads every message stage 1
ever sent, in order, duplicates included.

The integration test (tests/integration/test_crash_replay.py) kills a real worker; this
one tries every kind of kill point in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import orjson
import pytest

from schemas.control import end_of_stream_message
from stream_app import messages, segment_spill
from stream_app.changelog_segments import SegmentedTableStore
from stream_app.counters import Counters
from stream_app.label_join import join_partition
from stream_app.memory_store import RebuildingMemoryStore
from stream_app.registry import ModelRegistry
from stream_app.segment_spill import SegmentSpill
from stream_app.stage1 import Stage1, Stage1Sink
from stream_app.stage1_inputs import InputMessage
from stream_app.stage2 import Stage2
from stream_app.state_store import MemoryStore, flush_order
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import FakeClock, RecordingWriter
from tests.stream_app.test_changelog_segments import restored
from tests.stream_app.test_stages import RUNTIME, _envelope

pytestmark = pytest.mark.slow  # make test runs it; make test-unit does not

PARTITIONS = 2
WINDOWS = 4
PER_WINDOW = 60
END = scenario.START + (WINDOWS + 1) * scenario.WINDOW + scenario.LATENESS + 1

Entry = tuple[Any, ...]


class KilledError(Exception):
    """The worker died: nothing after this point of the log became durable."""


@dataclass
class Durable:
    """The broker and the changelogs, as one log of what became durable, in order."""

    log: list[Entry] = field(default_factory=list)
    limit: int | None = None

    def append(self, entry: Entry) -> None:
        if self.limit is not None and len(self.log) >= self.limit:
            raise KilledError
        self.log.append(entry)

    def joins(self, partition: int) -> list[bytes]:
        return [e[2] for e in self.log if e[0] == "join" and e[1] == partition]


class LoggedStore:
    """A store whose writes reach the log when flushed, as FaustTableStore's changelog."""

    def __init__(
        self, name: str, durable: Durable, sent_first: Callable[[str], bool] | None = None
    ) -> None:
        self.name, self.durable, self.sent_first = name, durable, sent_first
        self.data: dict[str, bytes] = {}
        for entry in durable.log:  # a restart restores the store from its changelog
            if entry[0] == "write" and entry[1] == name:
                _, _, _, key, value = entry
                if value is None:
                    self.data.pop(key, None)
                else:
                    self.data[key] = value
        self._unsent: dict[str, tuple[int, bytes | None]] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, partition: int, key: str, value: bytes) -> None:
        self.data[key] = value
        self._unsent[key] = (partition, value)

    def delete(self, partition: int, key: str) -> None:
        if self.data.pop(key, None) is not None:
            self._unsent[key] = (partition, None)

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self.data.items()))

    def keep(self, key: str, value: bytes | memoryview) -> None:
        if key in self.data:
            self.data[key] = value  # type: ignore[assignment]

    async def flush(self) -> None:
        unsent, self._unsent = self._unsent, {}
        for key, (partition, value) in flush_order(unsent, self.sent_first):
            self.durable.append(("write", self.name, partition, key, value))


class SegmentedLog:
    """The join table as a worker writes it: changelog segments to the log, restored
    through Faust's in-memory store (stream_app.changelog_segments)."""

    def __init__(self, name: str, durable: Durable, data: RebuildingMemoryStore) -> None:
        self.name, self.durable, self.data = name, durable, data

    @classmethod
    async def restored(
        cls, name: str, durable: Durable, spill: SegmentSpill | None = None
    ) -> SegmentedLog:
        records = [(e[2], e[3], e[4]) for e in durable.log if e[0] == "write" and e[1] == name]
        return cls(name, durable, await restored(records, spill))

    def send_changelog(
        self, partition: int, key: str, value: bytes | None, value_serializer: Any = None
    ) -> asyncio.Future[None]:
        self.durable.append(("write", self.name, partition, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _inputs() -> dict[tuple[str, int], list[bytes]]:
    """Envelopes and single events, labels (alone and in envelopes) before and after their
    predictions, late
    events, and an end-of-stream marker per partition: per (topic kind, partition)."""
    rng = np.random.default_rng(11)
    events = list(scenario.events(WINDOWS, PER_WINDOW, drift_from=2, decay_from=3))
    inputs: dict[tuple[str, int], list[bytes]] = defaultdict(list)
    labels_after: list[scenario.Event] = []
    for w in range(WINDOWS):
        chunk = [e for e in events if e.window == w]
        for i in range(0, len(chunk), 10):
            part = chunk[i : i + 10]
            if i % 20 == 0:  # an envelope, keyed by its first id: the rest is forwarded
                p = join_partition(part[0].prediction_id, PARTITIONS)
                inputs[("prediction", p)].append(_envelope(part))
            else:
                for e in part:
                    p = join_partition(e.prediction_id, PARTITIONS)
                    inputs[("prediction", p)].append(e.prediction_json())
            for e in part:
                if rng.random() < 0.3:  # the label first
                    p = join_partition(e.prediction_id, PARTITIONS)
                    inputs[("label", p)].append(e.label_json())
                elif rng.random() < 0.6:
                    labels_after.append(e)
        if w >= 2:  # a few events of window 0 turn up late
            for e in [x for x in events if x.window == 0][w * 3 : w * 3 + 3]:
                late = scenario.Event(
                    f"late-{w}-{e.prediction_id}", e.timestamp, e.features, e.prediction,
                    e.score, e.label, e.window,
                )  # fmt: skip
                inputs[("prediction", join_partition(late.prediction_id, PARTITIONS))].append(
                    late.prediction_json()
                )
    by_partition: dict[int, list[scenario.Event]] = defaultdict(list)
    for e in labels_after:
        by_partition[join_partition(e.prediction_id, PARTITIONS)].append(e)
    for p, waiting in by_partition.items():
        for i in range(0, len(waiting), 6):  # label envelopes and single labels, by turns
            part = waiting[i : i + 6]
            if i % 12 == 0:
                inputs[("label", p)].append(scenario.label_envelope(part))
            else:
                inputs[("label", p)].extend(e.label_json() for e in part)
    for p in range(PARTITIONS):
        inputs[("prediction", p)].append(end_of_stream_message(END))
    return inputs


INPUTS = _inputs()
# Messages per partition and batch: many batches. A restarted worker's batches are cut
# elsewhere (Kafka's fetches differ), so a replay does not repeat the first run's batches.
CUTS = [
    {"prediction": 3, "label": 4, "join": 2},
    {"prediction": 2, "label": 5, "join": 3},
    {"prediction": 4, "label": 1, "join": 1},
    {"prediction": 1, "label": 7, "join": 5},
]


def _registry() -> ModelRegistry:
    return ModelRegistry(lambda m: RUNTIME if m == RUNTIME.model_id else None, 1e9)


async def _incarnation(
    durable: Durable,
    start: dict[tuple[str, int], int],
    commits: list[dict[tuple[str, int], int]],
    cut: dict[str, int],
    spill: SegmentSpill | None = None,
) -> None:
    """One worker's life: from ``start`` until the input is done or it is killed."""

    async def to_stage2(key: str | None, value: bytes, partition: int | None) -> None:
        durable.append(("stage2", value))

    async def dead_letter(message: InputMessage, reason: str) -> None:
        raise AssertionError(f"unexpected dead letter: {reason}")

    async def forward(partition: int, value: bytes) -> None:
        durable.append(("join", partition, value))

    clock = FakeClock()
    joins = await SegmentedLog.restored("joins", durable, spill)
    stage1 = Stage1(
        _registry(),
        LoggedStore("windows", durable),
        SegmentedTableStore(joins, joins.data.segments),
        Stage1Sink(to_stage2, dead_letter, forward, 1),
        n_partitions=PARTITIONS,
        idle_timeout=1e9,
        counters=Counters(),
        clock=clock,
        wall_clock=lambda: END,
        spill=spill,
    )
    position = dict(start)
    while True:
        batch: list[InputMessage] = []
        for p in range(PARTITIONS):
            for kind, size in cut.items():
                values = durable.joins(p) if kind == "join" else INPUTS[(kind, p)]
                first = position.get((kind, p), 0)
                batch.extend(
                    InputMessage(kind, kind, p, offset, None, values[offset])  # type: ignore[arg-type]
                    for offset in range(first, min(first + size, len(values)))
                )
                position[(kind, p)] = min(first + size, len(values))
        if not batch:
            # The timer's work once the input is done: heartbeats held back by their rate
            # limit go out (a worker's clock moves on; this one's only does here).
            clock.now += 10
            await stage1.tick(list(range(PARTITIONS)))
            await stage1.flush()
            return
        await stage1.process(batch)
        commits.append(dict(position))


async def _run(
    kills: list[tuple[int, int]], cuts: list[int] | None = None, spill: bool = False
) -> list[Entry]:
    """Run to the end; each kill: (log length at which it dies, batches of commit lag).

    ``cuts``: which of :data:`CUTS` each incarnation uses (the first one by default).
    ``spill``: the label join keeps every segment on disk (a memory budget of 0).
    """
    cuts = cuts or [0] * (len(kills) + 1)
    on_disk = SegmentSpill(Path(tempfile.gettempdir()) / "driftline-test-spill", 0)
    spill_to = on_disk if spill else None
    durable = Durable()
    commits: list[dict[tuple[str, int], int]] = [{}]
    start: dict[tuple[str, int], int] = {}
    # With the spill, a restart restores every segment, however small, to disk.
    threshold = 1 if spill else segment_spill.RESTORED_TO_DISK_BYTES
    with mock.patch.object(segment_spill, "RESTORED_TO_DISK_BYTES", threshold):
        for (at, lag), cut in zip(kills, cuts, strict=False):
            durable.limit = at
            with contextlib.suppress(KilledError):
                await _incarnation(durable, start, commits, CUTS[cut], spill_to)
            durable.limit = None
            start = commits[max(0, len(commits) - 1 - lag)]
        await _incarnation(durable, start, commits, CUTS[cuts[len(kills)]], spill_to)
    return durable.log


async def _stage2(log: list[Entry]) -> dict[str, Any]:
    registry = _registry()
    writer = RecordingWriter()
    stage2 = Stage2(registry, MemoryStore(), writer, Counters())
    sent = [entry[1] for entry in log if entry[0] == "stage2"]
    decoded = [
        (0, message, offset)
        for offset, value in enumerate(sent)
        for message in messages.decode_all(value)
    ]
    # In batches, as the agent takes them: labels for a window are held across a batch.
    for start in range(0, len(decoded), 7):
        await stage2.handle_batch(decoded[start : start + 7])
    await stage2.flush()
    for _ in range(2):
        await stage2.tick([0])
    return results_of(writer)


def results_of(writer: RecordingWriter) -> dict[Any, Any]:
    """Per window, as its last write (finalization or revision) left it: rows, late events,
    labeled pairs, every quality metric and the history behind its control limits."""
    final = dict(writer.windows)
    for model_id, start, rows in writer.revisions:
        final[(model_id, start)] = rows
    return {
        key: (
            rows.window.n_rows,
            writer.late.get(key),
            rows.window.n_labeled,
            sorted((m.metric, round(m.value, 12)) for m in rows.metrics if m.value is not None),
            _history_drawn_on(writer.windows.get(key), rows),
        )
        for key, rows in sorted(final.items())
    }


def _history_drawn_on(finalized: Any, last: Any) -> list[tuple[str, int]]:
    """How many earlier windows each control limit drew on (the model's history): the
    other series' as the finalization judged them, the quality metrics' as the last write
    did (labels revise those; whether a window's labels came before or after it was final
    depends on timing, not on what was lost)."""
    drawn = {a.series: a.n_history for a in finalized.anomalies} if finalized else {}
    drawn = {k: v for k, v in drawn.items() if not k.startswith("metric:")}
    drawn.update((a.series, a.n_history) for a in last.anomalies if a.series.startswith("metric:"))
    return sorted(drawn.items())


CLEAN_LOG = asyncio.run(_run([]))
CLEAN = asyncio.run(_stage2(CLEAN_LOG))


def test_the_clean_run_has_late_events_labels_and_revisions() -> None:
    assert len(CLEAN) == WINDOWS + 1 or len(CLEAN) == WINDOWS
    n_rows = sum(v[0] for v in CLEAN.values())
    assert n_rows == WINDOWS * PER_WINDOW
    assert sum(v[1] or 0 for v in CLEAN.values()) > 0  # late events were counted
    assert all(v[2] > 0 for v in CLEAN.values())  # every window has labels
    sent = [
        orjson.loads(raw)
        for (kind, _), values in INPUTS.items()
        if kind == "label"
        for raw in values
    ]
    envelopes = [doc for doc in sent if "records" in doc]
    assert envelopes, "label envelopes are part of the input"
    n_labels = sum(len(doc.get("records", [doc])) for doc in sent)
    assert sum(v[2] for v in CLEAN.values()) == n_labels  # every label, alone or not, joined


KILL_POINTS = sorted({int(x) for x in np.linspace(1, len(CLEAN_LOG) - 1, 24)})


@pytest.mark.parametrize("at", KILL_POINTS)
@pytest.mark.parametrize("lag", [0, 2])
def test_a_kill_anywhere_gives_the_clean_results(at: int, lag: int) -> None:
    # The restarted worker cuts its batches in another of the ways, by kill point.
    cuts = [0, 1 + at % (len(CUTS) - 1)]
    assert asyncio.run(_stage2(asyncio.run(_run([(at, lag)], cuts)))) == CLEAN


@pytest.mark.parametrize("seed", range(8))
def test_three_kills_give_the_clean_results(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kills, at = [], 0
    for _ in range(3):
        at += int(rng.integers(1, len(CLEAN_LOG) // 3))
        kills.append((at, int(rng.integers(0, 4))))
    cuts = [int(c) for c in rng.integers(0, len(CUTS), 4)]
    # Odd seeds with the join's segments on disk, read through memory maps.
    spill = seed % 2 == 1
    assert asyncio.run(_stage2(asyncio.run(_run(kills, cuts, spill)))) == CLEAN
