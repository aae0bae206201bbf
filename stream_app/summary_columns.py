"""Prediction summaries waiting for their labels, kept as columns by segment (issue 12 part 2).

One segment holds the summaries one flush kept for one join partition: the ids as one
byte string with offsets, and one packed numpy record per row for the window, prediction,
score, expiry and origin, with the few distinct models, windows and predicted classes
coded. A label for a random prediction reads one row of one segment among thousands: one
record is a cache line or two where a column per field was a miss per field (2.9 µs a
summary at 1,000,000 outstanding as columns). Whole-segment work still reads a field as a
column (a strided view of the records). An
:class:`~stream_app.id_index.IdIndex` maps ids to (segment, row) handles. Per outstanding
prediction that is ~85 bytes (a 36-character id) instead of the ~300 of a table entry with
its key string and JSON value; ``bench/join_columns_bench.py`` measures both.

A row is waiting (its label has not come), joined (kept and marked; the label join does
not use this: it forgets a joined row and keeps its own mark), or gone (superseded by a
later summary of the same id, expired, or forgotten). A segment whose rows are all gone is
dropped. ``to_bytes``/``from_bytes`` are the segment's versioned form for a changelog.

``stream_app.label_join`` keeps one :class:`SummaryColumns` per join partition and stores
each segment in the join table (the columns read from it are views into that value).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt
import orjson

from stream_app.id_index import MISSING, IdIndex, python_slot_key

# The take of waiting rows in C (``stream_app/_summary_rows.c``), when built; else Python.
native: ModuleType | None
try:
    from stream_app import _summary_rows as native
except ImportError:  # pragma: no cover - a build without a C compiler
    native = None

ROW_BITS = 24  # rows per segment: fewer than 2**24
MAX_ROWS = 1 << ROW_BITS
FORMAT_VERSION = 2  # 2: one packed record per row; reads 1 (a column per field)
_MAGIC = b"DLS"

WAITING, JOINED, GONE = 0, 1, 2

# Below this many ids a take goes id by id: numpy's fixed cost per call is higher.
TAKE_ONE_BY_ONE_BELOW = 16
# Rows per touched segment from which a take gathers each segment's rows with numpy.
ROWS_PER_SEGMENT_FOR_NUMPY = 8

F64 = npt.NDArray[np.float64]
Codes = npt.NDArray[np.unsignedinteger[Any]]


class Summary(NamedTuple):
    """What the join needs of a prediction: the window it counts in and what it predicted."""

    model_id: str
    window_start: float
    window_end: float
    predicted: Any
    score: float | None
    expires: float
    origin_kind: str
    origin_offset: int


# A summary as a plain tuple in Summary's field order (a Summary is one): what a take of
# many ids hands out, since making a NamedTuple costs about as much again as reading its row.
SummaryRow = tuple[str, float, float, Any, float | None, float, str, int]


class SummaryColumnsIn(NamedTuple):
    """Summaries as columns (lists), the fields of :class:`Summary` in its order."""

    model_ids: list[str]
    window_starts: list[float]
    window_ends: list[float]
    predicted: list[Any]
    scores: list[float | None]
    expires: list[float]
    origin_kinds: list[str]
    origin_offsets: list[int]


class ForwardColumns(NamedTuple):
    """Summaries bound for another partition's join as arrays where they come as arrays
    (stage 1 computes windows and expiries with numpy), and lists where they come as lists
    (the decoder's predictions and scores); the models coded."""

    models: list[str]
    model_codes: npt.NDArray[np.intp]
    window_starts: F64
    window_ends: F64
    predicted: list[Any]
    scores: list[float | None]
    expires: F64


def _transposed(summaries: Sequence[Summary]) -> SummaryColumnsIn:
    return SummaryColumnsIn._make(map(list, zip(*summaries, strict=True)))


def _coded_windows(
    starts: list[float] | F64, ends: list[float] | F64
) -> tuple[list[tuple[float, float]], Codes]:
    """The distinct (start, end) windows and each row's code, by their bits (exact), in
    the order of their bits (start first)."""
    one = _one_window(starts, ends)
    if one is not None:
        return [one], np.zeros(len(starts), dtype=np.uint8)
    start_bits = np.asarray(starts, dtype=np.float64).view(np.int64)
    end_bits = np.asarray(ends, dtype=np.float64).view(np.int64)
    # A window's end follows from its start (one model, one size): coding the starts
    # alone, a 1-D sort, gives the same codes as coding the pairs (a sort of rows, ten
    # times slower), once each start is checked to come with one end.
    distinct, first, codes = np.unique(start_bits, return_index=True, return_inverse=True)
    if not (end_bits == end_bits[first][codes]).all():
        return _coded_window_pairs(start_bits, end_bits)
    pairs = zip(distinct.view(np.float64).tolist(), np.asarray(ends)[first].tolist(), strict=True)
    return list(pairs), codes.reshape(-1).astype(_narrowest(distinct.size))


def _one_window(starts: list[float] | F64, ends: list[float] | F64) -> tuple[float, float] | None:
    """The one (start, end) of every row, when there is one (a segment of one window, the
    usual case), found by list counts or array compares in C instead of a sort. Equal
    floats have equal bits except zeros (0.0 == -0.0) and NaN, which are left to the sort."""
    if not len(starts):
        return None
    start, end = float(starts[0]), float(ends[0])
    if not (start and end) or start != start or end != end:
        return None
    if isinstance(starts, list) and isinstance(ends, list):
        same = starts.count(start) == len(starts) and ends.count(end) == len(ends)
    else:
        same = bool((np.asarray(starts) == start).all() and (np.asarray(ends) == end).all())
    return (start, end) if same else None


def _coded_window_pairs(
    start_bits: npt.NDArray[np.int64], end_bits: npt.NDArray[np.int64]
) -> tuple[list[tuple[float, float]], Codes]:
    """:func:`_coded_windows` where a start comes with several ends (models of several
    window sizes in one segment)."""
    bits = np.ascontiguousarray(np.column_stack([start_bits, end_bits]))
    distinct, codes = np.unique(bits, axis=0, return_inverse=True)
    pairs = distinct.view(np.float64).tolist()
    return [(a, b) for a, b in pairs], codes.reshape(-1).astype(_narrowest(len(pairs)))


def _coded(values: Sequence[Any], kinds: set[type] | None = None) -> tuple[list[Any], Codes]:
    """The distinct values (1, 1.0 and True kept apart, and 0.0 and -0.0) and their codes
    (``kinds``: the values' types, when the caller has them)."""
    first = values[0] if values else None
    # One string throughout (a segment's model, its origin kind): counted in C. A value
    # equal to a str is a str, so the count cannot mix types as 1, 1.0 and True would.
    if type(first) is str and values.count(first) == len(values):
        return [first], np.zeros(len(values), dtype=np.uint8)
    kinds = set(map(type, values)) if kinds is None else kinds
    if len(kinds) == 1 and not kinds & {float, tuple}:  # one type that compares exactly
        seen = list(dict.fromkeys(values))
        index = {value: code for code, value in enumerate(seen)}
        found = np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values))
        return seen, found.astype(_narrowest(len(seen)))
    codes: dict[tuple[type, Any], int] = {}
    distinct: list[Any] = []
    out = np.empty(len(values), dtype=np.int32)
    for row, value in enumerate(values):
        key = (float, value.hex()) if type(value) is float else (type(value), value)
        code = codes.get(key)
        if code is None:
            code = codes[key] = len(distinct)
            distinct.append(value)
        out[row] = code
    return distinct, out.astype(_narrowest(len(distinct)))


def _narrowest(distinct: int) -> type[np.unsignedinteger[Any]]:
    if distinct <= 1 << 8:
        return np.uint8
    return np.uint16 if distinct <= 1 << 16 else np.uint32


# A row's record: model code, window code, predicted (code, or the value when every
# prediction is a float), score (NaN: none), expiry, origin kind code, origin offset. The
# codes are as narrow as the segment's distinct values allow.
RECORD_FIELDS = ("m", "w", "y", "s", "x", "k", "o")


def _record_dtype(model: Any, window: Any, predicted: Any, origin: Any) -> np.dtype[np.void]:
    fields = (model, window, predicted, "<f8", "<f8", origin, "<i8")
    return _fields_dtype([np.dtype(kind).str for kind in fields])


def _fields_dtype(kinds: Sequence[str]) -> np.dtype[np.void]:
    return np.dtype(list(zip(RECORD_FIELDS, kinds, strict=True)))


@functools.cache
def _layout(dtype: np.dtype[np.void]) -> tuple[int, ...] | None:
    """Where the native take finds a record's fields: (itemsize, offset and size of m, w,
    y and k, offsets of s, x and o), a y of size 0 being a float64; None for a record it
    does not read (another byte order), which the Python take reads instead."""
    fields = cast(dict[str, tuple[np.dtype[Any], int]], dtype.fields)
    kinds = {name: fields[name][0] for name in RECORD_FIELDS}
    if not all(kind.isnative for kind in kinds.values()):
        return None
    codes_ok = all(kinds[n].kind == "u" and kinds[n].itemsize in (1, 2, 4) for n in "mwk")
    y = kinds["y"]
    y_ok = (y.kind == "u" and y.itemsize in (1, 2, 4)) or y == np.dtype(np.float64)
    floats_ok = kinds["s"] == kinds["x"] == np.dtype(np.float64)
    if not (codes_ok and y_ok and floats_ok and kinds["o"] == np.dtype(np.int64)):
        return None
    y_size = 0 if y.kind == "f" else y.itemsize
    m, w, k = ((fields[n][1], kinds[n].itemsize) for n in "mwk")
    return (
        dtype.itemsize,
        *m,
        *w,
        fields["y"][1],
        y_size,
        *k,
        *(fields[n][1] for n in "sxo"),
    )


@dataclass
class SummarySegment:
    seq: int
    id_blob: bytes | memoryview  # a view into the stored changelog value, once restored
    id_ends: npt.NDArray[np.uint32]  # row i's id is id_blob[id_ends[i-1]:id_ends[i]]
    models: list[str]
    windows: list[tuple[float, float]]
    predicted: list[Any]  # distinct values; empty when every prediction is a float
    origin_kinds: list[str]
    records: npt.NDArray[np.void]  # a row's fields (RECORD_FIELDS), packed
    state: npt.NDArray[np.uint8]
    on_disk: bool = False  # its records view a spill file (stream_app.segment_spill)

    @property
    def floats(self) -> bool:
        """Whether every prediction is a float, kept as it is (not coded)."""
        return self.records.dtype["y"].kind == "f"

    @property
    def expires(self) -> F64:
        return cast(F64, self.records["x"])

    @classmethod
    def build(cls, seq: int, ids: Sequence[str], summaries: Sequence[Summary]) -> SummarySegment:
        """A segment of summaries given row by row."""
        if len(ids) != len(summaries) or not summaries:
            raise ValueError("a segment holds at least one summary, one per id")
        return cls.from_columns(seq, ids, _transposed(summaries))

    @classmethod
    def from_columns(
        cls, seq: int, ids: Sequence[str], columns: SummaryColumnsIn
    ) -> SummarySegment:
        """A segment of summaries given as columns (what the label join collects)."""
        models, model_codes = _coded(columns.model_ids)
        kinds, origin_codes = _coded(columns.origin_kinds)
        return cls._assembled(
            seq,
            ids,
            (models, model_codes),
            _coded_windows(columns.window_starts, columns.window_ends),
            columns.predicted,
            columns.scores,
            np.array(columns.expires, dtype=np.float64),
            (kinds, origin_codes),
            np.array(columns.origin_offsets, dtype=np.int64),
        )

    @classmethod
    def forwarded(cls, ids: Sequence[str], columns: ForwardColumns) -> SummarySegment:
        """A segment of summaries bound for another partition's join, from columns already
        in arrays: what :meth:`from_columns` makes of them as lists, with the origin every
        receiver gives it (the label-join message it comes in: kind "j", offset unknown)."""
        n = len(ids)
        return cls._assembled(
            0,
            ids,
            (columns.models, columns.model_codes.astype(_narrowest(len(columns.models)))),
            _coded_windows(columns.window_starts, columns.window_ends),
            columns.predicted,
            columns.scores,
            columns.expires,
            (["j"], np.zeros(n, dtype=np.uint8)),
            np.full(n, -1, dtype=np.int64),
        )

    @classmethod
    def _assembled(
        cls,
        seq: int,
        ids: Sequence[str],
        models: tuple[list[str], Codes],
        windows: tuple[list[tuple[float, float]], Codes],
        values: Sequence[Any],
        raw_scores: Sequence[float | None],
        expires: F64,
        origin_kinds: tuple[list[str], Codes],
        origin_offsets: npt.NDArray[np.int64],
    ) -> SummarySegment:
        n = len(ids)
        if not 0 < n < MAX_ROWS:
            raise ValueError(f"a segment holds 1 to {MAX_ROWS - 1} summaries, one per id")
        text = "".join(ids)
        id_blob = text.encode()
        kinds_of_values = set(map(type, values))
        floats = kinds_of_values == {float}
        predicted, predicted_codes = ([], None) if floats else _coded(values, kinds_of_values)
        scores = np.array(raw_scores, dtype=np.float64)  # None becomes NaN
        nan = np.count_nonzero(np.isnan(scores))
        if nan and nan != list(raw_scores).count(None):
            raise ValueError("a score is NaN: NaN stands for no score here")
        narrow = np.array(values, dtype=np.float64) if floats else predicted_codes
        assert narrow is not None
        return cls(
            seq=seq,
            id_blob=id_blob,
            id_ends=_id_ends(ids, len(id_blob) == len(text)),
            models=models[0],
            windows=windows[0],
            predicted=predicted,
            origin_kinds=origin_kinds[0],
            records=_packed(
                models[1], windows[1], narrow, scores, expires, origin_kinds[1], origin_offsets
            ),
            state=np.zeros(n, dtype=np.uint8),
        )

    def __len__(self) -> int:
        return int(self.state.size)

    def id_at(self, row: int) -> str:
        ends = self.id_ends
        return str(self.id_blob[ends.item(row - 1) if row else 0 : ends.item(row)], "utf-8")

    def ids(self) -> list[str]:
        """Every row's id, in row order (one decode of the blob when the ids are ASCII)."""
        text = str(self.id_blob, "utf-8")
        if len(text) != len(self.id_blob):  # byte offsets are not character offsets
            return [self.id_at(row) for row in range(len(self))]
        ends = self.id_ends.tolist()
        return [text[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]

    def summary(self, row: int) -> Summary:
        return Summary._make(self.row(row))

    def row(self, row: int) -> SummaryRow:
        """:meth:`summary` as a plain tuple."""
        m, w, y, s, x, k, o = self.records.item(row)
        window = self.windows[w]
        return (
            self.models[m],
            window[0],
            window[1],
            y if type(y) is float else self.predicted[y],  # a float is kept, a code is an int
            None if s != s else s,
            x,
            self.origin_kinds[k],
            o,
        )

    def summaries(self, rows: npt.NDArray[np.int64]) -> list[Summary]:
        """:meth:`summary` of many rows, gathered field by field."""
        return [Summary._make(row) for row in self.rows(rows)]

    def rows(self, rows: npt.NDArray[np.int64]) -> list[SummaryRow]:
        """:meth:`summaries` as plain tuples, made by ``zip`` in C."""
        records = self.records[rows]
        windows = self.windows
        if len(windows) == 1:  # the usual segment: one window
            start, end = windows[0]
            starts: list[float] = [start] * rows.size
            ends: list[float] = [end] * rows.size
        else:
            coded = [windows[code] for code in records["w"].tolist()]
            starts = [window[0] for window in coded]
            ends = [window[1] for window in coded]
        if self.floats:
            predicted: list[Any] = records["y"].tolist()
        else:
            values = self.predicted
            predicted = [values[code] for code in records["y"].tolist()]
        scores = records["s"]
        score_list: list[float | None] = scores.tolist()
        for at in np.flatnonzero(np.isnan(scores)).tolist():
            score_list[at] = None
        models, kinds = self.models, self.origin_kinds
        model_list = [models[code] for code in records["m"].tolist()]
        kind_list = [kinds[code] for code in records["k"].tolist()]
        return list(
            zip(
                model_list,
                starts,
                ends,
                predicted,
                score_list,
                records["x"].tolist(),
                kind_list,
                records["o"].tolist(),
                strict=True,
            )
        )

    def columns(self) -> SummaryColumnsIn:
        """Every row's summary, as columns."""
        return _transposed(self.summaries(np.arange(len(self), dtype=np.int64)))

    @property
    def nbytes(self) -> int:
        arrays = (self.id_ends, self.records, self.state)
        return len(self.id_blob) + sum(a.nbytes for a in arrays)

    # -- the changelog form ------------------------------------------------------------

    def to_bytes(self) -> bytes:
        header = orjson.dumps(
            {
                "seq": self.seq,
                "n": len(self),
                "models": self.models,
                "windows": self.windows,
                "predicted": None if self.floats else self.predicted,
                "kinds": self.origin_kinds,
                "ends": self.id_ends.dtype.str,
                "records": [self.records.dtype[name].str for name in RECORD_FIELDS],
            }
        )
        head = _MAGIC + struct.pack("<BII", FORMAT_VERSION, len(header), len(self.id_blob))
        parts = (self.id_ends, self.records, self.state)
        return b"".join([head, header, self.id_blob, *(p.tobytes() for p in parts)])

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, copy: bool = True) -> SummarySegment:
        """The segment ``to_bytes`` wrote; with ``copy=False`` its ids and records are
        read-only views into ``data`` (kept in the table anyway: no second copy). The row
        states, written as rows change, are always a copy. Reads format 1 too (a copy)."""
        if data[:3] != _MAGIC:
            raise ValueError("not a summary segment")
        version, header_size, blob_size = struct.unpack_from("<BII", data, 3)
        if version not in (1, FORMAT_VERSION):
            raise ValueError(
                f"summary segment format {version}, this worker reads 1 and {FORMAT_VERSION}: "
                "run the Driftline version that wrote it, or a newer one"
            )
        at = 3 + struct.calcsize("<BII")
        header = orjson.loads(data[at : at + header_size])
        at += header_size
        blob = data[at : at + blob_size] if copy else memoryview(data)[at : at + blob_size]
        at += blob_size
        n = header["n"]

        def take(dtype: np.dtype[Any], owned: bool) -> Any:
            nonlocal at
            array = np.frombuffer(data, dtype=dtype, count=n, offset=at)
            at += n * dtype.itemsize
            return array.copy() if copy or owned else array

        if version == 1:  # a column per field, in RECORD_FIELDS order after the ends
            ends_kind, *kinds, _ = map(np.dtype, header["dtypes"])
            id_ends = take(ends_kind, owned=True)
            records = _packed(*(take(kind, owned=True) for kind in kinds))
        else:
            id_ends = take(np.dtype(header["ends"]), owned=False)
            records = take(_fields_dtype(header["records"]), owned=False)
        return cls(
            seq=header["seq"],
            id_blob=blob,
            id_ends=id_ends,
            models=header["models"],
            windows=[(w[0], w[1]) for w in header["windows"]],
            predicted=[] if header["predicted"] is None else header["predicted"],
            origin_kinds=header["kinds"],
            records=records,
            state=take(np.dtype(np.uint8), owned=True),
        )


def _id_ends(ids: Sequence[str], ascii: bool) -> npt.NDArray[np.uint32]:
    """Where each id ends in the blob of them all (UTF-8): a byte a character if ``ascii``."""
    n = len(ids)
    if not ascii:
        lengths = np.fromiter((len(i.encode()) for i in ids), dtype=np.uint32, count=n)
        return np.cumsum(lengths, dtype=np.uint32)
    sizes = set(map(len, ids))
    if len(sizes) == 1:  # ids of one length (UUIDs, say): no array of lengths to sum
        size = sizes.pop()
        if size:
            return np.arange(size, size * n + 1, size, dtype=np.uint32)
    return np.cumsum(np.fromiter(map(len, ids), dtype=np.uint32, count=n), dtype=np.uint32)


def _packed(*columns: npt.NDArray[Any]) -> npt.NDArray[np.void]:
    """Columns in RECORD_FIELDS order as one packed record per row."""
    model, window, predicted, _, _, origin, _ = (column.dtype for column in columns)
    records = np.empty(columns[0].size, dtype=_record_dtype(model, window, predicted, origin))
    for name, column in zip(RECORD_FIELDS, columns, strict=True):
        records[name] = column
    return records


def is_summary_segment(value: bytes) -> bool:
    """Whether a stored value is a summary segment (by its first bytes)."""
    return value[:3] == _MAGIC


def _handle(seq: int, row: int) -> int:
    return (seq << ROW_BITS) | row


class SummaryColumns:
    """The summaries of one join partition: segments and the index of their ids."""

    def __init__(self, slot_key: Callable[[str], int] = python_slot_key) -> None:
        self.segments: dict[int, SummarySegment] = {}
        self._alive: dict[int, int] = {}  # rows not gone, per segment
        self._first_expiry: dict[int, float] = {}  # per segment: its rows' earliest expiry
        self.bytes_in_memory = 0  # of the segments whose columns are not on disk
        self.index = IdIndex(
            self._id_at, slot_key=slot_key, segments=self.segments, row_bits=ROW_BITS
        )
        self._next_seq = 0
        # Segments whose rows changed (a row gone) or that were dropped since the caller
        # last took them: what its changelog must be told.
        self.changed: set[int] = set()
        self.dropped: set[int] = set()
        # The handles of the rows gone since :meth:`drain_gone` last took them.
        self._gone_handles: list[int] = []
        self._gone_arrays: list[npt.NDArray[np.int64]] = []
        self._native = native  # read once: the tests compare both takes

    def _id_at(self, handle: int) -> str:
        return self.segments[handle >> ROW_BITS].id_at(handle & (MAX_ROWS - 1))

    def number_after(self, seq: int) -> None:
        """New segments get numbers above ``seq`` (one a record still names, say)."""
        self._next_seq = max(self._next_seq, seq + 1)

    @property
    def nbytes(self) -> int:
        return self.index.nbytes + sum(s.nbytes for s in self.segments.values())

    def add(self, ids: Sequence[str], summaries: Sequence[Summary]) -> int:
        """Keep summaries as one new segment (the last of repeated ids wins); its number."""
        segment = self.build(ids, summaries)
        self.attach(segment)  # build may have dropped repeats: the ids are decoded again
        return segment.seq

    def build(self, ids: Sequence[str], summaries: Sequence[Summary]) -> SummarySegment:
        """The next segment of these summaries (the last of repeated ids wins), not kept."""
        return self.new_segment(*last_of_each(ids, _transposed(summaries)))

    def new_segment(self, ids: Sequence[str], columns: SummaryColumnsIn) -> SummarySegment:
        """The next segment of these summaries (``ids`` distinct), not kept."""
        segment = SummarySegment.from_columns(self._next_seq, ids, columns)
        self._next_seq += 1
        return segment

    def renumber(self, segment: SummarySegment) -> None:
        """Give a segment built elsewhere (another partition forwarded it) the next number."""
        segment.seq = self._next_seq
        self._next_seq += 1

    def attach(self, segment: SummarySegment, ids: Sequence[str] | None = None) -> None:
        """Keep a segment: a new one, or one read back from the changelog (in the order
        they were written). Its rows replace the older rows of the same ids.

        ``ids``: the segment's ids in row order when the caller has them (a new segment),
        which saves decoding them again."""
        self._next_seq = max(self._next_seq, segment.seq + 1)
        kept = np.flatnonzero(segment.state != GONE)
        if not kept.size:  # every row gone before its record was deleted: delete it now
            self.dropped.add(segment.seq)
            return
        self._attach(segment)
        if ids is None:
            ids = segment.ids()
        if kept.size < len(segment):
            ids = [ids[row] for row in kept.tolist()]
        self._set_gone(self.index.put(ids, (segment.seq << ROW_BITS) | kept.astype(np.int64)))

    def _attach(self, segment: SummarySegment) -> None:
        self.segments[segment.seq] = segment
        self._alive[segment.seq] = int(np.count_nonzero(segment.state != GONE))
        if not segment.on_disk:
            self.bytes_in_memory += segment.nbytes
        # A bound kept in memory: sweeps skip a segment (on disk, maybe) it rules out.
        self._first_expiry[segment.seq] = float(segment.expires.min())

    def in_memory(self) -> list[SummarySegment]:
        """The segments whose columns are in memory, oldest first."""
        return [segment for segment in self.segments.values() if not segment.on_disk]

    def moved_to_disk(self, seq: int, stored: memoryview) -> None:
        """Segment ``seq`` now reads its columns from ``stored`` (its ``to_bytes`` on disk);
        its row states stay in memory as they are."""
        before = self.segments[seq]
        after = SummarySegment.from_bytes(stored, copy=False)
        after.state = before.state
        after.on_disk = True
        self.segments[seq] = after
        if not before.on_disk:
            self.bytes_in_memory -= before.nbytes

    def find(self, ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each id's handle, or -1: absent, or gone."""
        return self.index.find(ids)

    def state(self, handle: int) -> int:
        return int(self.segments[handle >> ROW_BITS].state[handle & (MAX_ROWS - 1)])

    def summary(self, handle: int) -> Summary:
        return self.segments[handle >> ROW_BITS].summary(handle & (MAX_ROWS - 1))

    def mark_joined(self, handles: Sequence[int]) -> None:
        for handle in handles:
            self.segments[handle >> ROW_BITS].state[handle & (MAX_ROWS - 1)] = JOINED

    def take_one(self, prediction_id: str) -> Summary | None:
        """The waiting summary of one id, which goes (its label came); None if none waits."""
        handle, slot = self.index.locate(prediction_id)
        if handle == MISSING:
            return None
        summary = self._take_row(handle)
        if summary is not None:
            self.index.delete_slot(slot)
        return summary

    def _take_row(self, handle: int) -> Summary | None:
        """The row's summary if it waits, and the row goes; None if it does not wait.
        The caller frees the index slot."""
        seq, row = handle >> ROW_BITS, handle & (MAX_ROWS - 1)
        segment = self.segments[seq]
        if segment.state.item(row) != WAITING:
            return None
        summary = segment.summary(row)
        self._gone_one(seq, row)
        return summary

    def take(self, ids: Sequence[str]) -> list[SummaryRow | None]:
        """:meth:`take_one` of many distinct ids (a label envelope's), with numpy; the
        summaries as :data:`SummaryRow` tuples."""
        if len(ids) < TAKE_ONE_BY_ONE_BELOW:
            return [self.take_one(prediction_id) for prediction_id in ids]
        taken: list[SummaryRow | None] = [None] * len(ids)
        handles, slots = self.index.locate_many(ids)
        found = np.flatnonzero(handles != MISSING)
        if self._native is not None and found.size:
            return self._take_native(taken, found, handles[found], slots[found])
        seqs = handles[found] >> ROW_BITS
        rows = handles[found] & (MAX_ROWS - 1)
        touched = np.unique(seqs)
        if seqs.size < ROWS_PER_SEGMENT_FOR_NUMPY * touched.size:
            # Labels for random predictions: a row or two per segment, where numpy's
            # fixed cost per segment is more than reading the rows one by one.
            return self._take_rows(taken, found, handles[found], slots[found])
        freed = []
        for seq in touched.tolist():
            mine = seqs == seq
            segment = self.segments[seq]
            waiting = segment.state[rows[mine]] == WAITING
            at, its_rows = found[mine][waiting], rows[mine][waiting]
            for position, summary in zip(at.tolist(), segment.rows(its_rows), strict=True):
                taken[position] = summary
            freed.append(slots[at])
            self._gone_rows(seq, its_rows)
        if freed:
            self.index.delete_slots(np.concatenate(freed))
        return taken

    def _take_native(
        self,
        taken: list[SummaryRow | None],
        positions: npt.NDArray[np.intp],
        handles: npt.NDArray[np.int64],
        slots: npt.NDArray[np.int64],
    ) -> list[SummaryRow | None]:
        """:meth:`_take_rows`, each row read, checked and gone in C; the bookkeeping once
        per segment touched."""
        seqs = handles >> ROW_BITS
        touched, which = np.unique(seqs, return_inverse=True)
        segments = [self.segments[seq] for seq in touched.tolist()]
        layouts = [_layout(segment.records.dtype) for segment in segments]
        if None in layouts:
            return self._take_rows(taken, positions, handles, slots)
        took = np.zeros(handles.size, dtype=np.uint8)
        assert self._native is not None
        self._native.take_rows(
            taken,
            positions.astype(np.int64, copy=False),
            handles & (MAX_ROWS - 1),
            which.reshape(-1).astype(np.int64, copy=False),
            segments,
            layouts,
            took,
        )
        went = took.view(bool)
        if not went.any():
            return taken
        self._gone_arrays.append(handles[went])
        counted = np.unique(seqs[went], return_counts=True)
        for seq, count in zip(*(column.tolist() for column in counted), strict=True):
            self._rows_went(seq, count)
        self.index.delete_slots(slots[went])
        return taken

    def _take_rows(
        self,
        taken: list[SummaryRow | None],
        positions: npt.NDArray[np.intp],
        handles: npt.NDArray[np.int64],
        slots: npt.NDArray[np.int64],
    ) -> list[SummaryRow | None]:
        """:meth:`_take_row` of each handle (distinct), with what it does per row inlined
        and the segments' counts of rows left updated once each at the end."""
        freed: list[int] = []
        went: dict[int, int] = {}
        segments, gone = self.segments, self._gone_handles
        for position, handle, slot in zip(
            positions.tolist(), handles.tolist(), slots.tolist(), strict=True
        ):
            seq, row = handle >> ROW_BITS, handle & (MAX_ROWS - 1)
            segment = segments[seq]
            state = segment.state
            if state.item(row) != WAITING:
                continue
            taken[position] = segment.row(row)
            state[row] = GONE
            gone.append(handle)
            went[seq] = went.get(seq, 0) + 1
            freed.append(slot)
        for seq, count in went.items():
            self._rows_went(seq, count)
        if freed:
            self.index.delete_slots(np.array(freed, dtype=np.int64))
        return taken

    def earliest_expiry(self) -> float | None:
        """The earliest expiry among the waiting summaries (None: none waits)."""
        # Segments by their bound: one read (a segment maybe on disk) while a bound is
        # below the best found.
        best: float | None = None
        for bound, seq in sorted((b, seq) for seq, b in self._first_expiry.items()):
            if best is not None and bound >= best:
                break
            segment = self.segments[seq]
            waiting = segment.state == WAITING
            if waiting.any():
                found = float(segment.expires[waiting].min())
                best = found if best is None else min(best, found)
        return best

    def forget(self, ids: Sequence[str]) -> None:
        """Drop ids (joined ones a checkpoint now covers, or a revoked partition's)."""
        self._set_gone(self.index.remove(ids))

    def expire(self, before: float) -> int:
        """Drop the waiting summaries that expire before ``before``; how many there were."""
        expired = 0
        for seq, segment in list(self.segments.items()):
            if self._first_expiry[seq] >= before:
                continue
            rows = np.flatnonzero((segment.state == WAITING) & (segment.expires < before))
            if not rows.size:
                continue
            expired += rows.size
            self.forget([segment.id_at(int(r)) for r in rows])
        return expired

    def _set_gone(self, handles: npt.NDArray[np.int64]) -> None:
        for handle in handles[handles != MISSING].tolist():
            self._gone_one(handle >> ROW_BITS, handle & (MAX_ROWS - 1))

    def drain_gone(self) -> npt.NDArray[np.int64]:
        """The handles of the rows gone since the last call, in segments still kept."""
        arrays = [*self._gone_arrays, np.array(self._gone_handles, dtype=np.int64)]
        self._gone_handles, self._gone_arrays = [], []
        handles = np.concatenate(arrays)
        if self.dropped and handles.size:
            dropped = np.fromiter(self.dropped, dtype=np.int64, count=len(self.dropped))
            handles = handles[~np.isin(handles >> ROW_BITS, dropped)]
        return handles

    def _gone_rows(self, seq: int, rows: npt.NDArray[np.int64]) -> None:
        """Waiting rows (distinct) of one segment go."""
        if not rows.size:
            return
        segment = self.segments[seq]
        segment.state[rows] = GONE
        self._gone_arrays.append((seq << ROW_BITS) | rows)
        self._rows_went(seq, int(rows.size))

    def _gone_one(self, seq: int, row: int) -> None:
        segment = self.segments[seq]
        if segment.state.item(row) == GONE:
            return
        segment.state[row] = GONE
        self._gone_handles.append((seq << ROW_BITS) | row)
        self._rows_went(seq, 1)

    def _rows_went(self, seq: int, count: int) -> None:
        """``count`` rows of the segment went: it changed, and goes once none is left."""
        self._alive[seq] -= count
        self.changed.add(seq)
        if self._alive[seq] == 0:
            if not self.segments[seq].on_disk:
                self.bytes_in_memory -= self.segments[seq].nbytes
            del self.segments[seq], self._alive[seq], self._first_expiry[seq]
            self.changed.discard(seq)
            self.dropped.add(seq)


def _lists(columns: SummaryColumnsIn) -> tuple[list[Any], ...]:
    return cast(tuple[list[Any], ...], columns)


def _empty_columns() -> SummaryColumnsIn:
    return SummaryColumnsIn([], [], [], [], [], [], [], [])


@dataclass
class SummaryBuffer:
    """Summaries collected as column lists, in arrival order (repeats kept)."""

    ids: list[str] = field(default_factory=list)
    columns: SummaryColumnsIn = field(default_factory=_empty_columns)

    def __len__(self) -> int:
        return len(self.ids)

    def extend(self, ids: Sequence[str], columns: SummaryColumnsIn) -> None:
        self.ids.extend(ids)
        for mine, theirs in zip(_lists(self.columns), _lists(columns), strict=True):
            mine.extend(theirs)

    def append(self, prediction_id: str, summary: Summary) -> None:
        self.ids.append(prediction_id)
        for mine, value in zip(_lists(self.columns), summary, strict=True):
            mine.append(value)

    def row(self, row: int) -> Summary:
        return Summary._make(column[row] for column in self.columns)


@dataclass
class PendingSummaries:
    """Summaries kept since the last flush, waiting for their labels: the last kept of each
    id is the one a label meets and the one the flush writes."""

    buffer: SummaryBuffer = field(default_factory=SummaryBuffer)
    _row: dict[str, int] = field(default_factory=dict)  # id: its row in the buffer

    def __len__(self) -> int:
        return len(self._row)

    def add(self, ids: Sequence[str], columns: SummaryColumnsIn) -> None:
        first = len(self.buffer)
        self.buffer.extend(ids, columns)
        self._row.update(zip(ids, range(first, first + len(ids)), strict=True))

    def add_one(self, prediction_id: str, summary: Summary) -> None:
        self._row[prediction_id] = len(self.buffer)
        self.buffer.append(prediction_id, summary)

    def take(self, prediction_id: str) -> Summary | None:
        row = self._row.pop(prediction_id, None)
        return None if row is None else self.buffer.row(row)

    def forget(self, ids: Iterable[str]) -> None:
        """Drop the summaries of ``ids`` (a later summary of each is kept elsewhere)."""
        rows = self._row
        # Usually none of them is here (the later copy came from elsewhere): the common ids
        # found in C, instead of a pop per id.
        for prediction_id in rows.keys() & ids:
            del rows[prediction_id]

    def drain(self) -> tuple[list[str], SummaryColumnsIn]:
        """The summaries kept (one per id), which are then gone from here."""
        buffer, rows = self.buffer, self._row
        self.buffer, self._row = SummaryBuffer(), {}
        if len(rows) == len(buffer):  # no id twice, none taken: every row as it is
            return buffer.ids, buffer.columns
        kept = list(rows.values())
        return list(rows), SummaryColumnsIn._make([c[r] for r in kept] for c in buffer.columns)


def last_rows(ids: Sequence[str]) -> list[int] | None:
    """The row of the last of each id, in row order; None when no id comes twice."""
    if len(set(ids)) == len(ids):  # no id twice, the usual case: a set is the quick check
        return None
    last = {prediction_id: row for row, prediction_id in enumerate(ids)}
    return sorted(last.values())


def last_of_each(
    ids: Sequence[str], columns: SummaryColumnsIn
) -> tuple[Sequence[str], SummaryColumnsIn]:
    """The rows of distinct ids, the last of each (what a flush keeps of an id given twice),
    in their order."""
    rows = last_rows(ids)
    if rows is None:
        return ids, columns
    return [ids[row] for row in rows], SummaryColumnsIn._make(
        [column[row] for row in rows] for column in columns
    )


def even_bounds(total: int, most: int) -> list[tuple[int, int]]:
    """``[start, stop)`` bounds cutting ``total`` rows into the fewest chunks of at most
    ``most``, whose sizes differ by one at most: no chunk is a small remainder."""
    count = -(-total // most)
    return [(total * i // count, total * (i + 1) // count) for i in range(count)]


def forwarded_segment(ids: Sequence[str], columns: SummaryColumnsIn) -> bytes:
    """Summaries bound for another partition's join, as one segment in its changelog form
    (the last of repeated ids wins, as it would in the receiver's join). The receiver keeps
    it as a segment of its own, renumbered and with its own origin (``LabelJoin``). Stage 1
    makes them from arrays (``stream_app.forward_buffer``); this is the form from lists."""
    ids, columns = last_of_each(ids, columns)
    return SummarySegment.from_columns(0, ids, columns).to_bytes()
