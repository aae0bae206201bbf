"""The worker's producer keeps every topic it sends to in its metadata (real broker).

stream_app.producer_repairs says how aiokafka lost one: a batch queued for a topic known
only from a refresh of every topic, then a send to a new topic, whose refresh asks for
that one alone.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from driftline.local.kafka import create_topics, create_topics_async
from stream_app.settings import load_settings
from stream_app.worker import build

pytestmark = pytest.mark.integration

SEND_TIMEOUT = 6.0


def test_a_batch_queued_for_a_topic_known_from_a_full_refresh_is_delivered(
    kafka_bootstrap: str, topic_prefix: str, sqlite_url: str, tmp_path: Path
) -> None:
    known, new = f"{topic_prefix}known", f"{topic_prefix}new"
    create_topics(kafka_bootstrap, [known], 2)
    pipeline = build(
        load_settings(
            database_url=sqlite_url,
            data_dir=str(tmp_path / "faust"),
            broker=f"kafka://{kafka_bootstrap}",
            topic_prefix=topic_prefix,
            send_timeout_seconds=SEND_TIMEOUT,
        )
    )
    producer: Any = pipeline.app.producer  # Faust's, with aiokafka's producer inside
    # The batch for the known topic waits in the accumulator while the new topic's
    # refresh runs: the window the CI stall fell into, held open.
    producer.linger_ms = 300

    async def send_both() -> tuple[list[Any], float]:
        await producer.start()
        kafka = producer._ensure_producer()  # aiokafka's producer, which Faust keeps
        client = kafka.client
        try:
            # What Faust does after creating each topic, while the producer tracks none.
            await client.force_metadata_update()
            assert client.cluster.partitions_for_topic(known) == {0, 1}
            await create_topics_async(kafka_bootstrap, [new], 2)
            started = time.monotonic()
            queued = await producer.send(known, None, b"queued", 1, None, None)
            then = await producer.send(new, None, b"new", 0, None, None)
            sent = await asyncio.wait_for(asyncio.gather(queued, then), 4 * SEND_TIMEOUT)
            return list(sent), time.monotonic() - started
        finally:
            # aiokafka's own stop: Faust's waits for the app it belongs to, never started.
            await asyncio.wait_for(kafka.stop(), 30)

    (queued, then), seconds = asyncio.run(send_both())
    assert (queued.topic, queued.partition, queued.offset) == (known, 1, 0)
    assert (then.topic, then.partition, then.offset) == (new, 0, 0)
    assert seconds < SEND_TIMEOUT  # delivered, not failed (or retried) at the timeout
