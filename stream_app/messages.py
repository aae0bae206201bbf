"""Messages on the internal window-partials topic, from stage 1 to stage 2.

Stage 1 (per input partition) sends, keyed by model id so one stage-2 partition sees all of
a model's messages:

- ``partial``: the partition's window state of one (model, window), when the partition's
  watermark passes the window's end plus the allowed lateness;
- ``labels``: labeled pairs joined in stage 1, attributed to the window of the prediction;
  stage 1 packs every window of one (input partition, model) that a batch touched into one
  message (``label_windows``, see :func:`encode_label_windows`), which stage 2 reads back
  as one ``labels`` message per window;
- ``late``: how many events arrived after their window had closed in the partition;

  both say where they came from (a pair: its label's offset and its summary's; a late
  count: its predictions message's offset), so what stage 1 sends again after a crash is
  recognised by stage 2 and applied once;
- ``watermark``: the partition's event-time watermark, broadcast to every stage-2
  partition, so stage 2 knows when every input partition has passed a window.

The encoding is JSON (orjson); window states travel as base64 of their compact bytes. A
version field lets the format change without misreading old messages.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from driftline.errors import InvalidEventError
from driftline.limits import MAX_MESSAGE_BYTES

MESSAGE_VERSION = 1
# Packed label windows are version 2, so a worker of an older release that reads one says
# "unknown version; upgrade the worker" instead of guessing (see the README's Upgrades).
LABEL_WINDOWS_VERSION = 2
# Pairs per packed message: ~50 bytes each in JSON, so a pack stays far below the message
# limit; one that still exceeds it (long class names) is split again.
PACK_PAIRS = 8192


@dataclass(frozen=True)
class PartialMessage:
    model_id: str
    window_start: float
    window_end: float
    source_partition: int
    state: bytes
    model_version: str = ""
    kind: Literal["partial"] = "partial"


@dataclass(frozen=True)
class LabelsMessage:
    model_id: str
    window_start: float
    window_end: float
    y_true: list[Any]
    y_pred: list[Any]
    scores: list[Any]
    # Where each pair came from, so stage 2 can recognise a pair stage 1 sent again after
    # a crash: the input (join) partition; per pair the offset of its label message (the
    # pair's identity: a label joins once), and the topic ("p" predictions, "j" label-join)
    # and offset of the message that brought its prediction's summary; and the partition's
    # checkpoint when the batch began ({topic: offset}, see Stage1.flush): a pair whose
    # label and summary offsets it covers can never be sent again. -1: not known.
    source_partition: int = -1
    origin_kinds: str = ""
    origin_offsets: list[int] = field(default_factory=list)
    label_offsets: list[int] = field(default_factory=list)
    checkpoint: dict[str, int] = field(default_factory=dict)
    # Per pair, the label's position in its message (a label envelope holds many; a pair is
    # identified by label offset and position). Empty: every label was alone in its message.
    label_indexes: list[int] = field(default_factory=list)
    kind: Literal["labels"] = "labels"


@dataclass(frozen=True)
class LateMessage:
    model_id: str
    window_start: float
    window_end: float
    count: int
    # The same for late events: per predictions message of ``source_partition`` (offset),
    # how many of its events were late for this window. ``count`` is their sum.
    source_partition: int = -1
    origin_offsets: list[int] = field(default_factory=list)
    origin_counts: list[int] = field(default_factory=list)
    kind: Literal["late"] = "late"


@dataclass(frozen=True)
class WatermarkMessage:
    source_partition: int
    n_partitions: int
    watermark: float | None  # None: the partition has seen no event yet
    # How far the partition's labels have got (None: labels may still come for anything):
    # a final window is kept for revisions until every partition's labels passed its
    # label horizon, however far predictions have run ahead.
    label_watermark: float | None = None
    # Labels of the partition wait unread: hold every window's retirement until they are in.
    labels_behind: bool = False
    kind: Literal["watermark"] = "watermark"


StageMessage = PartialMessage | LabelsMessage | LateMessage | WatermarkMessage


def encode(message: StageMessage) -> bytes:
    data: dict[str, Any] = dict(message.__dict__)
    data["v"] = MESSAGE_VERSION
    if isinstance(message, PartialMessage):
        data["state"] = base64.b64encode(message.state).decode()
    return orjson.dumps(data)


# The per-window fields of a packed labels message, in the order they travel.
_WINDOW_FIELDS = (
    "window_start",
    "window_end",
    "y_true",
    "y_pred",
    "scores",
    "origin_kinds",
    "origin_offsets",
    "label_offsets",
    "label_indexes",
)


def encode_label_windows(windows: list[LabelsMessage]) -> list[bytes]:
    """The labels messages of one (input partition, model), packed into as few messages as
    fit: stage 1 sends hundreds of windows per batch, and each send costs far more than
    its bytes.

    Stage 2 recognises a message read again by its offset per window record, so the
    windows of one pack share its offset; a pack never names a window twice.
    """
    packs: list[bytes] = []
    chunk: list[LabelsMessage] = []
    pairs = 0
    for window in windows:
        if chunk and pairs + len(window.y_true) > PACK_PAIRS:
            packs.extend(_packed(chunk))
            chunk, pairs = [], 0
        chunk.append(window)
        pairs += len(window.y_true)
    if chunk:
        packs.extend(_packed(chunk))
    return packs


def _packed(windows: list[LabelsMessage]) -> list[bytes]:
    first = windows[0]
    shared = (first.model_id, first.source_partition, first.checkpoint)
    if any((w.model_id, w.source_partition, w.checkpoint) != shared for w in windows):
        raise ValueError("a pack holds the windows of one partition, model and checkpoint")
    raw = orjson.dumps(
        {
            "v": LABEL_WINDOWS_VERSION,
            "kind": "label_windows",
            "model_id": first.model_id,
            "source_partition": first.source_partition,
            "checkpoint": first.checkpoint,
            "windows": [[getattr(w, name) for name in _WINDOW_FIELDS] for w in windows],
        }
    )
    if len(raw) <= MAX_MESSAGE_BYTES or len(windows) == 1:
        return [raw]
    half = len(windows) // 2
    return _packed(windows[:half]) + _packed(windows[half:])


def decode_all(raw: bytes) -> list[StageMessage]:
    """The messages one window-partials message carries: one, or a pack's windows."""
    if b'"label_windows"' not in raw:
        return [decode(raw)]
    try:
        data = orjson.loads(raw)
        if data.get("v") != LABEL_WINDOWS_VERSION or data.get("kind") != "label_windows":
            return [decode(raw)]
        shared = {
            "model_id": data["model_id"],
            "source_partition": data["source_partition"],
            "checkpoint": data["checkpoint"],
        }
        return [
            LabelsMessage(**shared, **dict(zip(_WINDOW_FIELDS, window, strict=True)))
            for window in data["windows"]
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidEventError(f"malformed internal message: {exc}") from exc


def decode(raw: bytes) -> StageMessage:
    try:
        data = orjson.loads(raw)
        if data.pop("v", None) != MESSAGE_VERSION:
            raise InvalidEventError("internal message of an unknown version; upgrade the worker")
        kind = data["kind"]
        if kind == "partial":
            data["state"] = base64.b64decode(data["state"])
            return PartialMessage(**data)
        if kind == "labels":
            return LabelsMessage(**data)
        if kind == "late":
            return LateMessage(**data)
        if kind == "watermark":
            return WatermarkMessage(**data)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidEventError(f"malformed internal message: {exc}") from exc
    raise InvalidEventError(f"unknown internal message kind {kind!r}")
