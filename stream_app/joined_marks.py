"""Labels joined since the last durable checkpoint, kept as one table record per flush.

Until a checkpoint covers a joined label, a crash replays it, and a replay of another
partition may forward its prediction's summary again: both must find that the pair was
made, or the label would wait for a summary gone for good and the summary for a label
already used. That used to be a table entry per joined label (``JoinedMark``), written
when it joined and deleted a flush later: about a third of what stage 1 spent on a label
in an envelope. Here the marks of a partition's flush are one record (``{partition}#j{n}``)
and a dictionary in memory, rebuilt from the records after a restart; a record goes once
the durable checkpoint covers its last label.

Only labels whose prediction had no entry of its own are marked here (the summary was
among the kept columns): a label that waited, or an earlier version's entry, is replaced
by a ``JoinedMark`` in place, one write, so no crash can keep the removal without the mark.
The records of a flush are written before its gone rows (``LabelJoin.seal``): a crash
that keeps a row's removal keeps its mark too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from stream_app.state_store import PartitionedStore

_VERSION = b"\x01"
Identity = tuple[int, int]  # a label's offset and its position in its message


# A record stays under this many bytes: Kafka refuses messages over 1 MB, and one flush
# can join hundreds of thousands of labels.
RECORD_BYTES = 256 * 1024


def record_key(partition: int, number: int) -> str:
    return f"{partition}#j{number}"


@dataclass
class _Marks:
    """Marks as columns (a tuple per mark kept hundreds of thousands of objects alive
    for the garbage collector to walk)."""

    ids: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)  # of each label's message
    positions: list[int] = field(default_factory=list)  # of each label in its message


@dataclass
class _Record:
    key: str
    last_offset: int  # the highest label offset it holds: dropped once a checkpoint covers it
    marks: _Marks


@dataclass
class _PartitionMarks:
    joined: dict[str, Identity] = field(default_factory=dict)
    unsealed: _Marks = field(default_factory=_Marks)
    records: list[_Record] = field(default_factory=list)
    next_number: int = 0


class JoinedMarks:
    """The joined labels of each partition that a replay could read again."""

    def __init__(self) -> None:
        self._partitions: dict[int, _PartitionMarks] = defaultdict(_PartitionMarks)

    def mark(self, partition: int, prediction_id: str, identity: Identity) -> None:
        mine = self._partitions[partition]
        mine.joined[prediction_id] = identity
        unsealed = mine.unsealed
        unsealed.ids.append(prediction_id)
        unsealed.offsets.append(identity[0])
        unsealed.positions.append(identity[1])

    def mark_many(self, partition: int, ids: Sequence[str], identities: Sequence[Identity]) -> None:
        """:meth:`mark` of each id (distinct), in their order."""
        mine = self._partitions[partition]
        mine.joined.update(zip(ids, identities, strict=True))
        unsealed = mine.unsealed
        unsealed.ids.extend(ids)
        unsealed.offsets.extend([identity[0] for identity in identities])
        unsealed.positions.extend([identity[1] for identity in identities])

    def joined(self, partition: int) -> dict[str, Identity]:
        """The partition's marks by prediction id (read-only: for lookups)."""
        return self._partitions[partition].joined

    def seal(self, store: PartitionedStore) -> None:
        """Write the marks made since the last call: a record per partition (more for
        many marks, each under ``RECORD_BYTES``)."""
        for partition, mine in self._partitions.items():
            if not mine.unsealed.ids:
                continue
            unsealed, mine.unsealed = mine.unsealed, _Marks()
            for marks, value in _records(unsealed):
                key = record_key(partition, mine.next_number)
                mine.next_number += 1
                store.set(partition, key, value)
                mine.records.append(_Record(key, max(marks.offsets), marks))

    def drop_covered(self, labels_done: Callable[[int], int], store: PartitionedStore) -> None:
        """Delete the records whose labels a durable checkpoint covers (``labels_done``: a
        partition's last label offset it covers), and their marks."""
        for partition, mine in self._partitions.items():
            done = labels_done(partition)
            covered = [record for record in mine.records if record.last_offset <= done]
            if not covered:
                continue
            mine.records = [record for record in mine.records if record.last_offset > done]
            joined = mine.joined
            for record in covered:
                store.delete(partition, record.key)
                marks = record.marks
                for prediction_id, offset, position in zip(
                    marks.ids, marks.offsets, marks.positions, strict=True
                ):
                    # Unless marked again since (its summary forwarded again, and labelled)
                    if joined.get(prediction_id) == (offset, position):
                        del joined[prediction_id]

    def restore(self, partition: int, stored: Iterable[tuple[int, bytes]]) -> None:
        """After a restart: the partition's records (by number) as its table holds them."""
        mine = self._partitions[partition] = _PartitionMarks()
        for number, value in sorted(stored):
            if value[:1] != _VERSION:
                raise ValueError(
                    f"a joined-marks record of unknown version {value[:1]!r}: written by a "
                    "newer Driftline? Run the version that wrote it, or reset the worker's tables"
                )
            data = orjson.loads(value[1:])
            marks = _Marks(data["ids"], data["o"], data["i"])
            mine.joined.update(
                zip(marks.ids, zip(marks.offsets, marks.positions, strict=True), strict=True)
            )
            key = record_key(partition, number)
            mine.records.append(_Record(key, max(marks.offsets), marks))
            mine.next_number = number + 1

    def forget(self, partition: int) -> None:
        self._partitions.pop(partition, None)


def _records(marks: _Marks) -> list[tuple[_Marks, bytes]]:
    """``marks`` as stored values of at most ``RECORD_BYTES`` (halved until they fit)."""
    value = _VERSION + orjson.dumps({"ids": marks.ids, "o": marks.offsets, "i": marks.positions})
    if len(value) <= RECORD_BYTES or len(marks.ids) == 1:
        return [(marks, value)]
    half = len(marks.ids) // 2
    return _records(_slice(marks, 0, half)) + _records(_slice(marks, half, len(marks.ids)))


def _slice(marks: _Marks, start: int, end: int) -> _Marks:
    return _Marks(marks.ids[start:end], marks.offsets[start:end], marks.positions[start:end])
