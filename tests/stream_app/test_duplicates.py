"""A prediction delivered twice (a producer retry) is counted once.

Before: the second copy added 1 to its window (and overwrote its join entry).
"""

from __future__ import annotations

import asyncio
import tracemalloc

from stream_app.dedup import WindowDedup
from stream_app.stage1 import Stage1
from stream_app.stage1_inputs import InputMessage
from stream_app.state_store import MemoryStore
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import RUNTIME, _envelope, window_start

EVENTS = list(scenario.events(3, 150, drift_from=99, decay_from=99))


def _counts(pipeline: LocalPipeline) -> list[int]:
    return [
        pipeline.writer.windows[(scenario.MODEL_ID, window_start(w))].window.n_rows
        for w in range(3)
    ]


# Messages are made when they are sent: Kafka gives them rising offsets, and stage 1 skips
# what is at or below the offsets its state already holds.
def _singles(pipeline: LocalPipeline, events: list[scenario.Event] = EVENTS) -> list[InputMessage]:
    return [pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in events]


def _envelopes(
    pipeline: LocalPipeline, events: list[scenario.Event] = EVENTS
) -> list[InputMessage]:
    return [
        pipeline.message("prediction", events[i].prediction_id, _envelope(events[i : i + 50]))
        for i in range(0, len(events), 50)
    ]


def _copies(pipeline: LocalPipeline, sent: list[InputMessage]) -> list[InputMessage]:
    """What a producer's retry delivers: the same values again, at new offsets."""
    assert all(m.key is not None for m in sent)
    return [
        pipeline.message(m.kind, (m.key or b"").decode(), m.value, partition=m.partition)
        for m in sent
    ]


def _finish(pipeline: LocalPipeline) -> None:
    asyncio.run(pipeline.idle(10 * scenario.WINDOW))


def test_single_events_delivered_twice_count_once() -> None:
    pipeline = LocalPipeline(RUNTIME, 2)
    first = _singles(pipeline, EVENTS[:200])
    asyncio.run(pipeline.feed(first))
    retried = _copies(pipeline, first[100:200]) + _copies(pipeline, first[150:160])
    asyncio.run(pipeline.feed(retried + _singles(pipeline, EVENTS[200:300])))  # some twice
    asyncio.run(pipeline.feed(_singles(pipeline, EVENTS[300:])))
    _finish(pipeline)
    assert _counts(pipeline) == [150, 150, 150]
    # Window 0 closed after the first batch: its 50 copies there are late, not added.
    assert (pipeline.counters.duplicates, pipeline.counters.late) == (60, 50)


def test_envelopes_delivered_twice_count_once() -> None:
    pipeline = LocalPipeline(RUNTIME, 2)
    first = _envelopes(pipeline, EVENTS[:250])
    asyncio.run(pipeline.feed(first))
    retried = _copies(pipeline, first[3:5])  # the producer retried two of them
    asyncio.run(pipeline.feed(retried + _envelopes(pipeline, EVENTS[250:])))
    _finish(pipeline)
    assert _counts(pipeline) == [150, 150, 150]
    assert pipeline.counters.duplicates == 100


def test_a_strictly_parsed_envelope_delivered_twice_counts_once() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    # An ISO timestamp sends the envelope to the strict parser.
    raw = _envelope(EVENTS[:50]).replace(b'"records":[{', b'"records":[{"_":1,', 0)
    iso = raw.replace(str(EVENTS[0].timestamp).encode(), b'"2026-01-01T00:00:00.5Z"', 1)
    first = pipeline.message("prediction", "e", iso, partition=0)
    again = pipeline.message("prediction", "e", iso, partition=0)
    asyncio.run(pipeline.feed([first]))
    asyncio.run(pipeline.feed([again]))
    _finish(pipeline)
    rows = pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))].window.n_rows
    assert rows == 50
    assert pipeline.counters.duplicates == 50


def test_a_copy_after_its_window_closed_is_late_not_added() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    messages = _singles(pipeline)
    asyncio.run(pipeline.feed(messages))
    _finish(pipeline)
    asyncio.run(pipeline.feed(_copies(pipeline, messages[:10])))
    _finish(pipeline)
    assert _counts(pipeline) == [150, 150, 150]
    assert pipeline.counters.late == 10


def test_a_restarted_stage_1_remembers_what_it_counted() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    messages = _singles(pipeline, EVENTS[:100])
    asyncio.run(pipeline.feed(messages))
    old = pipeline.stage1
    # A new process: in-memory state gone, the tables restored from their changelogs.
    pipeline.stage1 = Stage1(
        old.registry,
        old.windows,
        old.joins,
        old.sink,
        n_partitions=1,
        idle_timeout=old.idle_timeout,
        counters=pipeline.counters,
        clock=pipeline.clock,
    )
    # Producer retries of what the old process counted, then the rest of the stream.
    again = _copies(pipeline, messages[50:])
    asyncio.run(pipeline.feed(again + _singles(pipeline, EVENTS[100:])))
    _finish(pipeline)
    assert _counts(pipeline) == [150, 150, 150]
    assert pipeline.counters.duplicates == 50
    assert not [key for key, _ in old.windows.items() if "|dd|" in key]  # forgotten at close


def test_memory_per_remembered_prediction_is_bounded() -> None:
    store = MemoryStore()
    dedup = WindowDedup(store)
    ids = [f"prediction-{i:08d}" for i in range(100_000)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for start in range(0, len(ids), 500):
        for prediction_id in ids[start : start + 500]:
            dedup.first_time((0, "m", 0.0), prediction_id)
        dedup.save()
    in_memory = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # The set's slots and the store's JSON chunks (the ids themselves existed before);
    # measured ~300 B per prediction of an open window, documented in docs/reliability.md.
    per_prediction = in_memory / len(ids)
    assert per_prediction < 400, per_prediction
    dedup.forget((0, "m", 0.0))
    assert list(store.items()) == []


def test_stage_2_applies_a_message_read_again_after_a_crash_once() -> None:
    from detectors.quality import quality_state_from_dict
    from stream_app import messages

    pipeline = LocalPipeline(RUNTIME, 1)
    labels = messages.LabelsMessage(
        scenario.MODEL_ID, window_start(0), window_start(1), ["1", "0"], ["1", "1"], [0.9, 0.6]
    )
    # Offsets 7 and 8 applied; the crash came before the commit, so both are read again.
    for offset in (7, 8, 7, 8):
        asyncio.run(pipeline.stage2.handle(0, labels, offset))
    record = pipeline.stage2._record(0, scenario.MODEL_ID, window_start(0), window_start(1))
    assert record.quality is not None
    assert quality_state_from_dict(record.quality).n_labeled == 4
    assert pipeline.counters.replayed_messages == 2
