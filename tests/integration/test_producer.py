"""The batching producer: envelopes on the real broker that the contract parser accepts."""

from __future__ import annotations

import asyncio

import pytest

from driftline.local.kafka import create_topics
from driftline.producer import PredictionProducer, label_partition
from schemas.parsing import parse_label_message, parse_labels_message, parse_prediction_message
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

    sent = asyncio.run(send())  # after close: each partition's last, partial envelope too
    envelopes = read_topic(kafka_bootstrap, topics.predictions)
    assert len(envelopes) == sent
    per_partition = [sum(label_partition(f"p{i}", 2) == p for i in range(250)) for p in range(2)]
    assert sent == sum(-(-n // 100) for n in per_partition)  # 100 a message at most
    events = [event for record in envelopes for event in parse_prediction_message(record.value)]
    assert sorted(int(e.prediction_id[1:]) for e in events) == list(range(250))
    for record in envelopes:  # each on the partition its ids join on
        ids = [e.prediction_id for e in parse_prediction_message(record.value)]
        assert {label_partition(i, 2) for i in ids} == {record.partition}
    [label] = read_topic(kafka_bootstrap, topics.labels)
    assert label.key == b"p7" and parse_label_message(label.value).label == "0"


def test_batch_size_is_validated() -> None:
    with pytest.raises(ValueError, match="between 1 and 10,000"):
        PredictionProducer("127.0.0.1:1", batch_size=0)


def test_labels_go_in_envelopes_to_the_partition_they_join_on(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topics = Topics.with_prefix(topic_prefix)
    create_topics(kafka_bootstrap, [topics.predictions, topics.labels], 3)
    labels = [(f"p{i}", i % 2, 1_767_225_600.0 + i) for i in range(250)]

    async def send() -> int:
        async with PredictionProducer(kafka_bootstrap, topics=topics, batch_size=40) as producer:
            return await producer.labels("churn", labels)

    sent = asyncio.run(send())
    records = read_topic(kafka_bootstrap, topics.labels)
    assert len(records) == sent
    per_partition = {p: sum(label_partition(i, 3) == p for i, _, _ in labels) for p in range(3)}
    assert sent == sum(-(-n // 40) for n in per_partition.values())  # 40 a message at most
    got = []
    for record in records:
        events = parse_labels_message(record.value)
        assert all(label_partition(e.prediction_id, 3) == record.partition for e in events)
        got += [(e.prediction_id, e.label, e.timestamp.timestamp()) for e in events]
    assert sorted(got) == sorted(labels)


def test_the_producer_partitions_labels_as_the_worker_joins_them() -> None:
    from stream_app.label_join import join_partition

    ids = [f"p-{i}" for i in range(2000)] + ["", "ü", "a" * 300]
    for n in (1, 3, 12):
        assert [label_partition(i, n) for i in ids] == [join_partition(i, n) for i in ids]
