"""A producer for model-serving services: predictions and labels, batched into envelopes.

One Kafka message per prediction caps a consumer at Faust's per-message cost; envelopes of
a few hundred records (the ``records`` form of the contract) move that cost from each
prediction to each batch. :class:`PredictionProducer` collects predictions per model and
sends an envelope when it holds ``batch_size`` records or ``linger_seconds`` have passed,
keyed by the first prediction id. Labels go one per message, keyed by ``prediction_id``
with Kafka's default partitioner, so each meets its prediction's summary (stage 1 forwards
summaries of enveloped predictions to the partition their labels hash to).

Examples
--------
::

    async with PredictionProducer("127.0.0.1:19092") as producer:
        await producer.predict("churn", "p-1", time.time(), {"age": 42}, prediction="1", score=0.8)
        await producer.label("churn", "p-1", label="0")
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.topics import Topics


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
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise ValueError(f"batch_size must be between 1 and 10,000, got {batch_size}")
        self.topics = topics or Topics()
        self.batch_size = batch_size
        self.linger_seconds = linger_seconds
        self.model_version = model_version
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=5, acks="all", max_request_size=8 << 20
        )
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._oldest: dict[str, float] = {}
        self.sent_envelopes = 0

    async def __aenter__(self) -> PredictionProducer:
        await self._producer.start()
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
        """Queue one prediction; sends its model's envelope when full or old enough."""
        record: dict[str, Any] = {
            "prediction_id": prediction_id,
            "timestamp": timestamp,
            "features": features,
            "prediction": prediction,
        }
        if score is not None:
            record["score"] = score
        batch = self._pending.setdefault(model_id, [])
        self._oldest.setdefault(model_id, time.monotonic())
        batch.append(record)
        if len(batch) >= self.batch_size or (
            time.monotonic() - self._oldest[model_id] >= self.linger_seconds
        ):
            await self._send(model_id)

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
        await self._producer.send(
            self.topics.labels, key=prediction_id.encode(), value=orjson.dumps(event)
        )

    async def flush(self) -> None:
        """Send every queued envelope and wait until the broker has them."""
        for model_id in list(self._pending):
            await self._send(model_id)
        await self._producer.flush()

    async def close(self) -> None:
        await self.flush()
        await self._producer.stop()

    async def _send(self, model_id: str) -> None:
        records = self._pending.pop(model_id, [])
        self._oldest.pop(model_id, None)
        if not records:
            return
        envelope = {"model_id": model_id, "model_version": self.model_version, "records": records}
        key = records[0]["prediction_id"].encode()
        await self._producer.send(self.topics.predictions, key=key, value=orjson.dumps(envelope))
        self.sent_envelopes += 1
