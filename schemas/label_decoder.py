"""Label messages read in C when the answer is certain; the strict parser otherwise.

The strict parser (pydantic, then a Python validator per timestamp) costs several
microseconds a label, a large part of what stage 1 spends on one. The native decoder
(``decode_labels`` in ``schemas/_envelope_native.c``) reads both forms of a label message
(a single label, an envelope) straight into columns. It certifies only what it is sure
of, as for prediction envelopes (see :mod:`schemas.typed_envelope`): any escape in a
string, an unknown or repeated key, a null label, an integer of more than 18 digits, a
timestamp that is not a number, anything that is not JSON makes it decline, and the
contract's ranges (model id, id lengths, the number of labels, timestamps) are checked
here. Whatever it declines, the strict parser takes, and says what is wrong. A property
test holds the two to the same answers.
"""

from __future__ import annotations

import struct
from types import ModuleType
from typing import Any

import numpy as np

from schemas.events import MAX_BATCH_RECORDS, LabelColumns
from schemas.fast_batch import model_fields_ok, timestamp_of, timestamps_of

native: ModuleType | None
try:
    from schemas import _envelope_native as native
except ImportError:  # built without a C compiler: the strict parser reads every label
    native = None

_MAX_ID = 256
_ONE_DOUBLE = struct.Struct("=d")  # native order, as the decoder wrote it

# What the native decoder answers: model id, prediction ids, labels, timestamps as
# native-order doubles.
_Decoded = tuple[str, list[str], list[Any], bytes]


def decode_labels(raw: bytes) -> LabelColumns | None:
    """The labels of one message of the labels topic, as the strict parser reads them;
    None when the native decoder cannot certify them (or is not built).

    Examples
    --------
    >>> columns = decode_labels(
    ...     b'{"model_id": "churn", "prediction_id": "p-1", "label": 1, "timestamp": 1714564800}'
    ... )
    >>> None if columns is None else (columns.prediction_ids, columns.labels, columns.timestamps)
    (['p-1'], [1], [1714564800.0])
    """
    if native is None:
        return None
    decoded: _Decoded | None = native.decode_labels(raw)
    if decoded is None or len(decoded[1]) > MAX_BATCH_RECORDS:
        return None
    return _within_contract(decoded)


def decode_label_run(values: list[bytes]) -> LabelColumns | None:
    """Consecutive single-label messages of one model read at once: the columns
    :func:`decode_labels` gives each of them, joined in order; None when it would not
    certify one of them, one is an envelope, or they name more than one model (or the
    decoder is not built).

    Examples
    --------
    >>> run = decode_label_run(
    ...     [
    ...         b'{"model_id": "churn", "prediction_id": "p-1", "label": 1, "timestamp": 1e9}',
    ...         b'{"model_id": "churn", "prediction_id": "p-2", "label": 0, "timestamp": 1e9}',
    ...     ]
    ... )
    >>> None if run is None else (run.prediction_ids, run.labels, run.timestamps)
    (['p-1', 'p-2'], [1, 0], [1000000000.0, 1000000000.0])
    """
    if native is None or not values:
        return None
    decoded: _Decoded | None = native.decode_label_run(values)
    return None if decoded is None else _within_contract(decoded)


def _within_contract(decoded: _Decoded) -> LabelColumns | None:
    """The columns of what the native decoder read, or None where the contract's ranges
    (model id, id lengths, timestamps) are not met and the strict parser must say why."""
    model_id, ids, labels, times = decoded
    if (
        not ids
        or not _model_id_ok(model_id)
        or not 1 <= min(map(len, ids)) <= max(map(len, ids)) <= _MAX_ID
    ):
        return None
    if len(ids) == 1:  # a single label's message, most of them: no numpy for one value
        timestamp = timestamp_of(_ONE_DOUBLE.unpack(times)[0])
        return None if timestamp is None else LabelColumns(model_id, ids, labels, [timestamp])
    timestamps = timestamps_of(np.frombuffer(times, dtype=np.float64))
    if timestamps is None:
        return None
    return LabelColumns(model_id, ids, labels, timestamps.tolist())


# Model ids found valid: a worker reads labels of a few models over and over, and the
# pattern's match was a tenth of what reading a single label cost. Bounded, for a stream
# of ever new ids.
_VALID_MODEL_IDS: set[str] = set()


def _model_id_ok(model_id: str) -> bool:
    if model_id in _VALID_MODEL_IDS:
        return True
    if not model_fields_ok(model_id, ""):
        return False
    if len(_VALID_MODEL_IDS) < 10_000:
        _VALID_MODEL_IDS.add(model_id)
    return True
