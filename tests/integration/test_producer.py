"""The batching producer: envelopes on the real broker that the contract parser accepts."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from driftline.local.kafka import create_topics
from driftline.producer import PredictionProducer
from schemas.parsing import parse_label_message, parse_prediction_message
from schemas.topics import Topics
from tests.integration.harness import read_topic

pytestmark = pytest.mark.integration


def test_predictions_are_sent_in_envelopes_and_labels_alone(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics.with_prefix(topic_prefix)
    create_topics(kafka_bootstrap, [topics.predictions, topics.labels], 2)

    async def send() -> int:
        producer = PredictionProducer(
            kafka_bootstrap, topics=topics, batch_size=100, linger_seconds=60
        )
        async with producer:
            for i in range(250):
                await producer.predict(
                    "churn", f"p{i}", 1_767_225_600 + i, {"x": i}, prediction="1", score=0.5
                )
            await producer.label("churn", "p7", label="0", timestamp=1_767_225_700)
        return producer.sent_envelopes  # after close: the last, partial envelope is sent

    assert asyncio.run(send()) == 3  # 100 + 100 + the 50 flushed on close
    envelopes = read_topic(kafka_bootstrap, topics.predictions)
    events = [event for record in envelopes for event in parse_prediction_message(record.value)]
    assert sorted(int(e.prediction_id[1:]) for e in events) == list(range(250))
    [label] = read_topic(kafka_bootstrap, topics.labels)
    assert label.key == b"p7" and parse_label_message(label.value).label == "0"
    # Envelopes land on different partitions, so compare them in any order: 100, 100, 50.
    firsts = sorted(orjson.loads(r.value)["records"][0]["features"]["x"] for r in envelopes)
    assert firsts == [0, 100, 200]


def test_batch_size_is_validated() -> None:
    with pytest.raises(ValueError, match="between 1 and 10,000"):
        PredictionProducer("127.0.0.1:1", batch_size=0)
