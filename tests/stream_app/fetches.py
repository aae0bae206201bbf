"""Prediction and label messages as stage 1 gets them from a fetch: real record batches,
read by the native reader into columns (for tests and the in-process profile)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from stream_app.record_columns import read_fetch
from stream_app.stage1_inputs import InputMessage, StageInput, columnar_inputs


def fetched(messages: Sequence[InputMessage], size: int = 7) -> list[StageInput]:
    """One topic partition's consecutive messages as the native reader reads their record
    batch, and stage 1 then gets them."""
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 2**24)
    first = messages[0].offset
    for message in messages:
        builder.append(message.offset - first, 1_767_225_600_000, message.key, message.value, [])
    data = bytearray(builder.build())
    data[0:8] = first.to_bytes(8, "big", signed=True)
    head = messages[0]
    read = read_fetch(head.topic, head.partition, bytes(data), first, True)
    assert read is not None and read[0] is not None
    return columnar_inputs(read[0], head.kind, size)


def as_fetches(batch: Sequence[InputMessage], size: int = 7) -> list[Any]:
    """A batch of one topic as whole fetches: each partition's run of consecutive offsets
    is one."""
    out: list[Any] = []
    by_partition: dict[int, list[InputMessage]] = {}
    for message in batch:
        run = by_partition.setdefault(message.partition, [])
        if run and run[-1].offset + 1 != message.offset:
            out.extend(fetched(run, size))
            run.clear()
        run.append(message)
    for run in by_partition.values():
        if run:
            out.extend(fetched(run, size))
    return out
