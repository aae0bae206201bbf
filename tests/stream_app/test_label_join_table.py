"""The join table on its own (``stream_app.label_join``): what meets, what waits, what a
replay sends again, which marks hold labels back, and what expires when."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from aiokafka.partitioner import murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app import label_join, summary_columns
from stream_app.counters import Counters
from stream_app.label_join import (
    LabelJoin,
    _join_partitions_numpy,
    join_key,
    join_partition,
    join_partitions,
)
from stream_app.segment_spill import SegmentSpill
from stream_app.state_store import MemoryStore
from stream_app.summary_columns import Summary, SummaryColumnsIn
from tests.examples import examples

SPILL_DIRECTORY = Path(tempfile.gettempdir()) / "driftline-test-spill"


def label_clock_at(at: float) -> Callable[[int], float]:
    """A label watermark of ``at`` on every partition (what ``LabelJoin.expire`` reads)."""
    return lambda _partition: at


def _summary(expires: float = 100.0, predicted: Any = "1", origin_offset: int = -1) -> Summary:
    return Summary("churn", 0.0, 60.0, predicted, 0.9, expires, "p", origin_offset)


def _columns(summaries: list[Summary]) -> SummaryColumnsIn:
    return SummaryColumnsIn._make(map(list, zip(*summaries, strict=True)))


def _join(n_partitions: int = 2) -> tuple[LabelJoin, MemoryStore, Counters]:
    store, counters = MemoryStore(), Counters()
    return LabelJoin(store, n_partitions, counters), store, counters


def test_a_summary_then_its_label_meet_once() -> None:
    join, store, _ = _join()
    assert join.add_summary(0, "p1", _summary()) is None
    met = join.add_label(0, "p1", "churn", "0", (7, 0), 500.0)
    assert met is not None and met.label == "0" and met.identity == (7, 0)
    assert met.summary.predicted == "1"
    # The same label read again by a replay, and a retried second label: no second pair.
    assert join.add_label(0, "p1", "churn", "0", (7, 0), 500.0) is None
    assert join.add_label(0, "p1", "churn", "1", (9, 0), 500.0) is None
    # Its mark is no entry of its own but part of the flush's record of joined labels.
    join.seal()
    assert join_key(0, "p1") not in store.data
    assert orjson.loads(store.data["0#j0"][1:]) == {"ids": ["p1"], "o": [7], "i": [0]}


def test_a_label_that_came_first_waits_then_meets_its_forwarded_summary_once() -> None:
    join, store, _ = _join()
    assert join.add_label(1, "p2", "churn", "1", (3, 4), 500.0) is None
    waiting = orjson.loads(store.data[join_key(1, "p2")])
    assert waiting == {"k": "l", "m": "churn", "y": "1", "x": 500.0, "o": 3, "i": 4}
    met = join.add_summary(1, "p2", _summary())
    assert met is not None and met.label == "1" and met.identity == (3, 4)
    assert join.add_summary(1, "p2", _summary()) is None  # forwarded again by a replay


def test_joined_marks_go_once_a_durable_checkpoint_covers_their_label() -> None:
    join, store, _ = _join()
    join.add_summaries(0, ["a", "b", "c"], _columns([_summary()] * 3))
    join.seal()
    join.add_labels(0, ["a"], "churn", ["0"], [(5, 0)], [500.0])
    join.seal()  # the flush of the batch that read label 5
    join.add_labels(0, ["b", "c"], "churn", ["0", "1"], [(8, 0), (8, 1)], [500.0] * 2)
    join.seal()
    assert {"0#j0", "0#j1"} <= set(store.data)
    join.drop_covered(lambda partition: 6)
    assert "0#j0" not in store.data and "0#j1" in store.data
    # Label 5 is no longer marked: sent again, it waits (a retried label, after the
    # checkpoint); labels 8 still are, so a replay of them joins nothing.
    again = join.add_labels(0, ["b", "c"], "churn", ["0", "1"], [(8, 0), (8, 1)], [500.0] * 2)
    assert again.pairs() == []
    assert join_key(0, "b") not in store.data
    # After a restart the marks are learnt again from the restored table.
    restored = LabelJoin(store, 2, Counters())
    restored.restore_joined_marks(0)
    assert restored.add_label(0, "c", "churn", "1", (8, 1), 500.0) is None
    assert restored.add_summary(0, "b", _summary()) is None  # forwarded again by a replay
    assert join_key(0, "c") not in store.data and restored.waiting_summaries() == 0
    restored.drop_covered(lambda partition: 8)
    assert not [key for key in store.data if "#j" in key]
    # Once the checkpoint covers them, a summary forwarded again is kept again.
    assert restored.add_summary(0, "b", _summary()) is None
    assert restored.waiting_summaries() == 1


def test_labels_are_held_until_every_partition_was_heard_on_the_join_topic() -> None:
    join, _, _ = _join(3)
    assert join.forwarded_up_to(0) == (False, None)
    join.hear(0, 0, 50.0)
    join.hear(0, 1, None)  # saw no prediction: forwarded nothing, holds nothing
    assert join.forwarded_up_to(0) == (False, 50.0)
    join.hear(0, 2, 30.0)
    assert join.forwarded_up_to(0) == (True, 30.0)
    # A waiting label's expiry is stricter: a partition without predictions may still
    # forward its summary.
    assert join.prediction_low_watermark(0) is None
    join.hear(0, 1, 40.0)
    assert join.prediction_low_watermark(0) == 30.0


def test_entries_expire_by_the_clock_of_what_they_wait_for() -> None:
    join, store, counters = _join(1)
    join.add_summary(0, "s", _summary(expires=100.0))
    join.add_label(0, "l", "churn", "1", (1, 0), 100.0)
    join.expire([0], lambda partition: 150.0)  # labels passed: the summary goes
    assert set(store.data) == {join_key(0, "l")}
    assert counters.unlabeled_predictions == 1
    join.hear(0, 0, 99.0)
    join.expire([0], lambda partition: 150.0)  # predictions not past the label's horizon
    assert set(store.data) == {join_key(0, "l")}
    join.hear(0, 0, 101.0)
    join.expire([0], lambda partition: 150.0)
    assert store.data == {} and counters.unmatched_labels == 1


@settings(max_examples=examples(300), deadline=None)
@given(ids=st.lists(st.text(max_size=40), max_size=60), n_partitions=st.integers(1, 64))
def test_hashing_ids_by_column_gives_kafkas_partition_of_each(
    ids: list[str], n_partitions: int
) -> None:
    expected = [int(murmur2(i.encode()) & 0x7FFFFFFF) % n_partitions for i in ids]
    assert join_partitions(ids, n_partitions).tolist() == expected
    assert _join_partitions_numpy(ids, n_partitions).tolist() == expected
    assert [join_partition(i, n_partitions) for i in ids] == expected


def test_a_summary_forwarded_again_after_a_flush_joins_once_even_after_its_mark_goes() -> None:
    join, store, _ = _join()
    join.add_summary(0, "p1", _summary())
    join.seal()  # kept as a segment, as a flush does
    join.add_summary(0, "p1", _summary())  # a replay of another partition forwards it again
    assert join.add_label(0, "p1", "churn", "0", (7, 0), 500.0) is not None
    assert join.waiting_summaries() == 0
    join.seal()
    join.drop_covered(lambda partition: 7)  # the joined mark goes with the checkpoint
    # The label sent again: nothing left to meet, so it waits (and expires unmatched).
    assert join.add_label(0, "p1", "churn", "0", (9, 0), 500.0) is None
    assert [k for k in store.data if not k.startswith("0|")] == []


def test_summaries_kept_as_segments_come_back_after_a_restart() -> None:
    join, store, counters = _join()
    for n in range(5):
        join.add_summary(1, f"p{n}", _summary(expires=100.0 + n))
    join.seal()
    assert join.add_label(1, "p3", "churn", "0", (4, 0), 500.0) is not None
    join.seal()
    restored = LabelJoin(store, 2, counters)
    restored.restore_joined_marks(1)
    assert restored.waiting_summaries() == 4
    met = restored.add_label(1, "p0", "churn", "1", (5, 0), 500.0)
    assert met is not None and met.summary.expires == 100.0 and met.summary.predicted == "1"
    assert restored.add_label(1, "p3", "churn", "1", (6, 0), 500.0) is None  # joined before
    restored.expire([1], lambda partition: 103.5)  # p1 and p2 expire, p4 waits
    assert counters.unlabeled_predictions == 2 and restored.waiting_summaries() == 1


SUMMARY_ROWS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]), st.floats(0, 200), st.sampled_from([0, 1])
    ),
    max_size=8,
)


def _pair_of(joined: Any) -> Any:
    """What stage 1 sends of a pair (``Stage1._pair``)."""
    if joined is None:
        return None
    return tuple(joined.summary), joined.label, joined.identity


@settings(max_examples=examples(200), deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("summaries"), SUMMARY_ROWS),
            st.tuples(st.just("label"), st.sampled_from(["a", "b", "c", "d", "e"])),
            st.tuples(st.just("flush"), st.none()),
        ),
        max_size=25,
    )
)
def test_summaries_added_as_columns_join_as_added_one_by_one(steps: list[tuple[str, Any]]) -> None:
    """``add_summaries`` (envelopes, forwarded columns) is ``add_summary`` for many."""
    by_one, _, _ = _join(1)
    by_columns, _, _ = _join(1)
    for offset, (kind, arg) in enumerate(steps):
        if kind == "summaries":
            # An id given twice in one call (an envelope naming a prediction twice): the
            # last is the one kept, and a label that waited joins it once.
            last = {pid: row for row, (pid, _, _) in enumerate(arg)}
            one = [
                by_one.add_summary(0, pid, _summary(x, predicted=y, origin_offset=offset))
                for pid, x, y in (arg[row] for row in sorted(last.values()))
            ]
            ids = [pid for pid, _, _ in arg]
            columns = SummaryColumnsIn(
                ["churn"] * len(ids),
                [0.0] * len(ids),
                [60.0] * len(ids),
                [y for _, _, y in arg],
                [0.9] * len(ids),
                [x for _, x, _ in arg],
                ["p"] * len(ids),
                [offset] * len(ids),
            )
            many = by_columns.add_summaries(0, ids, columns)
            assert [_pair_of(j) for j in one if j is not None] == [_pair_of(j) for j in many]
        elif kind == "label":
            first = by_one.add_label(0, arg, "churn", 1, (offset, 0), 500.0)
            second = by_columns.add_label(0, arg, "churn", 1, (offset, 0), 500.0)
            assert _pair_of(first) == _pair_of(second)
        else:
            by_one.seal()
            by_columns.seal()
        assert by_one.waiting_summaries() == by_columns.waiting_summaries()


IDS = [f"p{n}" for n in range(40)]


@settings(max_examples=examples(150), deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("summaries"), st.lists(st.sampled_from(IDS), max_size=30)),
            st.tuples(st.just("labels"), st.lists(st.sampled_from(IDS), max_size=30)),
            st.tuples(st.just("flush"), st.booleans()),
            st.tuples(st.just("expire"), st.floats(0, 120)),
        ),
        max_size=30,
    ),
    records=st.sampled_from([1, 3, 256]),
    take=st.sampled_from(["one by one", "rows", "segments"]),
    on_disk=st.booleans(),
)
def test_label_envelopes_join_as_their_labels_one_by_one_across_restarts(
    steps: list[tuple[str, Any]], records: int, take: str, on_disk: bool
) -> None:
    """``add_labels`` is ``add_label`` for each label; a restart after a flush (the rows
    gone kept as gone-log records, folded into bitmaps every ``records`` flushes) changes
    nothing either, nor segments kept on disk (a memory budget of 0)."""
    by_one, _, one_counters = _join(1)
    spill = SegmentSpill(SPILL_DIRECTORY, 0) if on_disk else None
    store, many_counters = MemoryStore(), Counters()
    by_many = LabelJoin(store, 1, many_counters, spill)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(label_join, "GONE_LOG_RECORDS", records)
        # Each way SummaryColumns.take reads an envelope's rows.
        patch.setattr(
            summary_columns, "TAKE_ONE_BY_ONE_BELOW", 10**9 if take == "one by one" else 1
        )
        patch.setattr(summary_columns, "ROWS_PER_SEGMENT_FOR_NUMPY", 10**9 if take == "rows" else 1)
        for offset, (kind, arg) in enumerate(steps):
            if kind == "summaries":
                for join in (by_one, by_many):
                    for n, pid in enumerate(dict.fromkeys(arg)):
                        join.add_summary(0, pid, _summary(50.0 + n, origin_offset=offset))
            elif kind == "labels":
                ids = list(dict.fromkeys(arg))
                labels = [n % 2 for n in range(len(ids))]
                one = [
                    by_one.add_label(0, pid, "churn", y, (offset, n), 500.0)
                    for n, (pid, y) in enumerate(zip(ids, labels, strict=True))
                ]
                identities = [(offset, n) for n in range(len(ids))]
                many = by_many.add_labels(0, ids, "churn", labels, identities, [500.0] * len(ids))
                assert [_pair_of(j) for j in one if j is not None] == [
                    _pair_of(j) for j in many.pairs()
                ]
            elif kind == "flush":
                by_one.seal()
                by_many.seal()
                if arg:  # a restart: everything from the table
                    by_many = LabelJoin(store, 1, many_counters, spill)
                    by_many.restore_joined_marks(0)
                if spill is not None:
                    assert by_many.bytes_in_memory() == 0
            else:
                clock = label_clock_at(cast(float, arg))  # an expiry step: the label clock
                by_one.expire([0], clock)
                by_many.expire([0], clock)
            assert by_one.waiting_summaries() == by_many.waiting_summaries()
    assert one_counters.unlabeled_predictions == many_counters.unlabeled_predictions


def test_a_segment_number_a_gone_log_record_names_is_not_given_again_after_a_restart() -> None:
    join, store, counters = _join(1)
    for ids in (["p0", "p1"], ["p2", "p3"]):
        for pid in ids:
            join.add_summary(0, pid, _summary())
        join.seal()  # segments 0 and 1
    for offset, pid in enumerate(["p2", "p3"]):
        assert join.add_label(0, pid, "churn", "1", (offset, 0), 500.0) is not None
        join.seal()  # a record names segment 1's row 0; then segment 1 is dropped
    assert "0#c1" not in store.data and any(key.startswith("0#x") for key in store.data)

    def restart() -> LabelJoin:
        restored = LabelJoin(store, 1, counters)
        restored.restore_joined_marks(0)
        return restored

    join = restart()
    for pid in ("p4", "p5"):
        join.add_summary(0, pid, _summary())
    join.seal()
    assert "0#c1" not in store.data, "a new number, not the one the record names"
    assert restart().waiting_summaries() == 4  # p0, p1, p4, p5: none taken for gone


def test_rows_gone_before_a_restart_stay_gone_after_the_records_are_folded() -> None:
    """The records read at a restart are folded with the segments they name: a row they
    held gone does not come back waiting after the next restart."""
    join, store, counters = _join(1)
    for ids in (["p0", "p1", "p2"], ["p3", "p4", "p5"]):
        for pid in ids:
            join.add_summary(0, pid, _summary())
        join.seal()  # segments 0 and 1
    assert join.add_label(0, "p1", "churn", "1", (3, 0), 500.0) is not None
    join.seal()  # one gone-log record, not folded yet
    assert any(key.startswith("0#x") for key in store.data)

    def restart() -> LabelJoin:
        restored = LabelJoin(store, 1, counters)
        restored.restore_joined_marks(0)
        return restored

    join = restart()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(label_join, "GONE_LOG_RECORDS", 1)
        assert join.add_label(0, "p4", "churn", "1", (4, 0), 500.0) is not None
        join.seal()  # folds (segment 1 changed since the restart): every record goes
    assert not any(key.startswith("0#x") for key in store.data)
    assert restart().waiting_summaries() == 4  # p0, p2, p3, p5


@pytest.mark.parametrize("restart", [False, True])
def test_a_joined_mark_is_swept_by_its_own_expiry_restart_or_not(restart: bool) -> None:
    """Found by the property test above: a mark expiring before the earliest expiry known
    (a waiting label's) outlived it without a restart, not with one, so a summary a
    replay forwarded again was a no-op in one worker and waited in the other."""
    join, store, _ = _join(1)
    join.expire([0], lambda partition: 0.0)  # the earliest expiry is known from here on
    if restart:
        join = LabelJoin(store, 1, Counters())
        join.restore_joined_marks(0)
    join.add_label(0, "p0", "churn", "0", (2, 0), 500.0)
    assert join.add_summary(0, "p0", _summary(50.0, origin_offset=3)) is not None
    join.expire([0], lambda partition: 51.0)
    assert store.data == {}, "the mark expired at 50"
    join.add_summary(0, "p0", _summary(50.0, origin_offset=5))
    assert join.waiting_summaries() == 1


def test_no_table_value_outgrows_a_kafka_message_however_many_labels_a_flush_joins() -> None:
    # 100,000 labels in one flush: their marks (~1.6 MB as one record) and the rows they
    # take (800 KB of handles) once crashed a worker's changelog producer at Kafka's 1 MB.
    join, store, _ = _join(1)
    ids = [f"prediction-{i}" for i in range(150_000)]
    join.add_summaries(0, ids, _columns([_summary()] * len(ids)))
    join.seal()
    store.writes.clear()
    labelled = [i for i in ids if not i.endswith("0")]  # segments keep rows: no segment goes
    n = len(labelled)
    positions = [(9, i) for i in range(n)]
    assert len(join.add_labels(0, labelled, "churn", ["1"] * n, positions, [500.0] * n)) == n
    join.seal()
    # Under half of Kafka's limit: values that are not UTF-8 go out in base64 (4/3).
    assert max(len(value) for _, _, value in store.writes if value is not None) <= 512 * 1024
    restored = LabelJoin(store, 1, Counters())
    restored.restore_joined_marks(0)
    assert restored.waiting_summaries() == len(ids) - n
    assert (
        restored.add_labels(0, labelled[:5], "churn", ["1"] * 5, positions[:5], [500.0] * 5).pairs()
        == []
    )
