"""Control messages on the predictions topic: the end-of-stream marker.

A partition's watermark normally follows the event times it sees, and an idle partition's
follows the wall clock from its last event. After a historical replay (last year's logs)
that would keep the last window open for a window plus its lateness of *real* time. A
producer that knows it has published everything up to a moment says so explicitly: one
marker per partition of the predictions topic,

``{"driftline_control": "end-of-stream", "watermark": <epoch seconds>}``

and stage 1 moves that partition's watermark to ``watermark`` (never backwards), which
closes every window that ends (plus its allowed lateness) by then. Events older than the
watermark that arrive afterwards are late, as after any watermark. The marker is not an
event: it is neither counted nor dead-lettered.

Examples
--------
>>> raw = end_of_stream_message(1_700_000_000.0)
>>> parse_end_of_stream(raw)
1700000000.0
>>> parse_end_of_stream(b'{"model_id": "m"}') is None
True
"""

from __future__ import annotations

import math

import orjson

from driftline.errors import InvalidEventError

CONTROL_KEY = "driftline_control"
END_OF_STREAM = "end-of-stream"
# Every control message starts with these bytes, so telling one from an event costs a
# prefix compare, not a parse.
_PREFIX = b'{"' + CONTROL_KEY.encode() + b'"'


def end_of_stream_message(watermark: float) -> bytes:
    """The marker saying every event before ``watermark`` (epoch seconds) was published."""
    if not math.isfinite(watermark):
        raise InvalidEventError(f"end-of-stream watermark must be finite, got {watermark!r}")
    return orjson.dumps({CONTROL_KEY: END_OF_STREAM, "watermark": float(watermark)})


def is_control(raw: bytes) -> bool:
    """Whether a message of the predictions topic is a control message (by its first key)."""
    return raw.startswith(_PREFIX)


def parse_end_of_stream(raw: bytes) -> float | None:
    """The watermark of an end-of-stream marker, None for anything that is not a control message.

    Raises
    ------
    InvalidEventError
        For a control message that is not a well-formed end-of-stream marker (it goes to the
        dead-letter topic like any invalid message).
    """
    if not is_control(raw):
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEventError(f"control message is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get(CONTROL_KEY) != END_OF_STREAM:
        raise InvalidEventError(f"unknown control message: {CONTROL_KEY} must be {END_OF_STREAM!r}")
    if set(data) != {CONTROL_KEY, "watermark"}:
        raise InvalidEventError("end-of-stream marker: only 'driftline_control' and 'watermark'")
    watermark = data["watermark"]
    if isinstance(watermark, bool) or not isinstance(watermark, int | float):
        raise InvalidEventError("end-of-stream marker: 'watermark' must be epoch seconds")
    if not math.isfinite(float(watermark)):
        raise InvalidEventError("end-of-stream marker: 'watermark' must be finite")
    return float(watermark)
