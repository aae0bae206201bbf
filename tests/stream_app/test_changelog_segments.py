"""The join table's changelog by segment: what a restart reads back is what was written.

The strict path is the table written key by key: whatever a worker holds in memory after
any run of writes, deletes and flushes, a worker restoring the changelog (whole, or as
Kafka's compaction leaves it) through Faust's in-memory store must hold the same.
"""

from __future__ import annotations

import asyncio
import base64
import gc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import orjson
import pytest
from faust.types import TP
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_app import changelog_segments, segment_spill
from stream_app.changelog_segments import (
    PREFIX,
    SegmentedTableStore,
    decode,
    encode,
    segment_key,
    split,
)
from stream_app.memory_store import RebuildingMemoryStore
from stream_app.segment_spill import SegmentSpill
from tests.examples import examples

PARTITIONS = 3
APP = faust.App("segments-test", broker="kafka://127.0.0.1:1")
Record = tuple[int, str, bytes | None]


def new_store() -> RebuildingMemoryStore:
    # No table: the store is exercised alone (Faust gives it the table it belongs to).
    return RebuildingMemoryStore(
        "driftline-memory://",
        APP,
        None,  # type: ignore[arg-type]
        table_name="joins",
    )


class Table:
    """What SegmentedTableStore uses of a Faust table: its store, and a changelog."""

    def __init__(self, data: RebuildingMemoryStore, log: list[Record] | None = None) -> None:
        self.data = data
        self.log: list[Record] = log if log is not None else []

    def send_changelog(
        self, partition: int, key: str, value: bytes | None, value_serializer: Any = None
    ) -> asyncio.Future[None]:
        self.log.append((partition, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def compacted(log: list[Record], drop_tombstones: bool) -> list[Record]:
    """The log as Kafka's cleaner leaves it: each key's last record, in log order."""
    last = {key: index for index, (_, key, _) in enumerate(log)}
    kept = [record for index, record in enumerate(log) if last[record[1]] == index]
    return [r for r in kept if not (drop_tombstones and r[2] is None)]


async def restored(
    records: list[Record], spill: SegmentSpill | None = None
) -> RebuildingMemoryStore:
    """A new worker's table, read back from the changelog as Faust's recovery reads it
    (``spill``: large values to disk as they are read, as the worker's join table)."""
    store = new_store()
    store.spill = spill
    events: list[Any] = [
        SimpleNamespace(key=key, value=value, message=SimpleNamespace(value=value, partition=p))
        for p, key, value in records
    ]
    store.apply_changelog_batch(events, lambda key: key, lambda value: value)
    active = {TP("joins-changelog", p) for p in range(PARTITIONS)}
    await store.on_recovery_completed(active, set())
    return store


def restore(records: list[Record]) -> RebuildingMemoryStore:
    return asyncio.run(restored(records))


def key_of(partition: int, index: int) -> str:
    return f"{partition}|prediction-{index}"


Op = tuple[str, int, int, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(["set", "set", "delete", "flush"]),
        st.integers(0, PARTITIONS - 1),
        st.integers(0, 12),
        st.integers(0, 5),
    ),
    max_size=60,
)


def run(store: SegmentedTableStore, steps: list[Op]) -> None:
    async def go() -> None:
        for kind, partition, index, value in steps:
            key = key_of(partition, index)
            if kind == "set":
                store.set(partition, key, b'{"k":"p","y":%d}' % value)
            elif kind == "delete":
                store.delete(partition, key)
            else:
                await store.flush()
        await store.flush()
        await store.flush()  # the tombstones the last flush's writes made due

    asyncio.run(go())


def restored_equal(table: Table, records: list[Record]) -> RebuildingMemoryStore:
    restored = restore(records)
    assert dict(restored.data) == dict(table.data.data)
    assert restored._key_partition == {key: int(key.split("|")[0]) for key in table.data.data}
    return restored


@settings(max_examples=examples(150), deadline=None)
@given(first=ops, second=ops, drop_tombstones=st.booleans())
def test_a_restart_reads_back_what_was_written_key_by_key(
    first: list[Op], second: list[Op], drop_tombstones: bool
) -> None:
    table = Table(new_store())
    run(SegmentedTableStore(table, table.data.segments), first)
    for records in (table.log, compacted(table.log, drop_tombstones)):
        restored_equal(table, records)

    # The restarted worker writes on, numbering after what it restored; restored again,
    # from the whole log or what compaction leaves of it, it is still the same table.
    restored = restore(compacted(table.log, drop_tombstones))
    again = Table(restored, list(table.log))
    run(SegmentedTableStore(again, restored.segments), second)
    for records in (again.log, compacted(again.log, drop_tombstones)):
        restored_equal(again, records)


def test_one_record_per_partition_and_flush() -> None:
    table = Table(new_store())
    store = SegmentedTableStore(table, table.data.segments)
    for index in range(1_000):
        store.set(index % 2, key_of(index % 2, index), b'{"k":"p"}')
    asyncio.run(store.flush())
    assert [(p, key) for p, key, _ in table.log] == [(0, segment_key(0, 0)), (1, segment_key(1, 0))]
    assert len(decode(table.log[0][2] or b"")) == 500


def test_a_segment_is_tombstoned_once_it_and_every_older_one_is_dead() -> None:
    table = Table(new_store())
    store = SegmentedTableStore(table, table.data.segments)

    def flush() -> list[Record]:
        before = len(table.log)
        asyncio.run(store.flush())
        return [r for r in table.log[before:] if r[2] is None]

    store.set(0, "0|a", b"1")
    assert flush() == []  # segment 0: a
    store.set(0, "0|b", b"2")
    assert flush() == []  # segment 1: b
    store.delete(0, "0|b")
    assert flush() == []  # segment 2 deletes b: segment 1 is dead, but 0 still holds a
    assert table.data.segments.segments(0) == [0, 1, 2]
    store.delete(0, "0|a")
    assert flush() == []  # segment 3 deletes a: 0 to 3 are dead, tombstoned next flush
    assert flush() == [(0, segment_key(0, n), None) for n in range(4)]
    assert compacted(table.log, drop_tombstones=True) == []
    assert dict(restore(table.log).data) == {}


def test_a_flush_larger_than_a_segment_is_split() -> None:
    writes: list[tuple[str, bytes | None]] = [(f"0|{n}", b"x" * 100) for n in range(50)]
    runs = list(split(writes, limit=1_000))
    assert [w for run_ in runs for w in run_] == writes
    assert len(runs) > 1 and all(len(encode(run_)) < 1_500 for run_ in runs)


def test_a_segment_of_an_unknown_format_names_what_to_do() -> None:
    binary = b"\x09" + encode([("0|a", b"1")])[1:]
    for record in (binary, b'[9,["0|a"],["1"],[]]'):
        with pytest.raises(ValueError, match="format 9; this worker reads formats 1 to 3"):
            decode(record)


def test_a_segment_record_cut_short_is_refused() -> None:
    record = encode([("0|a", b"12345")])
    with pytest.raises(ValueError, match="holds"):
        decode(record[:-2])


@given(
    st.lists(
        st.tuples(st.text(max_size=12), st.one_of(st.none(), st.binary(max_size=40))),
        max_size=20,
    )
)
def test_binary_values_round_trip_whatever_their_bytes(
    writes: list[tuple[str, bytes | None]],
) -> None:
    assert decode(encode(writes)) == writes


def test_binary_values_round_trip_and_formats_1_and_2_are_still_read() -> None:
    writes: list[tuple[str, bytes | None]] = [
        ("0#c1", bytes(range(256))),
        ("0|a", b'{"k":"l"}'),
        ("0|b", None),
        ("0|\u00e9", "\u00e9".encode()),
    ]
    assert decode(encode(writes)) == writes
    assert not encode(writes).startswith(b"[")  # no JSON, no base64: the values as they are
    assert decode(b'[1,["0|a","0|b"],["{}",null]]') == [("0|a", b"{}"), ("0|b", None)]
    format_2 = orjson.dumps(
        [2, ["0#c1", "0|a"], [base64.b64encode(b"\xff\x00").decode(), "{}"], [0]]
    )
    assert decode(format_2) == [("0#c1", b"\xff\x00"), ("0|a", b"{}")]


def test_segment_keys_never_collide_with_table_keys() -> None:
    assert segment_key(2, 17).startswith(PREFIX)
    assert changelog_segments.parse_segment_key(segment_key(2, 17)) == (2, 17)
    assert not key_of(2, 17).startswith(PREFIX)


def test_a_recovery_puts_large_values_on_disk_as_it_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Summary segments (large values) and the records holding them go to spill files
    while they are read: a recovery does not hold a horizon of them in memory."""
    monkeypatch.setattr(segment_spill, "FILE_BYTES", 300_000)  # several files
    table = Table(new_store())
    store = SegmentedTableStore(table, table.data.segments)

    async def write() -> None:
        for index in range(6):
            # A summary segment's first bytes; binary: base64 in its record.
            large = b"DLS" + bytes([index]) * 70_000 + b"\xff"
            store.set(index % PARTITIONS, key_of(index % PARTITIONS, index), large)
            store.set(index % PARTITIONS, key_of(index % PARTITIONS, 100 + index), b"small")
            await store.flush()
        store.set(0, key_of(0, 200), b"a large label" * 10_000)  # not a segment: bytes
        await store.flush()

    asyncio.run(write())
    spill = SegmentSpill(tmp_path, 0)
    reading = new_store()
    reading.spill = spill
    events: list[Any] = [
        SimpleNamespace(key=key, value=value, message=SimpleNamespace(value=value, partition=p))
        for p, key, value in table.log
    ]
    reading.apply_changelog_batch(events, lambda key: key, lambda value: value)
    records = {k: v for k, v in reading.data.items() if k.startswith(changelog_segments.PREFIX)}
    assert records and all(isinstance(v, memoryview) for v in records.values())
    active = {TP("joins-changelog", p) for p in range(PARTITIONS)}
    asyncio.run(reading.on_recovery_completed(active, set()))
    assert {k: bytes(v) for k, v in reading.data.items()} == dict(table.data.data)
    on_disk = {k for k, v in reading.data.items() if isinstance(v, memoryview)}
    assert on_disk == {key_of(i % PARTITIONS, i) for i in range(6)}, "large segments only"
    del records
    gc.collect()
    # The records' files are freed once they are expanded; the segments' stay.
    assert spill.bytes_on_disk == sum(len(reading.data[key]) for key in on_disk)
