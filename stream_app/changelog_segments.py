"""The join table's changelog by segment: one record per partition and flush, not per key.

Stage 1 keeps one join-table entry per outstanding prediction (its summary), so written
key by key the changelog carried one Kafka message per prediction, and Faust's producer
path, at tens of microseconds a message, capped enveloped predictions with a label task
near 7,000/s. Here a flush writes each partition's changed keys as one *segment* record
(key ``~seg|<partition>|<sequence>``, split past ``SEGMENT_BYTES``), holding the new value
of each key or None for a deleted one. The table in memory stays one value per key.

Recovery: Faust's in-memory store reads the changelog as it always does (the latest record
per key: one per live segment), then :func:`expand` applies the segments of each partition
in sequence order, which replays the writes in the order they were made.

Compaction: a segment's key is never written again while it can matter, so Kafka keeps
every segment until it gets a tombstone. A segment is *dead* once each key it wrote was
written again by a later segment or deleted (:class:`SegmentLedger` counts). It is
tombstoned only when every older segment of its partition is dead too: a later segment's
deletes must outlive the older values they delete. So the changelog holds the segments from
the oldest one with a live key onwards; every entry here expires within the label horizon,
so that is about a horizon of writes, as it was key by key. Tombstones go out at the next
flush, after the writes that killed their segments were acknowledged.

Sequence numbers keep rising across restarts (the next is one past the highest restored),
so a reused number (its old record dead, possibly not yet compacted away) still sorts after
every live segment.

Only Faust's in-memory store, rebuilt from the changelog at every rebalance
(:mod:`stream_app.memory_store`), expands segments; with another store the join table is
written key by key (:class:`stream_app.state_store.FaustTableStore`).
"""

from __future__ import annotations

import base64
import struct
from collections import deque
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson

from stream_app.segment_spill import ValuesToDisk
from stream_app.state_store import FaustTableStore, compact

PREFIX = "~seg|"
SEGMENT_BYTES = 512 * 1024  # under Kafka's default 1 MB message limit, with room to spare
# 3: binary (see encode); reads 1 (JSON) and 2 (JSON, values not UTF-8 in base64) too.
FORMAT_VERSION = 3
_BINARY_HEAD = struct.Struct("<BI")  # the version (never "[", as JSON begins), header size

Write = tuple[str, bytes | None]  # a key and its new value (None: deleted)


def segment_key(partition: int, sequence: int) -> str:
    return f"{PREFIX}{partition}|{sequence:012d}"


def parse_segment_key(key: str) -> tuple[int, int]:
    """The partition and sequence number of a segment key."""
    partition, sequence = key[len(PREFIX) :].split("|")
    return int(partition), int(sequence)


def encode(writes: list[Write]) -> bytes:
    """A segment record (format 3): a version byte, the size of a JSON header
    ``[keys, sizes]`` (a value's size in bytes, -1 for a deleted key), the header, then the
    values back to back as they are. Binary, not JSON: a summary segment (most of what the
    join table holds) went as base64 inside JSON in format 2, a third more bytes on the
    changelog and an encode of every byte on the event loop."""
    keys = [key for key, _ in writes]
    sizes = [-1 if value is None else len(value) for _, value in writes]
    header = orjson.dumps([keys, sizes])
    values = [value for _, value in writes if value is not None]
    return b"".join([_BINARY_HEAD.pack(FORMAT_VERSION, len(header)), header, *values])


def decode(record: bytes) -> list[Write]:
    """The writes of a segment record of format 3, or of the JSON formats 1 and 2 that
    earlier versions wrote (a changelog written before an upgrade is still read)."""
    if record[:1] == b"[":
        return _decode_json(record)
    version, header_size = _BINARY_HEAD.unpack_from(record)
    if version != FORMAT_VERSION:
        raise _unknown_format(version)
    at = _BINARY_HEAD.size
    keys, sizes = orjson.loads(record[at : at + header_size])
    at += header_size
    writes: list[Write] = []
    for key, size in zip(keys, sizes, strict=True):
        if size < 0:
            writes.append((key, None))
            continue
        writes.append((key, record[at : at + size]))
        at += size
    if at != len(record):
        raise ValueError(f"a join-table changelog segment of {len(record)} bytes holds {at}")
    return writes


def _decode_json(record: bytes) -> list[Write]:
    """Formats 1 (values as JSON text) and 2 (and, for the rows listed, base64)."""
    version, keys, values, *rest = orjson.loads(record)
    if version not in (1, 2):
        raise _unknown_format(version)
    pairs = zip(keys, values, strict=True)
    writes = [(key, None if value is None else value.encode()) for key, value in pairs]
    for row in rest[0] if rest else ():
        writes[row] = (keys[row], base64.b64decode(values[row]))
    return writes


def _unknown_format(version: int) -> ValueError:
    return ValueError(
        f"a join-table changelog segment of format {version}; this worker reads formats 1 "
        f"to {FORMAT_VERSION}: run every worker of the deployment at the Driftline version "
        "that wrote it"
    )


def split(writes: list[Write], limit: int = SEGMENT_BYTES) -> Iterator[list[Write]]:
    """``writes`` in runs whose encoded size stays about under ``limit`` bytes."""
    run: list[Write] = []
    size = 0
    for key, value in writes:
        cost = len(key) + (4 if value is None else len(value)) + 8  # the header's key, size
        if run and size + cost > limit:
            yield run
            run, size = [], 0
        run.append((key, value))
        size += cost
    if run:
        yield run


class SegmentLedger:
    """Which segment holds each key's current value, per partition, and which are dead."""

    def __init__(self) -> None:
        self._owner: dict[int, dict[str, int]] = {}  # partition: {key: its segment}
        self._live: dict[int, dict[int, int]] = {}  # partition: {segment: keys it holds}
        # Partition: its segments, oldest first. A deque, not the dict's order: finding the
        # first key of a dict emptied from the front scans every slot deleted since its
        # last resize, and a horizon of a week holds about a million segments.
        self._order: dict[int, deque[int]] = {}
        self._next: dict[int, int] = {}
        self.dead: list[tuple[int, int]] = []  # (partition, segment) awaiting a tombstone

    def new_segment(self, partition: int) -> int:
        sequence = self._next.get(partition, 0)
        self._next[partition] = sequence + 1
        return sequence

    def record(self, partition: int, sequence: int, writes: list[Write]) -> None:
        """Segment ``sequence`` of ``partition`` wrote ``writes`` (each key once)."""
        owner = self._owner.setdefault(partition, {})
        live = self._live.setdefault(partition, {})
        held = 0
        for key, value in writes:
            before = owner.pop(key, None)
            if before is not None:
                live[before] -= 1
            if value is not None:
                owner[key] = sequence
                held += 1
        live[sequence] = held
        self._order.setdefault(partition, deque()).append(sequence)
        self._next[partition] = max(self._next.get(partition, 0), sequence + 1)

    def retire_dead_prefix(self, partition: int) -> None:
        """Queue tombstones for the partition's oldest segments while each is dead."""
        live = self._live.get(partition, {})
        order = self._order.get(partition, deque())
        while order and not live[order[0]]:
            oldest = order.popleft()
            del live[oldest]
            self.dead.append((partition, oldest))

    def segments(self, partition: int) -> list[int]:
        """The partition's segments not yet tombstoned, oldest first (for tests)."""
        return list(self._order.get(partition, ()))

    def clear(self) -> None:
        """A rebalance: the table is read again from the changelogs, and this with it."""
        self._owner.clear()
        self._live.clear()
        self._order.clear()
        self.dead.clear()
        # _next is kept: a partition taken back must not reuse its numbers in this process.


def expand(
    data: MutableMapping[Any, Any],
    key_partition: MutableMapping[Any, int],
    segment_keys: set[str],
    ledger: SegmentLedger,
    to_disk: ValuesToDisk | None = None,
) -> int:
    """Replace the restored segment records in ``data`` by the values they wrote.

    ``segment_keys``: the segment keys read during the recovery (those of partitions the
    worker does not hold were dropped from ``data`` already). ``to_disk``: where the large
    values go as they are restored. Returns how many were applied.
    """
    restored = sorted(
        (parse_segment_key(key), key) for key in segment_keys if data.get(key) is not None
    )
    for (partition, sequence), key in restored:
        writes = decode(bytes(data.pop(key)))
        key_partition.pop(key, None)
        for entry, value in writes:
            if value is None:
                data.pop(entry, None)
                key_partition.pop(entry, None)
            else:
                data[entry] = kept = compact(value)
                key_partition[entry] = partition
                if to_disk is not None:
                    to_disk.note(entry, kept)
        ledger.record(partition, sequence, writes)
    if to_disk is not None:
        to_disk.flush()
    for partition in {partition for (partition, _), _ in restored}:
        ledger.retire_dead_prefix(partition)
    segment_keys.clear()
    return len(restored)


class SegmentedTableStore(FaustTableStore):
    """A Faust table (in-memory store) whose changelog gets segments, not keys."""

    def __init__(self, table: Any, ledger: SegmentLedger) -> None:
        super().__init__(table)
        self.ledger = ledger

    async def flush(self) -> None:
        # Tombstones first: the writes that killed those segments were acknowledged at
        # the previous flush (see the module's docstring).
        pending = [
            self._table.send_changelog(
                partition, segment_key(partition, sequence), None, value_serializer="raw"
            )
            for partition, sequence in self.ledger.dead
        ]
        self.ledger.dead.clear()
        unsent, self._unsent = self._unsent, {}
        by_partition: dict[int, list[Write]] = {}
        for key, (partition, value) in unsent.items():
            by_partition.setdefault(partition, []).append((key, value))
        for partition, writes in sorted(by_partition.items()):
            for run in split(writes):
                sequence = self.ledger.new_segment(partition)
                record = encode(run)
                pending.append(
                    self._table.send_changelog(partition, segment_key(partition, sequence), record)
                )
                self.ledger.record(partition, sequence, run)
        for future in pending:
            await future
        for partition in by_partition:
            self.ledger.retire_dead_prefix(partition)
