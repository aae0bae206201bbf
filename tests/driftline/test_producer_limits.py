"""The producer helper without a broker: the message size limit and the end-of-stream marker."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from driftline.errors import ConfigurationError, InvalidEventError
from driftline.limits import MAX_MESSAGE_BYTES, MessageTooLargeError
from driftline.producer import PredictionProducer, StreamEnd
from schemas.control import parse_end_of_stream
from schemas.topics import Topics

TOPICS = Topics.with_prefix("x.")


@dataclass
class _Cluster:
    partitions: dict[str, set[int]]

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)


@dataclass
class _Client:
    cluster: _Cluster

    async def fetch_all_metadata(self) -> _Cluster:
        return self.cluster


@dataclass
class FakeKafka:
    """Stands in for AIOKafkaProducer: records what was sent and when flush was called."""

    # One predictions partition unless a test says otherwise: the producer asks how many.
    partitions: dict[str, set[int]] = field(default_factory=lambda: {TOPICS.predictions: {0}})
    sent: list[tuple[str, bytes | None, bytes, int | None]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    stopped: bool = False

    @property
    def client(self) -> _Client:
        return _Client(_Cluster(self.partitions))

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((topic, key, value, partition))
        self.log.append(f"send {topic}")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def flush(self) -> None:
        self.log.append("flush")

    async def stop(self) -> None:
        self.stopped = True


def producer_with(fake: FakeKafka, **options: Any) -> PredictionProducer:
    producer = PredictionProducer("127.0.0.1:1", topics=TOPICS, linger_seconds=60, **options)
    producer._producer = fake
    return producer


async def end_of_stream(fake: FakeKafka, watermark: float | None = None) -> StreamEnd:
    # aiokafka's producer wants a running loop when it is built.
    return await producer_with(fake).end_of_stream(watermark)


def envelopes(fake: FakeKafka) -> list[dict[str, Any]]:
    return [orjson.loads(value) for topic, _, value, _ in fake.sent if topic == TOPICS.predictions]


async def predict(producer: PredictionProducer, index: int, blob_bytes: int) -> None:
    await producer.predict(
        "churn", f"p{index}", 1_767_225_600 + index, {"blob": "x" * blob_bytes}, prediction="1"
    )


def test_envelopes_are_split_so_none_exceeds_the_limit() -> None:
    fake = FakeKafka()

    async def run() -> None:
        producer = producer_with(fake, batch_size=20)
        for i in range(20):  # 20 x 150 KB: 3 MB as one envelope
            await predict(producer, i, 150_000)
        await producer.close()

    asyncio.run(run())
    sizes = [len(value) for _, _, value, _ in fake.sent]
    assert max(sizes) <= MAX_MESSAGE_BYTES and len(sizes) == 4  # halves of 10, then of 5
    ids = [r["prediction_id"] for e in envelopes(fake) for r in e["records"]]
    assert ids == [f"p{i}" for i in range(20)]  # every record, in order
    assert fake.stopped


def test_a_record_alone_over_the_limit_is_refused_and_the_others_are_sent() -> None:
    fake = FakeKafka()

    async def run() -> None:
        producer = producer_with(fake, batch_size=3)
        await predict(producer, 0, 100)
        await predict(producer, 1, MAX_MESSAGE_BYTES)  # alone over the limit
        with pytest.raises(MessageTooLargeError) as caught:
            await predict(producer, 2, 100)  # fills the batch: the envelope is sent
        message = str(caught.value)
        assert "prediction p1 of model churn" in message
        size = len(orjson.dumps({"records": [{"features": {"blob": "x" * MAX_MESSAGE_BYTES}}]}))
        assert f"{size // 1000:,}" in message  # its size, roughly (the envelope adds a little)
        assert "1,000,000 bytes" in message and "it was not sent" in message
        assert "large blobs" in message  # what to do about it
        await producer.close()

    asyncio.run(run())
    ids = [r["prediction_id"] for e in envelopes(fake) for r in e["records"]]
    assert ids == ["p0", "p2"]


def test_an_oversized_record_found_by_flush_does_not_hold_back_other_models() -> None:
    fake = FakeKafka()

    async def run() -> None:
        producer = producer_with(fake)
        await predict(producer, 0, MAX_MESSAGE_BYTES)
        await producer.predict("other", "q0", 1_767_225_600, {"a": 1}, prediction="1")
        with pytest.raises(MessageTooLargeError):
            await producer.close()

    asyncio.run(run())
    assert [e["model_id"] for e in envelopes(fake)] == ["other"]
    assert fake.stopped  # closed even though the flush raised


def test_an_oversized_label_is_refused() -> None:
    fake = FakeKafka()

    async def run() -> None:
        producer = producer_with(fake)
        with pytest.raises(MessageTooLargeError, match="the label of prediction p1"):
            await producer.label("churn", "p1", label="x" * MAX_MESSAGE_BYTES)
        await producer.label("churn", "p2", label="1")

    asyncio.run(run())
    assert [key for _, key, _, _ in fake.sent] == [b"p2"]


def test_end_of_stream_flushes_then_marks_every_partition() -> None:
    fake = FakeKafka(partitions={TOPICS.predictions: {0, 1, 2, 3}})

    async def run() -> float:
        producer = producer_with(fake)
        await predict(producer, 0, 10)
        began = time.time()
        end = await producer.end_of_stream()
        assert end.partitions == (0, 1, 2, 3)
        assert began <= end.watermark <= time.time()  # default: now
        return end.watermark

    watermark = asyncio.run(run())
    assert fake.log[:2] == [f"send {TOPICS.predictions}", "flush"]  # the envelope goes first
    markers = fake.sent[1:]
    assert [partition for _, _, _, partition in markers] == [0, 1, 2, 3]
    assert all(parse_end_of_stream(value) == watermark for _, _, value, _ in markers)
    assert all(key is None for _, key, _, _ in markers)


def test_end_of_stream_at_a_given_moment() -> None:
    fake = FakeKafka(partitions={TOPICS.predictions: {1, 0}})
    end = asyncio.run(end_of_stream(fake, 1_777_593_600))
    assert end.watermark == 1_777_593_600.0 and end.partitions == (0, 1)
    assert {parse_end_of_stream(value) for _, _, value, _ in fake.sent} == {1_777_593_600.0}


def test_end_of_stream_refuses_a_missing_topic_without_creating_it() -> None:
    fake = FakeKafka(partitions={"elsewhere": {0}})
    with pytest.raises(ConfigurationError, match=r"does not exist.*topic prefix"):
        asyncio.run(end_of_stream(fake))
    assert fake.sent == []


def test_end_of_stream_refuses_a_watermark_that_is_not_a_time() -> None:
    fake = FakeKafka(partitions={TOPICS.predictions: {0}})
    with pytest.raises(InvalidEventError, match="finite"):
        asyncio.run(end_of_stream(fake, math.nan))
    assert fake.sent == [] and "flush" not in fake.log


def test_predictions_are_enveloped_per_partition_their_ids_join_on() -> None:
    # The worker keeps a prediction's summary where it reads the prediction: an envelope
    # of ids of one partition, sent to that partition, is joined without forwarding.
    from stream_app.label_join import join_partition

    fake = FakeKafka(partitions={TOPICS.predictions: {0, 1, 2}})

    async def run() -> None:
        producer = producer_with(fake, batch_size=10)
        for i in range(100):
            await predict(producer, i, 10)
        await producer.close()

    asyncio.run(run())
    sent = [(e, p) for t, _, e, p in fake.sent if t == TOPICS.predictions]
    ids = []
    for value, partition in sent:
        records = orjson.loads(value)["records"]
        assert len(records) <= 10
        assert {join_partition(r["prediction_id"], 3) for r in records} == {partition}
        ids += [r["prediction_id"] for r in records]
    assert sorted(ids) == sorted(f"p{i}" for i in range(100))
    per_partition = [sum(join_partition(f"p{i}", 3) == p for i in range(100)) for p in range(3)]
    assert len(sent) == sum(-(-n // 10) for n in per_partition)  # full envelopes, then the rest


def test_an_envelope_goes_once_old_enough_whichever_partition_the_next_prediction_is_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream_app.label_join import join_partition

    now = [100.0]
    monkeypatch.setattr("driftline.producer.time.monotonic", lambda: now[0])
    fake = FakeKafka(partitions={TOPICS.predictions: {0, 1, 2}})
    first = next(f"p{i}" for i in range(100) if join_partition(f"p{i}", 3) == 0)
    other = next(f"p{i}" for i in range(100) if join_partition(f"p{i}", 3) == 1)

    async def run() -> list[int | None]:
        producer = PredictionProducer("127.0.0.1:1", topics=TOPICS, linger_seconds=0.5)
        producer._producer = fake
        await producer.predict("churn", first, 1_767_225_600, {"a": 1}, prediction="1")
        now[0] += 0.6  # the first one's envelope is old enough now
        await producer.predict("churn", other, 1_767_225_601, {"a": 1}, prediction="1")
        return [partition for _, _, _, partition in fake.sent]

    # Partition 0's envelope went with the next prediction, on partition 1, which waits.
    assert asyncio.run(run()) == [0]
