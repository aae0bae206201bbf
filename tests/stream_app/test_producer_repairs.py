"""track_sent_topics with stand-ins for Faust's producer and aiokafka's (the real broker's
case is tests/integration/test_sent_topics.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from stream_app.producer_repairs import track_sent_topics


class Client:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def add_topic(self, topic: str) -> None:
        self.calls.append(f"track {topic}")


class Kafka:
    def __init__(self, transactional_id: str | None) -> None:
        self.transactional_id = transactional_id
        self.calls: list[str] = []
        self.client = Client(self.calls)

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> str:
        self.calls.append(f"send {topic} {value!r} {kwargs}")
        return "delivery"


class FaustProducer:
    def _new_producer(self, transactional_id: str | None = None) -> Kafka:
        return Kafka(transactional_id)


def test_each_producer_faust_creates_tracks_a_topic_before_sending_to_it() -> None:
    producer = FaustProducer()
    track_sent_topics(producer)
    for transactional_id in (None, "t-1"):
        kafka = producer._new_producer(transactional_id)
        assert kafka.transactional_id == transactional_id

        async def send_two(kafka: Kafka = kafka) -> list[str]:
            return [
                await kafka.send("a", b"1", partition=1),
                await kafka.send("b", b"2"),
            ]

        assert asyncio.run(send_two()) == ["delivery", "delivery"]
        assert kafka.calls == [
            "track a",
            "send a b'1' {'partition': 1}",
            "track b",
            "send b b'2' {}",
        ]


def test_a_faust_without_the_seam_gets_no_repair_and_no_error() -> None:
    class Other:
        pass

    other = Other()
    track_sent_topics(other)
    assert vars(other) == {}


def test_the_seams_are_still_there() -> None:
    """An upgrade that moves them would silently drop the repair: this names them."""
    from aiokafka import AIOKafkaClient
    from faust.transport.drivers.aiokafka import Producer

    assert callable(getattr(Producer, "_new_producer", None)), (
        "faust-streaming's aiokafka Producer._new_producer is gone: "
        "stream_app/producer_repairs.py no longer makes sends track their topics"
    )
    assert callable(getattr(AIOKafkaClient, "add_topic", None)), "aiokafka's add_topic is gone"
