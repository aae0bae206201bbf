"""Fetched records read as columns: the one seam into aiokafka's fetcher.

aiokafka turns every fetched record into a record object and then a ``ConsumerRecord`` in
the consumer thread (``PartitionRecords._unpack_records``), a few microseconds each on the
GIL the worker's stage 1 needs too. For the topics named by :data:`COLUMNAR_TOPICS` in the
task that reads the fetcher (Faust's consumer thread: see ``fetch_events``), a partition's
fetch is instead read by the native reader into one :class:`RecordColumns`, and aiokafka's
reader takes over whenever the native one declines (compressed, transactional or control
batches, another message format, a bad CRC): it then gives its usual answer, errors
included. Everything else of aiokafka is untouched: positions move exactly as its reader
moves them (``next_fetch_offset``), so seeks, pauses and rebalances behave the same.

Two names of ``aiokafka.consumer.fetcher`` are replaced, process-wide: ``MemoryRecords``
(by a wrapper that keeps the fetched bytes, which aiokafka's Cython class hides) and
``PartitionRecords`` (by a subclass that reads columns only when the context variable names
the topic). Any other consumer in the process keeps aiokafka's behaviour exactly. aiokafka
is pinned in ``pyproject.toml``, and :func:`check_seam` refuses another version.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from typing import Any

import aiokafka
from aiokafka.consumer import fetcher as aiokafka_fetcher

from driftline.errors import ConfigurationError
from stream_app import record_columns
from stream_app.record_columns import RecordColumns, read_fetch
from stream_app.seams import changed_internals

PINNED_AIOKAFKA = "0.14.0"

#: The topics the current task reads as columns (set by the consumer thread per fetch).
COLUMNAR_TOPICS: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "columnar_topics", default=frozenset()
)

_ORIGINAL_MEMORY_RECORDS = aiokafka_fetcher.MemoryRecords
_ORIGINAL_PARTITION_RECORDS = aiokafka_fetcher.PartitionRecords

# What this module relies on, by the sha256 of its source in PINNED_AIOKAFKA, and why.
SEAM: dict[str, tuple[Any, str, str]] = {
    "aiokafka.consumer.fetcher.PartitionRecords.__init__": (
        _ORIGINAL_PARTITION_RECORDS.__init__,
        "8ec1c2ae6ea1af875db73e6d01604f3edf269faf5806c67c02d1f91b456d3571",
        "keeps the records, the CRC setting and next_fetch_offset, and makes the record "
        "iterator from _unpack_records before anything is read",
    ),
    "aiokafka.consumer.fetcher.PartitionRecords._unpack_records": (
        _ORIGINAL_PARTITION_RECORDS._unpack_records,
        "b803e6d46480732c7a7faa8e784b338bcdd4e707ea67fba96c013654b04b8a08",
        "moves next_fetch_offset past each record it yields and to a batch's next offset "
        "after it (the reader here moves it the same way)",
    ),
    "aiokafka.consumer.fetcher.FetchResult.getall": (
        aiokafka_fetcher.FetchResult.getall,
        "3e717e30de5068d549dd41b231928c67a24e832a928d48bac5f485e448daa903",
        "iterates the partition records in the calling task and then moves the position "
        "to next_fetch_offset",
    ),
    "aiokafka.consumer.fetcher.Fetcher._proc_fetch_request": (
        aiokafka_fetcher.Fetcher._proc_fetch_request,
        "59bf948fff47eed580671971252454daa614df479733f3bedfefe95bc4d8ad30",
        "builds MemoryRecords from the fetched bytes and PartitionRecords from them, by the "
        "module's names",
    ),
}


def seam_changes() -> list[str]:
    """What differs from the aiokafka this module was written against (empty: nothing)."""
    if aiokafka.__version__ != PINNED_AIOKAFKA:
        return [f"the version ({aiokafka.__version__})"]
    return changed_internals(SEAM)


def check_seam() -> None:
    """Refuse an aiokafka whose internals this module relies on have changed."""
    changed = seam_changes()
    if changed:
        raise ConfigurationError(
            f"aiokafka {aiokafka.__version__} differs from {PINNED_AIOKAFKA}, which "
            f"stream_app/fetch_columns.py was written against, in: {'; '.join(changed)}. "
            f"Install aiokafka=={PINNED_AIOKAFKA} (as pyproject.toml pins it), or set "
            "DRIFTLINE_WHOLE_FETCHES=false to read one message at a time (slower)."
        )


class KeptBytes:
    """aiokafka's ``MemoryRecords``, keeping the fetched bytes for the native reader."""

    __slots__ = ("_records", "data")

    def __init__(self, bytes_data: bytes) -> None:
        self.data = bytes_data if type(bytes_data) is bytes else None
        self._records = _ORIGINAL_MEMORY_RECORDS(bytes_data)

    def size_in_bytes(self) -> int:
        return int(self._records.size_in_bytes())

    def has_next(self) -> bool:
        return bool(self._records.has_next())

    def next_batch(self) -> Any:
        return self._records.next_batch()


class ColumnarPartitionRecords(_ORIGINAL_PARTITION_RECORDS):  # type: ignore[misc,valid-type]
    """aiokafka's ``PartitionRecords``; a columnar topic's fetch comes out as one item."""

    def _unpack_records(self) -> Iterator[Any]:
        # Runs at the first read, in the reading task: its context decides.
        records = self._records
        if (
            self._tp.topic in COLUMNAR_TOPICS.get()
            and isinstance(records, KeptBytes)
            and records.data is not None
        ):
            read = read_fetch(
                self._tp.topic,
                self._tp.partition,
                records.data,
                self.next_fetch_offset,
                self._check_crcs,
            )
            if read is not None:
                columns, next_fetch_offset = read
                self.next_fetch_offset: int = next_fetch_offset
                if columns is not None:
                    yield columns
                return
        yield from super()._unpack_records()


def install() -> bool:
    """Put the two names in place (idempotent); False when the native reader is missing."""
    if record_columns.native is None:
        return False
    check_seam()
    aiokafka_fetcher.MemoryRecords = KeptBytes
    aiokafka_fetcher.PartitionRecords = ColumnarPartitionRecords
    return True


__all__ = ["COLUMNAR_TOPICS", "RecordColumns", "check_seam", "install"]
