"""The benchmarks' batched producer: every message on its key's default partition, in order."""

from __future__ import annotations

import asyncio

import pytest

from bench.batched_produce import produce_batched
from driftline.local.kafka import create_topics
from driftline.producer import label_partition
from tests.integration.harness import read_topic

pytestmark = pytest.mark.integration


def _number(value: bytes) -> int:
    return int(value.split(b":")[0])


def test_each_message_lands_on_its_keys_partition_in_order(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}batched"
    create_topics(kafka_bootstrap, [topic], 3)
    # ~200 KB: more than one batch (16 KB) for each partition.
    messages = [(topic, f"p{i}".encode(), b"%d:" % i + b"x" * 90) for i in range(2_000)]
    assert asyncio.run(produce_batched(kafka_bootstrap, messages)) == 2_000

    records = read_topic(kafka_bootstrap, topic)
    assert sorted(_number(r.value) for r in records) == list(range(2_000))
    for record in records:
        assert record.partition == label_partition(record.key.decode(), 3)
    for partition in range(3):
        mine = sorted((r.offset, _number(r.value)) for r in records if r.partition == partition)
        sent = [number for _, number in mine]
        assert len(sent) > 100 and sent == sorted(sent)  # in the order given


def test_a_message_without_a_key_is_refused(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}unkeyed"
    create_topics(kafka_bootstrap, [topic], 1)
    unkeyed: list[tuple[str, bytes, bytes]] = [(topic, None, b"v")]  # type: ignore[list-item]
    with pytest.raises(ValueError, match="keyed messages only"):
        asyncio.run(produce_batched(kafka_bootstrap, unkeyed))
