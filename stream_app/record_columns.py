"""One partition's fetched records as columns: one object per fetch, not one per record.

The native reader (``stream_app/_record_batches.c``) walks the fetched bytes of a partition
once, without the GIL, and notes each record's offset, timestamp and where its key and
value lie in those bytes. Keys and values become ``bytes`` only when asked for; single
events of one model go to the envelope decoder joined in one buffer (:meth:`joined`)
without ever being a Python object each.
"""

from __future__ import annotations

from types import ModuleType
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

native: ModuleType | None
try:
    from stream_app import _record_batches as native
except ImportError:  # pragma: no cover - built by setup.py; without it aiokafka reads
    native = None

OFFSET, TIMESTAMP, KEY_START, KEY_LENGTH, VALUE_START, VALUE_LENGTH = range(6)


class Record(NamedTuple):
    """One record of a fetch, as the rest of the worker reads a record."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


class RecordColumns:
    """The records of one partition's fetch (or a slice of them), in offset order."""

    __slots__ = ("data", "partition", "rows", "timestamp_type", "topic")

    def __init__(
        self,
        topic: str,
        partition: int,
        data: bytes,
        rows: npt.NDArray[np.int64],
        timestamp_type: int,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.data = data
        self.rows = rows
        self.timestamp_type = timestamp_type

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def offsets(self) -> npt.NDArray[np.int64]:
        return self.rows[:, OFFSET]

    @property
    def first_offset(self) -> int:
        return int(self.rows[0, OFFSET])

    @property
    def last_offset(self) -> int:
        return int(self.rows[-1, OFFSET])

    @property
    def last_timestamp(self) -> int:
        return int(self.rows[-1, TIMESTAMP])

    @property
    def contiguous(self) -> bool:
        """Whether the offsets follow each other with no gap."""
        return self.last_offset - self.first_offset + 1 == len(self.rows)

    def value_bytes(self) -> int:
        return int(np.maximum(self.rows[:, VALUE_LENGTH], 0).sum())

    def value(self, index: int) -> bytes | None:
        start, length = self.rows[index, VALUE_START], self.rows[index, VALUE_LENGTH]
        return None if length < 0 else self.data[start : start + length]

    def values(self) -> list[bytes] | None:
        """Every value, in order; None when one is null."""
        if (self.rows[:, VALUE_LENGTH] < 0).any():
            return None
        data = self.data
        return [
            data[start : start + length]
            for start, length in self.rows[:, [VALUE_START, VALUE_LENGTH]].tolist()
        ]

    def key(self, index: int) -> bytes | None:
        start, length = self.rows[index, KEY_START], self.rows[index, KEY_LENGTH]
        return None if length < 0 else self.data[start : start + length]

    def records(self) -> list[Record]:
        """Every record as an object (for the paths that take one at a time)."""
        data, topic, partition = self.data, self.topic, self.partition
        return [
            Record(
                topic,
                partition,
                offset,
                timestamp,
                None if key_length < 0 else data[key_start : key_start + key_length],
                None if value_length < 0 else data[value_start : value_start + value_length],
            )
            for offset, timestamp, key_start, key_length, value_start, value_length in (
                self.rows.tolist()
            )
        ]

    def slices(self, size: int) -> list[RecordColumns]:
        """The records in pieces of at most ``size``, in order."""
        if len(self.rows) <= size:
            return [self]
        return [
            RecordColumns(
                self.topic,
                self.partition,
                self.data,
                self.rows[start : start + size],
                self.timestamp_type,
            )
            for start in range(0, len(self.rows), size)
        ]

    def joined(self, head: bytes, tail: bytes) -> tuple[bytes, npt.NDArray[np.int64]] | None:
        """``head``, the values joined by commas, ``tail``; and where each value ends in it.

        None when a value is null (or the native reader is missing).
        """
        if native is None:
            return None
        joined: bytes | None = native.gather(self.data, self.rows.tobytes(), head, tail)
        if joined is None:
            return None
        ends = np.cumsum(self.rows[:, VALUE_LENGTH] + 1) + (len(head) - 1)
        return joined, ends


def read_fetch(
    topic: str, partition: int, data: bytes, fetch_offset: int, check_crcs: bool
) -> tuple[RecordColumns | None, int] | None:
    """The records of a partition's fetched bytes from ``fetch_offset``, and the next offset
    to fetch; None when aiokafka's own reader has to read them (see the C module)."""
    if native is None:
        return None
    read: tuple[bytes, int, int, int] | None = native.read(data, fetch_offset, check_crcs)
    if read is None:
        return None
    raw_rows, count, next_fetch_offset, timestamp_type = read
    if count == 0:
        return None, next_fetch_offset
    rows = np.frombuffer(raw_rows, dtype=np.int64).reshape(count, 6)
    return RecordColumns(topic, partition, data, rows, timestamp_type), next_fetch_offset
