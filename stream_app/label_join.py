"""Stage 1's label join: prediction summaries and labels waiting for each other.

A prediction's summary waits in the join table of the partition its label hashes to
(forwarded there on the label-join topic when the prediction was read on another
partition); a label read first waits there for the summary. When both have come, the pair
leaves for stage 2 and a *joined* mark stays until a checkpoint covers the label, so that
a replay reading the label again, or another partition's replay forwarding the summary
again, joins nothing twice.

Entries expire by the clock of what they wait for: a summary by its partition's labels, a
label by every partition's predictions as heard on the label-join topic (each partition
sends its prediction watermark there after the summaries it forwarded: :meth:`hear`).

Summaries waiting for their labels are kept as columns (``stream_app.summary_columns``):
the summaries one flush kept for a partition become one segment, stored in the table under
``{partition}#c{seq}`` (its versioned binary form, the in-memory columns being views into
it). The rows gone since (joined or expired) are one *gone-log* record per flush under
``{partition}#x{n}`` (their handles), folded now and then into a bitmap per segment under
``{partition}#g{seq}`` (the records are then deleted); a segment whose rows are all gone
is deleted. Until the flush they wait in a dict, but for the summaries another partition
forwarded: they come as a segment (``stream_app.forward_buffer``), kept at once as one of this
partition's (:meth:`LabelJoin.add_forwarded`).

Under ``{partition}|{prediction id}`` the table keeps a label waiting for its summary, a
joined mark, or (written by earlier versions, still read) a summary: the typed values of
:mod:`stream_app.join_entries`. Summaries and pairs are
:class:`~stream_app.summary_columns.Summary` tuples.
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt
from aiokafka.partitioner import murmur2

from stream_app import id_index, summary_columns
from stream_app.counters import Counters
from stream_app.join_entries import JoinedMark, WaitingLabel, is_joined_mark, read_entry
from stream_app.joined_marks import JoinedMarks
from stream_app.segment_spill import SegmentSpill
from stream_app.state_store import PartitionedStore
from stream_app.summary_columns import (
    GONE,
    MAX_ROWS,
    ROW_BITS,
    PendingSummaries,
    Summary,
    SummaryColumns,
    SummaryColumnsIn,
    SummaryRow,
    SummarySegment,
    last_of_each,
)

log = logging.getLogger(__name__)

# Rows per segment: its table value stays near 400 KB, under Kafka's 1 MB message size.
SEGMENT_ROWS = 4096
# A forwarded segment this large is kept as it is; a smaller one joins the summaries kept
# until the flush, so that small batches (a worker keeping up with a slow stream) still
# make one segment a flush, not one per partition that forwarded (the count of segments
# is what a label envelope's lookups cost by: docs/benchmarks.md, "Forwarded summaries
# as segments").
KEEP_FORWARDED_FROM_ROWS = 1024

# The rows gone in one flush are one gone-log record per partition; the records are folded
# into per-segment bitmaps (and deleted) once they hold this many rows, or this many
# records, or a quarter of the rows kept, whichever comes first.
GONE_LOG_ROWS = 65_536
GONE_LOG_RECORDS = 256
# Rows per gone-log record: 256 KiB, 350 KB in base64 on the changelog, under Kafka's 1 MB
# message limit however many labels one flush joins.
GONE_LOG_RECORD_ROWS = 32_768
_GONE_LOG_VERSION = b"\x01"
# A spill moves at least this much below the memory budget (one file, not one per flush).
SPILL_AT_LEAST = 16 * 2**20


class Joined(NamedTuple):
    """A prediction and its label met: the summary, the label, the label's identity."""

    summary: Summary
    label: Any
    identity: tuple[int, int]  # the label's offset and its position in that message


class WindowPairs(NamedTuple):
    """A window's pairs as columns: what stage 1 sends stage 2 for that window."""

    labels: list[Any]
    predicted: list[Any]
    scores: list[float | None]
    origin_kinds: list[str]  # the summary's topic
    origin_offsets: list[int]  # and its offset there
    label_offsets: list[int]
    label_positions: list[int]  # in the label's message

    @classmethod
    def of_one(cls, joined: Joined) -> tuple[tuple[str, float, float], WindowPairs]:
        """One pair's window and its columns: what :meth:`JoinedColumns.by_window` gives
        for one pair, without building columns to group (a single label's path)."""
        summary = joined.summary
        offset, position = joined.identity
        window = (summary.model_id, summary.window_start, summary.window_end)
        columns = (
            joined.label, summary.predicted, summary.score, summary.origin_kind,
            summary.origin_offset, offset, position,
        )  # fmt: skip
        return window, cls._make([value] for value in columns)

    def extend(self, more: WindowPairs) -> None:
        """Append ``more``'s pairs to these columns, in order."""
        mine: tuple[list[Any], ...] = self
        theirs: tuple[list[Any], ...] = more
        for column, added in zip(mine, theirs, strict=True):
            column.extend(added)


@dataclass
class JoinedColumns:
    """Pairs made together (an envelope's labels, or a run of single labels) as columns,
    in the labels' order: a :class:`Joined` and a :class:`Summary` per pair cost stage 1
    more than reading the summary's row."""

    summaries: list[SummaryRow] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    identities: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def append(self, joined: Joined) -> None:
        self.summaries.append(joined.summary)
        self.labels.append(joined.label)
        self.identities.append(joined.identity)

    def by_window(self) -> list[tuple[tuple[str, float, float], WindowPairs]]:
        """The pairs grouped by their summary's (model, window start, window end), each
        group in the labels' order and the groups in order of first appearance: columns
        cut in C (``_summary_rows.by_window``), else by ``zip`` and ``itemgetter``."""
        native = summary_columns.native  # looked up at each call: tests switch it off
        if native is not None:
            grouped = native.by_window(self.summaries, self.labels, self.identities)
            return [(window, WindowPairs._make(columns)) for window, columns in grouped]
        return self._by_window_python()

    def _by_window_python(self) -> list[tuple[tuple[str, float, float], WindowPairs]]:
        if not self.summaries:
            return []
        models, starts, ends, predicted, scores, _, kinds, origins = zip(
            *self.summaries, strict=True
        )
        offsets, positions = zip(*self.identities, strict=True)
        columns = (self.labels, predicted, scores, kinds, origins, offsets, positions)
        windows = list(zip(models, starts, ends, strict=True))
        if windows.count(windows[0]) == len(windows):  # one window: the columns as they are
            return [(windows[0], WindowPairs._make(list(column) for column in columns))]
        rows: dict[tuple[str, float, float], list[int]] = {}
        for row, window in enumerate(windows):
            rows.setdefault(window, []).append(row)
        grouped = []
        for window, mine in rows.items():
            pick = operator.itemgetter(*mine)
            picked = (pick(column) for column in columns)
            # itemgetter of one index gives the item, not a tuple of one
            cut = (list(p) for p in picked) if len(mine) > 1 else ([p] for p in picked)
            grouped.append((window, WindowPairs._make(cut)))
        return grouped

    def pairs(self) -> list[Joined]:
        """The pairs one by one, as :meth:`LabelJoin.add_label` gives them."""
        return [
            Joined(Summary._make(summary), label, identity)
            for summary, label, identity in zip(
                self.summaries, self.labels, self.identities, strict=True
            )
        ]


def join_partition(prediction_id: str, n_partitions: int) -> int:
    """The partition Kafka's default partitioner gives a ``prediction_id`` key."""
    native = id_index.native  # looked up at each call: the benchmark switches it off
    if native is not None:
        return int(native.partition(prediction_id, n_partitions))
    return int(murmur2(prediction_id.encode()) & 0x7FFFFFFF) % n_partitions


_M = np.uint64(0x5BD1E995)
_MASK = np.uint64(0xFFFFFFFF)
_8, _16, _24 = np.uint64(8), np.uint64(16), np.uint64(24)


def join_partitions(prediction_ids: Sequence[str], n_partitions: int) -> npt.NDArray[np.int64]:
    """:func:`join_partition` of many ids at once (in C when built, else numpy columns)."""
    native = id_index.native  # looked up at each call: the benchmark switches it off
    if native is None:
        return _join_partitions_numpy(prediction_ids, n_partitions)
    out = np.empty(len(prediction_ids), dtype=np.int64)
    native.partitions(prediction_ids, n_partitions, out)
    return out


def _join_partitions_numpy(
    prediction_ids: Sequence[str], n_partitions: int
) -> npt.NDArray[np.int64]:
    """Kafka's murmur2 over numpy columns.

    The ids of one encoded length are hashed together, four bytes of each per step, in
    unsigned 64-bit arithmetic masked to 32 bits as the Java client's ints wrap. An
    envelope of 500 UUIDs costs about a tenth of hashing them one by one in Python.
    """
    out = np.empty(len(prediction_ids), dtype=np.int64)
    encoded = [prediction_id.encode() for prediction_id in prediction_ids]
    by_length: dict[int, list[int]] = defaultdict(list)
    for index, raw in enumerate(encoded):
        by_length[len(raw)].append(index)
    for length, rows in by_length.items():
        data = np.frombuffer(b"".join(encoded[i] for i in rows), dtype=np.uint8)
        hashes = _murmur2(data.reshape(len(rows), length).astype(np.uint64), length)
        out[rows] = (hashes & np.uint64(0x7FFFFFFF)) % np.uint64(n_partitions)
    return out


def _murmur2(data: npt.NDArray[np.uint64], length: int) -> npt.NDArray[np.uint64]:
    """Kafka's murmur2 of each row of ``data`` (``length`` bytes, one per uint64)."""
    h = np.full(data.shape[0], np.uint64(0x9747B28C ^ length), dtype=np.uint64)
    for i in range(0, length - length % 4, 4):
        k = data[:, i] | data[:, i + 1] << _8 | data[:, i + 2] << _16 | data[:, i + 3] << _24
        k = (k * _M) & _MASK
        k ^= k >> _24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & ~3
    if length % 4 >= 3:
        h ^= data[:, tail + 2] << _16
    if length % 4 >= 2:
        h ^= data[:, tail + 1] << _8
    if length % 4 >= 1:
        h ^= data[:, tail]
        h = (h * _M) & _MASK
    h ^= h >> np.uint64(13)
    h = (h * _M) & _MASK
    h ^= h >> np.uint64(15)
    return h


def join_key(partition: int, prediction_id: str) -> str:
    return f"{partition}|{prediction_id}"


def _segment_key(partition: int, seq: int) -> str:
    return f"{partition}#c{seq}"


def _gone_key(partition: int, seq: int) -> str:
    return f"{partition}#g{seq}"


def _gone_log_key(partition: int, number: int) -> str:
    return f"{partition}#x{number}"


@dataclass
class _GoneLog:
    """A partition's gone-log records not yet folded into bitmaps."""

    keys: list[str] = field(default_factory=list)
    rows: int = 0
    next_number: int = 0


def _read_gone_log(value: bytes) -> npt.NDArray[np.int64]:
    if value[:1] != _GONE_LOG_VERSION:
        raise ValueError(
            f"a gone-log record of unknown version {value[:1]!r}: written by a newer Driftline?"
        )
    return np.frombuffer(value, dtype="<i8", offset=1).astype(np.int64)


def _entry_id(key: str) -> str:
    """The prediction id of a ``{partition}|{prediction id}`` entry."""
    return key[key.index("|") + 1 :]


def _entry_partition(key: str) -> int | None:
    """The partition of a ``{partition}|{prediction id}`` entry (None: a segment's key)."""
    head, sep, _ = key.partition("|")
    return int(head) if sep and head.isdigit() else None


class LabelJoin:
    """The join table of stage 1's partitions, and the prediction marks heard on it."""

    def __init__(
        self,
        store: PartitionedStore,
        n_partitions: int,
        counters: Counters,
        spill: SegmentSpill | None = None,
    ) -> None:
        self.store = store
        # Segments beyond its memory budget go to disk (None: all stay in memory).
        self.spill = spill
        self._spill_failed_at = -math.inf
        self.n_partitions = n_partitions
        self.counters = counters
        # Per label-join partition: {source partition: its prediction watermark}.
        self._marks: dict[int, dict[int, float | None]] = {}
        # Earliest expiry among a partition's entries (absent: unknown, sweep to learn).
        self._earliest_expiry: dict[int, float] = {}
        # Joined marks to drop once a durable checkpoint covers their label's offset.
        self._joined_marks: dict[int, list[tuple[str, int]]] = defaultdict(list)
        # Summaries waiting for their labels: kept since the last flush, and as columns.
        self._pending: dict[int, PendingSummaries] = defaultdict(PendingSummaries)
        self._columns: dict[int, SummaryColumns] = {}
        self._gone_logs: dict[int, _GoneLog] = defaultdict(_GoneLog)
        # Per partition, every prediction id with an entry of its own in the table (a
        # label waiting, a per-key joined mark, an earlier version's summary), and maybe
        # a few whose entry went since: with the marks below, a batch of ids none of
        # which is in either skips a table lookup per id, a tenth of what keeping an
        # enveloped prediction cost.
        self._entry_ids: dict[int, set[str]] = defaultdict(set)
        # The labels joined with a kept summary, until a checkpoint covers them.
        self.marks = JoinedMarks()

    # -- entries -------------------------------------------------------------------------

    def add_summary(self, partition: int, prediction_id: str, summary: Summary) -> Joined | None:
        """A prediction's summary; the pair if its label was waiting."""
        if prediction_id in self.marks.joined(partition):  # forwarded again by a replay
            return None
        key = join_key(partition, prediction_id)
        stored = self.store.get(key)
        if stored is not None:
            entry = read_entry(stored)
            if isinstance(entry, WaitingLabel):  # the label came first: join now
                return self._join_waiting(partition, key, entry, summary)
            if isinstance(entry, JoinedMark):  # joined already: forwarded again by a replay
                return None
            self.store.delete(partition, key)  # an earlier version's entry: kept below
        self._pending[partition].add_one(prediction_id, summary)
        self._note_expiry(partition, summary.expires)
        return None

    def _join_waiting(
        self, partition: int, key: str, waiting: WaitingLabel, summary: Summary
    ) -> Joined:
        label = (waiting.offset if waiting.offset is not None else -1, waiting.position)
        self._mark_joined(partition, key, label, summary.expires)
        return Joined(summary, waiting.label, label)

    def add_summaries(
        self, partition: int, ids: Sequence[str], columns: SummaryColumnsIn
    ) -> list[Joined]:
        """:meth:`add_summary` of many, given as columns: the pairs. Of an id given twice
        (one envelope naming a prediction twice) the last is kept, as the flush keeps it."""
        if not ids:
            return []
        joined: list[Joined] = []
        if self._may_have_entries(partition, ids):  # a label waits, or a mark
            # Distinct first, else a waiting label would join each copy of an id.
            ids, columns = last_of_each(ids, columns)
            joined, kept = self._claim(
                partition, ids, lambda row: Summary._make(column[row] for column in columns)
            )
            if len(kept) < len(ids):
                ids = [ids[row] for row in kept]
                columns = SummaryColumnsIn._make([column[r] for r in kept] for column in columns)
        if ids:
            self._pending[partition].add(ids, columns)
            self._note_expiry(partition, min(columns.expires))
        return joined

    def add_forwarded(self, partition: int, data: bytes, offset: int) -> list[Joined]:
        """The summaries another partition forwarded as one segment (``ForwardBuffer``)
        in the label-join message at ``offset``: :meth:`add_summaries` of its rows, kept at
        once as a segment of this partition's (renumbered, this message its origin) instead
        of a dict entry each until the flush. The pairs of the labels that waited."""
        segment = SummarySegment.from_bytes(data)  # a copy: its number and origin change
        segment.origin_kinds = ["j"]
        segment.records["k"] = 0
        segment.records["o"] = offset
        ids = segment.ids()
        if len(segment) < KEEP_FORWARDED_FROM_ROWS:
            return self.add_summaries(partition, ids, segment.columns())
        joined: list[Joined] = []
        if self._may_have_entries(partition, ids):  # a label waits, or a mark
            joined, rows = self._claim(partition, ids, segment.summary)
            gone = np.ones(len(ids), dtype=bool)
            gone[rows] = False
            segment.state[gone] = GONE
        kept = segment.state != GONE
        pending = self._pending.get(partition)
        if pending:  # this segment's summaries came later than those kept until the flush
            pending.forget(ids if kept.all() else [ids[row] for row in np.flatnonzero(kept)])
        if not kept.any():
            return joined
        columns = self._columns_of(partition)
        columns.renumber(segment)
        stored_form = segment.to_bytes()
        self.store.set(partition, _segment_key(partition, segment.seq), stored_form)
        columns.attach(SummarySegment.from_bytes(stored_form, copy=False), ids)
        self._note_expiry(partition, float(segment.expires[kept].min()))
        return joined

    def _claim(
        self, partition: int, ids: Sequence[str], summary_at: Callable[[int], Summary]
    ) -> tuple[list[Joined], list[int]]:
        """Summaries of distinct ``ids`` that may meet state of their own: the pairs of the
        labels that waited for them, and the rows still to keep (``summary_at``: a row's)."""
        marked = self.marks.joined(partition)
        joined: list[Joined] = []
        kept: list[int] = []
        for row, prediction_id in enumerate(ids):
            if prediction_id in marked:  # joined already: forwarded again by a replay
                continue
            key = join_key(partition, prediction_id)
            stored = self.store.get(key)
            if stored is None:
                kept.append(row)
                continue
            entry = read_entry(stored)
            if isinstance(entry, WaitingLabel):
                joined.append(self._join_waiting(partition, key, entry, summary_at(row)))
            elif not isinstance(entry, JoinedMark):  # an earlier version's: replaced
                self.store.delete(partition, key)
                kept.append(row)
        return joined, kept

    def add_label(
        self,
        partition: int,
        prediction_id: str,
        model_id: str,
        label: Any,
        identity: tuple[int, int],
        expires: float,
    ) -> Joined | None:
        """A label (``identity``: its offset and position); the pair if its summary waited."""
        if prediction_id in self.marks.joined(partition):
            # This very label read again by a replay, or a second label for a joined
            # prediction (a retried send): nothing to do, as for a JoinedMark below.
            return None
        key = join_key(partition, prediction_id)
        stored = self.store.get(key)
        entry = read_entry(stored) if stored is not None else None
        if entry is None:
            summary = self._take_summary(partition, prediction_id)
            if summary is not None:
                # A kept summary: the id has no entry of its own to mark (joined_marks).
                self.marks.mark(partition, prediction_id, identity)
                return Joined(summary, label, identity)
        elif isinstance(entry, Summary):  # an earlier version's entry
            self._mark_joined(partition, key, identity, entry.expires)
            return Joined(entry, label, identity)
        elif isinstance(entry, JoinedMark):
            # This very label read again by a replay (its effect is in the store), or a
            # second label for a joined prediction (a retried send): nothing to do.
            return None
        elif entry.identity == identity:
            return None  # this very label, read again by a replay: its effect is in the store
        self._wait(partition, key, model_id, label, identity, expires)
        return None

    def _wait(
        self,
        partition: int,
        key: str,
        model_id: str,
        label: Any,
        identity: tuple[int, int],
        expires: float,
    ) -> None:
        """Store a label to wait for its summary."""
        waiting = WaitingLabel(model_id, label, expires, identity[0], identity[1])
        self.store.set(partition, key, waiting.to_bytes())
        self._entry_ids[partition].add(_entry_id(key))
        self._note_expiry(partition, expires)

    def add_labels(
        self,
        partition: int,
        ids: Sequence[str],
        model_id: str,
        labels: Sequence[Any],
        identities: Sequence[tuple[int, int]],
        expires: Sequence[float],
    ) -> JoinedColumns:
        """:meth:`add_label` of each label (an envelope's, or a run of single labels),
        ``ids`` distinct: the pairs, in the labels' order.

        Labels whose id has nothing in the table (the common case: no label waits, no
        mark) take their summaries together (:meth:`SummaryColumns.take`) and are marked
        together; the others go one by one. Distinct ids touch distinct state, so the order
        between them does not change what is stored.
        """
        if not self._may_have_entries(partition, ids):  # nothing stored for any of them
            return self._add_free_labels(partition, ids, model_id, labels, identities, expires)
        get, marked = self.store.get, self.marks.joined(partition)
        # A marked id goes to add_label, which finds its mark.
        stored = [b"" if i in marked else get(join_key(partition, i)) for i in ids]
        free = [row for row, entry in enumerate(stored) if entry is None]
        taken = self._take_summaries(partition, [ids[r] for r in free])
        summaries = dict(zip(free, taken, strict=True))
        joined = JoinedColumns()
        for row, entry in enumerate(stored):
            identity = identities[row]
            if entry is not None:
                pair = self.add_label(
                    partition, ids[row], model_id, labels[row], identity, expires[row]
                )
                if pair is not None:
                    joined.append(pair)
                continue
            summary = summaries[row]
            if summary is None:
                key = join_key(partition, ids[row])
                self._wait(partition, key, model_id, labels[row], identity, expires[row])
                continue
            self.marks.mark(partition, ids[row], identity)
            joined.append(Joined(Summary._make(summary), labels[row], identity))
        return joined

    def _add_free_labels(
        self,
        partition: int,
        ids: Sequence[str],
        model_id: str,
        labels: Sequence[Any],
        identities: Sequence[tuple[int, int]],
        expires: Sequence[float],
    ) -> JoinedColumns:
        """:meth:`add_labels` where no id has an entry or a mark: a column at a time."""
        taken = self._take_summaries(partition, ids)
        if None not in taken:  # every label found its summary: the columns as they are
            everything = JoinedColumns(cast(list[SummaryRow], taken), [*labels], [*identities])
            self.marks.mark_many(partition, ids, everything.identities)
            return everything
        hit: list[int] = []
        for row, summary in enumerate(taken):
            if summary is not None:
                hit.append(row)
                continue
            key = join_key(partition, ids[row])
            self._wait(partition, key, model_id, labels[row], identities[row], expires[row])
        joined = JoinedColumns(
            [cast(SummaryRow, taken[r]) for r in hit],
            [labels[r] for r in hit],
            [identities[r] for r in hit],
        )
        # A kept summary: the ids have no entries of their own to mark (joined_marks).
        self.marks.mark_many(partition, [ids[r] for r in hit], joined.identities)
        return joined

    def waiting_summaries(self) -> int:
        """How many summaries wait for their labels (a gauge, and what tests count)."""
        kept = sum(len(columns.index) for columns in self._columns.values())
        return kept + sum(len(pending) for pending in self._pending.values())

    def _take_summary(self, partition: int, prediction_id: str) -> Summary | None:
        """The summary waiting for this label, which stops waiting; None if none waits."""
        pending = self._pending.get(partition)
        found = pending.take(prediction_id) if pending else None
        columns = self._columns.get(partition)
        # Both, when a replay forwarded a kept summary again: the copy kept before must go
        # too, or it would meet a label sent again once the joined mark is gone.
        kept = columns.take_one(prediction_id) if columns is not None else None
        return found if found is not None else kept

    def _take_summaries(self, partition: int, ids: Sequence[str]) -> list[SummaryRow | None]:
        """:meth:`_take_summary` of many distinct ids."""
        if not ids:
            return []
        pending = self._pending.get(partition)
        columns = self._columns.get(partition)
        # Both, as in _take_summary: a copy kept before must go too.
        kept: list[SummaryRow | None] = (
            columns.take(ids) if columns is not None else [None] * len(ids)
        )
        if not pending:  # all sealed (labels that come minutes after): the kept ones
            return kept
        found = [pending.take(i) for i in ids]
        return [
            mine if mine is not None else other for mine, other in zip(found, kept, strict=True)
        ]

    def seal(self) -> None:
        """Write the summaries kept since the last flush as segments, and the rows gone."""
        # The marks before the rows gone: a crash that keeps a row's removal keeps its mark.
        self.marks.seal(self.store)
        for partition, pending in self._pending.items():
            if not pending:
                continue
            columns = self._columns_of(partition)
            ids, kept = pending.drain()  # one summary per id
            for at in range(0, len(ids), SEGMENT_ROWS):
                chunk = ids[at : at + SEGMENT_ROWS]
                rows = SummaryColumnsIn._make(column[at : at + SEGMENT_ROWS] for column in kept)
                segment = columns.new_segment(chunk, rows)
                data = segment.to_bytes()
                self.store.set(partition, _segment_key(partition, segment.seq), data)
                columns.attach(SummarySegment.from_bytes(data, copy=False), chunk)
        for partition, columns in self._columns.items():
            self._log_gone(partition, columns)
            for seq in sorted(columns.dropped):
                self.store.delete(partition, _segment_key(partition, seq))
                self.store.delete(partition, _gone_key(partition, seq))
            columns.dropped.clear()
        self._spill_beyond_budget()

    def bytes_in_memory(self) -> int:
        """The bytes of the segments whose columns are in memory (a gauge)."""
        return sum(columns.bytes_in_memory for columns in self._columns.values())

    def _spill_beyond_budget(self) -> None:
        """Move the oldest segments to disk while those in memory exceed the budget.

        Down to a tenth under the budget (at least ``SPILL_AT_LEAST`` bytes less), so that
        a spill writes one file of many segments, not a segment at every flush.
        """
        spill = self.spill
        if spill is None:
            return
        held = self.bytes_in_memory()
        if held <= spill.budget_bytes:
            return
        goal = max(0, min(spill.budget_bytes * 9 // 10, spill.budget_bytes - SPILL_AT_LEAST))
        # Sequence numbers rise together in every partition (each flush numbers its new
        # segments): across partitions, the lowest are about the oldest.
        candidates = sorted(
            (segment.seq, partition, segment)
            for partition, columns in self._columns.items()
            for segment in columns.in_memory()
        )
        chosen: list[tuple[int, SummarySegment]] = []
        for _, partition, segment in candidates:
            if held <= goal:
                break
            chosen.append((partition, segment))
            held -= segment.nbytes
        try:
            views = spill.write([segment.to_bytes() for _, segment in chosen])
        except OSError as error:
            # Nothing is lost: the segments stay in memory, past the budget, and the next
            # flush tries again. Said once a minute, not at every flush.
            now = time.monotonic()
            if now - self._spill_failed_at >= 60.0:
                self._spill_failed_at = now
                log.error(
                    "%s; the label join holds %d bytes of summaries in memory meanwhile",
                    error,
                    self.bytes_in_memory(),
                )
            return
        for (partition, segment), view in zip(chosen, views, strict=True):
            self._columns[partition].moved_to_disk(segment.seq, view)
            self.store.keep(_segment_key(partition, segment.seq), view)

    def _log_gone(self, partition: int, columns: SummaryColumns) -> None:
        """The rows gone since the last flush, as one record; folded into bitmaps when due.

        Labels for random predictions touch most segments in every flush: a bitmap per
        touched segment per flush was hundreds of table writes each time (half of what a
        label envelope cost). A record per flush, folded now and then, is one write. The
        bitmaps are written before the records are deleted: a restart that reads both
        applies both (a row once gone stays gone).
        """
        gone = columns.drain_gone()
        log = self._gone_logs[partition]
        for at in range(0, gone.size, GONE_LOG_RECORD_ROWS):
            chunk = gone[at : at + GONE_LOG_RECORD_ROWS]
            key = _gone_log_key(partition, log.next_number)
            log.next_number += 1
            log.keys.append(key)
            log.rows += int(chunk.size)
            self.store.set(partition, key, _GONE_LOG_VERSION + chunk.astype("<i8").tobytes())
        due = (
            log.rows >= min(GONE_LOG_ROWS, max(SEGMENT_ROWS, len(columns.index) // 4))
            or len(log.keys) >= GONE_LOG_RECORDS
            or not columns.segments  # every segment named is gone: nothing to fold
        )
        if not due or not log.keys:
            return
        for seq in sorted(columns.changed):
            bits = np.packbits(columns.segments[seq].state == GONE).tobytes()
            self.store.set(partition, _gone_key(partition, seq), bits)
        columns.changed.clear()
        for key in log.keys:
            self.store.delete(partition, key)
        log.keys.clear()
        log.rows = 0

    def _columns_of(self, partition: int) -> SummaryColumns:
        columns = self._columns.get(partition)
        if columns is None:
            columns = self._columns[partition] = SummaryColumns()
        return columns

    def _mark_joined(
        self, partition: int, key: str, label: tuple[int, int], expires: float
    ) -> None:
        """Until a checkpoint covers the label, a replay may read it again, or a summary
        the replay of another partition forwards again: the mark makes both no-ops."""
        self.store.set(partition, key, JoinedMark(label[0], label[1], expires).to_bytes())
        self._entry_ids[partition].add(_entry_id(key))
        self._joined_marks[partition].append((key, label[0]))
        # Swept by its own expiry, as after a restart (which learns every entry's): else a
        # mark expiring before the earliest bound known waits for that bound, and a summary
        # a replay forwards again meanwhile is a no-op here but waits after a restart.
        self._note_expiry(partition, expires)

    def _may_have_entries(self, partition: int, ids: Sequence[str]) -> bool:
        """Whether any of ``ids`` may have state of its own: an entry, or a joined mark."""
        return not (
            self._entry_ids[partition].isdisjoint(ids)
            and self.marks.joined(partition).keys().isdisjoint(ids)
        )

    def _note_expiry(self, partition: int, expires: float) -> None:
        known = self._earliest_expiry.get(partition)
        if known is not None and expires < known:
            self._earliest_expiry[partition] = expires

    def drop_covered(self, labels_done: Callable[[int], int]) -> None:
        """Delete the joined marks whose label a durable checkpoint covers."""
        self.marks.drop_covered(labels_done, self.store)
        for partition, marks in self._joined_marks.items():
            done = labels_done(partition)
            entry_ids = self._entry_ids[partition]
            for key, _ in [m for m in marks if m[1] <= done]:
                found = self.store.get(key)
                if found is not None and is_joined_mark(found):
                    self.store.delete(partition, key)
                    entry_ids.discard(_entry_id(key))
            marks[:] = [m for m in marks if m[1] > done]

    # -- the prediction marks heard on the label-join topic --------------------------------

    def hear(self, partition: int, source: int, watermark: float | None) -> None:
        """``source``'s prediction watermark, read on label-join ``partition``."""
        self._marks.setdefault(partition, {})[source] = watermark

    def forwarded_up_to(self, partition: int) -> tuple[bool, float | None]:
        """Whether every partition was heard here, and the lowest watermark among those
        that saw predictions (None: none did; they forwarded nothing and hold nothing)."""
        marks = self._marks.get(partition, {})
        heard = [mark for mark in marks.values() if mark is not None]
        return len(marks) >= self.n_partitions, min(heard) if heard else None

    def prediction_low_watermark(self, partition: int) -> float | None:
        """The watermark every partition's predictions passed, as heard on the join topic.

        A prediction whose label came first may be forwarded from any partition; its label
        waits until every partition has passed the label's horizon.
        """
        marks = self._marks.get(partition, {})
        if len(marks) < self.n_partitions or any(mark is None for mark in marks.values()):
            return None
        return min(mark for mark in marks.values() if mark is not None)

    # -- expiry ----------------------------------------------------------------------------

    def expire(
        self, partitions: Sequence[int], label_watermark: Callable[[int], float | None]
    ) -> None:
        """Drop entries past their label horizon, by the clock of what they wait for.

        A prediction waits for its label: it goes once the partition's *labels* have passed
        its horizon. A label that came first waits for its prediction, which may be
        forwarded from any partition: it goes once *every* partition's predictions have
        passed its horizon. Neither side is judged by the other's progress, so whatever
        order the topics are read in (predictions months ahead of labels in a replay, or
        the reverse), nothing that can still be joined expires.

        A sweep reads every entry, so it only runs when a watermark has passed the earliest
        expiry seen since the last sweep (unknown after a restart: sweep once to learn it).
        """
        self.seal()
        marks = {p: (label_watermark(p), self.prediction_low_watermark(p)) for p in partitions}
        due = [
            p
            for p, pair in marks.items()
            if any(mark is not None for mark in pair)
            and (
                self._earliest_expiry.get(p) is None
                or any(mark is not None and self._earliest_expiry[p] < mark for mark in pair)
            )
        ]
        if not due:
            return
        earliest: dict[int, float] = {}
        for partition in due:
            columns = self._columns.get(partition)
            labels_at = marks[partition][0]
            if columns is None:
                continue
            if labels_at is not None:
                self.counters.unlabeled_predictions += columns.expire(labels_at)
            waiting = columns.earliest_expiry()
            if waiting is not None:
                earliest[partition] = waiting
        self.seal()  # the rows gone, to the table
        for key, value in self.store.items():
            owner = _entry_partition(key)
            if owner is None or owner not in due:
                continue
            entry = read_entry(value)
            labels_at, predictions_at = marks[owner]
            waits_for = predictions_at if isinstance(entry, WaitingLabel) else labels_at
            if waits_for is not None and entry.expires < waits_for:
                self.store.delete(owner, key)
                self._entry_ids[owner].discard(_entry_id(key))
                if isinstance(entry, WaitingLabel):
                    self.counters.unmatched_labels += 1
                elif isinstance(entry, Summary):  # a mark: one a checkpoint did not clear
                    self.counters.unlabeled_predictions += 1
            else:
                earliest[owner] = min(earliest.get(owner, entry.expires), entry.expires)
        for partition in due:
            self._earliest_expiry[partition] = earliest.get(partition, math.inf)

    def forget(self, partition: int) -> None:
        """A revoked partition (its table moves with it), or one restored after a crash."""
        self._marks.pop(partition, None)
        self._earliest_expiry.pop(partition, None)
        self._joined_marks.pop(partition, None)
        self._pending.pop(partition, None)
        self._columns.pop(partition, None)
        self._gone_logs.pop(partition, None)
        self._entry_ids.pop(partition, None)
        self.marks.forget(partition)

    def restore_joined_marks(self, partition: int) -> None:
        """After a restart: the joined marks and the waiting summaries of the partition, as
        its restored table holds them."""
        self._joined_marks.pop(partition, None)
        entry_ids = self._entry_ids[partition] = set()
        prefix = f"{partition}|"
        segments, gone = f"{partition}#c", f"{partition}#g"
        logged, marked = f"{partition}#x", f"{partition}#j"
        mark_records: list[tuple[int, bytes]] = []
        stored: dict[int, bytes] = {}
        gone_rows: dict[int, bytes] = {}
        gone_log: dict[int, bytes] = {}
        for key, value in self.store.items():
            if key.startswith(prefix):
                entry_ids.add(key[len(prefix) :])
                if is_joined_mark(value):
                    mark = read_entry(value)
                    assert isinstance(mark, JoinedMark)
                    self._joined_marks[partition].append((key, mark.offset))
            elif key.startswith(segments):
                stored[int(key[len(segments) :])] = value
            elif key.startswith(gone):
                gone_rows[int(key[len(gone) :])] = value
            elif key.startswith(logged):
                gone_log[int(key[len(logged) :])] = value
            elif key.startswith(marked):
                mark_records.append((int(key[len(marked) :]), bytes(value)))
        self.marks.restore(partition, mark_records)
        columns = self._columns[partition] = SummaryColumns()
        log = self._gone_logs[partition] = _GoneLog()
        logged_gone = [_read_gone_log(gone_log[number]) for number in sorted(gone_log)]
        handles = np.sort(np.concatenate([np.zeros(0, dtype=np.int64), *logged_gone]))
        for number in sorted(gone_log):
            log.keys.append(_gone_log_key(partition, number))
            log.next_number = number + 1
        log.rows = int(handles.size)
        if handles.size:
            # A record may name a segment since dropped: its number is not given again.
            columns.number_after(int(handles.max()) >> ROW_BITS)
        for seq in sorted(stored):
            segment = SummarySegment.from_bytes(stored[seq], copy=False)
            # A view: the recovery put the value on disk (stream_app.segment_spill).
            segment.on_disk = isinstance(stored[seq], memoryview)
            if seq in gone_rows:
                bits = np.frombuffer(gone_rows[seq], dtype=np.uint8)
                segment.state[np.unpackbits(bits)[: len(segment)].astype(bool)] = GONE
            lo, hi = np.searchsorted(handles, [seq << ROW_BITS, (seq + 1) << ROW_BITS])
            mine = handles[lo:hi] & (MAX_ROWS - 1)
            segment.state[mine[mine < len(segment)]] = GONE
            columns.attach(segment)
            if mine.size and seq in columns.segments:
                # Its bitmap lacks what the records add: the fold that deletes them must
                # write it.
                columns.changed.add(seq)
        self._spill_beyond_budget()
