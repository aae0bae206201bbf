"""Stage 2 applies each labeled pair and each late count once, whatever stage 1 sends again.

After a crash stage 1 replays its input from its last checkpoint and sends ``labels`` and
``late`` messages again: new window-partials messages (new offsets, so ``applied_offset``
does not recognise them), and the replayed batches may be cut elsewhere, so a re-sent
message can hold pairs already applied next to new ones. The pairs' and counts' origins
(input topic, partition, offset) are what recognises them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from itertools import count
from typing import Any

import orjson
import pytest

from detectors.quality import quality_state_from_dict
from stream_app import messages
from stream_app.stage2 import WindowRecord
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import RUNTIME, window_start

START, END = window_start(0), window_start(1)

# (y_true, y_pred, score, origin kind, origin offset): distinct pairs, so the confusion
# matrix tells which of them were counted and how often.
P10 = ("1", "1", 0.9, "p", 10)
P11 = ("0", "1", 0.6, "p", 11)
P12 = ("0", "0", 0.2, "p", 12)
L5 = ("1", "0", 0.3, "l", 5)
L6 = ("1", "1", 0.8, "l", 6)

Pair = tuple[Any, Any, Any, str, int]


class Stage2Feed:
    """Stage 2 of a pipeline, fed window-partials messages at rising offsets.

    Each message gets a new offset, as a message stage 1 sends again does: the record's
    ``applied_offset`` never recognises it, only the origins can.
    """

    def __init__(self) -> None:
        self.pipeline = LocalPipeline(RUNTIME, 1)
        self._offsets = count()

    def send(self, message: messages.StageMessage) -> None:
        # Through the wire format: the origins must survive encoding too.
        decoded = messages.decode(messages.encode(message))
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

    def finalize_window(self) -> None:
        """Predictions for window 0, then quiet until it is final (SQL has its rows)."""
        events = scenario.events(1, 20, drift_from=99, decay_from=99)
        asyncio.run(self.pipeline.feed_predictions(events))
        asyncio.run(self.pipeline.idle(200))
        assert self.record().final


def labels(pairs: Sequence[Pair], source_partition: int = 0) -> messages.LabelsMessage:
    return messages.LabelsMessage(
        scenario.MODEL_ID,
        START,
        END,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        [p[2] for p in pairs],
        source_partition=source_partition,
        origin_kinds="".join(p[3] for p in pairs),
        origin_offsets=[p[4] for p in pairs],
    )


def old_labels(pairs: Sequence[Pair]) -> messages.LabelsMessage:
    """A labels message as stage 1 sent it before origins existed."""
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


# -- labels -------------------------------------------------------------------------------


def test_a_labels_message_sent_twice_counts_its_pairs_once() -> None:
    feed = Stage2Feed()
    message = labels([P10, P11, L5])
    feed.send(message)
    feed.send(message)
    assert feed.n_labeled() == 3
    assert feed.pipeline.counters.replayed_pairs == 3
    assert feed.record().origins == {"p0": 11, "l0": 5}


def test_a_replay_cut_elsewhere_applies_only_the_new_pairs() -> None:
    feed = Stage2Feed()
    feed.send(labels([P10, P11, L5]))
    # The replayed batch reached further: two old pairs of each kind, one new of each.
    feed.send(labels([P10, P11, P12, L5, L6]))
    assert feed.pipeline.counters.replayed_pairs == 3

    clean = Stage2Feed()
    clean.send(labels([P10, P11, P12, L5, L6]))
    assert feed.n_labeled() == clean.n_labeled() == 5
    assert feed.confusion() == clean.confusion()
    got, want = feed.record().quality, clean.record().quality
    assert got is not None and want is not None
    assert got["n_scored"] == want["n_scored"] == 5
    assert got["positive_score_counts"] == want["positive_score_counts"]
    assert got["negative_score_counts"] == want["negative_score_counts"]
    assert got["log_loss_sum"] == pytest.approx(want["log_loss_sum"])
    assert feed.record().origins == clean.record().origins == {"p0": 12, "l0": 6}


def test_pairs_of_one_input_message_share_its_offset_and_all_count() -> None:
    feed = Stage2Feed()
    # One predictions message (offset 10) made three pairs for the window.
    batch = [P10, ("0", "1", 0.4, "p", 10), ("0", "0", 0.1, "p", 10)]
    feed.send(labels(batch))
    assert feed.n_labeled() == 3
    feed.send(labels([*batch, P11]))
    assert feed.n_labeled() == 4
    assert feed.pipeline.counters.replayed_pairs == 3


def test_a_fully_replayed_labels_message_leaves_a_final_window_unrevised() -> None:
    feed = Stage2Feed()
    feed.finalize_window()
    feed.send(labels([P10, P11]))
    assert feed.record().revision_pending
    asyncio.run(feed.pipeline.stage2.tick([0]))
    assert not feed.record().revision_pending and feed.record().revision == 1
    feed.send(labels([P10, P11]))  # sent again after stage 1's crash: nothing new
    assert not feed.record().revision_pending
    asyncio.run(feed.pipeline.stage2.tick([0]))
    assert feed.record().revision == 1
    assert len(feed.pipeline.writer.revisions) == 1


def test_source_partitions_are_told_apart() -> None:
    feed = Stage2Feed()
    feed.send(labels([P10, L5], source_partition=0))
    # The same offsets in partition 1 are other messages: they count.
    feed.send(labels([P10, L5], source_partition=1))
    assert feed.n_labeled() == 4
    # Each partition's own re-send does not.
    feed.send(labels([P10, L5], source_partition=0))
    feed.send(labels([P10, L5], source_partition=1))
    assert feed.n_labeled() == 4
    assert feed.record().origins == {"p0": 10, "l0": 5, "p1": 10, "l1": 5}


def test_messages_without_origins_always_apply() -> None:
    feed = Stage2Feed()
    feed.send(labels([P10, P11]))
    # Sent before origins existed: nothing tells a re-send apart, so each one counts, and
    # they leave the maxima alone.
    feed.send(old_labels([P10, P11]))
    feed.send(old_labels([P10, P11]))
    assert feed.n_labeled() == 6
    assert feed.record().origins == {"p0": 11}
    # A message with origins is still checked against them.
    feed.send(labels([P10, P11]))
    assert feed.n_labeled() == 6
    feed.send(late([(7, 2)], source_partition=-1))
    feed.send(late([(7, 2)], source_partition=-1))
    feed.send(late([(7, 2)]))
    feed.send(late([(7, 2)]))
    assert feed.record().late == 6
    assert feed.pipeline.counters.replayed_pairs == 4


def test_a_pair_of_unknown_offset_applies_and_moves_no_maximum() -> None:
    feed = Stage2Feed()
    feed.send(labels([P10]))
    unknown = ("0", "0", 0.5, "p", -1)  # no input offset known for it
    feed.send(labels([P10, unknown]))
    feed.send(labels([unknown]))
    assert feed.n_labeled() == 3
    assert feed.record().origins == {"p0": 10}
    feed.send(late([(-1, 2)]))
    feed.send(late([(7, 1)]))
    feed.send(late([(-1, 2), (7, 1)]))
    assert feed.record().late == 5
    assert feed.record().origins == {"p0": 10, "L0": 7}
    assert feed.pipeline.counters.replayed_pairs == 2


def test_origins_that_do_not_match_the_pairs_skip_the_message() -> None:
    feed = Stage2Feed()
    short = messages.LabelsMessage(
        scenario.MODEL_ID, START, END, ["1", "0"], ["1", "1"], [0.9, 0.6], 0, "p", [10]
    )
    feed.send(short)
    unknown = messages.LabelsMessage(
        scenario.MODEL_ID, START, END, ["1"], ["1"], [0.9], 0, "x", [10]
    )
    feed.send(unknown)
    wrong_sum = messages.LateMessage(scenario.MODEL_ID, START, END, 5, 0, [7], [2])
    feed.send(wrong_sum)
    assert feed.pipeline.counters.skipped_stage2_messages == 3
    assert feed.pipeline.stage2.records.get(f"0|r|{scenario.MODEL_ID}|{START!r}") is None


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


def test_a_record_keeps_its_origins_through_bytes() -> None:
    record = WindowRecord(scenario.MODEL_ID, START, END, late=3, origins={"p0": 12, "L1": 9})
    assert WindowRecord.from_bytes(record.to_bytes()) == record


def test_a_record_saved_before_origins_existed_loads() -> None:
    data = orjson.loads(WindowRecord(scenario.MODEL_ID, START, END, late=3).to_bytes())
    del data["origins"]
    loaded = WindowRecord.from_bytes(orjson.dumps(data))
    assert loaded.origins == {} and loaded.late == 3
    # It then takes new pairs as any record does, and remembers them.
    feed = Stage2Feed()
    feed.pipeline.stage2.records.set(0, f"0|r|{scenario.MODEL_ID}|{START!r}", orjson.dumps(data))
    feed.send(labels([P10]))
    feed.send(labels([P10]))
    assert feed.n_labeled() == 1
    assert feed.record().late == 3
