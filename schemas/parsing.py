"""The hot path: one Kafka message in, validated events out, or one short reason why not.

Bytes go straight to pydantic's ``model_validate_json`` (Rust), never through ``json.loads``
and Python dicts. The reason of a rejection is what the dead-letter record carries, so it
names the field as the producer wrote it and stays one line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from driftline.errors import InvalidEventError
from schemas.events import (
    LabelBatch,
    LabelColumns,
    LabelEvent,
    LabelRecord,
    PredictionBatch,
    PredictionEvent,
    PredictionRecord,
)
from schemas.label_decoder import decode_labels
from schemas.validation_messages import describe_validation_error, field_path
from schemas.values import INT_MAX, INT_MIN, INTEGER_OUT_OF_RANGE, may_hold_wide_integer

_RECORDS_KEY = '"records"'
_Model = TypeVar("_Model", bound=BaseModel)


def _invalid(exc: ValidationError, raw: bytes | str) -> InvalidEventError:
    if isinstance(raw, bytes) and any(e["type"] == "json_invalid" for e in exc.errors()):
        # jiter reports bad UTF-8 as a bad code point somewhere; say what is really wrong.
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return InvalidEventError(f"not valid UTF-8: byte {bad.start} cannot be decoded")
    return InvalidEventError(describe_validation_error(exc))


def _validate(model: type[_Model], raw: bytes | str) -> _Model:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc, raw) from exc


_Item = PredictionEvent | PredictionRecord | LabelEvent | LabelRecord


def _values(item: _Item) -> Iterator[tuple[Any, ...]]:
    """(location, value) of the fields that may hold an integer of any size."""
    if isinstance(item, LabelEvent | LabelRecord):
        yield ("label",), item.label
        return
    for name, value in item.features.items():
        yield ("features", name), value
    yield ("prediction",), item.prediction


def _refuse_wide_integers(raw: bytes | str, items: Sequence[_Item], batch: bool) -> None:
    # Not in the value unions: there a bounded int schema would hand a wide integer to the
    # float schema, which reads it as a float. Timestamps and scores have ranges of their own.
    if not may_hold_wide_integer(raw):
        return
    for index, item in enumerate(items):
        for loc, value in _values(item):
            if type(value) is int and not INT_MIN <= value <= INT_MAX:
                path = field_path((("records", index) if batch else ()) + loc)
                raise InvalidEventError(f"{path}: {INTEGER_OUT_OF_RANGE}")


def _misses_records(exc: ValidationError) -> bool:
    return any(e["type"] == "missing" and e["loc"] == ("records",) for e in exc.errors())


_Envelope = TypeVar("_Envelope", PredictionBatch, LabelBatch)


def _envelope(model: type[_Envelope], raw: bytes | str) -> _Envelope | None:
    """The message as an envelope (a top-level ``"records"`` key), or None: not one.

    Messages without the text ``"records"`` anywhere, the common case, are not parsed here.
    """
    maybe_batch = _RECORDS_KEY.encode() in raw if isinstance(raw, bytes) else _RECORDS_KEY in raw
    if not maybe_batch:
        return None
    try:
        batch = model.model_validate_json(raw)
    except ValidationError as exc:
        if not _misses_records(exc):
            raise _invalid(exc, raw) from exc
        return None  # "records" was only text inside a value or a feature name
    _refuse_wide_integers(raw, batch.records, batch=True)
    return batch


def parse_prediction_message(raw: bytes | str) -> list[PredictionEvent]:
    """Validate one message of the predictions topic: a single event or a batch envelope.

    A message whose top-level object has a ``"records"`` key is a batch
    (:class:`~schemas.events.PredictionBatch`), any other a single
    :class:`~schemas.events.PredictionEvent`. Messages without the text ``"records"``
    anywhere, the common case, are parsed once.

    Parameters
    ----------
    raw
        The message value as Kafka delivered it (UTF-8 JSON).

    Returns
    -------
    list of PredictionEvent
        One event for a single event, one per record (in order) for a batch.

    Raises
    ------
    InvalidEventError
        When the message breaks the contract. The message is ``"path: what is wrong"``
        for the first problem found, e.g. ``"records[3].features.age: value must be a
        number, string, bool or null"``, ``"prediction: integer out of range, JSON integers
        must fit in 64 bits"`` or ``"not valid JSON: …"``.

    Examples
    --------
    >>> raw = (b'{"model_id": "churn", "prediction_id": "p-1", "timestamp": 1714564800,'
    ...        b' "features": {"age": 42, "plan": "pro"}, "prediction": 1, "score": 0.83}')
    >>> [event] = parse_prediction_message(raw)
    >>> event.timestamp.isoformat(), event.features["age"], event.score
    ('2024-05-01T12:00:00+00:00', 42, 0.83)
    >>> batch = (b'{"model_id": "churn", "records": ['
    ...          b'{"prediction_id": "a", "timestamp": 1714564800, "features": {}, "prediction": 0},'
    ...          b'{"prediction_id": "b", "timestamp": 1714564801, "features": {}, "prediction": 1}]}')
    >>> [event.prediction_id for event in parse_prediction_message(batch)]
    ['a', 'b']
    >>> parse_prediction_message(raw.replace(b"42", b"[42]"))
    Traceback (most recent call last):
    ...
    driftline.errors.InvalidEventError: features.age: value must be a number, string, bool or null
    """  # noqa: E501
    batch = _envelope(PredictionBatch, raw)
    if batch is not None:
        return batch.events()
    # Most messages; or "records" was only text inside a value or a feature name.
    event = _validate(PredictionEvent, raw)
    _refuse_wide_integers(raw, [event], batch=False)
    return [event]


def parse_label_message(raw: bytes | str) -> LabelEvent:
    """Validate one message of the labels topic.

    Parameters
    ----------
    raw
        The message value as Kafka delivered it (UTF-8 JSON).

    Raises
    ------
    InvalidEventError
        When the message breaks the contract; the message names the field.

    Examples
    --------
    >>> label = parse_label_message(
    ...     b'{"model_id": "churn", "prediction_id": "p-1", "label": 1,'
    ...     b' "timestamp": "2024-05-03T08:30:00Z"}'
    ... )
    >>> label.prediction_id, label.label, label.timestamp.isoformat()
    ('p-1', 1, '2024-05-03T08:30:00+00:00')
    >>> parse_label_message(b'{"model_id": "churn", "prediction_id": "p-1"}')
    Traceback (most recent call last):
    ...
    driftline.errors.InvalidEventError: label: field required (+1 more)
    """
    label = _validate(LabelEvent, raw)
    _refuse_wide_integers(raw, [label], batch=False)
    return label


def parse_labels_message(raw: bytes | str) -> list[LabelEvent]:
    """Validate one message of the labels topic: a single label or a label envelope.

    A message whose top-level object has a ``"records"`` key is an envelope
    (:class:`~schemas.events.LabelBatch`), any other a single label, as for predictions.

    Examples
    --------
    >>> batch = (b'{"model_id": "churn", "records": ['
    ...          b'{"prediction_id": "a", "label": 1, "timestamp": 1714564800},'
    ...          b'{"prediction_id": "b", "label": 0, "timestamp": 1714564801}]}')
    >>> [(label.prediction_id, label.label) for label in parse_labels_message(batch)]
    [('a', 1), ('b', 0)]
    >>> parse_labels_message(batch.replace(b'"label": 0', b'"label": [0]'))
    Traceback (most recent call last):
    ...
    driftline.errors.InvalidEventError: records[1].label: must be a finite number, string or bool
    """
    batch = _envelope(LabelBatch, raw)
    return batch.events() if batch is not None else [parse_label_message(raw)]


def parse_label_columns(raw: bytes | str) -> LabelColumns:
    """:func:`parse_labels_message` as columns: the same checks and errors, no object per
    label (what the worker reads).

    Examples
    --------
    >>> batch = (b'{"model_id": "churn", "records": ['
    ...          b'{"prediction_id": "a", "label": 1, "timestamp": 1714564800},'
    ...          b'{"prediction_id": "b", "label": 0, "timestamp": 1714564801}]}')
    >>> columns = parse_label_columns(batch)
    >>> columns.model_id, columns.prediction_ids, columns.labels, columns.timestamps
    ('churn', ['a', 'b'], [1, 0], [1714564800.0, 1714564801.0])
    """
    if isinstance(raw, bytes):
        decoded = decode_labels(raw)  # in C, when it is certain of the strict answer
        if decoded is not None:
            return decoded
    return strict_label_columns(raw)


def strict_label_columns(raw: bytes | str) -> LabelColumns:
    """:func:`parse_label_columns` by the strict parser alone."""
    batch = _envelope(LabelBatch, raw)
    return batch.columns() if batch is not None else LabelColumns.of(parse_label_message(raw))
