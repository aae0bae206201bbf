"""The event contracts. Inbound ones, what model-serving services publish (predictions,
batches, labels), are defined here; the outbound ones Driftline publishes (retraining
triggers, dead letters) live in :mod:`schemas.outbound` and are re-exported here, so every
contract can be imported from one module.

Unknown keys are **rejected** (``extra="forbid"``), at the top level and in batch records.
A misspelt optional key (``"scores"`` for ``"score"``) would otherwise be dropped without a
trace and the monitoring would quietly lose a signal; rejected, the event lands in the
dead-letter topic with ``"scores: unknown field …"`` and the producer gets fixed. A new
field is a new contract version (``….v2`` topics and schemas), not a silent extension.

Types are strict: ``"3"`` is not a number and ``1`` is not ``true``. JSON integers must fit
in 64 bits (-2**63 to 2**64-1): wider ones would be read as floats by the fast paths and
could not be written again by orjson, so the parser rejects them (:mod:`schemas.parsing`).
Models are frozen: an event is a fact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.outbound import DeadLetter, RetrainTrigger
from schemas.timestamps import Timestamp
from schemas.values import (
    Features,
    ModelId,
    ModelVersion,
    PredictionId,
    ScalarOutcome,
    Score,
)

__all__ = [
    "MAX_BATCH_RECORDS",
    "DeadLetter",
    "LabelBatch",
    "LabelEvent",
    "LabelRecord",
    "PredictionBatch",
    "PredictionEvent",
    "PredictionRecord",
    "RetrainTrigger",
]

MAX_BATCH_RECORDS = 10_000

_EVENT_CONFIG = ConfigDict(strict=True, extra="forbid", frozen=True)


class PredictionEvent(BaseModel):
    """One prediction a model made, with the features it saw.

    Examples
    --------
    >>> event = PredictionEvent(
    ...     model_id="churn",
    ...     prediction_id="p-1",
    ...     timestamp="2024-05-01T12:00:00Z",
    ...     features={"age": 42, "plan": "pro"},
    ...     prediction=1,
    ...     score=0.83,
    ... )
    >>> event.timestamp.isoformat(), event.model_version
    ('2024-05-01T12:00:00+00:00', '')
    """

    model_config = _EVENT_CONFIG

    model_id: ModelId
    model_version: ModelVersion = ""
    prediction_id: PredictionId
    timestamp: Timestamp
    features: Features
    prediction: ScalarOutcome = Field(description="The predicted value or class")
    score: Score = None


class PredictionRecord(BaseModel):
    """One prediction inside a batch envelope: a prediction event without the model fields."""

    model_config = _EVENT_CONFIG

    prediction_id: PredictionId
    timestamp: Timestamp
    features: Features
    prediction: ScalarOutcome = Field(description="The predicted value or class")
    score: Score = None


class PredictionBatch(BaseModel):
    """Many predictions of one model version in one message, under a records key."""

    model_config = _EVENT_CONFIG

    model_id: ModelId
    model_version: ModelVersion = ""
    records: list[PredictionRecord] = Field(
        min_length=1,
        max_length=MAX_BATCH_RECORDS,
        description=f"The predictions, 1 to {MAX_BATCH_RECORDS}",
    )

    def events(self) -> list[PredictionEvent]:
        """Expand the envelope into one :class:`PredictionEvent` per record.

        The records were validated with the envelope, so the events are assembled without
        validating again.
        """
        envelope = {"model_id": self.model_id, "model_version": self.model_version}
        envelope_set = {"model_id"} | ({"model_version"} & self.model_fields_set)
        return [_assemble(envelope, envelope_set, record) for record in self.records]


def _assemble(
    envelope: dict[str, str], envelope_set: set[str], record: PredictionRecord
) -> PredictionEvent:
    # Fill the instance slots directly, as pydantic's own model_copy does: 1 µs a record
    # where model_construct takes 4 µs, which would add 40 % to a batch's parse time. Sound
    # while PredictionEvent has no validators beyond its fields' (which the record passed);
    # tests check that the result equals a validated event.
    event = PredictionEvent.__new__(PredictionEvent)
    object.__setattr__(event, "__dict__", {**envelope, **record.__dict__})
    object.__setattr__(event, "__pydantic_fields_set__", envelope_set | record.model_fields_set)
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return event


class LabelEvent(BaseModel):
    """The ground truth of one prediction, known later; joined to it on prediction_id."""

    model_config = _EVENT_CONFIG

    model_id: ModelId
    prediction_id: PredictionId
    label: ScalarOutcome = Field(description="The true value or class")
    timestamp: Timestamp


class LabelRecord(BaseModel):
    """One label inside a label envelope: a label event without the model field."""

    model_config = _EVENT_CONFIG

    prediction_id: PredictionId
    label: ScalarOutcome = Field(description="The true value or class")
    timestamp: Timestamp


@dataclass(frozen=True)
class LabelColumns:
    """The labels of one message of the labels topic (one, or an envelope's) as columns."""

    model_id: str
    prediction_ids: list[str]
    labels: list[Any]
    timestamps: list[float]  # epoch seconds

    @classmethod
    def of(cls, label: LabelEvent) -> LabelColumns:
        return cls(
            label.model_id, [label.prediction_id], [label.label], [label.timestamp.timestamp()]
        )

    def __len__(self) -> int:
        return len(self.prediction_ids)


class LabelBatch(BaseModel):
    """Many labels of one model in one message, under a records key.

    Labels are joined on the partition of the labels topic their ``prediction_id`` hashes
    to (Kafka's default partitioner, murmur2): every label of an envelope must hash to the
    partition the envelope is sent to (``driftline.producer`` groups them so); the worker
    dead-letters an envelope that breaks this, naming the first label that does.
    """

    model_config = _EVENT_CONFIG

    model_id: ModelId
    records: list[LabelRecord] = Field(
        min_length=1,
        max_length=MAX_BATCH_RECORDS,
        description=f"The labels, 1 to {MAX_BATCH_RECORDS}",
    )

    def columns(self) -> LabelColumns:
        """The labels as columns, without an object per label (the worker's form)."""
        records = self.records
        return LabelColumns(
            self.model_id,
            [record.prediction_id for record in records],
            [record.label for record in records],
            [record.timestamp.timestamp() for record in records],
        )

    def events(self) -> list[LabelEvent]:
        """One :class:`LabelEvent` per record, in order (validated with the envelope)."""
        return [
            LabelEvent.model_construct(
                model_id=self.model_id,
                prediction_id=record.prediction_id,
                label=record.label,
                timestamp=record.timestamp,
            )
            for record in self.records
        ]
