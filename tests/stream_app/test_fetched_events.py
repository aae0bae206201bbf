"""Fetches read as columns give stage 1 the per-message path's answer, whatever they hold.

The same prediction messages go through two in-memory pipelines: one message at a time
(the strict path), and as real Kafka record batches read by the native reader into
columns (:class:`FetchedEvents`), which stage 1 takes whole when it can certify them.
Windows, late counts, duplicates, dead letters (with their reasons) and the checkpoints
must be the same, with bad messages, duplicates, late events, envelopes, end-of-stream
markers, replays and fetches that do not start where stage 1 expects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.record_columns import native
from stream_app.stage1_inputs import InputMessage, chunks
from tests.examples import examples
from tests.stream_app import scenario
from tests.stream_app.fetches import as_fetches
from tests.stream_app.local_pipeline import LocalPipeline, cut_with_replays
from tests.stream_app.test_stages import RUNTIME

pytestmark = pytest.mark.skipif(native is None, reason="the native reader is not built")

EVENTS = list(scenario.events(4, 60, drift_from=2, decay_from=99))
PARTITIONS = 2


def value_of(kind: str, index: int, rng: random.Random) -> tuple[str, bytes]:
    event = EVENTS[index % len(EVENTS)]
    data = orjson.loads(event.prediction_json())
    if kind == "bad json":
        return "bad", b'{"model_id": "churn", '
    if kind == "bad class":
        data.update(prediction_id=f"bad-{index}", prediction="7")
    elif kind == "future":
        data.update(prediction_id=f"future-{index}", timestamp=data["timestamp"] + 10**8)
    elif kind == "unknown model":
        data.update(model_id="nobody")
    elif kind == "late":
        data.update(prediction_id=f"late-{index}", timestamp=data["timestamp"] - 3600)
    elif kind == "envelope":
        other = orjson.loads(EVENTS[(index + 1) % len(EVENTS)].prediction_json())
        return event.prediction_id, orjson.dumps(
            {
                "model_id": "churn",
                "records": [{k: v for k, v in r.items() if k != "model_id"} for r in (data, other)],
            }
        )
    elif kind == "marker":
        return "", orjson.dumps({"control": "end_of_stream", "timestamp": data["timestamp"] - 120})
    return str(data["prediction_id"]), orjson.dumps(data)


KINDS = ["good"] * 12 + [
    "bad json",
    "bad class",
    "future",
    "unknown model",
    "late",
    "envelope",
    "duplicate",
    "marker",
]


async def run(plan: list[tuple[list[InputMessage], bool]], whole: bool) -> LocalPipeline:
    pipeline = LocalPipeline(RUNTIME, PARTITIONS)
    pipeline.clock.now = scenario.START + 10 * scenario.WINDOW
    for batch, replay in plan:
        for part in [batch, batch] if replay else [batch]:
            inputs = as_fetches(part) if whole else list(part)
            for piece in chunks(inputs, 50):
                await pipeline.stage1.process(piece)
                await pipeline.deliver()
    await pipeline.idle(10_000)
    return pipeline


def outcome(pipeline: LocalPipeline) -> dict[str, Any]:
    counters = pipeline.counters
    return {
        "windows": {  # when it was written aside
            key: dataclasses.replace(rows.window, finalized_at=None)
            for key, rows in pipeline.writer.windows.items()
        },
        "drift": {key: rows.drift for key, rows in pipeline.writer.windows.items()},
        "late": dict(pipeline.writer.late),
        "dead letters": sorted(
            (m.partition, m.offset, m.key, m.value, reason) for m, reason in pipeline.dead_letters
        ),
        "counted": (counters.late, counters.duplicates),
        # Predictions only: how many label-join messages carry the summaries depends on
        # where batches were cut, not on what they hold.
        "checkpoints": {p: pipeline.stage1.checkpoint(p).get("p") for p in range(PARTITIONS)},
    }


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(st.sampled_from(KINDS), min_size=20, max_size=160),
    st.lists(st.integers(1, 40), min_size=1, max_size=8),
    st.integers(0, 10**6),
)
def test_fetches_as_columns_give_the_per_message_answer(
    kinds: list[str], cuts: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    offsets: dict[int, int] = {}
    messages: list[InputMessage] = []
    for index, kind in enumerate(kinds):
        if kind == "duplicate" and messages:
            earlier = rng.choice(messages)
            key, value = (earlier.key or b"").decode(), earlier.value
        else:
            key, value = value_of(kind, index, rng)
        partition = rng.randrange(PARTITIONS)
        offset = offsets.get(partition, 0)
        offsets[partition] = offset + 1
        messages.append(
            InputMessage("prediction", "predictions", partition, offset, key.encode(), value)
        )
    plan = cut_with_replays(messages, cuts, rng, rounds=8)
    per_message = asyncio.run(run(plan, whole=False))
    whole = asyncio.run(run(plan, whole=True))
    assert outcome(whole) == outcome(per_message)


def test_a_clean_fetch_is_taken_whole() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    batch = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json(), partition=0)
        for e in EVENTS[:40]
    ]
    fetches = as_fetches(batch)
    asyncio.run(pipeline.feed(fetches))
    assert pipeline.counters.whole_fetch_runs == len(fetches) > 1
    assert pipeline.counters.fetches_taken_apart == 0
    asyncio.run(pipeline.feed(fetches))  # again: at or below the checkpoint, taken apart
    assert pipeline.counters.fetches_taken_apart == len(fetches)
    assert pipeline.counters.replayed_input == len(batch)
    assert pipeline.stage1.checkpoint(0)["p"] == 39


def test_chunks_count_records_not_inputs() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    batch = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json(), partition=0)
        for e in EVENTS[:30]
    ]
    fetches = as_fetches(batch[:20], size=10)  # two of 10 records
    label = InputMessage("label", "labels", 0, 0, b"k", b"{}")
    cut = chunks([*fetches, label, *batch[20:]], 12)
    assert [[len(i) if hasattr(i, "columns") else 1 for i in part] for part in cut] == [
        [10],
        [10, 1, 1],
        [1] * 9,
    ]
