"""The native record-batch reader against aiokafka's own reader, on the same bytes.

Every fetch the native reader accepts must give exactly aiokafka's records (offsets,
timestamps, keys, values) and move the fetch position exactly as aiokafka does; what it
declines (compressed, transactional or control batches, a bad CRC) aiokafka reads.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import aiokafka
import pytest
from aiokafka.errors import CorruptRecordException
from aiokafka.record._crecords.cutil import crc32c_cython
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.errors import ConfigurationError
from stream_app.fetch_columns import _ORIGINAL_PARTITION_RECORDS as ORIGINAL_PARTITION_RECORDS
from stream_app.fetch_columns import (
    COLUMNAR_TOPICS,
    PINNED_AIOKAFKA,
    SEAM,
    ColumnarPartitionRecords,
    KeptBytes,
    check_seam,
)
from stream_app.record_columns import RecordColumns, native, read_fetch
from stream_app.stage1_inputs import InputMessage, messages_of
from tests.examples import examples

pytestmark = pytest.mark.skipif(native is None, reason="the native reader is not built")

TP = TopicPartition("predictions", 3)
LOG_APPEND = 0x08
COMPRESSION = {"gzip": 1}

records = st.lists(
    st.tuples(
        st.one_of(st.none(), st.binary(max_size=20)),  # key
        st.one_of(st.none(), st.binary(max_size=300)),  # value
        st.lists(
            st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))),
            max_size=2,
        ),
        st.integers(0, 10**6),  # timestamp delta
        st.integers(1, 3),  # offset step
    ),
    min_size=1,
    max_size=40,
)


def batch(
    base_offset: int,
    rows: list[tuple[Any, ...]],
    *,
    compression: int = 0,
    transactional: bool = False,
    log_append: bool = False,
) -> tuple[bytes, int]:
    """A v2 batch as the broker stores it (its base offset set), and its next offset."""
    builder = DefaultRecordBatchBuilder(2, compression, int(transactional), -1, -1, -1, 2**24)
    offset, first = 0, 1_767_225_600_000
    for key, value, headers, delta, step in rows:
        builder.append(offset, first + delta, key, value, headers)
        offset += step
    data = bytearray(builder.build())
    data[0:8] = struct.pack(">q", base_offset)
    if log_append:
        assert native is not None
        data[22] |= LOG_APPEND
        data[17:21] = struct.pack(">I", native.crc32c(bytes(data[21:])))
    return bytes(data), base_offset + offset - rows[-1][4] + 1


def aiokafka_read(data: bytes, fetch_offset: int) -> tuple[list[tuple[Any, ...]], int]:
    partition_records = ORIGINAL_PARTITION_RECORDS(
        TP, MemoryRecords(data), [], fetch_offset, None, None, True, 0
    )
    read = [(r.offset, r.timestamp, r.key, r.value) for r in partition_records]
    return read, partition_records.next_fetch_offset


def native_read(data: bytes, fetch_offset: int) -> tuple[list[tuple[Any, ...]], int] | None:
    read = read_fetch(TP.topic, TP.partition, data, fetch_offset, True)
    if read is None:
        return None
    columns, next_fetch_offset = read
    if columns is None:
        return [], next_fetch_offset
    assert columns.topic == TP.topic and columns.partition == TP.partition
    return [(r.offset, r.timestamp, r.key, r.value) for r in columns.records()], next_fetch_offset


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.tuples(records, st.booleans()), min_size=1, max_size=4),
    st.integers(0, 30),
    st.integers(0, 40),
)
def test_the_reader_gives_aiokafkas_records_and_next_offset(
    batches: list[tuple[list[tuple[Any, ...]], bool]], skip: int, cut: int
) -> None:
    data, offset = b"", 1000
    for rows, log_append in batches:
        built, offset = batch(offset + 5, rows, log_append=log_append)
        data += built
    data = data[: len(data) - cut]  # a partial batch at the end, as a fetch can end
    fetch_offset = 1000 + skip
    expected = aiokafka_read(data, fetch_offset)
    assert native_read(data, fetch_offset) == expected


def test_what_aiokafka_must_decide_is_declined() -> None:
    rows: list[tuple[Any, ...]] = [(b"k", b"v" * 50, [], 0, 1)] * 3
    compressed, _ = batch(0, rows, compression=COMPRESSION["gzip"])
    transactional, _ = batch(0, rows, transactional=True)
    plain, _ = batch(0, rows)
    at = plain.index(b"vvvv")
    corrupt = plain[:at] + b"w" + plain[at + 1 :]  # the CRC no longer matches
    for data in (compressed, transactional, plain + compressed):
        assert read_fetch(TP.topic, TP.partition, data, 0, True) is None
    assert read_fetch(TP.topic, TP.partition, corrupt, 0, True) is None
    with pytest.raises(CorruptRecordException):  # what the worker then meets
        aiokafka_read(corrupt, 0)
    checked_off = read_fetch(TP.topic, TP.partition, corrupt, 0, False)
    assert checked_off is not None and checked_off[0] is not None and len(checked_off[0]) == 3


def test_the_checksum_is_kafkas() -> None:
    assert native is not None
    for size in (0, 1, 7, 8, 9, 63, 1000):
        data = bytes(range(256)) * 4
        assert native.crc32c(data[:size]) == crc32c_cython(data[:size])


def test_values_join_for_the_decoder_with_their_ends() -> None:
    rows: list[tuple[Any, ...]] = [(None, b'{"a":%d}' % i, [], 0, 1) for i in range(5)]
    data, _ = batch(10, rows)
    read = read_fetch(TP.topic, TP.partition, data, 0, True)
    assert read is not None and read[0] is not None
    columns = read[0]
    joined = columns.joined(b"[", b"]")
    assert joined is not None
    values = [r[1] for r in rows]
    assert joined[0] == b"[" + b",".join(values) + b"]"
    ends = joined[1].tolist()
    assert [joined[0][end - len(v) : end] for end, v in zip(ends, values, strict=True)] == values
    assert [piece.first_offset for piece in columns.slices(2)] == [10, 12, 14]
    with_null, _ = batch(0, [(None, None, [], 0, 1), (None, b"x", [], 0, 1)])
    read = read_fetch(TP.topic, TP.partition, with_null, 0, True)
    assert read is not None and read[0] is not None and read[0].joined(b"", b"") is None


def test_only_a_task_naming_the_topic_gets_columns() -> None:
    data, next_offset = batch(7, [(b"k", b"v", [], 0, 1)] * 4)

    def partition_records() -> Any:
        return ColumnarPartitionRecords(TP, KeptBytes(data), [], 7, None, None, True, 0)

    plain = list(partition_records())
    assert [r.offset for r in plain] == [7, 8, 9, 10]

    async def columnar() -> tuple[list[Any], int]:
        COLUMNAR_TOPICS.set(frozenset({TP.topic}))
        read = partition_records()
        return list(read), read.next_fetch_offset

    async def in_a_task() -> tuple[list[Any], int]:
        return await asyncio.create_task(columnar())

    items, position = asyncio.run(in_a_task())
    assert len(items) == 1 and isinstance(items[0], RecordColumns)
    assert items[0].offsets.tolist() == [7, 8, 9, 10] and position == next_offset == 11
    assert COLUMNAR_TOPICS.get() == frozenset()  # the other task's setting stayed with it


def test_aiokafka_is_the_version_and_code_the_seam_was_written_against() -> None:
    # Fails after an aiokafka upgrade, naming each internal that changed and what
    # stream_app/fetch_columns.py relies on it for: re-read those, then update SEAM.
    assert aiokafka.__version__ == PINNED_AIOKAFKA
    check_seam()


def test_a_changed_aiokafka_internal_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "aiokafka.consumer.fetcher.FetchResult.getall"
    function, _, why = SEAM[name]
    monkeypatch.setitem(SEAM, name, (function, "0" * 64, why))
    with pytest.raises(ConfigurationError) as refused:
        check_seam()
    assert name in str(refused.value) and why in str(refused.value)
    assert f"aiokafka=={PINNED_AIOKAFKA}" in str(refused.value)


@settings(max_examples=examples(50), deadline=None)
@given(records)
def test_messages_from_columns_are_the_records(rows: list[tuple[Any, ...]]) -> None:
    data, _ = batch(40, rows)
    read = read_fetch(TP.topic, TP.partition, data, 0, True)
    assert read is not None and read[0] is not None
    expected = [
        InputMessage("label", r.topic, r.partition, r.offset, r.key, r.value or b"")
        for r in read[0].records()
    ]
    assert messages_of(read[0], "label") == expected
