"""Label envelopes: many labels in one message join as single labels would, once each."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson

from stream_app.label_join import join_partition
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import runtime

RUNTIME = runtime(label_horizon_seconds=2 * scenario.WINDOW)
PARTITIONS = 3


def fed_predictions() -> tuple[LocalPipeline, list[scenario.Event]]:
    pipeline = LocalPipeline(RUNTIME, PARTITIONS)
    events = list(scenario.events(2, 60, drift_from=99, decay_from=99))
    asyncio.run(pipeline.feed_predictions(events))
    return pipeline, events


def by_partition(events: Sequence[scenario.Event]) -> dict[int, list[scenario.Event]]:
    found: dict[int, list[scenario.Event]] = {}
    for event in events:
        found.setdefault(join_partition(event.prediction_id, PARTITIONS), []).append(event)
    return found


def test_an_envelope_per_partition_joins_every_label_once_even_when_read_twice() -> None:
    pipeline, events = fed_predictions()
    envelopes = [
        pipeline.message("label", group[0].prediction_id, scenario.label_envelope(group), partition)
        for partition, group in by_partition(events).items()
    ]
    asyncio.run(pipeline.feed(envelopes))
    asyncio.run(pipeline.feed(envelopes))  # a replay reads the same messages again
    assert pipeline.dead_letters == []
    assert pipeline.counters.joined == len(events)
    asyncio.run(pipeline.idle(10 * scenario.WINDOW))
    labeled = {start: rows.window.n_labeled for (_, start), rows in pipeline.writer.windows.items()}
    for _, start, rows in pipeline.writer.revisions:
        labeled[start] = rows.window.n_labeled
    assert sum(labeled.values()) == len(events)


def test_a_label_on_the_wrong_partition_sends_its_envelope_to_the_dead_letters() -> None:
    pipeline, events = fed_predictions()
    groups = by_partition(events)
    home = next(iter(groups))
    stray = next(e for p, group in groups.items() if p != home for e in group)
    envelope = scenario.label_envelope([*groups[home][:4], stray])
    asyncio.run(pipeline.feed([pipeline.message("label", "k", envelope, home)]))
    [(message, reason)] = pipeline.dead_letters
    assert message.value == envelope
    assert reason.startswith("records[4]: prediction_id ")
    assert f"belongs to partition {join_partition(stray.prediction_id, PARTITIONS)}" in reason
    assert pipeline.counters.joined == 0, "nothing of a rejected envelope is applied"


def test_one_bad_label_rejects_the_envelope_naming_it() -> None:
    pipeline, events = fed_predictions()
    home, group = next(iter(by_partition(events).items()))
    records = orjson.loads(scenario.label_envelope(group[:3]))
    records["records"][1]["label"] = "no such class"
    envelope = orjson.dumps(records)
    asyncio.run(pipeline.feed([pipeline.message("label", "k", envelope, home)]))
    [(_, reason)] = pipeline.dead_letters
    assert reason.startswith("records[1]: ") and "no such class" in reason
    assert pipeline.counters.joined == 0
