"""The one message size limit: what Driftline produces and what its brokers must accept.

``MAX_MESSAGE_BYTES`` bounds the value of every message Driftline writes or asks producers
to write (an envelope of predictions, a label, a dead letter, a window partial). Everything
else is derived from it:

- the local broker's ``message.max.bytes`` and the ``max.message.bytes`` of the topics the
  project creates are :data:`BROKER_MESSAGE_MAX_BYTES`, the limit plus room for the key,
  headers and the record-batch header. The sum equals Kafka's own default, so a cluster
  with default settings accepts every message Driftline sends and a local run does not
  hide a size problem a production cluster would show;
- :class:`driftline.producer.PredictionProducer` splits envelopes so none is larger, and
  refuses a single record that alone is;
- a dead letter keeps at most a quarter of it of the original payload
  (``schemas.outbound.DEFAULT_MAX_PAYLOAD_BYTES``), so it fits whatever it embeds.

1,000,000 bytes is also Faust's default ``producer_max_request_size``, the limit of the
worker's own producer.
"""

from __future__ import annotations

from driftline.errors import InvalidInputError

MAX_MESSAGE_BYTES = 1_000_000
"""Largest message value (bytes) Driftline produces or asks producers to send."""

RECORD_HEADROOM_BYTES = 48_588
"""Room over :data:`MAX_MESSAGE_BYTES` for a record's key (a prediction id is at most 256
characters), headers and the record-batch header (61 bytes), with a wide margin."""

BROKER_MESSAGE_MAX_BYTES = MAX_MESSAGE_BYTES + RECORD_HEADROOM_BYTES
"""``message.max.bytes`` of the broker and ``max.message.bytes`` of Driftline's topics:
1,048,588, Kafka's default."""


def describe_size(size: int) -> str:
    """``'1,234,567 bytes (1.2 MB)'``: exact for logs, rounded for people.

    Examples
    --------
    >>> describe_size(1_000_000)
    '1,000,000 bytes (1.0 MB)'
    """
    return f"{size:,} bytes ({size / 1e6:.1f} MB)"


class MessageTooLargeError(InvalidInputError):
    """One record would make a message larger than :data:`MAX_MESSAGE_BYTES`; it was not sent."""


def too_large(what: str, size: int) -> MessageTooLargeError:
    """The error for ``what`` (e.g. ``"prediction p-1 of model churn"``) of ``size`` bytes."""
    return MessageTooLargeError(
        f"{what} is {describe_size(size)} as a Kafka message, over Driftline's limit of "
        f"{describe_size(MAX_MESSAGE_BYTES)} (driftline.limits.MAX_MESSAGE_BYTES); it was "
        "not sent. Send fewer or smaller features: large blobs (embeddings, documents, "
        "images) belong in a store, with a reference or a summary in the features"
    )
