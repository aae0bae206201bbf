"""A repair of aiokafka's producer metadata that can hold a send until it times out.

aiokafka's client refreshes metadata for the topics it tracks, or for every topic while it
tracks none, and replaces what it knew with the answer. A send tracks its topic only when
the topic is missing from the metadata at that moment. Faust refreshes the producer's
metadata after creating each topic, at start-up, when it usually tracks none: every topic
is then known and the worker's first sends (to stage 2, to the label-join topic) track
nothing. The first send to a topic that was not known yet (a changelog created later)
makes the client track that topic alone, and the refresh it starts drops every other one.
A batch still waiting for its turn then has no leader, so the sender waits for metadata
that never includes its topic, until the send timeout fails it with
``NotLeaderForPartitionError`` and nothing logged in between: measured once in CI as a
fresh worker holding a label-join batch for the whole 120 s, then stopping (exit 70).

:func:`track_sent_topics` makes every producer Faust creates track each topic it is asked
to send to, so a refresh always asks for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def track_sent_topics(producer: Any) -> None:
    """Make each aiokafka producer ``producer`` (Faust's) creates track what it sends to.

    Faust's ``_new_producer`` builds the producer for sends and each transactional one;
    a Faust without it gets no repair, not an error.
    """
    new_producer: Callable[..., Any] | None = getattr(producer, "_new_producer", None)
    if new_producer is None:
        return

    def new_tracking_producer(*args: Any, **kwargs: Any) -> Any:
        kafka = new_producer(*args, **kwargs)
        send_tracking(kafka)
        return kafka

    producer._new_producer = new_tracking_producer


def send_tracking(kafka: Any) -> None:
    """Have ``kafka`` (an ``AIOKafkaProducer``) track each topic before sending to it."""
    send = kafka.send
    client = kafka.client

    async def send_and_track(topic: str, *args: Any, **kwargs: Any) -> Any:
        # A topic already tracked costs a finished future; a new one starts a refresh
        # that asks for it with every topic tracked before.
        client.add_topic(topic)
        return await send(topic, *args, **kwargs)

    kafka.send = send_and_track
