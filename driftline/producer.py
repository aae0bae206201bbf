"""A producer for model-serving services: predictions and labels, batched into envelopes.

One Kafka message per prediction caps a consumer at Faust's per-message cost; envelopes of
a few hundred records (the ``records`` form of the contract) move that cost from each
prediction to each batch. :class:`PredictionProducer` collects predictions per model and
per partition of the predictions topic their ids hash to (Kafka's default partitioner,
the partition where the worker joins a prediction to its label), and sends an envelope to
that partition when it holds ``batch_size`` records or ``linger_seconds`` have passed. So
the worker keeps each summary where it read the prediction; an envelope mixing partitions
(any other producer's) works too, at the cost of forwarding summaries to their partitions.
A label goes alone (:meth:`~PredictionProducer.label`), keyed by ``prediction_id`` with
Kafka's default partitioner, so it meets its prediction's summary; many labels go in
envelopes (:meth:`~PredictionProducer.labels`), one per such partition.

No message is larger than :data:`driftline.limits.MAX_MESSAGE_BYTES`: an envelope that
would be is split, and a single record (or label) that alone is is refused with
:class:`~driftline.limits.MessageTooLargeError` while the rest of its batch is sent.

After a historical replay, :meth:`PredictionProducer.end_of_stream` tells the workers
that nothing older than a moment will follow, so the last windows close now rather than
a window plus its lateness of wall-clock time later (see :mod:`schemas.control`).

Examples
--------
::

    async with PredictionProducer("127.0.0.1:19092") as producer:
        await producer.predict("churn", "p-1", time.time(), {"age": 42}, prediction="1", score=0.8)
        await producer.label("churn", "p-1", label="0")
        await producer.end_of_stream()  # after a replay: close the last windows now
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from driftline.errors import ConfigurationError, ServiceError
from driftline.kafka_security import KafkaSecurity, explain
from driftline.limits import (
    BROKER_MESSAGE_MAX_BYTES,
    MAX_MESSAGE_BYTES,
    MessageTooLargeError,
    too_large,
)
from schemas.control import end_of_stream_message
from schemas.topics import Topics


@dataclass(frozen=True)
class StreamEnd:
    """What :meth:`PredictionProducer.end_of_stream` published: the watermark, and where."""

    watermark: float
    partitions: tuple[int, ...]


def label_partition(prediction_id: str, n_partitions: int) -> int:
    """The partition Kafka's default partitioner gives a label keyed by ``prediction_id``:
    where the worker joins it (``stream_app.stage1.join_partition``; a test holds them equal).
    """
    return int(murmur2(prediction_id.encode()) & 0x7FFFFFFF) % n_partitions


class PredictionProducer:
    """Batches predictions into envelopes; flushes on size, age and ``close()``."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topics: Topics | None = None,
        batch_size: int = 500,
        linger_seconds: float = 0.5,
        model_version: str = "",
        security: KafkaSecurity | None = None,
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise ValueError(f"batch_size must be between 1 and 10,000, got {batch_size}")
        self.topics = topics or Topics()
        self.batch_size = batch_size
        self.linger_seconds = linger_seconds
        self.model_version = model_version
        # TLS, mutual TLS or SASL as DRIFTLINE_KAFKA_* say (driftline/kafka_security.py).
        self.security = security or KafkaSecurity.load()
        self.bootstrap = bootstrap
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            linger_ms=5,
            acks="all",
            # A backstop only: envelopes are split at MAX_MESSAGE_BYTES before they get here;
            # this bound adds the key and the record-batch header, as the broker counts.
            max_request_size=BROKER_MESSAGE_MAX_BYTES,
            **self.security.client_options(),
        )
        # Per (model, partition of the predictions topic): the queued records.
        self._pending: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._oldest: dict[tuple[str, int], float] = {}
        self._prediction_partitions: int | None = None
        self.sent_envelopes = 0

    async def __aenter__(self) -> PredictionProducer:
        try:
            await self._producer.start()
        except BaseException as error:
            # A broker that cannot be reached: release the client's connections and tasks.
            await self._producer.stop()
            if self.security.security_protocol != "PLAINTEXT" and isinstance(error, Exception):
                # What a TLS or SASL setting causes, in one line naming the setting.
                raise ServiceError(explain(error, self.security, self.bootstrap)) from None
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def predict(
        self,
        model_id: str,
        prediction_id: str,
        timestamp: float,
        features: dict[str, Any],
        prediction: Any,
        score: float | list[float] | None = None,
    ) -> None:
        """Queue one prediction; sends its envelope when full or old enough.

        Raises
        ------
        ConfigurationError
            When the predictions topic does not exist (asked once, at the first call).
        """
        record: dict[str, Any] = {
            "prediction_id": prediction_id,
            "timestamp": timestamp,
            "features": features,
            "prediction": prediction,
        }
        if score is not None:
            record["score"] = score
        if self._prediction_partitions is None:
            found = await self._partitions(self.topics.predictions)
            self._prediction_partitions = len(found)
        key = (model_id, label_partition(prediction_id, self._prediction_partitions))
        now = time.monotonic()
        batch = self._pending.setdefault(key, [])
        self._oldest.setdefault(key, now)
        batch.append(record)
        if len(batch) >= self.batch_size:
            await self._send(key)
        # Every envelope old enough goes, not only this one's: a partition's envelope must
        # not wait for the next prediction that happens to hash to its partition. Entries
        # enter _oldest when their envelope starts and leave when it is sent, so the first
        # is the oldest.
        while self._oldest:
            waiting, since = next(iter(self._oldest.items()))
            if now - since < self.linger_seconds:
                break
            await self._send(waiting)

    async def label(
        self, model_id: str, prediction_id: str, label: Any, timestamp: float | None = None
    ) -> None:
        """Send one label, keyed by its prediction id."""
        event = {
            "model_id": model_id,
            "prediction_id": prediction_id,
            "label": label,
            "timestamp": time.time() if timestamp is None else timestamp,
        }
        value = orjson.dumps(event)
        if len(value) > MAX_MESSAGE_BYTES:
            raise too_large(
                f"the label of prediction {prediction_id} of model {model_id}", len(value)
            )
        await self._producer.send(self.topics.labels, key=prediction_id.encode(), value=value)

    async def labels(self, model_id: str, labels: Iterable[tuple[str, Any, float | None]]) -> int:
        """Send many labels (``(prediction_id, label, timestamp or None for now)``) in
        envelopes, and wait until the broker has them; returns how many envelopes.

        Each envelope goes to the partition of the labels topic its labels' prediction ids
        hash to (Kafka's default partitioner), where the worker joins them to their
        predictions: labels are grouped by that partition first.

        Raises
        ------
        MessageTooLargeError
            When a label alone exceeds the limit; every other label was sent.
        ConfigurationError
            When the labels topic does not exist.
        """
        n_partitions = len(await self._partitions(self.topics.labels))
        now = time.time()
        groups: dict[int, list[dict[str, Any]]] = {}
        for prediction_id, label, timestamp in labels:
            record = {
                "prediction_id": prediction_id,
                "label": label,
                "timestamp": now if timestamp is None else timestamp,
            }
            groups.setdefault(label_partition(prediction_id, n_partitions), []).append(record)
        before = self.sent_envelopes
        refused: list[tuple[str, int]] = []
        head = {"model_id": model_id}
        for partition, records in sorted(groups.items()):
            for start in range(0, len(records), self.batch_size):
                chunk = records[start : start + self.batch_size]
                refused += await self._send_envelopes(self.topics.labels, head, chunk, partition)
        await self._producer.flush()
        if refused:
            prediction_id, size = refused[0]
            others = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise too_large(f"the label of prediction {prediction_id}{others}", size)
        return self.sent_envelopes - before

    async def flush(self) -> None:
        """Send every queued envelope and wait until the broker has them.

        Raises
        ------
        MessageTooLargeError
            When a prediction alone exceeds the limit; every other queued one was sent.
        """
        refused: list[Exception] = []
        for key in list(self._pending):
            try:
                await self._send(key)
            except MessageTooLargeError as error:  # send the other models' envelopes first
                refused.append(error)
        await self._producer.flush()
        if refused:
            raise refused[0]

    async def end_of_stream(self, watermark: float | None = None) -> StreamEnd:
        """Say that every prediction before ``watermark`` has been published.

        Flushes the queued envelopes, then publishes one end-of-stream marker to every
        partition of the predictions topic and waits until the broker has them all. Each
        worker's partition watermark moves to ``watermark`` (epoch seconds, default: now),
        so every window that ends, plus its allowed lateness, by then closes without
        waiting for the wall clock. Predictions older than ``watermark`` sent afterwards
        count as late. Call it at the end of a historical replay (backfill); a live
        service does not need it.

        Raises
        ------
        ConfigurationError
            When the predictions topic does not exist (wrong prefix, topics not created).
        """
        moment = time.time() if watermark is None else float(watermark)
        marker = end_of_stream_message(moment)  # refuses NaN and infinities before sending
        await self.flush()
        partitions = await self._partitions(self.topics.predictions)
        # Explicit partition numbers: the marker must reach every partition, which no key
        # or partitioner guarantees. Each is behind this producer's earlier envelopes of
        # its partition, because the flush above waited for them.
        sent = [
            await self._producer.send(self.topics.predictions, value=marker, partition=partition)
            for partition in partitions
        ]
        await asyncio.gather(*sent)  # delivery reports: raises if the broker refused one
        return StreamEnd(moment, partitions)

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def _partitions(self, topic: str) -> tuple[int, ...]:
        # Metadata of every topic rather than of this one: asking for one topic by name
        # auto-creates it (with one partition) on brokers that allow that, and a marker
        # sent to a mistyped topic would hide the mistake.
        cluster = await self._producer.client.fetch_all_metadata()
        found = cluster.partitions_for_topic(topic)
        if not found:
            raise ConfigurationError(
                f"topic {topic!r} does not exist on the broker; check the topic prefix (the "
                "worker's DRIFTLINE_TOPIC_PREFIX) or create the topics first"
            )
        return tuple(sorted(found))

    async def _send(self, key: tuple[str, int]) -> None:
        records = self._pending.pop(key, [])
        self._oldest.pop(key, None)
        model_id, partition = key
        refused = await self._send_records(model_id, records, partition)
        if refused:
            prediction_id, size = refused[0]
            others = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise too_large(f"prediction {prediction_id} of model {model_id}{others}", size)

    async def _send_records(
        self, model_id: str, records: list[dict[str, Any]], partition: int
    ) -> list[tuple[str, int]]:
        """Send ``records`` in envelopes within the limit; returns the ones that cannot be."""
        head = {"model_id": model_id, "model_version": self.model_version}
        return await self._send_envelopes(self.topics.predictions, head, records, partition)

    async def _send_envelopes(
        self,
        topic: str,
        head: dict[str, Any],
        records: list[dict[str, Any]],
        partition: int | None,
    ) -> list[tuple[str, int]]:
        """Send ``records`` under ``head`` in envelopes within the limit, keyed by the first
        prediction id (or to ``partition``); returns the ones that alone exceed it."""
        if not records:
            return []
        value = orjson.dumps({**head, "records": records})
        if len(value) > MAX_MESSAGE_BYTES:
            if len(records) == 1:
                return [(records[0]["prediction_id"], len(value))]
            # Halves until each fits: rare (records of ~2 KB in an envelope of 500), so
            # the serializations this repeats do not matter.
            half = len(records) // 2
            first = await self._send_envelopes(topic, head, records[:half], partition)
            return first + await self._send_envelopes(topic, head, records[half:], partition)
        key = records[0]["prediction_id"].encode()
        await self._producer.send(topic, key=key, value=value, partition=partition)
        self.sent_envelopes += 1
        return []
