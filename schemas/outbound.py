"""Outbound contracts: what Driftline publishes (retraining triggers, dead letters).

Both serialize with :meth:`to_json_bytes` (pydantic's Rust serializer; datetimes as ISO 8601
with ``Z``) and read back with :meth:`from_json_bytes`, which raises
:class:`~driftline.errors.InvalidEventError` like the inbound parsers.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
from datetime import UTC, datetime
from typing import Any, Literal, Self

import numpy as np
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from driftline.errors import InvalidEventError
from driftline.limits import MAX_MESSAGE_BYTES
from schemas.timestamps import Timestamp
from schemas.validation_messages import describe_validation_error
from schemas.values import ModelId, ModelVersion

DEFAULT_MAX_PAYLOAD_BYTES = MAX_MESSAGE_BYTES // 4
"""Dead letters keep at most this much of the original message, *as written* in the letter.

The bound is on the payload's serialized form (JSON-escaped text or base64), not on the
bytes kept: a control character escapes to six bytes (``\\u0001``), so 250 KB of raw
bytes could become 1.5 MB of letter. Bounded this way, a dead letter (payload, an error of
at most ``MAX_ERROR_CHARS`` characters, a topic name, a few numbers) stays far below
:data:`driftline.limits.MAX_MESSAGE_BYTES` whatever it embeds.
"""
MAX_ERROR_CHARS = 2000

_OUTBOUND_CONFIG = ConfigDict(
    strict=True,
    extra="forbid",
    frozen=True,
    # Every field is always written, so consumers may rely on every key being present.
    json_schema_serialization_defaults_required=True,
)


def _now() -> datetime:
    return datetime.now(UTC)


class _Outbound(BaseModel):
    model_config = _OUTBOUND_CONFIG

    def to_json_bytes(self) -> bytes:
        """Serialize as the message value to publish."""
        return self.model_dump_json().encode()

    @classmethod
    def from_json_bytes(cls, raw: bytes | str) -> Self:
        """Read a published message back; :class:`InvalidEventError` when it is not one."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidEventError(describe_validation_error(exc)) from exc


class RetrainTrigger(_Outbound):
    """A request to the training pipeline to retrain a model, with the evidence for it.

    ``trigger_id`` should be derived from the model and the window that fired (not random),
    so a replayed window publishes the same trigger and consumers can deduplicate.

    Examples
    --------
    >>> trigger = RetrainTrigger(
    ...     trigger_id="churn:2024-05-01T12:00:00Z",
    ...     model_id="churn",
    ...     model_version="7",
    ...     reason="3 of the last 5 windows drifted",
    ...     evidence={"drifted_features": ["age"], "psi": {"age": 0.31}},
    ...     window_start="2024-05-01T11:00:00Z",
    ...     window_end="2024-05-01T12:00:00Z",
    ...     created_at="2024-05-01T12:05:00Z",
    ... )
    >>> RetrainTrigger.from_json_bytes(trigger.to_json_bytes()) == trigger
    True
    """

    trigger_id: str = Field(min_length=1, max_length=256, description="Identifier of the trigger")
    model_id: ModelId
    model_version: ModelVersion
    reason: str = Field(min_length=1, description="Why retraining is requested, for people")
    evidence: dict[str, Any] = Field(
        default_factory=dict,
        description="Machine-readable evidence (drift scores, metrics, windows); free form",
    )
    window_start: Timestamp = Field(description="Start of the window that fired (inclusive)")
    window_end: Timestamp = Field(description="End of the window that fired (exclusive)")
    created_at: Timestamp = Field(default_factory=_now, description="When Driftline fired it")
    data_start: Timestamp | None = Field(
        default=None, description="Suggested start of the training data range, if any"
    )
    data_end: Timestamp | None = Field(
        default=None, description="Suggested end of the training data range, if any"
    )

    @field_validator("evidence")
    @classmethod
    def _evidence_is_json(cls, evidence: dict[str, Any]) -> dict[str, Any]:
        # Fail where the trigger is built, not later in the producer when it is serialized.
        try:
            pydantic_core.to_json(evidence)
        except pydantic_core.PydanticSerializationError as exc:
            raise ValueError(f"must be JSON-serializable: {exc}") from None
        return evidence

    @field_validator("window_end")
    @classmethod
    def _window_ends_after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("window_start")
        if start is not None and end <= start:
            raise ValueError(f"must be after window_start ({start.isoformat()})")
        return end

    @field_validator("data_end")
    @classmethod
    def _data_ends_after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("data_start")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"must be after data_start ({start.isoformat()})")
        return end


PayloadEncoding = Literal["utf-8", "base64"]


class DeadLetter(_Outbound):
    """A message that broke its contract, with the reason and where it came from.

    The original value is kept losslessly: as text when it is valid UTF-8 (the usual case,
    readable in any Kafka tool), else base64 (``payload_encoding`` says which). A value
    whose serialized form would exceed ``DEFAULT_MAX_PAYLOAD_BYTES`` is cut to a prefix
    (``payload_truncated``), so the letter itself always fits a Kafka message;
    ``payload_size`` and ``payload_sha256`` still describe the whole value, and topic,
    partition and offset locate it while the topic retains it. Build one with
    :meth:`from_message`; the message key stays the original key.

    Examples
    --------
    >>> letter = DeadLetter.from_message(
    ...     "not valid JSON: EOF while parsing a value at line 1 column 1",
    ...     topic="driftline.predictions.v1", partition=3, offset=1042, value=b"{",
    ... )
    >>> letter.payload, letter.payload_encoding, letter.payload_bytes()
    ('{', 'utf-8', b'{')
    >>> DeadLetter.from_message("x", topic="t", partition=0, offset=0, value=b"\\xff").payload
    '/w=='
    """

    error: str = Field(min_length=1, description="Why the message was rejected")
    topic: str = Field(min_length=1, description="Topic the message was read from")
    partition: int = Field(ge=0, description="Partition the message was read from")
    offset: int = Field(ge=0, description="Offset of the message in its partition")
    payload: str | None = Field(
        description="The original value (null when the Kafka value was null), see payload_encoding"
    )
    payload_encoding: PayloadEncoding = Field(
        default="utf-8", description="utf-8: payload is the value as text; base64: its bytes"
    )
    payload_size: int = Field(ge=0, description="Size of the original value in bytes")
    payload_truncated: bool = Field(
        default=False, description="True when payload holds only the first bytes of the value"
    )
    payload_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (hex) of the whole original value, truncated or not; null for a "
        "null value",
    )
    received_at: Timestamp = Field(
        default_factory=_now, description="When Driftline read the message"
    )

    @classmethod
    def from_message(
        cls,
        error: str,
        *,
        topic: str,
        partition: int,
        offset: int,
        value: bytes | None,
        received_at: datetime | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> DeadLetter:
        """Build the dead letter of one consumed message."""
        if len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 1] + "…"
        payload, encoding, truncated = _encode_payload(value, max_payload_bytes)
        return cls(
            error=error,
            topic=topic,
            partition=partition,
            offset=offset,
            payload=payload,
            payload_encoding=encoding,
            payload_size=0 if value is None else len(value),
            payload_truncated=truncated,
            payload_sha256=None if value is None else hashlib.sha256(value).hexdigest(),
            received_at=received_at if received_at is not None else _now(),
        )

    def payload_bytes(self) -> bytes | None:
        """Return the kept bytes of the original value (``None`` for a null value)."""
        if self.payload is None:
            return None
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode()


# Bytes each input byte takes in a JSON string as pydantic writes it: control characters
# escape to \u00XX (6) or a two-byte short form, '"' and '\' to two; everything else,
# UTF-8 continuation bytes included, is written as is.
_JSON_BYTES = np.ones(256, dtype=np.int64)
_JSON_BYTES[:0x20] = 6
_JSON_BYTES[[0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x22, 0x5C]] = 2


def _encode_payload(value: bytes | None, limit: int) -> tuple[str | None, PayloadEncoding, bool]:
    """The payload field (at most ``limit`` bytes once serialized), its encoding, whether cut."""
    if value is None:
        return None, "utf-8", False
    # Escaping never shrinks text, so no more than ``limit`` bytes can be kept as text.
    kept = value[:limit]
    if len(kept) * 6 > limit:  # escaping could push it over: find the longest prefix that fits
        written = np.cumsum(_JSON_BYTES[np.frombuffer(kept, dtype=np.uint8)])
        kept = kept[: int(np.searchsorted(written, limit, side="right"))]
    truncated = len(kept) < len(value)
    try:
        # final=False drops a multi-byte character cut in half by the limit instead of failing.
        text = codecs.getincrementaldecoder("utf-8")().decode(kept, final=not truncated)
    except UnicodeDecodeError:
        # Base64 writes 4 characters per 3 bytes: keep a whole number of 3-byte groups.
        kept = value[: limit // 4 * 3]
        return base64.b64encode(kept).decode("ascii"), "base64", len(kept) < len(value)
    return text, "utf-8", truncated
