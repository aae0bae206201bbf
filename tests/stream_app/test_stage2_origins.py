"""Stage 2 applies each labeled pair and each late count once, whatever stage 1 sends again.

After a crash stage 1 replays its input from its last checkpoint and sends ``labels`` and
``late`` messages again: new window-partials messages (new offsets, so ``applied_offset``
does not recognise them), and the replayed batches may be cut elsewhere, so a re-sent pair
may come in a later message, in another order, made by another message, next to new pairs.

A pair is known by its label message's offset in its input partition; stage 2 remembers
the pairs it applied (``WindowRecord.recent_labels``: label offset, summary topic, summary
offset) until a message's checkpoint (stage 1's durable checkpoint when its batch began)
covers both the label and the summary, after which no replay can send the pair again.
Late counts are known by their predictions offsets (the highest counted, ``origins``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from itertools import count
from typing import Any

import orjson
import pytest

from detectors.quality import quality_state_from_dict
from stream_app import messages
from stream_app import table_keys as keys
from stream_app.stage2 import WindowRecord
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import RUNTIME, window_start

START, END = window_start(0), window_start(1)

# (y_true, y_pred, score, label offset, summary topic, summary offset): one pair per
# confusion cell, so the confusion matrix tells which pairs were counted and how often.
L5 = ("1", "1", 0.9, 5, "p", 10)
L6 = ("1", "0", 0.3, 6, "p", 14)
L7 = ("0", "1", 0.6, 7, "j", 3)
L9 = ("0", "0", 0.2, 9, "p", 12)

Pair = tuple[Any, Any, Any, int, str, int]

# Stage 1's durable checkpoint before the first of these pairs was made: it covers none.
BEFORE = {"l": 4, "p": 9, "j": 2}


class Stage2Feed:
    """Stage 2 of a pipeline, fed window-partials messages at rising offsets.

    Each message gets a new offset, as a message stage 1 sends again does: the record's
    ``applied_offset`` never recognises it, only the pairs' origins can.
    """

    def __init__(self) -> None:
        self.pipeline = LocalPipeline(RUNTIME, 1)
        self._offsets = count()

    def send(self, message: messages.StageMessage) -> None:
        # Through the wire format: the origins and the checkpoint must survive encoding too.
        (decoded,) = messages.decode_all(messages.encode(message))
        asyncio.run(self.pipeline.stage2.handle(0, decoded, next(self._offsets)))

    def record(self) -> WindowRecord:
        return self.pipeline.stage2._record(0, scenario.MODEL_ID, START, END)

    def n_labeled(self) -> int:
        quality = self.record().quality
        return 0 if quality is None else quality_state_from_dict(quality).n_labeled

    def confusion(self) -> list[list[int]]:
        quality = self.record().quality
        assert quality is not None
        return list(quality["confusion"])

    def recent(self, source_partition: int = 0) -> list[list[Any]]:
        return self.record().recent_labels.get(str(source_partition), [])

    def finalize_window(self) -> None:
        """Predictions for window 0, then quiet until it is final (SQL has its rows)."""
        events = scenario.events(1, 20, drift_from=99, decay_from=99)
        asyncio.run(self.pipeline.feed_predictions(events))
        asyncio.run(self.pipeline.idle(200))
        assert self.record().final


def labels(
    pairs: Sequence[Pair],
    checkpoint: dict[str, int] | None = None,
    source_partition: int = 0,
) -> messages.LabelsMessage:
    return messages.LabelsMessage(
        scenario.MODEL_ID,
        START,
        END,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        [p[2] for p in pairs],
        source_partition=source_partition,
        origin_kinds="".join(p[4] for p in pairs),
        origin_offsets=[p[5] for p in pairs],
        label_offsets=[p[3] for p in pairs],
        checkpoint=dict(BEFORE if checkpoint is None else checkpoint),
    )


def old_labels(pairs: Sequence[Pair]) -> messages.LabelsMessage:
    """A labels message as stage 1 sent it before pairs carried their origins."""
    return messages.LabelsMessage(
        scenario.MODEL_ID,
        START,
        END,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        [p[2] for p in pairs],
    )


def late(entries: Sequence[tuple[int, int]], source_partition: int = 0) -> messages.LateMessage:
    """Late events per predictions message: (its offset, how many of its events were late)."""
    return messages.LateMessage(
        scenario.MODEL_ID,
        START,
        END,
        sum(n for _, n in entries),
        source_partition=source_partition,
        origin_offsets=[offset for offset, _ in entries],
        origin_counts=[n for _, n in entries],
    )


def entry(pair: Pair) -> list[Any]:
    """What ``recent_labels`` keeps of a pair."""
    return [pair[3], pair[4], pair[5]]


# -- labels -------------------------------------------------------------------------------


def test_a_labels_message_sent_twice_counts_its_pairs_once() -> None:
    feed = Stage2Feed()
    message = labels([L5, L7, L9])
    feed.send(message)
    feed.send(message)
    assert feed.n_labeled() == 3
    assert feed.pipeline.counters.replayed_pairs == 3
    assert feed.recent() == [entry(L5), entry(L7), entry(L9)]
    assert feed.record().origins == {}  # labels no longer use the late counts' maxima


def test_pairs_sent_again_in_another_order_and_grouping_count_once_each() -> None:
    feed = Stage2Feed()
    feed.send(labels([L5, L7]))
    # The replay cut its batches elsewhere: the old pairs come back in another order, next
    # to new ones, one of them (label 6) below a label offset applied already; and label 5
    # met its prediction's summary through another message this time (forwarded again).
    again_l5 = (*L5[:4], "j", 8)
    feed.send(labels([L7, L9, again_l5, L6]))
    assert feed.pipeline.counters.replayed_pairs == 2

    clean = Stage2Feed()
    clean.send(labels([L5, L6, L7, L9]))
    assert feed.n_labeled() == clean.n_labeled() == 4
    assert feed.confusion() == clean.confusion()
    got, want = feed.record().quality, clean.record().quality
    assert got is not None and want is not None
    assert got["n_scored"] == want["n_scored"] == 4
    assert got["positive_score_counts"] == want["positive_score_counts"]
    assert got["negative_score_counts"] == want["negative_score_counts"]
    assert got["log_loss_sum"] == pytest.approx(want["log_loss_sum"])
    assert sorted(e[0] for e in feed.recent()) == [5, 6, 7, 9]


def test_a_pair_is_skipped_while_no_checkpoint_covers_it() -> None:
    feed = Stage2Feed()
    feed.send(labels([L5]))
    # Other messages of the same partition, whose checkpoints do not cover label 5 and
    # summary p@10 together: one covers neither, one only the label, one only the summary.
    feed.send(labels([L7]))
    feed.send(labels([L9], checkpoint={"l": 5, "p": 9, "j": 2}))
    feed.send(labels([L6], checkpoint={"l": 4, "p": 10, "j": 2}))
    assert feed.n_labeled() == 4
    assert entry(L5) in feed.recent()
    feed.send(labels([L5], checkpoint={"l": 5, "p": 9, "j": 2}))  # a replay sends it again
    assert feed.n_labeled() == 4
    assert feed.pipeline.counters.replayed_pairs == 1


def test_a_checkpoint_covering_label_and_summary_drops_the_entry() -> None:
    feed = Stage2Feed()
    feed.send(labels([L5, L7]))
    assert feed.recent() == [entry(L5), entry(L7)]
    # Stage 1's checkpoint reached both offsets of both pairs (exactly): no replay can
    # send them again, so they are forgotten; the message's own pair is remembered.
    feed.send(labels([L9], checkpoint={"l": 7, "p": 10, "j": 3}))
    assert feed.recent() == [entry(L9)]
    feed.send(labels([L6], checkpoint={"l": 9, "p": 12, "j": 3}))
    assert feed.recent() == [entry(L6)]
    assert feed.n_labeled() == 4
    assert feed.pipeline.counters.replayed_pairs == 0


def test_an_entry_whose_summary_the_checkpoint_does_not_cover_is_kept() -> None:
    feed = Stage2Feed()
    feed.send(labels([L5, L7]))
    # The labels are covered, their summaries are not: label 5's summary is p@10 (the
    # checkpoint has p 9), label 7's is j@3 (the checkpoint has j 2; p 9 says nothing of it).
    # A replay reading p@10 or j@3 again meets the stored label and makes the pair again.
    not_yet = {"l": 7, "p": 9, "j": 2}
    feed.send(labels([L9], checkpoint=not_yet))
    assert feed.recent() == [entry(L5), entry(L7), entry(L9)]
    feed.send(labels([L7, L5], checkpoint=not_yet))
    assert feed.n_labeled() == 3
    assert feed.pipeline.counters.replayed_pairs == 2
    # Nor a checkpoint covering the summaries but not the labels.
    feed.send(labels([L6], checkpoint={"l": 4, "p": 12, "j": 3}))
    assert feed.recent() == [entry(L5), entry(L7), entry(L9), entry(L6)]


def test_a_fully_replayed_labels_message_leaves_a_final_window_unrevised() -> None:
    feed = Stage2Feed()
    feed.finalize_window()
    feed.send(labels([L5, L7]))
    assert feed.record().revision_pending
    asyncio.run(feed.pipeline.stage2.tick([0]))
    assert not feed.record().revision_pending and feed.record().revision == 1
    feed.send(labels([L7, L5]))  # sent again after stage 1's crash: nothing new
    assert not feed.record().revision_pending
    asyncio.run(feed.pipeline.stage2.tick([0]))
    assert feed.record().revision == 1
    assert len(feed.pipeline.writer.revisions) == 1
    assert feed.n_labeled() == 2


def test_a_pending_revision_waits_while_a_crash_left_the_drift_part_unfinalized() -> None:
    # A kill between a flush's writes can keep the quality part of labels that came after
    # the finalization (revision pending) and lose the final drift part: until the replayed
    # partials finalize the window again, a revision would write it without its rows.
    feed = Stage2Feed()
    feed.finalize_window()
    feed.send(labels([L5, L7]))
    store, key = feed.pipeline.stage2.records, keys.WindowKey(0, scenario.MODEL_ID, START).record
    final_part = store.get(key)
    assert final_part is not None
    unfinal = dataclasses.replace(feed.record(), final=False, state=None, sources=())
    store.set(0, key, unfinal.to_bytes())
    asyncio.run(feed.pipeline.stage2.tick([0]))
    assert feed.pipeline.writer.revisions == [] and feed.record().revision_pending
    store.set(0, key, final_part)  # finalized again by the replay
    asyncio.run(feed.pipeline.stage2.tick([0]))
    ((_, _, rows),) = feed.pipeline.writer.revisions
    assert rows.window.n_rows == 20 and rows.window.n_labeled == 2


def test_source_partitions_are_told_apart() -> None:
    feed = Stage2Feed()
    feed.send(labels([L5], source_partition=0))
    # The same label offset in partition 1 is another label: it counts.
    feed.send(labels([L5], source_partition=1))
    assert feed.n_labeled() == 2
    # Each partition's own re-send does not.
    feed.send(labels([L5], source_partition=0))
    feed.send(labels([L5], source_partition=1))
    assert feed.n_labeled() == 2
    assert feed.record().recent_labels == {"0": [entry(L5)], "1": [entry(L5)]}
    # Partition 0's checkpoint says nothing of partition 1's pairs.
    feed.send(labels([L9], checkpoint={"l": 9, "p": 12, "j": 3}, source_partition=0))
    assert feed.record().recent_labels == {"0": [entry(L9)], "1": [entry(L5)]}
    feed.send(labels([L5], source_partition=1))
    assert feed.n_labeled() == 3
    assert feed.pipeline.counters.replayed_pairs == 3


def test_messages_without_origins_always_apply() -> None:
    feed = Stage2Feed()
    feed.send(labels([L5, L7]))
    # Sent before pairs carried origins: nothing tells a re-send apart, so each one counts,
    # and they leave what is remembered alone.
    feed.send(old_labels([L5, L7]))
    feed.send(old_labels([L5, L7]))
    assert feed.n_labeled() == 6
    # As stage 1 sent them before label offsets existed: origins of the old kinds
    # ("l": the label's own offset) and no label offsets. They apply too.
    previous = messages.LabelsMessage(
        scenario.MODEL_ID, START, END, ["1"], ["1"], [0.9], 0, "l", [5]
    )
    feed.send(previous)
    feed.send(previous)
    assert feed.n_labeled() == 8
    assert feed.recent() == [entry(L5), entry(L7)]
    assert feed.pipeline.counters.skipped_stage2_messages == 0
    # A message with label offsets is still checked against them.
    feed.send(labels([L7, L5]))
    assert feed.n_labeled() == 8
    assert feed.pipeline.counters.replayed_pairs == 2


def test_a_pair_of_unknown_label_offset_applies_and_is_not_remembered() -> None:
    feed = Stage2Feed()
    feed.send(labels([L5]))
    unknown = ("0", "0", 0.5, -1, "p", 20)  # a label stored before offsets were kept
    feed.send(labels([L5, unknown]))
    feed.send(labels([unknown]))
    assert feed.n_labeled() == 3
    assert feed.recent() == [entry(L5)]
    assert feed.pipeline.counters.replayed_pairs == 1


def test_origins_that_do_not_match_the_pairs_skip_the_message() -> None:
    feed = Stage2Feed()
    y_true, y_pred, scores = ["1", "0"], ["1", "1"], [0.9, 0.6]
    mismatched = [
        # one label offset for two pairs
        messages.LabelsMessage(
            scenario.MODEL_ID, START, END, y_true, y_pred, scores, 0, "pj", [10, 3], [5]
        ),
        # one summary topic for two pairs
        messages.LabelsMessage(
            scenario.MODEL_ID, START, END, y_true, y_pred, scores, 0, "p", [10, 3], [5, 7]
        ),
        # one summary offset for two pairs
        messages.LabelsMessage(
            scenario.MODEL_ID, START, END, y_true, y_pred, scores, 0, "pj", [10], [5, 7]
        ),
        # a summary topic that is neither predictions nor label-join ("l" is no longer one)
        messages.LabelsMessage(
            scenario.MODEL_ID, START, END, y_true, y_pred, scores, 0, "pl", [10, 3], [5, 7]
        ),
    ]
    for message in mismatched:
        feed.send(message)
    wrong_sum = messages.LateMessage(scenario.MODEL_ID, START, END, 5, 0, [7], [2])
    feed.send(wrong_sum)
    assert feed.pipeline.counters.skipped_stage2_messages == 5
    assert feed.pipeline.stage2.records.get(f"0|r|{scenario.MODEL_ID}|{START!r}") is None
    # The skipped messages left nothing remembered: the pairs count when they come right.
    feed.send(labels([L5, L7]))
    assert feed.n_labeled() == 2


# -- late counts --------------------------------------------------------------------------


def test_late_counts_sent_again_count_once() -> None:
    feed = Stage2Feed()
    feed.send(late([(7, 1), (8, 2)]))
    assert feed.record().late == 3
    feed.send(late([(8, 2), (9, 4)]))  # the replay cut elsewhere: only offset 9 is new
    assert feed.record().late == 7
    assert feed.record().origins == {"L0": 9}
    assert feed.pipeline.counters.replayed_pairs == 2


def test_late_counts_of_each_source_partition_count() -> None:
    feed = Stage2Feed()
    feed.send(late([(7, 1)], source_partition=0))
    feed.send(late([(7, 1)], source_partition=1))
    feed.send(late([(7, 1)], source_partition=0))
    assert feed.record().late == 2


def test_late_counts_without_origins_or_of_unknown_offset_always_count() -> None:
    feed = Stage2Feed()
    feed.send(late([(7, 2)], source_partition=-1))  # sent before origins existed
    feed.send(late([(7, 2)], source_partition=-1))
    feed.send(late([(7, 2)]))
    feed.send(late([(7, 2)]))
    assert feed.record().late == 6
    feed.send(late([(-1, 2)]))  # no predictions offset known: counted, not remembered
    feed.send(late([(8, 1)]))
    feed.send(late([(-1, 2), (8, 1)]))
    assert feed.record().late == 11
    assert feed.record().origins == {"L0": 8}
    assert feed.pipeline.counters.replayed_pairs == 3


def test_a_late_count_sent_again_for_a_final_window_writes_nothing() -> None:
    feed = Stage2Feed()
    feed.finalize_window()
    feed.send(late([(7, 1), (8, 2)]))
    feed.send(late([(8, 2), (9, 4)]))
    assert feed.pipeline.writer.late[(scenario.MODEL_ID, START)] == 7

    def no_sql(operation: str) -> None:
        raise AssertionError(f"{operation} for a late count already in SQL")

    feed.pipeline.writer.fail = no_sql
    feed.send(late([(7, 1), (8, 2), (9, 4)]))
    assert feed.record().late == 7


# -- the record ---------------------------------------------------------------------------


def test_a_record_keeps_its_origins_and_recent_labels_through_bytes() -> None:
    record = WindowRecord(
        scenario.MODEL_ID,
        START,
        END,
        late=3,
        origins={"L0": 12, "L1": 9},
        recent_labels={"0": [entry(L5), entry(L7)], "1": [entry(L9)]},
    )
    assert WindowRecord.from_bytes(record.to_bytes(), record.quality_bytes()) == record


def test_a_record_saved_before_origins_and_recent_labels_existed_loads() -> None:
    data = orjson.loads(WindowRecord(scenario.MODEL_ID, START, END, late=3).to_bytes())
    del data["origins"]  # and ``recent_labels``, which the drift part never holds now
    loaded = WindowRecord.from_bytes(orjson.dumps(data))
    assert loaded.origins == {} and loaded.recent_labels == {} and loaded.late == 3
    # It then takes new pairs as any record does, and remembers them.
    feed = Stage2Feed()
    feed.pipeline.stage2.records.set(0, f"0|r|{scenario.MODEL_ID}|{START!r}", orjson.dumps(data))
    feed.send(labels([L5]))
    feed.send(labels([L5]))
    assert feed.n_labeled() == 1
    assert feed.recent() == [entry(L5)]
    assert feed.record().late == 3


def test_a_record_saved_with_label_maxima_loads_and_takes_new_pairs() -> None:
    # Records written by the previous dedup kept label maxima in ``origins`` ("p0", "l0");
    # they mean nothing now: a pair below them is new.
    data = orjson.loads(WindowRecord(scenario.MODEL_ID, START, END).to_bytes())
    data["origins"] = {"p0": 50, "l0": 50}
    feed = Stage2Feed()
    feed.pipeline.stage2.records.set(0, f"0|r|{scenario.MODEL_ID}|{START!r}", orjson.dumps(data))
    feed.send(labels([L5, L7]))
    feed.send(labels([L7]))
    assert feed.n_labeled() == 2
