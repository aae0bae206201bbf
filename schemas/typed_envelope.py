"""Decoding one model's batch envelopes straight into columns, with msgspec.

:func:`schemas.fast_batch.parse_envelope` knows nothing of the model, so it has to decode
every record into a dict of dicts (orjson: ~2 µs per 540-byte record) and then check and
transpose them in Python. Once the model is known, its feature names and kinds are too: a
msgspec decoder built for exactly those fields validates while it parses, allocates one
small struct per record instead of two dicts, and leaves only the transposition to Python.
That halves the cost of reading a record.

The contract is the fast path's: :meth:`ModelEnvelopeDecoder.decode` never accepts what the
strict parser rejects and returns ``None`` whenever it cannot certify an envelope — another
model's id, a feature the model does not declare, a string in a numeric feature (that is
an *invalid value* to count, which the general path does), an ISO timestamp, a per-class
score list, anything odd. A property test holds it to the same answers as the strict parser.

When the native decoder (``schemas/_envelope_native.c``, built at install when a C compiler
is present) is importable it goes first: it writes numeric features straight into float
buffers and shares repeated category strings, about four times faster again. It declines
more than msgspec does (any backslash escape, for one), and msgspec takes what it declines.

The model id is read from the head of the message before anything is decoded (producers
write it first; :class:`driftline.producer.PredictionProducer` does), so that the right
decoder can be picked: :func:`peek_model_id`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
import numpy as np
import numpy.typing as npt

from schemas.events import MAX_BATCH_RECORDS
from schemas.fast_batch import EnvelopeColumns, model_fields_ok, timestamps_of
from schemas.values import INT_MAX, INT_MIN, may_hold_wide_integer

_NativeColumns = tuple[
    str, str, int, list[str], bytes, bytes, list[list[Any]], list[Any], bytes, bytes | None
]

try:
    from schemas import _envelope_native as native
except ImportError:  # built without a C compiler: the msgspec decoder does the work
    native = None  # type: ignore[assignment]

#: What ends single events joined for :meth:`ModelEnvelopeDecoder.decode_joined`.
SINGLES_TAIL = b"]}"
_HEAD = re.compile(rb'\s*\{\s*"model_id"\s*:\s*"([A-Za-z0-9._:-]{1,128})"')
_WIDE = -float(INT_MIN)  # 2**63

_PredictionId = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_Version = Annotated[str, msgspec.Meta(max_length=128)]
_Scalar = str | int | float | bool
_Numeric = float | None
_Categorical = str | int | float | bool | None


def native_decoder_available() -> bool:
    """Whether the C decoder was built at install (else msgspec decodes, ~2x slower)."""
    return native is not None


def peek_model_id(raw: bytes) -> str | None:
    """The model id when the message starts with it (as producers write envelopes).

    Examples
    --------
    >>> peek_model_id(b'{"model_id": "churn", "records": []}')
    'churn'
    >>> peek_model_id(b'{"records": [], "model_id": "churn"}') is None
    True
    """
    found = _HEAD.match(raw)
    return found.group(1).decode() if found else None


class ModelEnvelopeDecoder:
    """Decodes the ``records`` form of one model's envelopes into columns.

    Numeric features come out as float arrays with NaN where a value is missing (JSON has no
    NaN, so NaN means null or absent); categorical features as lists of scalars.

    Examples
    --------
    >>> decoder = ModelEnvelopeDecoder("churn", numeric=["age"], categorical=["plan"])
    >>> columns = decoder.decode(
    ...     b'{"model_id": "churn", "records": [{"prediction_id": "a", "timestamp": 1714564800,'
    ...     b' "features": {"age": 41, "plan": "pro"}, "prediction": 1, "score": 0.8},'
    ...     b' {"prediction_id": "b", "timestamp": 1714564801, "features": {"plan": null},'
    ...     b' "prediction": 0}]}'
    ... )
    >>> columns.column("age").tolist(), columns.column("plan"), columns.scores
    ([41.0, nan], ['pro', None], [0.8, None])
    >>> decoder.decode(b'{"model_id": "churn", "records": [{"prediction_id": "a",'
    ...     b' "timestamp": 1714564800, "features": {"age": "41"}, "prediction": 1}]}') is None
    True
    """

    def __init__(
        self,
        model_id: str,
        numeric: Sequence[str],
        categorical: Sequence[str],
        edges: Sequence[npt.NDArray[np.float64]] | None = None,
    ) -> None:
        self.model_id = model_id
        self.numeric = tuple(numeric)
        self.categorical = tuple(categorical)
        self._native_names = (
            tuple(name.encode() for name in self.numeric),
            tuple(name.encode() for name in self.categorical),
        )
        self.use_native = native is not None
        # Sorted bin edges per numeric feature: the native decoder then bins as it parses.
        if edges is not None and len(edges) != len(self.numeric):
            raise ValueError("edges: one array per numeric feature")
        self._binners = None if edges is None else tuple(map(_binner, edges))
        names = (*self.numeric, *self.categorical)
        # Feature names need not be identifiers ("age group"): fields are f0, f1, ... and
        # renamed to the feature names on the wire.
        features = msgspec.defstruct(
            "Features",
            [(f"f{i}", _Numeric, None) for i in range(len(self.numeric))]
            + [(f"f{i}", _Categorical, None) for i in range(len(self.numeric), len(names))],
            rename={f"f{i}": name for i, name in enumerate(names)},
            forbid_unknown_fields=True,
            gc=False,
        )
        record = msgspec.defstruct(
            "Record",
            [
                ("prediction_id", _PredictionId),
                ("timestamp", float),
                ("features", features),
                ("prediction", _Scalar),
                ("score", float | None, None),
            ],
            forbid_unknown_fields=True,
            gc=False,
            array_like=False,
        )
        envelope = msgspec.defstruct(
            "Envelope",
            [
                ("model_id", str),
                (
                    "records",
                    Annotated[
                        list[record],  # type: ignore[valid-type]
                        msgspec.Meta(min_length=1, max_length=MAX_BATCH_RECORDS),
                    ],
                ),
                ("model_version", _Version, ""),
            ],
            forbid_unknown_fields=True,
            gc=False,
        )
        self._decoder = msgspec.json.Decoder(envelope)

    def decode(self, raw: bytes) -> EnvelopeColumns | None:
        """The envelope's columns, or ``None`` when the general path has to decide."""
        if self.use_native:
            columns = self._decode_native(raw)
            if columns is not None:
                return columns
        return self._decode_msgspec(raw)

    def decode_singles(self, raws: Sequence[bytes]) -> EnvelopeColumns | None:
        """Single-event messages of this model, decoded at once as if one envelope.

        One event per Kafka message is the most common form; decoding a batch of them in
        one native call costs a fraction of one decoder call per message. ``None`` when the
        native decoder is missing, any message is not a plain event of this model, or two
        messages name different versions (the caller then takes them one by one, and the
        odd one gets its precise answer). The version returned is the one the messages
        name, ``""`` if none does: what the stream keeps taking them one at a time.

        Examples
        --------
        >>> decoder = ModelEnvelopeDecoder("churn", numeric=["age"], categorical=[])
        >>> events = [b'{"model_id": "churn", "prediction_id": "%d", "timestamp": 1714564800,'
        ...           b' "features": {"age": %d}, "prediction": 1}' % (i, 40 + i) for i in (1, 2)]
        >>> columns = decoder.decode_singles(events)
        >>> columns is None or (columns.prediction_ids, columns.column("age").tolist())
        (['1', '2'], [41.0, 42.0])
        >>> columns is None or decoder.decode_singles([events[0] + events[1]]) is None
        True
        """
        if native is None or not raws or len(raws) > MAX_BATCH_RECORDS:
            return None
        head = self.singles_head
        # Where each message ends once joined: the decoder checks every event is exactly
        # one message, so two objects in one message cannot pass for two events.
        ends = np.cumsum([len(raw) + 1 for raw in raws], dtype=np.int64) + len(head) - 1
        return self.decode_joined(head + b",".join(raws) + SINGLES_TAIL, ends)

    @property
    def singles_head(self) -> bytes:
        """What :meth:`decode_joined` expects before the joined messages."""
        return b'{"model_id":"' + self.model_id.encode() + b'","records":['

    def decode_joined(self, joined: bytes, ends: npt.NDArray[np.int64]) -> EnvelopeColumns | None:
        """:meth:`decode_singles` of messages already joined: :attr:`singles_head`, the
        messages separated by commas, then ``SINGLES_TAIL``; ``ends``: where each message
        ends in ``joined`` (as the fetched records' columns give them, with no object per
        message)."""
        if native is None or not 0 < len(ends) <= MAX_BATCH_RECORDS:
            return None
        single = (self.model_id.encode(), ends.astype(np.int64, copy=False).tobytes())
        return self._columns(native.decode(joined, *self._native_names, self._binners, single))

    def _decode_native(self, raw: bytes) -> EnvelopeColumns | None:
        assert native is not None
        return self._columns(native.decode(raw, *self._native_names, self._binners))

    def _columns(self, decoded: _NativeColumns | None) -> EnvelopeColumns | None:
        if decoded is None:
            return None
        model_id, version, n, ids, times, numeric, categorical, predictions, scores, bins = decoded
        if (
            model_id != self.model_id
            or not model_fields_ok(model_id, version)
            or n > MAX_BATCH_RECORDS
            or not 1 <= min(map(len, ids)) <= max(map(len, ids)) <= 256
        ):
            return None
        timestamps = timestamps_of(np.frombuffer(times, dtype=np.float64))
        score_array = np.frombuffer(scores, dtype=np.float64)
        if timestamps is None or not _score_range_ok(score_array):
            return None
        columns: dict[str, Any] = {}
        feature_bins: dict[str, npt.NDArray[np.int32]] | None = None
        if self.numeric:
            rows = np.frombuffer(numeric, dtype=np.float64).reshape(n, len(self.numeric))
            columns.update(zip(self.numeric, rows.T.copy(), strict=True))
            if bins is not None:
                by_row = np.frombuffer(bins, dtype=np.int32).reshape(n, len(self.numeric))
                feature_bins = dict(zip(self.numeric, by_row.T.copy(), strict=True))
        columns.update(zip(self.categorical, categorical, strict=True))
        score_list: list[float | None] = score_array.tolist()
        if np.isnan(score_array).any():  # NaN: no score (JSON has no NaN)
            score_list = [None if math.isnan(s) else s for s in score_array.tolist()]
        return EnvelopeColumns(
            model_id, version, ids, timestamps, [], predictions, score_list, columns, feature_bins
        )

    def _decode_msgspec(self, raw: bytes) -> EnvelopeColumns | None:
        try:
            # Any: the struct type is built at run time, so mypy cannot see its fields.
            envelope: Any = self._decoder.decode(raw)
        except msgspec.DecodeError:
            return None
        if envelope.model_id != self.model_id or not model_fields_ok(
            envelope.model_id, envelope.model_version
        ):
            return None
        records = envelope.records
        ids, times, features, predictions, scores = (
            list(column) for column in zip(*map(msgspec.structs.astuple, records), strict=True)
        )
        timestamps = timestamps_of(times)
        if timestamps is None or not _scalars_ok(predictions) or not _scores_ok(scores):
            return None
        columns: dict[str, Any] = {}
        values = zip(*map(msgspec.structs.astuple, features), strict=True)
        for name, column in zip(self.numeric, values, strict=False):
            array = columns[name] = np.array(column, dtype=np.float64)  # None becomes NaN
            # msgspec reads an integer beyond 64 bits into a float field as a float.
            if bool((np.abs(array) >= _WIDE).any()) and may_hold_wide_integer(raw):
                return None
        for name, column in zip(self.categorical, values, strict=False):
            as_list = list(column)
            if not _scalars_ok(as_list):
                return None
            columns[name] = as_list
        return EnvelopeColumns(
            envelope.model_id,
            envelope.model_version,
            ids,
            timestamps,
            [],
            predictions,
            scores,
            columns,
        )


_CELLS_PER_EDGE = 8


def _binner(edges: npt.NDArray[np.float64]) -> tuple[bytes, bytes, float]:
    """What the native decoder bins a numeric feature with: the edges, and a uniform grid
    over them (per cell, how many edges lie below its start) with its cells per unit.

    Examples
    --------
    >>> edges, table, scale = _binner(np.array([0.0, 1.0, 3.0]))
    >>> np.frombuffer(table, dtype=np.int32)[6:12].tolist(), scale  # cell 8 starts at 1.0
    ([1, 1, 1, 2, 2, 2], 8.0)
    """
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    span = float(edges[-1] - edges[0]) if edges.size else 0.0
    if edges.size < 2 or not np.isfinite(span) or span <= 0.0:
        return edges.tobytes(), b"", 0.0  # no grid: the decoder searches the edges
    cells = min(_CELLS_PER_EDGE * edges.size, 1 << 16)
    scale = cells / span
    starts = edges[0] + np.arange(cells) / scale
    # Exactness does not rest on the table (the decoder walks from it to the answer); a
    # table close to the truth keeps the walks short.
    table = np.searchsorted(edges, starts, side="left").astype(np.int32)
    return edges.tobytes(), table.tobytes(), scale


def _scalars_ok(values: list[Any]) -> bool:
    """False when an integer lies beyond 64 bits (msgspec keeps it; the contract does not)."""
    if int not in set(map(type, values)):
        return True
    return all(INT_MIN <= value <= INT_MAX for value in values if type(value) is int)


def _scores_ok(values: list[float | None]) -> bool:
    return _score_range_ok(np.array(values, dtype=np.float64))


def _score_range_ok(array: npt.NDArray[np.float64]) -> bool:
    present = array[~np.isnan(array)]
    return bool(present.size == 0 or (present.min() >= 0.0 and present.max() <= 1.0))
