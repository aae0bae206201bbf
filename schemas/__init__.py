"""Event contracts (prediction, label, retrain trigger, dead letter), their JSON Schemas,
topic names and the per-model configuration.

Depends on nothing of ours but :mod:`driftline.errors`, so every package may import it.
The usual path on the stream::

    events = parse_prediction_message(message.value)   # InvalidEventError → dead letter
    label = parse_label_message(message.value)
    letter = DeadLetter.from_message(str(exc), topic=..., partition=..., offset=..., value=...)
    producer.send(topics.dead_letter, key=message.key, value=letter.to_json_bytes())

The JSON Schemas for producers in other languages are shipped in ``schemas/json/`` and
rewritten with ``python -m schemas.generate``.
"""

from schemas.events import (
    MAX_BATCH_RECORDS,
    LabelEvent,
    PredictionBatch,
    PredictionEvent,
    PredictionRecord,
)
from schemas.model_config import ModelConfig
from schemas.model_settings import QUALITY_METRICS, AnomalySettings, DriftSettings, RetrainPolicy
from schemas.outbound import DeadLetter, RetrainTrigger
from schemas.parsing import parse_label_message, parse_labels_message, parse_prediction_message
from schemas.timestamps import to_epoch_seconds, to_utc_datetime
from schemas.topics import Topics

__all__ = [
    "MAX_BATCH_RECORDS",
    "QUALITY_METRICS",
    "AnomalySettings",
    "DeadLetter",
    "DriftSettings",
    "LabelEvent",
    "ModelConfig",
    "PredictionBatch",
    "PredictionEvent",
    "PredictionRecord",
    "RetrainPolicy",
    "RetrainTrigger",
    "Topics",
    "parse_label_message",
    "parse_labels_message",
    "parse_prediction_message",
    "to_epoch_seconds",
    "to_utc_datetime",
]
