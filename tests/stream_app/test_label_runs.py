"""Runs of single labels joined at once give the answer of one label message at a time.

The same label messages go through in-memory pipelines with the same predictions: one
joins runs of single labels together (``stream_app.label_runs``), one is given them as
real record batches read into columns (``FetchedLabels``, joined whole when a fetch is one
run), and one takes every label message on its own (the strict path). The quality
counted, the dead letters (with their reasons), the labels and pairs counted, the join
table and the checkpoints must be the same, with bad labels, unknown models, labels ahead
of time, labels sent twice, labels before their prediction, envelopes among the singles,
and replayed batches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any
from unittest import mock

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app.label_join import join_partition
from stream_app.label_runs import label_runs
from stream_app.record_columns import native
from stream_app.stage1_inputs import InputMessage
from stream_app.state_store import MemoryStore
from tests.examples import examples
from tests.stream_app import scenario
from tests.stream_app.fetches import as_fetches
from tests.stream_app.local_pipeline import LocalPipeline, cut_with_replays
from tests.stream_app.test_stages import runtime

RUNTIME = runtime(label_horizon_seconds=2 * scenario.WINDOW)
PARTITIONS = 2
EVENTS = list(scenario.events(3, 40, drift_from=99, decay_from=99))
FED = EVENTS[: len(EVENTS) * 3 // 4]  # the rest: labels that come before their prediction

KINDS = ["good"] * 14 + [
    "early",
    "again",
    "again",
    "bad json",
    "bad class",
    "future",
    "unknown model",
    "envelope",
    "stray",
]


def label_value(kind: str, event: scenario.Event, other: scenario.Event) -> bytes:
    data = orjson.loads(event.label_json())
    if kind == "bad json":
        return b'{"model_id": "churn", "prediction_id": '
    if kind == "bad class":
        data["label"] = "7"
    elif kind == "future":
        data["timestamp"] += 10**8
    elif kind == "unknown model":
        data["model_id"] = "nobody"
    elif kind == "envelope":
        return scenario.label_envelope([event, other])
    return orjson.dumps(data)


def label_messages(kinds: list[str], rng: random.Random) -> list[InputMessage]:
    offsets: dict[int, int] = {}
    sent: list[InputMessage] = []
    for kind in kinds:
        if kind == "again" and sent:
            earlier = rng.choice(sent[-3:])  # often in the same batch: an id twice in a run
            key, value, partition = earlier.key or b"", earlier.value, earlier.partition
        else:
            pool = EVENTS[len(FED) :] if kind == "early" else FED
            event = rng.choice(pool)
            value = label_value(kind, event, rng.choice(FED))
            key = event.prediction_id.encode()
            home = join_partition(event.prediction_id, PARTITIONS)
            partition = rng.randrange(PARTITIONS) if kind == "stray" else home
        offset = offsets.get(partition, 0)
        offsets[partition] = offset + 1
        sent.append(InputMessage("label", "labels", partition, offset, key, value))
    return sent


async def run(
    plan: list[tuple[list[InputMessage], bool]], runs: bool, fetches: bool = False
) -> tuple[LocalPipeline, dict[str, bytes]]:
    """The pipeline at the end, and its join table once the labels were read; ``fetches``:
    each batch given as whole fetches read into columns."""
    pipeline = LocalPipeline(RUNTIME, PARTITIONS)
    pipeline.clock.now = scenario.START + 4 * scenario.WINDOW
    await pipeline.feed_predictions(FED)
    for batch, replay in plan:
        for part in [batch, batch] if replay else [batch]:
            if fetches:
                await pipeline.feed(as_fetches(part, size=5))
            elif runs:
                await pipeline.feed(part)
            else:
                with mock.patch("stream_app.stage1.label_runs", lambda *_: ({}, set())):
                    await pipeline.feed(part)
    joins = pipeline.stage1.joins
    assert isinstance(joins, MemoryStore)
    table = dict(joins.data)
    await pipeline.feed_predictions(EVENTS[len(FED) :])
    await pipeline.idle(10 * scenario.WINDOW)
    return pipeline, table


def outcome(ran: tuple[LocalPipeline, dict[str, bytes]]) -> dict[str, Any]:
    pipeline, table = ran
    counters = pipeline.counters
    joins = pipeline.stage1.joins
    assert isinstance(joins, MemoryStore)
    return {
        "windows": {
            key: dataclasses.replace(rows.window, finalized_at=None)
            for key, rows in pipeline.writer.windows.items()
        },
        "revisions": [
            (model, start, dataclasses.replace(rows.window, finalized_at=None))
            for model, start, rows in pipeline.writer.revisions
        ],
        "dead letters": sorted(
            (m.partition, m.offset, m.value, reason) for m, reason in pipeline.dead_letters
        ),
        "counted": (
            counters.labels,
            counters.joined,
            counters.unmatched_labels,
            counters.unlabeled_predictions,
        ),
        "join table after the labels": table,
        "join table": dict(joins.data),
        "checkpoints": {p: pipeline.stage1.checkpoint(p).get("l") for p in range(PARTITIONS)},
    }


@settings(max_examples=examples(25), deadline=None)
@given(
    st.lists(st.sampled_from(KINDS), min_size=10, max_size=120),
    st.lists(st.integers(1, 40), min_size=1, max_size=6),
    st.integers(0, 10**6),
)
def test_runs_of_single_labels_give_the_per_message_answer(
    kinds: list[str], cuts: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    messages = label_messages(kinds, rng)
    plan = cut_with_replays(messages, cuts, rng, rounds=10)
    strict = outcome(asyncio.run(run(plan, runs=False)))
    assert outcome(asyncio.run(run(plan, runs=True))) == strict
    if native is not None:
        assert outcome(asyncio.run(run(plan, runs=True, fetches=True))) == strict


def _fed_with_partition_0_labels() -> tuple[LocalPipeline, list[InputMessage]]:
    """A pipeline fed the predictions, and single labels for those joining on partition 0."""
    pipeline = LocalPipeline(RUNTIME, PARTITIONS)
    asyncio.run(pipeline.feed_predictions(FED))
    labels = [
        pipeline.message("label", e.prediction_id, e.label_json())
        for e in FED
        if join_partition(e.prediction_id, PARTITIONS) == 0
    ]
    return pipeline, labels


def test_a_clean_fetch_of_single_labels_is_joined_whole() -> None:
    pipeline, labels = _fed_with_partition_0_labels()
    fetches = as_fetches(labels, size=10)
    with mock.patch("stream_app.stage1_inputs.messages_of", side_effect=AssertionError("apart")):
        asyncio.run(pipeline.feed(fetches))
    assert pipeline.counters.whole_label_fetches == len(fetches) > 1
    assert pipeline.counters.joined == pipeline.counters.labels == len(labels)
    assert pipeline.stage1.checkpoint(0)["l"] == labels[-1].offset
    asyncio.run(pipeline.feed(fetches))  # again: at or below the checkpoint, taken apart
    assert pipeline.counters.whole_label_fetches == len(fetches)
    assert pipeline.counters.replayed_input == len(labels)
    assert pipeline.counters.labels == len(labels)


def test_a_clean_run_is_joined_at_once() -> None:
    pipeline, labels = _fed_with_partition_0_labels()
    with mock.patch.object(
        pipeline.stage1.join, "add_label", side_effect=AssertionError("one by one")
    ):
        asyncio.run(pipeline.feed(labels))
    assert pipeline.dead_letters == []
    assert pipeline.counters.joined == pipeline.counters.labels == len(labels) > 2


def test_a_stretch_with_a_bad_message_still_joins_the_rest_in_runs() -> None:
    """Read at once, a stretch is declined whole for one bad message; parsed one by one, the
    good labels on either side of it still make runs (the bad one goes its own way)."""
    good = [label_value("good", event, event) for event in EVENTS[:4]]
    values = [*good[:2], label_value("bad json", EVENTS[0], EVENTS[0]), *good[2:]]
    batch = [
        InputMessage("label", "labels", 0, offset, None, value)
        for offset, value in enumerate(values)
    ]
    runs, covered = label_runs(batch, {RUNTIME.model_id: RUNTIME}.get, lambda _: None)
    assert sorted(runs) == [0, 3] and covered == {1, 4}
    assert [runs[0].offsets, runs[3].offsets] == [(0, 1), (3, 4)]
