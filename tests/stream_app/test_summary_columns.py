"""Summaries kept as columns answer exactly what a dict of summaries would (issue 12 part 2)."""

from __future__ import annotations

import sys
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app import id_index, summary_columns
from stream_app.id_index import MAX_LOAD, MISSING, IdIndex
from stream_app.summary_columns import (
    GONE,
    JOINED,
    WAITING,
    Summary,
    SummaryColumns,
    SummarySegment,
    _coded_windows,
)
from tests.examples import examples


def colliding(prediction_id: str) -> int:
    """Three slot keys for every id: most lookups meet other ids' keys first."""
    return 2 + len(prediction_id.encode()) % 3


IDS = st.text(alphabet="ab\u00e9\u4e2d0", max_size=4)
PREDICTED = st.one_of(
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from(["yes", "no", ""]),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)
SUMMARIES = st.builds(
    Summary,
    model_id=st.sampled_from(["churn", "fraud"]),
    window_start=st.sampled_from([0.0, 60.0, 120.0]),
    window_end=st.sampled_from([60.0, 120.0, 180.0]),
    predicted=PREDICTED,
    score=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    expires=st.floats(0, 100, allow_nan=False),
    origin_kind=st.sampled_from(["p", "j"]),
    origin_offset=st.integers(-1, 2**40),
)
FLOAT_SUMMARIES = SUMMARIES.map(lambda s: s._replace(predicted=float(s.window_start) - 0.5))
OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.lists(
                st.tuples(IDS, st.one_of(SUMMARIES, FLOAT_SUMMARIES)), min_size=1, max_size=12
            ),
        ),
        st.tuples(st.just("join"), st.lists(IDS, max_size=6)),
        st.tuples(st.just("forget"), st.lists(IDS, max_size=6)),
        # An int picks an id seen before (most of them waiting): random ids rarely are.
        st.tuples(st.just("take"), st.lists(st.one_of(IDS, st.integers(0, 99)), max_size=6)),
        st.tuples(st.just("expire"), st.floats(0, 100)),
        st.tuples(st.just("restart"), st.none()),
    ),
    max_size=30,
)


def same(a: Any, b: Any) -> bool:
    """Equal with the type (1 is not 1.0 nor True) and, for floats, the sign of zero."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return bool(a.hex() == b.hex())
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def check(columns: SummaryColumns, model: dict[str, tuple[Summary, int]], probe: list[str]) -> None:
    handles = columns.find(probe)
    assert handles.tolist() == [columns.index.find_one(i) for i in probe]
    for prediction_id, handle in zip(probe, handles.tolist(), strict=True):
        if prediction_id not in model:
            assert handle == MISSING, prediction_id
            continue
        summary, state = model[prediction_id]
        assert handle != MISSING, prediction_id
        assert same(columns.summary(handle), summary)
        assert columns.state(handle) == state
    assert len(columns.index) == len(model)


NATIVE = id_index.native
NATIVE_TAKE = summary_columns.native
# How a take of many reads its rows: Python row by row, numpy per segment, or C.
TAKES = ["one", "rows", "numpy", *(["native"] if NATIVE_TAKE is not None else [])]


def test_the_native_take_is_built() -> None:
    assert NATIVE_TAKE is not None, "stream_app/_summary_rows.c not compiled"


@pytest.mark.parametrize(
    "rounds",
    [
        "one id at a time",
        "numpy rounds",
        "numpy rounds, then one at a time",
        pytest.param(
            "native",
            marks=pytest.mark.skipif(NATIVE is None, reason="stream_app._id_slots not built"),
        ),
    ],
)
@pytest.mark.parametrize("hasher", ["python", "colliding"])
@settings(max_examples=examples(150), deadline=None)
@given(ops=OPS, extra=st.lists(IDS, max_size=8), take=st.sampled_from(TAKES))
def test_columns_answer_what_a_dict_of_summaries_answers(
    rounds: str, hasher: str, ops: list[tuple[str, Any]], extra: list[str], take: str
) -> None:
    numpy = rounds != "one id at a time"
    # Stragglers: after one numpy round, the ids still probing go one at a time.
    stragglers = 10**9 if rounds.endswith("then one at a time") else 0
    with (
        patch.object(id_index, "native", NATIVE if rounds == "native" else None),
        patch.object(id_index, "SCALAR_BELOW", 0 if numpy else 10**9),
        patch.object(id_index, "VECTOR_ROUNDS", 1),
        patch.object(id_index, "STRAGGLERS", stragglers),
    ):
        _replay_ops(hasher, ops, extra, take)


def _taken(columns: SummaryColumns, ids: list[str], how: str) -> list[Summary | None]:
    """Each id's waiting summary, taken one by one or as a batch (row by row, by numpy per
    segment, or in C): the ids distinct but for one by one."""
    if how == "one":
        return [columns.take_one(prediction_id) for prediction_id in ids]
    by_rows = 10**9 if how == "rows" else 0
    with (
        patch.object(summary_columns, "TAKE_ONE_BY_ONE_BELOW", 0),
        patch.object(summary_columns, "ROWS_PER_SEGMENT_FOR_NUMPY", by_rows),
    ):
        # A take of many hands out plain tuples in Summary's field order.
        return [None if row is None else Summary._make(row) for row in columns.take(ids)]


def _replay_ops(hasher: str, ops: list[tuple[str, Any]], extra: list[str], take: str) -> None:
    with patch.object(summary_columns, "native", NATIVE_TAKE if take == "native" else None):
        _replay(hasher, ops, extra, take)


def _replay(hasher: str, ops: list[tuple[str, Any]], extra: list[str], take: str) -> None:

    def make() -> SummaryColumns:
        return SummaryColumns(slot_key=colliding) if hasher == "colliding" else SummaryColumns()

    columns = make()
    model: dict[str, tuple[Summary, int]] = {}
    seen: set[str] = set(extra)
    for op, arg in ops:
        if op == "add":
            ids = [i for i, _ in arg]
            columns.add(ids, [s for _, s in arg])
            for prediction_id, summary in arg:
                model[prediction_id] = (summary, WAITING)
            seen.update(ids)
        elif op == "join":
            handles = columns.find(arg).tolist()
            columns.mark_joined([h for h in handles if h != MISSING])
            for prediction_id in arg:
                if prediction_id in model:
                    model[prediction_id] = (model[prediction_id][0], JOINED)
        elif op == "forget":
            columns.forget(list(dict.fromkeys(arg)))
            for prediction_id in arg:
                model.pop(prediction_id, None)
        elif op == "take":
            known = sorted(seen)
            picked = [
                i if isinstance(i, str) else known[i % len(known)]
                for i in arg
                if isinstance(i, str) or known
            ]
            ids = picked if take == "one" else list(dict.fromkeys(picked))
            for prediction_id, taken in zip(ids, _taken(columns, ids, take), strict=True):
                if prediction_id in model and model[prediction_id][1] == WAITING:
                    assert taken is not None and same(taken, model.pop(prediction_id)[0])
                else:
                    assert taken is None
        elif op == "expire":
            due = [i for i, (s, state) in model.items() if state == WAITING and s.expires < arg]
            assert columns.expire(arg) == len(due)
            for prediction_id in due:
                del model[prediction_id]
        else:  # a restart: the segments as a changelog holds them, read back in order
            written = [columns.segments[seq].to_bytes() for seq in sorted(columns.segments)]
            columns = make()
            for n, data in enumerate(written):  # as copies, and as views into the record
                columns.attach(SummarySegment.from_bytes(data, copy=n % 2 == 0))
        check(columns, model, sorted(seen))
        waiting = [s.expires for s, state in model.values() if state == WAITING]
        assert columns.earliest_expiry() == (min(waiting) if waiting else None)
        # Every stored segment holds a row that is not gone: the others are dropped.
        assert all((s.state != GONE).any() for s in columns.segments.values())


@pytest.mark.parametrize("native", [True, False])
def test_the_index_grows_and_reuses_deleted_slots(native: bool) -> None:
    ids = [f"id-{n}" for n in range(5000)] + ["x"]
    with patch.object(id_index, "native", NATIVE if native else None):
        index = IdIndex(lambda handle: ids[handle], capacity=16)
    assert index.put(ids[:2500], np.arange(2500, dtype=np.int64)).tolist() == [MISSING] * 2500
    assert index.find(ids[:3]).tolist() == [0, 1, 2]
    assert index.remove(ids[:1000]).tolist() == list(range(1000))
    index.put(ids[2500:5000], np.arange(2500, 5000, dtype=np.int64))
    assert len(index) == 4000
    assert index.find(ids[:5000]).tolist() == [MISSING] * 1000 + list(range(1000, 5000))
    slots = index.nbytes // 16
    assert MAX_LOAD / 4 <= len(index) / slots <= MAX_LOAD
    index.remove(ids[1000:4900])
    index.put(["x"], np.array([5000], dtype=np.int64))  # a rebuild shrinks it
    assert index.find(["x", ids[4999], ids[0]]).tolist() == [5000, 4999, MISSING]
    assert index.nbytes // 16 <= 1024


def _native_probes(columns: SummaryColumns, probe: list[str]) -> list[tuple[list[int], list[int]]]:
    """The C probe's (handles, slots) for ``probe``, confirming a hash match from the
    segments' bytes, then by calling ``id_at``."""
    assert NATIVE is not None
    index = columns.index
    answers = []
    for segments in (columns.segments, None):
        handles = np.empty(len(probe), dtype=np.int64)
        slots = np.empty(len(probe), dtype=np.int64)
        NATIVE.probe(
            index._keys, index._handles, index._hasher(probe), probe, columns._id_at,
            handles, slots, segments, 24,
        )  # fmt: skip
        answers.append((handles.tolist(), slots.tolist()))
    return answers


@pytest.mark.skipif(NATIVE is None, reason="stream_app._id_slots not built")
@settings(max_examples=examples(60), deadline=None)
@given(
    batches=st.lists(st.lists(IDS, min_size=1, max_size=10), min_size=1, max_size=6),
    probe=st.lists(IDS, max_size=12),
    views=st.booleans(),
)
def test_the_native_probe_confirms_from_segment_bytes_as_id_at_does(
    batches: list[list[str]], probe: list[str], views: bool
) -> None:
    """The C probe reading a row's id from its segment's bytes gives id_at's answers, with
    every id colliding with others, non-ASCII ids, and segments that view a stored value."""
    columns = SummaryColumns(slot_key=colliding)
    for ids in batches:
        ids = list(dict.fromkeys(ids))
        segment = SummarySegment.build(
            0, ids, [Summary("m", 0.0, 60.0, 1, None, 9.0, "p", 0)] * len(ids)
        )
        columns.renumber(segment)
        if views:  # as read back after a restart: id_blob a memoryview
            segment = SummarySegment.from_bytes(segment.to_bytes(), copy=False)
        columns.attach(segment, ids)
    answers = _native_probes(columns, probe)
    assert answers[0] == answers[1]
    assert answers[0][0] == [columns.index.find_one(i) for i in probe]


@pytest.mark.skipif(NATIVE is None, reason="stream_app._id_slots not built")
def test_the_native_probe_reads_past_the_segments_it_holds_and_lets_every_one_go() -> None:
    """A probe holds the ids of up to 512 segments while it runs (looked up once each);
    hits in more segments than that are confirmed one at a time. Same answers as id_at's
    either way, and no segment's ids are still held once the probe returns."""
    columns = SummaryColumns(slot_key=colliding)  # ids of one length share a slot key
    every: list[str] = []
    for n in range(700):
        ids = [f"{n:04d}a", f"{n:04d}b"]
        segment = SummarySegment.build(0, ids, [Summary("m", 0.0, 60.0, 1, None, 9.0, "p", 0)] * 2)
        columns.renumber(segment)
        columns.attach(segment, ids)
        every.extend(ids)
    probe = [*every[::-3], "zzzzz", "0001a", "0001a"]  # absent, and one id twice
    held = [(s.id_blob, s.id_ends) for s in columns.segments.values()]
    counts = [(sys.getrefcount(blob), sys.getrefcount(ends)) for blob, ends in held]
    index = columns.index
    answers = [handles for handles, _ in _native_probes(columns, probe)]
    assert answers[0] == answers[1] == [index.find_one(i) for i in probe]
    assert answers[0][-3] == MISSING and answers[0][-1] == answers[0][-2] != MISSING
    assert [(sys.getrefcount(blob), sys.getrefcount(ends)) for blob, ends in held] == counts


@pytest.mark.skipif(NATIVE is None, reason="stream_app._id_slots not built")
def test_the_native_probe_names_a_handle_without_its_segment() -> None:
    columns = SummaryColumns(slot_key=colliding)
    columns.add(["ab"], [Summary("m", 0.0, 60.0, 1, None, 9.0, "p", 0)])
    columns.segments[7] = columns.segments.pop(0)  # the index still points into segment 0
    with pytest.raises(KeyError, match="0"):
        columns.find(["ba"])  # same length, so the same colliding slot key: a hash match


def test_a_segment_of_another_format_is_refused_with_what_to_do() -> None:
    segment = SummarySegment.build(0, ["a"], [Summary("m", 0.0, 60.0, 1, None, 9.0, "p", 3)])
    data = bytearray(segment.to_bytes())
    data[3] = 9
    with pytest.raises(ValueError, match="format 9, this worker reads 1 and 2: run"):
        SummarySegment.from_bytes(bytes(data))
    with pytest.raises(ValueError, match="NaN stands for no score"):
        SummarySegment.build(0, ["a"], [Summary("m", 0.0, 60.0, 1, float("nan"), 9.0, "p", 3)])


# Two segments as format 1 (a column per field) wrote them: coded predictions with a row
# gone, and float predictions. A worker upgraded with segments in its changelog reads them.
FORMAT_1_CODED = bytes.fromhex(
    "444c5301ba000000050000007b22736571223a372c226e223a332c226d6f64656c73223a5b22636875726e22"
    "2c226672617564225d2c2277696e646f7773223a5b5b302e302c36302e305d2c5b36302e302c3132302e305d"
    "5d2c22707265646963746564223a5b22796573222c226e6f225d2c226b696e6473223a5b2270222c226a225d"
    "2c22647479706573223a5b223c7534222c227c7531222c227c7531222c227c7531222c223c6638222c223c66"
    "38222c227c7531222c223c6938222c227c7531225d7d6162c3a96301000000040000000500000000000100010000"
    "0100000000000000d03f000000000000f87f000000000000e83f0000000000e05840000000000000594000000000"
    "004059400001000c000000000000000000000000010000ffffffffffffffff000200"
)
FORMAT_1_FLOATS = bytes.fromhex(
    "444c530195000000020000007b22736571223a382c226e223a322c226d6f64656c73223a5b226d225d2c2277"
    "696e646f7773223a5b5b302e302c36302e305d5d2c22707265646963746564223a6e756c6c2c226b696e6473"
    "223a5b2270225d2c22647479706573223a5b223c7534222c227c7531222c227c7531222c223c6638222c223c"
    "6638222c223c6638222c227c7531222c223c6938222c227c7531225d7d7879010000000200000000000000000000"
    "000000f83f00000000000002c0000000000000e03f000000000000f87f0000000000002240000000000000244000"
    "00030000000000000004000000000000000000"
)


@pytest.mark.parametrize("copy", [True, False])
def test_segments_of_format_1_are_read(copy: bool) -> None:
    coded = SummarySegment.from_bytes(FORMAT_1_CODED, copy=copy)
    assert (coded.seq, [coded.id_at(row) for row in range(3)]) == (7, ["a", "b\u00e9", "c"])
    assert coded.state.tolist() == [WAITING, GONE, WAITING]
    expected = [
        Summary("churn", 0.0, 60.0, "yes", 0.25, 99.5, "p", 12),
        Summary("churn", 60.0, 120.0, "no", None, 100.0, "j", 2**40),
        Summary("fraud", 0.0, 60.0, "yes", 0.75, 101.0, "p", -1),
    ]
    assert [coded.summary(row) for row in range(3)] == expected
    assert coded.summaries(np.array([2, 0])) == [expected[2], expected[0]]
    floats = SummarySegment.from_bytes(FORMAT_1_FLOATS, copy=copy)
    assert [floats.summary(row) for row in range(2)] == [
        Summary("m", 0.0, 60.0, 1.5, 0.5, 9.0, "p", 3),
        Summary("m", 0.0, 60.0, -2.25, None, 10.0, "p", 4),
    ]
    again = SummarySegment.from_bytes(coded.to_bytes())  # written back as format 2
    assert again.to_bytes()[3] == 2 and [again.summary(row) for row in range(3)] == expected


def _windows_by_rows(starts: list[float], ends: list[float]) -> tuple[list[Any], list[int]]:
    """Windows coded the plain way: a sort of (start, end) rows by their bits."""
    bits = np.ascontiguousarray(np.column_stack([starts, ends]).astype(np.float64)).view(np.int64)
    distinct, codes = np.unique(bits, axis=0, return_inverse=True)
    return [(a, b) for a, b in distinct.view(np.float64).tolist()], codes.reshape(-1).tolist()


WINDOW_EDGES = st.sampled_from([0.0, -0.0, 60.0, 1767225600.0, 1767225660.0, 1e300, float("nan")])


@settings(max_examples=examples(300), deadline=None)
@given(
    rows=st.lists(st.tuples(WINDOW_EDGES, WINDOW_EDGES), min_size=1, max_size=40),
    one_end_per_start=st.booleans(),
)
def test_windows_are_coded_as_a_sort_of_their_rows_codes_them(
    rows: list[tuple[float, float]], one_end_per_start: bool
) -> None:
    if one_end_per_start:  # the common case: a start's end is the start plus the size
        rows = [(start, start + 60.0) for start, _ in rows]
    starts, ends = [r[0] for r in rows], [r[1] for r in rows]
    windows, codes = _coded_windows(starts, ends)
    expected_windows, expected_codes = _windows_by_rows(starts, ends)
    bits = np.array(windows, dtype=np.float64).view(np.int64).tolist()
    assert bits == np.array(expected_windows, dtype=np.float64).view(np.int64).tolist()
    assert codes.tolist() == expected_codes


def _twins(
    batches: list[list[tuple[str, Summary]]], views: bool
) -> tuple[SummaryColumns, SummaryColumns]:
    """The same segments kept twice: one taking in C, one in Python."""
    both = []
    for take in (NATIVE_TAKE, None):
        with patch.object(summary_columns, "native", take):
            columns = SummaryColumns()
        for batch in batches:
            seq = columns.add([i for i, _ in batch], [s for _, s in batch])
            if views:  # read back from a stored value: read-only records, maybe unaligned
                data = columns.segments[seq].to_bytes()
                columns.segments[seq] = SummarySegment.from_bytes(data, copy=False)
        both.append(columns)
    return both[0], both[1]


def _bookkeeping(columns: SummaryColumns) -> tuple[Any, ...]:
    return (
        {seq: s.state.tolist() for seq, s in columns.segments.items()},
        dict(columns._alive),
        set(columns.changed),
        set(columns.dropped),
        sorted(columns.drain_gone().tolist()),
        columns.bytes_in_memory,
        len(columns.index),
    )


# Many distinct predictions in a segment: codes of two bytes.
MANY_CLASSES = st.integers(0, 400).map(lambda n: f"class-{n}")


@pytest.mark.skipif(NATIVE_TAKE is None, reason="stream_app._summary_rows not built")
@settings(max_examples=examples(150), deadline=None)
@given(
    batches=st.lists(
        st.lists(
            st.tuples(
                st.text(alphabet="abc\u00e9", min_size=1, max_size=3),
                st.one_of(SUMMARIES, FLOAT_SUMMARIES),
            ),
            min_size=1,
            max_size=40,
        ),
        min_size=1,
        max_size=4,
    ),
    wide=st.booleans(),
    views=st.booleans(),
    joined=st.lists(st.text(alphabet="abc\u00e9", min_size=1, max_size=3), max_size=5),
    takes=st.lists(st.lists(st.text(alphabet="abc\u00e9", max_size=3), max_size=60), max_size=3),
)
def test_the_native_take_answers_what_the_python_take_answers(
    batches: list[list[tuple[str, Summary]]],
    wide: bool,
    views: bool,
    joined: list[str],
    takes: list[list[str]],
) -> None:
    """The rows taken, the rows that go, and what the columns then know: the same in C as
    in Python, for coded and float predictions, one- and two-byte codes, scores None, rows
    joined or superseded, ids absent, segments read back from their stored form."""
    if wide:
        batches = [
            [(i, s._replace(predicted=f"class-{n}")) for n, (i, s) in enumerate(batch)]
            + [(f"w{n}", s) for n, (_, s) in enumerate(batch * 8)]  # 300+ distinct classes
            for batch in batches
        ]
    fast, slow = _twins(batches, views)
    for columns in (fast, slow):
        columns.mark_joined([h for h in columns.find(joined).tolist() if h != MISSING])
    with patch.object(summary_columns, "TAKE_ONE_BY_ONE_BELOW", 0):
        for ids in takes:
            ids = list(dict.fromkeys(ids))
            got, expected = fast.take(ids), slow.take(ids)
            assert len(got) == len(expected)
            assert all(same(a, b) for a, b in zip(got, expected, strict=True))
            assert _bookkeeping(fast) == _bookkeeping(slow)
            assert fast.find(ids).tolist() == slow.find(ids).tolist()


@pytest.mark.skipif(NATIVE_TAKE is None, reason="stream_app._summary_rows not built")
def test_a_record_layout_the_native_take_does_not_read_goes_to_python() -> None:
    """Records of another byte order (none this version writes) are read by Python."""
    columns = SummaryColumns()
    summaries = [Summary("m", 0.0, 60.0, float(n), 0.5, 9.0, "p", n) for n in range(20)]
    seq = columns.add([f"p{n}" for n in range(20)], summaries)
    segment = columns.segments[seq]
    swapped = segment.records.dtype.newbyteorder(">")
    segment.records = segment.records.astype(swapped)
    assert summary_columns._layout(swapped) is None
    assert summary_columns._layout(segment.records.dtype.newbyteorder("<")) is not None
    with patch.object(summary_columns, "TAKE_ONE_BY_ONE_BELOW", 0):
        taken = columns.take(["p3", "p7", "nope"])
    assert taken[2] is None
    assert [Summary._make(row) for row in taken[:2] if row] == [summaries[3], summaries[7]]
    assert segment.state[[3, 7]].tolist() == [GONE, GONE]


@pytest.mark.skipif(NATIVE_TAKE is None, reason="stream_app._summary_rows not built")
def test_the_native_take_refuses_a_bad_call_and_changes_nothing() -> None:
    columns = SummaryColumns()
    seq = columns.add(["a", "b"], [Summary("m", 0.0, 60.0, 1, None, 9.0, "p", 0)] * 2)
    segment = columns.segments[seq]
    layout = summary_columns._layout(segment.records.dtype)
    taken: list[Any] = [None, None]

    def call(rows: list[int], positions: list[int], took: int = 2) -> None:
        assert NATIVE_TAKE is not None
        NATIVE_TAKE.take_rows(
            taken,
            np.array(positions, dtype=np.int64),
            np.array(rows, dtype=np.int64),
            np.zeros(len(rows), dtype=np.int64),
            [segment],
            [layout],
            np.zeros(took, dtype=np.uint8),
        )

    with pytest.raises(IndexError, match="out of range"):
        call([0, 2], [0, 1])  # row 2 is past the segment: row 0 does not go either
    with pytest.raises(IndexError, match="out of range"):
        call([0, 1], [0, 5])
    with pytest.raises(ValueError, match="mismatched"):
        call([0, 1], [0, 1], took=3)
    assert segment.state.tolist() == [WAITING, WAITING] and taken == [None, None]
    call([1, 0], [0, 1])
    assert taken == [("m", 0.0, 60.0, 1, None, 9.0, "p", 0)] * 2
    assert segment.state.tolist() == [GONE, GONE]
