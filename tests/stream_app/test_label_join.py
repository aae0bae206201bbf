"""Every label joins its prediction exactly once, whatever order the topics are read in.

Before: join entries expired by the predictions' watermark only. In a replay whose
predictions were read ahead of the labels (or whose forwarded summaries arrived after the
timer ran), predictions waited out their label horizon before their labels were even read,
and stage 2 retired final windows before their labels came: labels were lost for good.
The timer here runs between every batch and the delivery of what it forwarded, as the
worker's timer may.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app import summary_columns
from stream_app.label_join import Joined, JoinedColumns, WindowPairs, join_partition
from stream_app.stage1_inputs import InputMessage
from stream_app.summary_columns import Summary
from tests.examples import examples
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import runtime, window_start

pytestmark = pytest.mark.slow  # make test runs it; make test-unit does not

WINDOWS, PER_WINDOW, ENVELOPE = 10, 120, 40
# Two windows of label horizon over a ten-window replay: most of the replay lies beyond
# any prediction's horizon when the other topic is read all ahead.
RUNTIME = runtime(label_horizon_seconds=2 * scenario.WINDOW)


def _envelope(events: Sequence[scenario.Event]) -> bytes:
    records = []
    for event in events:
        record = orjson.loads(event.prediction_json())
        del record["model_id"], record["model_version"]
        records.append(record)
    return orjson.dumps({"model_id": scenario.MODEL_ID, "model_version": "v1", "records": records})


async def _run(
    pipeline: LocalPipeline, batches: Sequence[Sequence[InputMessage]], log_ends: dict[int, int]
) -> None:
    partitions = list(range(pipeline.n_partitions))
    for batch in batches:
        await pipeline.stage1.process(list(batch))
        _note_log_ends(pipeline, log_ends)
        await pipeline.stage1.tick(partitions)  # the timer, before what was forwarded arrives
        await pipeline.deliver()
    for _ in range(2):
        _note_log_ends(pipeline, log_ends)
        await pipeline.idle(10 * scenario.WINDOW)  # quiet: windows close, revisions follow


def _note_log_ends(pipeline: LocalPipeline, log_ends: dict[int, int]) -> None:
    # What the worker's timer learns from the consumer: how far each labels log goes.
    for partition, end in log_ends.items():
        pipeline.stage1.note_label_log_end(partition, end)


def _replay(
    order: str, n_partitions: int, envelopes: bool, label_envelopes: bool = False
) -> tuple[LocalPipeline, int]:
    pipeline = LocalPipeline(RUNTIME, n_partitions)
    events = list(scenario.events(WINDOWS, PER_WINDOW, drift_from=99, decay_from=99))
    if envelopes:
        predictions = [
            pipeline.message(
                "prediction", events[i].prediction_id, _envelope(events[i : i + ENVELOPE])
            )
            for i in range(0, len(events), ENVELOPE)
        ]
    else:
        predictions = [
            pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in events
        ]
    labels = [pipeline.message("label", e.prediction_id, e.label_json()) for e in events[::2]]
    n_labels = len(labels)
    if label_envelopes:  # envelopes of up to 9 labels, each to its labels' partition
        grouped: dict[int, list[scenario.Event]] = {}
        for e in events[::2]:
            grouped.setdefault(join_partition(e.prediction_id, n_partitions), []).append(e)
        labels = [
            pipeline.message("label", part[0].prediction_id, scenario.label_envelope(part), p)
            for p, group in sorted(grouped.items())
            for part in (group[i : i + 9] for i in range(0, len(group), 9))
        ]
    log_ends = {
        p: max((m.offset + 1 for m in labels if m.partition == p), default=0)
        for p in range(n_partitions)
    }
    first, second = (predictions, labels) if order == "predictions first" else (labels, predictions)
    if order == "interleaved":
        first, second = _interleave(predictions, labels), []
    batches = [first[i : i + 7] for i in range(0, len(first), 7)]
    batches += [second[i : i + 7] for i in range(0, len(second), 7)]
    asyncio.run(_run(pipeline, batches, log_ends))
    return pipeline, n_labels


def _interleave(a: list[Any], b: list[Any]) -> list[Any]:
    out: list[Any] = []
    for i in range(max(len(a), len(b))):
        out += a[i : i + 1] + b[i : i + 1]
    return out


def _labeled_per_window(pipeline: LocalPipeline) -> dict[float, int]:
    latest: dict[float, int] = {}
    for (_, start), rows in sorted(pipeline.writer.windows.items()):
        latest[start] = rows.window.n_labeled
    for _, start, rows in pipeline.writer.revisions:
        latest[start] = rows.window.n_labeled
    return latest


@pytest.mark.parametrize("envelopes", [True, False], ids=["envelopes", "single events"])
@pytest.mark.parametrize("n_partitions", [1, 3, 4])
@pytest.mark.parametrize("order", ["predictions first", "labels first", "interleaved"])
def test_every_label_joins_its_prediction_exactly_once(
    order: str, n_partitions: int, envelopes: bool
) -> None:
    pipeline, n_labels = _replay(order, n_partitions, envelopes)
    assert pipeline.counters.joined == n_labels
    assert pipeline.counters.unmatched_labels == 0
    assert pipeline.counters.expired_messages == 0
    per_window = _labeled_per_window(pipeline)
    assert per_window == {window_start(w): PER_WINDOW // 2 for w in range(WINDOWS)}
    assert pipeline.dead_letters == []


@pytest.mark.parametrize("n_partitions", [1, 3])
@pytest.mark.parametrize("order", ["predictions first", "labels first", "interleaved"])
def test_label_envelopes_join_exactly_once(order: str, n_partitions: int) -> None:
    pipeline, n_labels = _replay(order, n_partitions, envelopes=True, label_envelopes=True)
    assert pipeline.counters.joined == pipeline.counters.labels == n_labels
    assert pipeline.counters.unmatched_labels == 0
    per_window = _labeled_per_window(pipeline)
    assert per_window == {window_start(w): PER_WINDOW // 2 for w in range(WINDOWS)}
    assert pipeline.dead_letters == []


def test_predictions_without_labels_still_expire_once_the_labels_are_read() -> None:
    pipeline, _ = _replay("labels first", 3, envelopes=True)
    # Half the predictions never get a label: they leave the join table once every label
    # was read and the horizon passed, so the table does not grow without bound.
    assert list(pipeline.stage1.joins.items()) == []
    assert pipeline.stage1.join.waiting_summaries() == 0
    assert pipeline.counters.unlabeled_predictions == WINDOWS * PER_WINDOW // 2


def test_an_empty_partition_does_not_keep_final_windows_forever() -> None:
    pipeline = LocalPipeline(RUNTIME, 2)
    events = list(scenario.events(3, 50, drift_from=99, decay_from=99))
    batch = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json(), partition=0)
        for e in events
    ]
    for partition in (0, 1):  # both labels logs read to their (empty) end
        pipeline.stage1.note_label_log_end(partition, 0)
    asyncio.run(pipeline.feed(batch))
    for _ in range(3):
        asyncio.run(pipeline.idle(10 * scenario.WINDOW))
    assert len(pipeline.writer.windows) == 3
    kept = [key for key, _ in pipeline.stage2.records.items() if "|r|" in key]
    assert kept == []  # retired after their label horizon, partition 1 notwithstanding


def test_a_partition_whose_labels_are_unread_keeps_final_windows() -> None:
    pipeline = LocalPipeline(RUNTIME, 2)
    events = list(scenario.events(3, 50, drift_from=99, decay_from=99))
    batch = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json(), partition=0)
        for e in events
    ]
    pipeline.stage1.note_label_log_end(0, 0)
    pipeline.stage1.note_label_log_end(1, 7)  # seven labels wait on partition 1
    asyncio.run(pipeline.feed(batch))
    for _ in range(3):
        asyncio.run(pipeline.idle(10 * scenario.WINDOW))
    kept = [key for key, _ in pipeline.stage2.records.items() if "|r|" in key]
    assert len(kept) == 3  # their labels may still revise them


def test_labels_waiting_for_forwarded_summaries_keep_their_window() -> None:
    """Labels read first wait for summaries another partition forwards; stage 2 hears every
    watermark (predictions and labels far past the horizon) before the label-join topic is
    read. Measured with whole fetches: the window was retired and its labels dropped."""
    pipeline = LocalPipeline(RUNTIME, 2)
    events = list(scenario.events(WINDOWS, PER_WINDOW, drift_from=99, decay_from=99))
    labels = [pipeline.message("label", e.prediction_id, e.label_json()) for e in events[::2]]
    predictions = [
        pipeline.message(
            "prediction", events[i].prediction_id, _envelope(events[i : i + ENVELOPE]), 0
        )
        for i in range(0, len(events), ENVELOPE)
    ]
    log_ends = {p: sum(1 for m in labels if m.partition == p) for p in (0, 1)}
    forwarded_to_1 = sum(1 for m in labels if m.partition == 1)
    assert forwarded_to_1 > 0  # some labels wait on partition 1 for summaries from 0

    async def run() -> None:
        await pipeline.stage1.process(labels)
        await pipeline.stage1.process(predictions)
        for _ in range(3):  # the label-join topic unread meanwhile
            _note_log_ends(pipeline, log_ends)
            await pipeline.stage1.tick([0, 1])
            await pipeline.deliver(forwarded=False)
            await pipeline.stage2.tick([0])
        await pipeline.deliver()
        for _ in range(2):
            _note_log_ends(pipeline, log_ends)
            await pipeline.idle(10 * scenario.WINDOW)

    asyncio.run(run())
    assert pipeline.counters.expired_messages == 0
    assert pipeline.counters.joined == len(labels)
    per_window = _labeled_per_window(pipeline)
    assert per_window == {window_start(w): PER_WINDOW // 2 for w in range(WINDOWS)}


@pytest.mark.parametrize("n_partitions", [1, 2])
def test_an_envelope_naming_a_prediction_twice_joins_its_waiting_label_once(
    n_partitions: int,
) -> None:
    """Before: a label read first joined each copy (two pairs for one label)."""
    pipeline = LocalPipeline(RUNTIME, n_partitions)
    events = list(scenario.events(1, 10, drift_from=99, decay_from=99))
    twice = events[3]
    asyncio.run(pipeline.feed([pipeline.message("label", twice.prediction_id, twice.label_json())]))
    envelope = _envelope([events[0], twice, *events[1:]])
    asyncio.run(pipeline.feed([pipeline.message("prediction", events[0].prediction_id, envelope)]))
    asyncio.run(pipeline.idle(10 * scenario.WINDOW))
    assert pipeline.counters.labels == 1 and pipeline.counters.joined == 1
    assert _labeled_per_window(pipeline) == {window_start(0): 1}


def _accuracy_per_window(pipeline: LocalPipeline) -> dict[float, float | None]:
    latest: dict[float, float | None] = {}
    for (_, start), rows in sorted(pipeline.writer.windows.items()):
        latest[start] = {m.metric: m.value for m in rows.metrics}.get("accuracy")
    for _, start, rows in pipeline.writer.revisions:
        latest[start] = {m.metric: m.value for m in rows.metrics}.get("accuracy")
    return latest


@pytest.mark.parametrize("label_first", [True, False], ids=["label first", "label after"])
def test_of_a_prediction_named_twice_in_an_envelope_the_last_copy_is_joined(
    label_first: bool,
) -> None:
    """The copies predict different classes; the one label counts with the last copy's."""
    pipeline = LocalPipeline(RUNTIME, 4)
    events = list(scenario.events(1, 10, drift_from=99, decay_from=99))
    twice = events[3]
    wrong = dataclasses.replace(twice, prediction="1" if twice.label == "0" else "0")
    right = dataclasses.replace(twice, prediction=twice.label)
    label = pipeline.message("label", twice.prediction_id, twice.label_json())
    envelope = _envelope([events[0], wrong, *events[1:3], right, *events[4:]])
    prediction = pipeline.message("prediction", events[0].prediction_id, envelope)
    for message in [label, prediction] if label_first else [prediction, label]:
        asyncio.run(pipeline.feed([message]))
    asyncio.run(pipeline.idle(10 * scenario.WINDOW))
    assert pipeline.counters.joined == 1
    assert _accuracy_per_window(pipeline) == {window_start(0): 1.0}


def test_an_envelope_whose_first_rows_are_late_keeps_the_others_for_their_labels() -> None:
    """Late rows are left out of the join; the rest must still reach their partitions."""
    pipeline = LocalPipeline(RUNTIME, 4)
    events = list(scenario.events(6, 20, drift_from=99, decay_from=99))
    old, fresh, later = events[:20], events[100:120], events[100:]
    # The first envelope moves its partition's clock to window 5: window 0's rows are late
    # after it in an envelope of the same key.
    asyncio.run(
        pipeline.feed(
            [pipeline.message("prediction", later[0].prediction_id, _envelope(later[:1]))]
        )
    )
    mixed = _envelope([*old[:7], *fresh[1:]])
    asyncio.run(pipeline.feed([pipeline.message("prediction", later[0].prediction_id, mixed)]))
    labels = [pipeline.message("label", e.prediction_id, e.label_json()) for e in fresh]
    asyncio.run(pipeline.feed(labels))
    asyncio.run(pipeline.idle(10 * scenario.WINDOW))
    assert pipeline.counters.late == 7
    assert pipeline.counters.joined == len(fresh)


# Pairs as (model, window start, predicted value): two models, windows of 0.0 and -0.0 (one
# window: they are equal), a few values.
PAIR_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["churn", "fraud"]),
        st.sampled_from([0.0, 60.0, -0.0]),
        st.integers(0, 9),
    ),
    max_size=30,
)


@settings(max_examples=examples(100), deadline=None)
@given(rows=PAIR_ROWS)
def test_pairs_by_window_are_the_pairs_grouped_one_by_one(
    rows: list[tuple[str, float, int]],
) -> None:
    """Grouped in C, the pairs of each window come in the labels' order, the windows in
    order of first appearance: what appending pair by pair to a dict of windows gives."""
    joined = JoinedColumns()
    for n, (model, start, value) in enumerate(rows):
        summary = (model, start, start + 60.0, value, None if n % 3 else 0.5, 9.0, "p", n)
        joined.summaries.append(summary)
        joined.labels.append(f"l{n}")
        joined.identities.append((100 + n, n % 4))
    expected: dict[tuple[str, float, float], list[list[Any]]] = {}
    for summary, label, (offset, position) in zip(
        joined.summaries, joined.labels, joined.identities, strict=True
    ):
        model, start, end, predicted, score, _, kind, origin = summary
        columns = expected.setdefault((model, start, end), [[] for _ in range(7)])
        for column, value in zip(
            columns, (label, predicted, score, kind, origin, offset, position), strict=True
        ):
            column.append(value)
    for grouped in (joined.by_window(), joined._by_window_python()):  # C, then Python
        got = [(window, [list(c) for c in pairs]) for window, pairs in grouped]
        assert got == list(expected.items())
        assert all(type(window) is tuple for window, _ in grouped)


def test_grouping_pairs_in_c_refuses_what_is_not_pairs() -> None:
    native = summary_columns.native
    assert native is not None, "stream_app/_summary_rows.c is not built (make install)"
    row = ("m", 0.0, 60.0, 1, 0.5, 9.0, "p", 3)
    with pytest.raises(ValueError, match="differ in length"):
        native.by_window([row], [1, 2], [(5, 0)])
    with pytest.raises(TypeError, match="pair 1 is not a summary row"):
        native.by_window([row, row[:7]], [1, 2], [(5, 0), (6, 0)])
    with pytest.raises(TypeError, match="pair 0 is not a summary row"):
        native.by_window([row], [1], [(5,)])
    with pytest.raises(TypeError):
        native.by_window((row,), [1], [(5, 0)])  # a tuple, not a list


@settings(max_examples=examples(100), deadline=None)
@given(rows=PAIR_ROWS, cut=st.integers(0, 30))
def test_window_pairs_added_one_or_a_run_at_a_time_are_the_pairs_grouped_at_once(
    rows: list[tuple[str, float, int]], cut: int
) -> None:
    """Stage 1 adds a single label's pair with ``WindowPairs.of_one`` and a run's pairs with
    ``by_window``, extending a window's columns already in the batch: pairs added either
    way, in two runs or one by one, are the pairs of one ``by_window`` over all of them."""
    everything = JoinedColumns()
    for n, (model, start, value) in enumerate(rows):
        summary = Summary(model, start, start + 60.0, value, None if n % 3 else 0.5, 9.0, "p", n)
        everything.append(Joined(summary, f"l{n}", (100 + n, n % 4)))
    first, second = JoinedColumns(), JoinedColumns()
    for n, pair in enumerate(everything.pairs()):
        (first if n < cut else second).append(pair)

    def gathered(added: list[tuple[tuple[str, float, float], WindowPairs]]) -> list[Any]:
        by_window: dict[tuple[str, float, float], WindowPairs] = {}
        for window, pairs in added:
            if window in by_window:
                by_window[window].extend(pairs)
            else:
                by_window[window] = WindowPairs._make(list(column) for column in pairs)
        return list(by_window.items())

    whole = everything.by_window()
    assert gathered([*first.by_window(), *second.by_window()]) == whole
    assert gathered([WindowPairs.of_one(pair) for pair in everything.pairs()]) == whole
