"""Summary segments beyond a memory budget, kept in files on disk (issue 12 part 2).

A one-week label horizon holds every prediction of the week until its label comes: tens
of millions of summaries, gigabytes as columns. Beyond a budget, the label join writes its
oldest segments to files here and reads them back through memory maps, so a segment on disk
is the same :class:`~stream_app.summary_columns.SummarySegment` with its columns viewing the
map instead of the table's value; only its row states (one byte a row) and the id index stay
in memory.

Files: each spill writes its segments into one new file, created already unlinked
(``O_TMPFILE``) in the spill directory and mapped read-only. Nothing names it, so nothing
survives the process: after a crash, a restart or a rebalance the state is read back from
the join table's changelog, which stays the only durable copy, and spilled again. A file's
disk space is freed when its last segment is dropped (the map goes with the last view).
Segments expire in about the order they were written, so a file empties as a whole.

A recovery (:mod:`stream_app.memory_store`) moves the restored values of at least
``RESTORED_TO_DISK_BYTES`` (the segments, and the changelog records holding them) to disk
as it reads them, with :class:`ValuesToDisk`: every restored segment starts on disk.

Resident pages: a page of a map read once stays in the worker's RSS (shared and clean, the
kernel may take it back) until :meth:`SegmentSpill.release_pages` drops them from the
process; the page cache keeps them for the next read.
"""

from __future__ import annotations

import logging
import mmap
import tempfile
import weakref
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FILE_BYTES = 64 * 2**20  # a spill writes files of about this size, the last one smaller


class SegmentSpill:
    """A spill directory, a memory budget for segments, and the maps of the files written."""

    def __init__(self, directory: str | Path, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError("the memory budget for summary segments is at least 0 bytes")
        self.directory = Path(directory)
        self.budget_bytes = budget_bytes
        self._maps: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()
        self.bytes_on_disk = 0  # of files not yet freed
        self.files = 0

    def write(self, values: list[bytes]) -> list[memoryview]:
        """Write ``values`` to disk; a read-only view of each, in order, backed by the files."""
        views: list[memoryview] = []
        start = 0
        while start < len(values):
            stop, size = start, 0
            while stop < len(values) and (stop == start or size + len(values[stop]) <= FILE_BYTES):
                size += len(values[stop])
                stop += 1
            views.extend(self._write_file(values[start:stop]))
            start = stop
        return views

    def _write_file(self, values: list[bytes]) -> list[memoryview]:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.directory, prefix="driftline-spill-") as file:
                for value in values:
                    file.write(value)
                file.flush()
                mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as error:
            raise OSError(
                f"cannot write label-join segments to the spill directory {self.directory}: "
                f"{error}; give the worker a writable directory with free space (its Faust "
                "data_dir), or raise join_memory_mb"
            ) from error
        size = len(mapped)
        self.bytes_on_disk += size
        self.files += 1
        weakref.finalize(mapped, self._file_freed, size)
        self._maps.add(mapped)
        whole = memoryview(mapped)
        views, at = [], 0
        for value in values:
            views.append(whole[at : at + len(value)])
            at += len(value)
        whole.release()
        return views

    def _file_freed(self, size: int) -> None:
        self.bytes_on_disk -= size
        self.files -= 1

    def release_pages(self) -> None:
        """Drop the maps' pages from the worker's memory (they stay in the page cache)."""
        for mapped in list(self._maps):
            try:
                mapped.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # closed meanwhile, or not supported here
                continue


def default_directory(data_dir: str | Path) -> Path:
    """Where a worker spills: beside Faust's own data (its files have no names)."""
    return Path(data_dir) / "join-spill"


# A restored value at least this large (a summary segment, or a changelog record holding
# some) goes to disk as it is restored; smaller ones (window states, labels) stay.
RESTORED_TO_DISK_BYTES = 64 * 1024


class ValuesToDisk:
    """Large values of a table being restored, moved to disk a file at a time: the table
    then holds a view of each, and a recovery never holds a whole horizon in memory."""

    def __init__(
        self,
        data: MutableMapping[Any, Any],
        spill: SegmentSpill,
        accept: Callable[[bytes], bool] = lambda value: True,
    ) -> None:
        self._data = data
        self._spill = spill
        # Which values may be held as views: those only their own reader sees.
        self._accept = accept
        self._pending: list[tuple[Any, bytes]] = []
        self._size = 0

    def note(self, key: Any, value: Any) -> None:
        """``key`` was just set to ``value`` in the table."""
        if not isinstance(value, bytes) or len(value) < RESTORED_TO_DISK_BYTES:
            return
        if not self._accept(value):
            return
        self._pending.append((key, value))
        self._size += len(value)
        if self._size >= FILE_BYTES:
            self.flush()

    def flush(self) -> None:
        pending, self._pending, self._size = self._pending, [], 0
        if not pending:
            return
        views = self._spill.write([value for _, value in pending])
        for (key, value), view in zip(pending, views, strict=True):
            if self._data.get(key) is value:  # not replaced or deleted since
                self._data[key] = view
