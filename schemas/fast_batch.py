"""A columnar fast path for batch envelopes that are obviously valid.

Validating a 500-record envelope with pydantic costs about 8 µs per record, which caps a
worker near 100,000 predictions per second before it has counted anything. Most envelopes
are plain: epoch-second timestamps, scalar feature values, a probability score. For those,
:func:`parse_envelope` checks the same contract with set and numpy operations over whole
columns and returns the columns the stream needs.

It never accepts what :func:`schemas.parsing.parse_prediction_message` would reject: when a
check cannot certify an envelope (an ISO timestamp, a per-class score list, anything odd),
it returns ``None`` and the caller takes the strict path, which accepts it or says exactly
what is wrong. A property test holds the two paths to the same answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from schemas.events import MAX_BATCH_RECORDS
from schemas.timestamps import LATEST
from schemas.values import INT_MIN, MODEL_ID_PATTERN, may_hold_wide_integer

_ENVELOPE_KEYS = frozenset({"model_id", "model_version", "records"})
_RECORD_REQUIRED = frozenset({"prediction_id", "timestamp", "features", "prediction"})
_RECORD_KEYS = _RECORD_REQUIRED | {"score"}
_MODEL_ID = re.compile(MODEL_ID_PATTERN)
_LATEST_EPOCH = LATEST.timestamp()
_FEATURE_TYPES = frozenset({int, float, str, bool, type(None)})
_OUTCOME_TYPES = frozenset({int, float, str, bool})
_SCORE_TYPES = frozenset({int, float, type(None)})
_WIDE = -float(INT_MIN)  # 2**63


FeatureColumn = list[Any] | npt.NDArray[np.float64]


@dataclass(frozen=True)
class EnvelopeColumns:
    """A validated batch envelope, by column."""

    model_id: str
    model_version: str
    prediction_ids: list[str]
    timestamps: npt.NDArray[np.float64]
    features: list[dict[str, Any]]
    predictions: list[Any]
    scores: list[float | int | None]
    # Feature columns, when every record names the same features (the common case); a
    # decoder that knows the model gives numeric ones as float arrays (NaN: missing).
    feature_columns: dict[str, FeatureColumn] | None = None
    # Reference-bin indexes of numeric feature columns, when the decoder was given the
    # edges (np.searchsorted(edges, value, side="left"); -1 where the value is missing).
    feature_bins: dict[str, npt.NDArray[np.int32]] | None = None

    def __len__(self) -> int:
        return len(self.prediction_ids)

    def column(self, name: str) -> FeatureColumn:
        if self.feature_columns is not None:
            found = self.feature_columns.get(name)
            return found if found is not None else [None] * len(self.prediction_ids)
        return [row.get(name) for row in self.features]


def parse_envelope(raw: bytes) -> EnvelopeColumns | None:
    """The envelope's columns, or ``None`` when only the strict parser can decide.

    Examples
    --------
    >>> raw = (b'{"model_id": "churn", "records": ['
    ...        b'{"prediction_id": "a", "timestamp": 1714564800, "features": {"x": 1.5},'
    ...        b' "prediction": 1, "score": 0.8}]}')
    >>> columns = parse_envelope(raw)
    >>> columns.model_id, columns.timestamps.tolist(), columns.column("x")
    ('churn', [1714564800.0], [1.5])
    >>> parse_envelope(raw.replace(b"1714564800", b'"2024-05-01T12:00:00Z"')) is None
    True
    """
    if b'"records"' not in raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or not (data.keys() <= _ENVELOPE_KEYS and "records" in data):
        return None
    model_id, version, records = (
        data.get("model_id"),
        data.get("model_version", ""),
        data["records"],
    )
    if not model_fields_ok(model_id, version):
        return None
    if type(records) is not list or not 1 <= len(records) <= MAX_BATCH_RECORDS:
        return None
    if any(
        type(r) is not dict or not _RECORD_REQUIRED <= r.keys() <= _RECORD_KEYS for r in records
    ):
        return None
    ids = [r["prediction_id"] for r in records]
    if set(map(type, ids)) != {str} or not 1 <= min(map(len, ids)) <= max(map(len, ids)) <= 256:
        return None
    timestamps = timestamps_of([r["timestamp"] for r in records])
    features = [r["features"] for r in records]
    predictions = [r["prediction"] for r in records]
    scores = [r.get("score") for r in records]
    if timestamps is None or not _outcomes_ok(predictions) or not _scores_ok(scores):
        return None
    if set(map(type, features)) != {dict}:
        return None
    columns = _uniform_columns(features)
    if columns is None and not _features_ok(features):
        return None
    if columns is not None and not _columns_ok(columns):
        return None
    if may_hold_wide_integer(raw) and (
        wide_floats(predictions) or wide_floats(chain.from_iterable(f.values() for f in features))
    ):
        return None
    # str(): checked to be str above, which mypy cannot see through the helper.
    return EnvelopeColumns(
        str(model_id), str(version), ids, timestamps, features, predictions, scores, columns
    )


def _uniform_columns(features: list[dict[str, Any]]) -> dict[str, FeatureColumn] | None:
    """Columns by name when every record has the first record's feature names, else None."""
    names = tuple(features[0])
    if not names or set(map(len, features)) != {len(names)}:
        return None
    try:
        rows = list(map(itemgetter(*names), features))  # C speed; KeyError: other names
    except KeyError:
        return None
    if len(names) == 1:
        return {names[0]: rows}
    return {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}


def model_fields_ok(model_id: Any, version: Any) -> bool:
    """The envelope's model id and version meet the contract."""
    if type(model_id) is not str or not 1 <= len(model_id) <= 128:
        return False
    return bool(_MODEL_ID.fullmatch(model_id)) and type(version) is str and len(version) <= 128


def _names_ok(names: list[Any]) -> bool:
    if not names:
        return True
    return (
        set(map(type, names)) == {str} and 1 <= min(map(len, names)) <= max(map(len, names)) <= 256
    )


def _columns_ok(columns: dict[str, FeatureColumn]) -> bool:
    if not _names_ok(list(columns)):
        return False
    return all(set(map(type, values)) <= _FEATURE_TYPES for values in columns.values())


_CHECKED_NAMES: set[tuple[Any, ...]] = set()
_SINGLE_REQUIRED = _RECORD_REQUIRED | {"model_id"}
_SINGLE_KEYS = _RECORD_KEYS | {"model_id", "model_version"}


@dataclass(frozen=True, slots=True)
class SingleEvent:
    """A validated single prediction event, with its time as epoch seconds."""

    model_id: str
    model_version: str
    prediction_id: str
    timestamp: float
    features: dict[str, Any]
    prediction: Any
    score: float | int | None


def parse_single(raw: bytes) -> SingleEvent | None:
    """A plain single event, or ``None`` when only the strict parser can decide.

    Examples
    --------
    >>> raw = (b'{"model_id": "churn", "prediction_id": "p", "timestamp": 1714564800.5,'
    ...        b' "features": {"x": 1}, "prediction": "1", "score": 0.5}')
    >>> parse_single(raw).timestamp, parse_single(raw.replace(b"0.5}", b"[0.5]}")) is None
    (1714564800.5, True)
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or not _SINGLE_REQUIRED <= data.keys() <= _SINGLE_KEYS:
        return None
    model_id, version = data["model_id"], data.get("model_version", "")
    prediction_id, timestamp = data["prediction_id"], data["timestamp"]
    features, prediction, score = data["features"], data["prediction"], data.get("score")
    if not model_fields_ok(model_id, version):
        return None
    if type(prediction_id) is not str or not 1 <= len(prediction_id) <= 256:
        return None
    if type(timestamp) not in (int, float) or not 0 <= timestamp < _LATEST_EPOCH:
        return None  # NaN fails the range test too
    if type(features) is not dict:
        return None
    names = tuple(features)
    if names not in _CHECKED_NAMES:  # producers send the same names over and over
        if not _names_ok(list(names)):
            return None
        if len(_CHECKED_NAMES) < 10_000:
            _CHECKED_NAMES.add(names)
    types = set(map(type, features.values()))
    if not types <= _FEATURE_TYPES:
        return None
    if type(prediction) not in _OUTCOME_TYPES or (
        type(prediction) is float and not math.isfinite(prediction)
    ):
        return None
    if score is not None and (type(score) not in (int, float) or not 0.0 <= score <= 1.0):
        return None
    if (
        (float in types or type(prediction) is float)
        and may_hold_wide_integer(raw)
        and wide_floats(chain(features.values(), (prediction,)))
    ):
        return None
    return SingleEvent(
        model_id, version, prediction_id, _to_micros(float(timestamp)), features, prediction, score
    )


def wide_floats(values: Iterable[Any]) -> bool:
    """Whether a float of 2**63 or more in magnitude is among ``values``.

    orjson and msgspec read an integer beyond 64 bits as such a float, where the strict
    parser rejects it; a float written that large is left to the strict parser as well.
    Timestamps and scores need no look: their ranges exclude it.
    """
    return any(type(v) is float and abs(v) >= _WIDE for v in values)


def _to_micros(value: float) -> float:
    # As datetime.fromtimestamp: whole microseconds, rounded half to even.
    whole = math.floor(value)
    micros = round((value - whole) * 1e6)
    return (whole * 1e6 + micros) / 1e6


def timestamps_of(
    values: list[Any] | npt.NDArray[np.float64],
) -> npt.NDArray[np.float64] | None:
    """Epoch-second timestamps as the strict path reads them, or None if it must decide."""
    if isinstance(values, np.ndarray):
        return _checked_timestamps(values)
    if not set(map(type, values)) <= {int, float}:
        return None  # ISO strings (and anything odd) take the strict path
    try:
        array = np.array(values, dtype=np.float64)
    except OverflowError:
        return None
    return _checked_timestamps(array)


def timestamp_of(value: float) -> float | None:
    """:func:`timestamps_of` of one float, without numpy's fixed cost of a few microseconds
    a call (a single label's message has one timestamp)."""
    if not 0.0 <= value < _LATEST_EPOCH:  # NaN fails it too
        return None
    whole = float(math.floor(value))
    # round() rounds half to even, as numpy's round does, and the sum is the same float.
    return (whole * 1e6 + round((value - whole) * 1e6)) / 1e6


def _checked_timestamps(array: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | None:
    if not np.isfinite(array).all() or array.min() < 0 or array.max() >= _LATEST_EPOCH:
        return None
    # The strict path holds a datetime, which keeps whole microseconds (rounded half to
    # even); round the same way so both paths put every event in the same window.
    whole = np.floor(array)
    micros = np.round((array - whole) * 1e6)
    return np.asarray((whole * 1e6 + micros) / 1e6, dtype=np.float64)


def _features_ok(features: list[Any]) -> bool:
    names = list(chain.from_iterable(features))
    if names and (
        set(map(type, names)) != {str}
        or not 1 <= min(map(len, names)) <= max(map(len, names)) <= 256
    ):
        return False
    return set(map(type, chain.from_iterable(f.values() for f in features))) <= _FEATURE_TYPES


def _outcomes_ok(values: list[Any]) -> bool:
    types = set(map(type, values))
    if not types <= _OUTCOME_TYPES:
        return False
    return float not in types or all(math.isfinite(v) for v in values if type(v) is float)


def _scores_ok(values: list[Any]) -> bool:
    types = set(map(type, values))
    if not types <= _SCORE_TYPES:
        return False  # per-class lists (and anything odd) take the strict path
    numbers = [v for v in values if v is not None]
    if not numbers:
        return True
    array = np.array(numbers, dtype=np.float64)
    return bool(np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0)
