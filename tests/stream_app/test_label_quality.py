"""Stage 2 holds labels in memory across a batch (``handle_batch``): the same store and the
same results as one message at a time, however the messages are batched.

The messages are what stage 1 sent in a real scenario (labels before and after their
windows are final, ticks in between), with labels messages sent again at new offsets (as
after a stage-1 crash) and labels messages stage 2 must skip (a class the model does not
have) mixed in.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app import messages
from stream_app.counters import Counters
from stream_app.label_quality import QualityBuffer
from stream_app.registry import ModelRegistry
from stream_app.results import ReportRows
from stream_app.stage2 import Stage2, WindowRecord
from stream_app.state_store import MemoryStore
from tests.examples import examples
from tests.stream_app.local_pipeline import RecordingWriter
from tests.stream_app.test_stages import RUNTIME, run_scenario

Step = tuple[str, Any]  # ("message", StageMessage) or ("tick", partitions)


def _recorded_steps() -> list[Step]:
    steps: list[Step] = []
    with pytest.MonkeyPatch.context() as patch:
        original_batch, original_tick = Stage2.handle_batch, Stage2.tick

        async def handle_batch(self: Stage2, batch: Any) -> None:
            steps.extend(("message", message) for _, message, _ in batch)
            await original_batch(self, batch)

        async def tick(self: Stage2, partitions: Any) -> None:
            steps.append(("tick", list(partitions)))
            await original_tick(self, partitions)

        patch.setattr(Stage2, "handle_batch", handle_batch)
        patch.setattr(Stage2, "tick", tick)
        asyncio.run(run_scenario(1))
    return steps


def _with_resends_and_invalid(steps: list[Step]) -> list[Step]:
    """Every third labels message again three messages later; every seventh followed by
    one whose labels are not classes of the model."""
    out: list[Step] = []
    again: list[tuple[int, Step]] = []
    n_labels = 0
    for step in steps:
        out.append(step)
        while again and again[0][0] <= len(out):
            out.append(again.pop(0)[1])
        if step[0] == "message" and isinstance(step[1], messages.LabelsMessage):
            n_labels += 1
            if n_labels % 3 == 0:
                again.append((len(out) + 3, step))
            if n_labels % 7 == 0:
                n = len(step[1].y_true)
                # Offsets unknown (-1): applied whatever was seen, so the classes are checked.
                wrong = replace(step[1], y_true=["no such class"] * n, label_offsets=[-1] * n)
                out.append(("message", wrong))
    out.extend(step for _, step in again)
    return out


STEPS = _with_resends_and_invalid(_recorded_steps())


def _stage2(decoded: int | None = None) -> Stage2:
    """``decoded``: how many windows' quality states stage 2 keeps decoded (0: it parses
    every quality part it reads, the strict path)."""
    registry = ModelRegistry(lambda m: RUNTIME if m == RUNTIME.model_id else None, 1e9)
    stage2 = Stage2(registry, MemoryStore(), RecordingWriter(), Counters())
    if decoded is not None:
        stage2._quality = QualityBuffer(capacity=decoded)
    return stage2


async def _replay(stage2: Stage2, batch_sizes: list[int]) -> None:
    """Messages at rising offsets, cut into batches of the given sizes (cycled); a tick
    always ends a batch, as in the worker (ticks run between batches)."""
    batch: list[tuple[int, messages.StageMessage, int | None]] = []
    offset, sizes = 0, iter(batch_sizes * len(STEPS))
    limit = next(sizes)
    for kind, item in STEPS:
        if kind == "tick":
            await stage2.handle_batch(batch)
            batch = []
            await stage2.tick(item)
            continue
        batch.append((0, item, offset))
        offset += 1
        if len(batch) >= limit:
            await stage2.handle_batch(batch)
            batch, limit = [], next(sizes)
    await stage2.handle_batch(batch)


def _outcome(stage2: Stage2) -> tuple[Any, ...]:
    store, writer = stage2.records, stage2.writer
    assert isinstance(store, MemoryStore) and isinstance(writer, RecordingWriter)
    return (
        _contents(store),
        {key: _timeless(rows) for key, rows in writer.windows.items()},
        [(model, start, _timeless(rows)) for model, start, rows in writer.revisions],
        writer.late,
        asdict(stage2.counters),
    )


def _contents(store: MemoryStore) -> dict[str, Any]:
    """Each window's record as read (its two parts together) and every other entry.

    A record's drift part written when labels began it remembers the window-partials
    offset of that moment (one message at a time: the first labels message; batched: the
    batch's last); the record's offset is the highest of its parts, which must be equal.
    """
    out: dict[str, Any] = {}
    for key, value in store.data.items():
        if "|r|" in key:
            out[key] = WindowRecord.from_bytes(value, store.data.get(key.replace("|r|", "|q|")))
        elif "|q|" not in key:
            out[key] = value
    return out


def _timeless(rows: ReportRows) -> ReportRows:
    """The rows without the wall-clock time they were finalized at."""
    return replace(rows, window=replace(rows.window, finalized_at=None))


ONE_AT_A_TIME = _stage2(decoded=0)  # the strict path: every quality part parsed
asyncio.run(_replay(ONE_AT_A_TIME, [1]))


def test_the_recorded_traffic_has_what_the_property_needs() -> None:
    kinds = [type(item).__name__ for kind, item in STEPS if kind == "message"]
    assert kinds.count("LabelsMessage") > 20 and "PartialMessage" in kinds
    counters = ONE_AT_A_TIME.counters
    assert counters.replayed_pairs > 0, "messages sent again were recognised"
    assert counters.skipped_stage2_messages > 0, "the invalid labels were skipped"
    assert ONE_AT_A_TIME.writer.revisions, "labels revised final windows"  # type: ignore[attr-defined]


@settings(max_examples=examples(25), deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=6), st.sampled_from([0, 1, 2048]))
def test_batched_labels_give_what_one_message_at_a_time_gives(
    sizes: list[int], decoded: int
) -> None:
    """Batched, and with quality parts known from what was written (not parsed again),
    the outcome is the strict path's."""
    batched = _stage2(decoded)
    asyncio.run(_replay(batched, sizes))
    assert _outcome(batched) == _outcome(ONE_AT_A_TIME)


def test_a_failed_batch_leaves_the_store_as_before_and_is_replayed_whole() -> None:
    """A batch of labels that raises (a bug) writes nothing it held: applying it again
    counts every pair once. (The worker stops then; nothing of the batch is acknowledged.)"""
    labels = [item for _, item in STEPS if isinstance(item, messages.LabelsMessage)][:60]
    first, second = _stage2(), _stage2()
    batch = [(0, message, offset) for offset, message in enumerate(labels)]

    class BoomError(Exception):
        pass

    async def fail_midway() -> None:
        await first.handle_batch(batch[:30])
        before = dict(first.records.data)  # type: ignore[attr-defined]
        original = first._handle_one
        seen = 0

        async def handle_one(*args: Any) -> None:
            nonlocal seen
            seen += 1
            if seen == 20:
                raise BoomError
            await original(*args)

        first._handle_one = handle_one  # type: ignore[method-assign,assignment]
        with pytest.raises(BoomError):
            await first.handle_batch(batch[30:])
        assert first.records.data == before, "nothing held was written"  # type: ignore[attr-defined]
        first._handle_one = original  # type: ignore[method-assign]
        await first.handle_batch(batch[30:])

    asyncio.run(fail_midway())
    asyncio.run(second.handle_batch(batch))
    assert _contents(first.records) == _contents(second.records)  # type: ignore[arg-type]


def test_a_remembered_state_is_reused_only_while_the_store_holds_what_was_written() -> None:
    buffer = QualityBuffer(capacity=2)
    task = RUNTIME.task
    assert task is not None
    state = buffer.state_for("k", None, None, task)
    state.update(["1"], ["1"], [0.9])  # type: ignore[call-arg]
    fields = {"revision": 2, "recent_labels": {}, "revision_pending": True, "applied_offset": 7}
    buffer.remember("k", b"written", state, fields)
    assert buffer.known("k", b"written") == fields
    assert buffer.known("k", b"changed since") is None and buffer.known("other", b"x") is None
    assert buffer.state_for("k", b"written", None, task) is state
    assert buffer.known("k", b"written") is None, "taken out: the caller changes it"
    buffer.remember("k", b"written", state, fields)
    assert buffer.state_for("k", b"changed since", None, task) is not state
    for key in ("a", "b", "c"):
        buffer.remember(key, b"x", state, fields)
    assert buffer.state_for("a", b"x", None, task) is not state, "evicted beyond capacity"
    assert buffer.state_for("c", b"x", None, task) is state
