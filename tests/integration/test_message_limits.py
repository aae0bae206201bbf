"""One message size limit on the real broker: the producer helper, the broker and the worker.

- The producer helper refuses an envelope over ``MAX_MESSAGE_BYTES`` with a clear error,
  and the broker takes one just under it (the two agree).
- A message just under the limit whose dead letter would not be (control characters
  escape to six bytes in JSON) reaches the dead-letter topic truncated, within the limit,
  and the worker goes on to process the next valid event.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from driftline.limits import MAX_MESSAGE_BYTES, MessageTooLargeError
from driftline.local.kafka import create_topics
from driftline.producer import PredictionProducer
from schemas.outbound import DEFAULT_MAX_PAYLOAD_BYTES, DeadLetter
from schemas.topics import Topics
from tests.integration.harness import WorkerProcess, read_topic, register, wait_for
from tests.stream_app import scenario

pytestmark = pytest.mark.integration


def test_producer_refuses_an_envelope_over_the_limit_and_the_broker_takes_one_under_it(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics.with_prefix(topic_prefix)
    create_topics(kafka_bootstrap, [topics.predictions, topics.labels], 1)

    async def send() -> str:
        producer = PredictionProducer(kafka_bootstrap, topics=topics, batch_size=1)
        async with producer:
            # Just under the limit once in an envelope: the broker must take it.
            await producer.predict("churn", "fits", 1_767_225_600, {"blob": "x" * 999_800}, "1")
            with pytest.raises(MessageTooLargeError) as refused:
                await producer.predict(
                    "churn", "too-big", 1_767_225_600, {"blob": "x" * MAX_MESSAGE_BYTES}, "1"
                )
            await producer.predict("churn", "after", 1_767_225_600, {"blob": "small"}, "1")
        return str(refused.value)

    message = asyncio.run(send())
    assert "prediction too-big of model churn is 1,000,1" in message
    assert "over Driftline's limit of 1,000,000 bytes" in message and "large blobs" in message
    records = read_topic(kafka_bootstrap, topics.predictions)
    sizes = {orjson.loads(r.value)["records"][0]["prediction_id"]: len(r.value) for r in records}
    assert set(sizes) == {"fits", "after"}
    assert MAX_MESSAGE_BYTES - 200 < sizes["fits"] <= MAX_MESSAGE_BYTES


def stats(path: Path) -> dict[str, Any]:
    try:
        found: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet
        return {}
    return found


async def send_raw(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    # A raw client with aiokafka's defaults (max_request_size 1 MiB), as a foreign producer.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()


def test_a_near_limit_invalid_message_is_dead_lettered_truncated_and_the_worker_goes_on(
    kafka_bootstrap: str, topic_prefix: str, sqlite_url: str, tmp_path: Path
) -> None:
    register(sqlite_url)
    stats_path = tmp_path / "stats.json"
    worker = WorkerProcess(
        kafka_bootstrap,
        sqlite_url,
        topic_prefix,
        1,
        tmp_path / "w",
        {"STATS_FILE": str(stats_path)},
    )
    worker.create_topics()
    worker.start()
    try:
        # Invalid JSON (raw control characters in a string), 999,900 bytes: within the
        # limit, but kept whole-ish in a dead letter it would be ~6 MB of \\u0001 escapes.
        head = b'{"model_id": "churn", "prediction_id": "huge", "note": "'
        huge = head + b"\x01" * (MAX_MESSAGE_BYTES - 100 - len(head) - 2) + b'"}'
        valid = next(scenario.events(1, 1, drift_from=99, decay_from=99))
        asyncio.run(
            send_raw(
                kafka_bootstrap,
                [
                    (worker.topics.predictions, b"huge", huge),
                    (
                        worker.topics.predictions,
                        valid.prediction_id.encode(),
                        valid.prediction_json(),
                    ),
                ],
            )
        )
        counted = wait_for(
            lambda: (s := stats(stats_path)).get("predictions") == 1 and s,
            60,
            "the worker to process the valid event after the huge one",
        )
        assert counted["dead_letters"] == 1
        [record] = wait_for(
            lambda: read_topic(kafka_bootstrap, worker.topics.dead_letter, timeout=10),
            30,
            "the dead letter",
        )
        assert len(record.value) <= MAX_MESSAGE_BYTES
        letter = DeadLetter.from_json_bytes(record.value)
        assert record.key == b"huge"
        assert letter.payload_truncated and letter.payload_encoding == "utf-8"
        assert letter.payload_size == len(huge)
        assert letter.payload_sha256 == hashlib.sha256(huge).hexdigest()
        kept = letter.payload_bytes()
        assert kept is not None and huge.startswith(kept)
        assert len(kept) > DEFAULT_MAX_PAYLOAD_BYTES // 6 - len(head)
        assert worker.process is not None and worker.process.poll() is None
    finally:
        assert worker.stop() == 0
