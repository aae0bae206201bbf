"""Summaries forwarded to another partition's join as one segment (``forwarded_segment``,
``LabelJoin.add_forwarded``): they join as the same summaries would one by one, and what
earlier versions forwarded (JSON) still joins as they do."""

from __future__ import annotations

import itertools
from typing import Any, cast

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.limits import MAX_MESSAGE_BYTES
from stream_app import label_join, stage1
from stream_app.counters import Counters
from stream_app.forward_buffer import ForwardBuffer
from stream_app.label_join import LabelJoin
from stream_app.stage1 import Stage1
from stream_app.state_store import MemoryStore
from stream_app.summary_columns import (
    Summary,
    SummaryColumnsIn,
    SummarySegment,
    even_bounds,
    forwarded_segment,
    is_summary_segment,
)
from tests.examples import examples
from tests.stream_app import test_label_join
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_label_join_table import label_clock_at

# One id that is not ASCII: its byte offsets are not its character offsets.
IDS = ["a", "b", "c", "d", "é-e", "f"]


def _summary(model: str, expires: float, predicted: Any, kind: str, offset: int) -> Summary:
    return Summary(
        model, 0.0, 60.0, predicted, None if predicted == 2 else 0.5, expires, kind, offset
    )


def _columns(summaries: list[Summary]) -> SummaryColumnsIn:
    return SummaryColumnsIn._make(map(list, zip(*summaries, strict=True)))


def _pair_of(joined: Any) -> Any:
    return None if joined is None else (tuple(joined.summary), joined.label, joined.identity)


ROWS = st.lists(
    st.tuples(
        st.sampled_from(IDS),
        st.sampled_from(["churn", "fraud"]),
        st.floats(0, 200),
        st.sampled_from([0, 1, 2, "yes", 0.25]),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=examples(200), deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("local"), ROWS),
            st.tuples(st.just("forwarded"), ROWS),
            st.tuples(st.just("label"), st.sampled_from(IDS)),
            st.tuples(st.just("flush"), st.booleans()),
            st.tuples(st.just("expire"), st.floats(0, 120)),
        ),
        max_size=25,
    ),
    kept_from=st.sampled_from([1, 4, 10**9]),
)
def test_a_forwarded_segment_joins_as_its_summaries_one_by_one(
    steps: list[tuple[str, Any]], kept_from: int
) -> None:
    """``add_forwarded`` is ``add_summary`` of each id's last row, this message their
    origin; summaries kept before (until the flush, or in segments) and labels waiting
    meet them as they would; a restart after a flush reads the stored segments back.
    Whether the segment is kept as it is or with the flush's own (``kept_from``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(label_join, "KEEP_FORWARDED_FROM_ROWS", kept_from)
        _forwarded_against_one_by_one(steps)


def _forwarded_against_one_by_one(steps: list[tuple[str, Any]]) -> None:
    by_one = LabelJoin(MemoryStore(), 1, Counters())
    store, counters = MemoryStore(), Counters()
    by_segment = LabelJoin(store, 1, counters)
    for offset, (kind, arg) in enumerate(steps):
        if kind in ("local", "forwarded"):
            origin = "j" if kind == "forwarded" else "p"
            rows = [
                _summary(m, x, y, origin, offset if kind == "forwarded" else -1)
                for _, m, x, y in arg
            ]
            ids = [pid for pid, *_ in arg]
            last = {pid: row for row, pid in enumerate(ids)}
            one = [
                by_one.add_summary(0, pid, rows[last[pid]])
                for pid in sorted(last, key=last.__getitem__)
            ]
            if kind == "forwarded":
                sent = [r._replace(origin_kind="p", origin_offset=99) for r in rows]  # the sender's
                segment = forwarded_segment(ids, _columns(sent))
                many: list[Any] = by_segment.add_forwarded(0, segment, offset)
            else:
                many = [
                    by_segment.add_summary(0, pid, rows[last[pid]])
                    for pid in sorted(last, key=last.__getitem__)
                ]
            assert [_pair_of(j) for j in one if j] == [_pair_of(j) for j in many if j]
        elif kind == "label":
            first = by_one.add_label(0, arg, "churn", 1, (offset, 0), 500.0)
            second = by_segment.add_label(0, arg, "churn", 1, (offset, 0), 500.0)
            assert _pair_of(first) == _pair_of(second)
        elif kind == "flush":
            by_one.seal()
            by_segment.seal()
            if arg:  # a restart: everything from the table
                by_segment = LabelJoin(store, 1, counters)
                by_segment.restore_joined_marks(0)
            assert by_one.waiting_summaries() == by_segment.waiting_summaries()
        else:
            clock = label_clock_at(cast(float, arg))  # an expiry step: the label clock
            by_one.expire([0], clock)
            by_segment.expire([0], clock)
            assert by_one.waiting_summaries() == by_segment.waiting_summaries()
    for n, pid in enumerate(IDS):  # whatever still waits meets its label the same way
        first = by_one.add_label(0, pid, "churn", 0, (10_000, n), 500.0)
        second = by_segment.add_label(0, pid, "churn", 0, (10_000, n), 500.0)
        assert _pair_of(first) == _pair_of(second)


@pytest.mark.parametrize("kept_from", [1, 10**9], ids=["kept as it is", "with the flush's"])
def test_the_last_of_an_ids_repeated_rows_is_the_one_kept(
    kept_from: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(label_join, "KEEP_FORWARDED_FROM_ROWS", kept_from)
    ids = ["a", "b", "a"]
    rows = [_summary("churn", 90.0, y, "p", 5) for y in ("first", "other", "last")]
    segment = SummarySegment.from_bytes(forwarded_segment(ids, _columns(rows)))
    assert segment.ids() == ["b", "a"]
    join = LabelJoin(MemoryStore(), 1, Counters())
    join.add_forwarded(0, forwarded_segment(ids, _columns(rows)), 12)
    met = join.add_label(0, "a", "churn", 1, (3, 0), 500.0)
    assert met is not None and met.summary.predicted == "last"
    assert (met.summary.origin_kind, met.summary.origin_offset) == ("j", 12)


def _as_earlier_versions_forwarded(value: bytes, form: str) -> bytes:
    """A label-join message as versions before segments sent it."""
    if not is_summary_segment(value):
        return value  # a watermark
    segment = SummarySegment.from_bytes(value)
    ids = segment.ids()
    summaries = [segment.summary(row) for row in range(len(segment))]
    if form == "columns":
        names = ("m", "ws", "we", "y", "s", "x")
        columns = zip(*summaries, strict=True)
        return orjson.dumps({"ids": ids, **dict(zip(names, columns, strict=False))})
    return orjson.dumps(
        [
            {"id": i, "m": s[0], "ws": s[1], "we": s[2], "y": s[3], "s": s[4], "x": s[5]}
            for i, s in zip(ids, summaries, strict=True)
        ]
    )


@pytest.mark.parametrize("form", ["columns", "rows"])
def test_what_earlier_versions_forwarded_still_joins(
    form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rolling upgrade: the label-join topic still holds what an older worker forwarded."""
    sent: list[bytes] = []
    forward = LocalPipeline._forward

    async def as_before(self: LocalPipeline, partition: int, value: bytes) -> None:
        sent.append(value)
        await forward(self, partition, _as_earlier_versions_forwarded(value, form))

    monkeypatch.setattr(LocalPipeline, "_forward", as_before)
    pipeline, n_labels = test_label_join._replay("labels first", 3, envelopes=True)
    assert any(is_summary_segment(value) for value in sent)  # the conversion had work to do
    _assert_every_label_joined_once(pipeline, n_labels)


@pytest.mark.parametrize("order", ["predictions first", "labels first"])
def test_every_label_joins_once_when_each_forwarded_segment_is_kept_as_it_is(
    order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's small batches forward small segments, which join the flush's own:
    here each is kept as it is, as a backlog's large ones are."""
    monkeypatch.setattr(label_join, "KEEP_FORWARDED_FROM_ROWS", 1)
    pipeline, n_labels = test_label_join._replay(order, 3, envelopes=True)
    _assert_every_label_joined_once(pipeline, n_labels)


def _assert_every_label_joined_once(pipeline: LocalPipeline, n_labels: int) -> None:
    assert pipeline.counters.joined == n_labels
    assert pipeline.counters.unmatched_labels == 0
    per_window = test_label_join._labeled_per_window(pipeline)
    assert per_window == {start: test_label_join.PER_WINDOW // 2 for start in per_window}
    assert len(per_window) == test_label_join.WINDOWS
    assert pipeline.dead_letters == []


@settings(max_examples=examples(300), deadline=None)
@given(total=st.integers(0, 20_000), most=st.integers(1, 3_000))
def test_even_bounds_cut_into_the_fewest_chunks_of_near_equal_size(total: int, most: int) -> None:
    bounds = even_bounds(total, most)
    assert len(bounds) == -(-total // most)  # the fewest chunks of at most ``most``
    edges = [0, *(stop for _, stop in bounds)]  # contiguous, from 0 to total
    assert bounds == list(itertools.pairwise(edges))
    assert edges[-1] == total
    sizes = [stop - start for start, stop in bounds]
    assert all(0 < size <= most for size in sizes)
    assert max(sizes, default=0) - min(sizes, default=0) <= 1


def test_a_full_forwarded_chunk_of_the_longest_ids_fits_one_kafka_message() -> None:
    """FORWARD_CHUNK rows with 256-character ids (the contract's longest), scores and
    float predictions (the widest record), under the broker's message size."""
    n = stage1.FORWARD_CHUNK
    ids = [f"{row:0256d}" for row in range(n)]
    summaries = [Summary("m" * 64, 0.0, 60.0, row + 0.5, 0.5, 1e9, "p", row) for row in range(n)]
    assert len(forwarded_segment(ids, _columns(summaries))) < MAX_MESSAGE_BYTES


def test_more_rows_than_a_chunk_go_as_segments_the_receiver_keeps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch's summaries for one partition go in chunks of FORWARD_CHUNK or fewer: with
    at least FORWARD_CHUNK of them none is a small remainder (under half of it), which the
    receiver would take apart (under KEEP_FORWARDED_FROM_ROWS); whole chunks go before the
    batch ends; and every label still joins once."""
    assert stage1.FORWARD_CHUNK >= 2 * label_join.KEEP_FORWARDED_FROM_ROWS
    monkeypatch.setattr(stage1, "FORWARD_CHUNK", 4)  # the replay's batches forward 2 to 20
    sent: list[tuple[int, int, int]] = []  # (process call, target, rows) of each segment
    calls = [0]
    forward, process = LocalPipeline._forward, Stage1.process

    async def recorded(self: LocalPipeline, partition: int, value: bytes) -> None:
        if is_summary_segment(value):  # not a partition's watermark
            sent.append((calls[0], partition, len(SummarySegment.from_bytes(value))))
        await forward(self, partition, value)

    async def counted(self: Stage1, batch: Any) -> None:
        calls[0] += 1
        await process(self, batch)

    monkeypatch.setattr(LocalPipeline, "_forward", recorded)
    monkeypatch.setattr(Stage1, "process", counted)
    pipeline, n_labels = test_label_join._replay("labels first", 3, envelopes=True)
    by_batch: dict[tuple[int, int], list[int]] = {}
    for call, target, rows in sent:
        by_batch.setdefault((call, target), []).append(rows)
    assert any(len(sizes) > 2 for sizes in by_batch.values())  # some were cut
    for sizes in by_batch.values():
        assert max(sizes) <= 4
        assert sum(sizes) < 4 or min(sizes) >= 2
        # Sent early: all but the last one or two are whole chunks.
        assert all(size == 4 for size in sizes[:-2])
    assert any(sizes.count(4) >= 2 for sizes in by_batch.values())
    _assert_every_label_joined_once(pipeline, n_labels)


def test_an_error_making_an_early_chunk_is_not_pinned_on_the_message_at_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunk sent before the batch's end holds rows of earlier messages too: an error
    making it stops the batch (which is then not acknowledged), as at the batch's end,
    instead of dead-lettering the message being processed."""
    monkeypatch.setattr(stage1, "FORWARD_CHUNK", 4)
    ready, init = ForwardBuffer.ready, LocalPipeline.__init__
    created: list[LocalPipeline] = []

    def broken(self: ForwardBuffer, most: int) -> list[bytes]:
        if len(self) >= 2 * most:
            raise RuntimeError("a bug in the forwarding")
        return ready(self, most)

    def capturing(self: LocalPipeline, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(ForwardBuffer, "ready", broken)
    monkeypatch.setattr(LocalPipeline, "__init__", capturing)
    with pytest.raises(RuntimeError, match="a bug in the forwarding"):
        test_label_join._replay("labels first", 3, envelopes=True)
    assert len(created) == 1 and created[0].dead_letters == []
