"""The columnar fast path never accepts what the strict parser rejects, and agrees with it."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.errors import InvalidEventError
from schemas.fast_batch import parse_envelope, parse_single, timestamp_of, timestamps_of
from schemas.parsing import parse_prediction_message
from schemas.values import INT_MAX, INT_MIN
from tests.schemas.strategies import BAD_UTF8, corrupt, text, wide_integers

scalar = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=INT_MIN, max_value=INT_MAX)
    | wide_integers
    | text(max_size=5)
    | st.booleans()
    | st.none()
)
valid_scalar = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=INT_MIN, max_value=INT_MAX)
    | st.text(max_size=5)
    | st.booleans()
    | st.none()
)
odd = st.lists(st.integers(0, 9), max_size=2) | st.dictionaries(
    text(max_size=2), st.integers(0, 9), max_size=1
)
timestamp = (
    st.floats(min_value=-10, max_value=8_000_000_000)
    | st.integers(min_value=-10, max_value=8_000_000_000)
    | wide_integers
    | st.just("2026-01-01T00:00:00Z")
    | st.just("0001-01-01T00:30:00+01:00")
    | st.booleans()
)
score = (
    st.none()
    | st.floats(min_value=-0.5, max_value=1.5)
    | st.integers(-1, 2)
    | wide_integers
    | st.just([0.2, 0.8])
    | st.booleans()
)
record = st.fixed_dictionaries(
    {
        "prediction_id": text(min_size=0, max_size=4) | st.integers(0, 9),
        "timestamp": timestamp,
        "features": st.dictionaries(text(min_size=0, max_size=3), scalar | odd, max_size=4),
        "prediction": scalar | odd,
    },
    optional={"score": score, "extra": st.integers(min_value=0, max_value=9)},
)
envelope = st.fixed_dictionaries(
    {
        "model_id": st.sampled_from(["churn", "bad id", "", "m.1:x"]),
        "records": st.lists(record, min_size=0, max_size=5),
    },
    optional={"model_version": text(max_size=3) | st.just("v" * 129) | st.integers(0, 9)},
)


def _strict(raw: bytes) -> Any:
    try:
        return parse_prediction_message(raw)
    except InvalidEventError:
        return None


def _dumps(data: Any, bad: bytes) -> bytes:
    # The stdlib encoder: orjson refuses integers beyond 64 bits.
    return corrupt(json.dumps(data, ensure_ascii=False).encode(), bad)


@given(envelope, BAD_UTF8)
def test_fast_path_agrees_with_the_strict_parser(data: dict[str, Any], bad: bytes) -> None:
    raw = _dumps(data, bad)
    fast = parse_envelope(raw)
    strict = _strict(raw)
    if fast is None:
        return  # the caller falls back to the strict parser: always safe
    assert strict is not None, f"fast path accepted what the strict parser rejects: {raw!r}"
    assert fast.model_id == strict[0].model_id
    assert fast.model_version == strict[0].model_version
    assert fast.prediction_ids == [e.prediction_id for e in strict]
    assert fast.timestamps.tolist() == [e.timestamp.timestamp() for e in strict]
    assert fast.features == [dict(e.features) for e in strict]
    assert fast.predictions == [e.prediction for e in strict]
    assert fast.scores == [e.score for e in strict]


def test_plain_envelopes_take_the_fast_path() -> None:
    records = [
        {
            "prediction_id": f"p{i}",
            "timestamp": 1_767_225_600 + i,
            "features": {"x": i * 0.5, "c": "a", "b": True, "n": None},
            "prediction": "1",
            "score": 0.25,
        }
        for i in range(500)
    ]
    columns = parse_envelope(
        orjson.dumps({"model_id": "m", "model_version": "v2", "records": records})
    )
    assert columns is not None and len(columns) == 500
    assert columns.column("x")[:3] == [0.0, 0.5, 1.0]
    assert columns.column("missing") == [None] * 500


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model_id": "m", "prediction_id": "p", "timestamp": 1, "features": {}, "prediction": 1}',
        b"{not json",
        b'{"model_id": "m", "records": []}',
        b'{"model_id": "m", "records": [{"prediction_id": "p", "timestamp": 1,'
        b' "features": {"x": [1]}, "prediction": 1}]}',
    ],
)
def test_everything_else_is_left_to_the_strict_parser(raw: bytes) -> None:
    assert parse_envelope(raw) is None


valid_record = st.fixed_dictionaries(
    {
        "prediction_id": st.text(min_size=1, max_size=8),
        "timestamp": st.floats(min_value=0, max_value=7_000_000_000)
        | st.integers(0, 7_000_000_000),
        "features": st.dictionaries(st.text(min_size=1, max_size=3), valid_scalar, max_size=4),
        "prediction": st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=3)
        | st.booleans(),
    },
    optional={"score": st.none() | st.floats(min_value=0, max_value=1) | st.sampled_from([0, 1])},
)


@given(st.lists(valid_record, min_size=1, max_size=6), st.text(max_size=4))
def test_valid_envelopes_are_accepted_with_the_strict_values(
    records: list[dict[str, Any]], version: str
) -> None:
    raw = orjson.dumps({"model_id": "churn", "model_version": version, "records": records})
    fast = parse_envelope(raw)
    strict = parse_prediction_message(raw)
    if fast is None:
        assert _maybe_wide(raw), f"declined a valid envelope: {raw!r}"
        return
    assert fast.timestamps.tolist() == [e.timestamp.timestamp() for e in strict]
    assert fast.features == [dict(e.features) for e in strict]
    assert fast.scores == [e.score for e in strict]
    assert fast.predictions == [e.prediction for e in strict]


single_event = st.fixed_dictionaries(
    {
        "model_id": st.sampled_from(["churn", "bad id", ""]),
        "prediction_id": text(min_size=0, max_size=4) | st.integers(0, 9),
        "timestamp": timestamp,
        "features": st.dictionaries(text(min_size=0, max_size=3), scalar | odd, max_size=4),
        "prediction": scalar | odd,
    },
    optional={
        "score": score,
        "model_version": text(max_size=3) | st.just("v" * 129) | st.integers(0, 9),
        "extra": st.just(1),
    },
)


@given(single_event | valid_record.map(lambda r: {**r, "model_id": "churn"}), BAD_UTF8)
def test_single_fast_path_agrees_with_the_strict_parser(data: dict[str, Any], bad: bytes) -> None:
    raw = _dumps(data, bad)
    fast = parse_single(raw)
    strict = _strict(raw)
    if fast is None:
        return
    assert strict is not None, f"fast path accepted what the strict parser rejects: {raw!r}"
    [event] = strict
    assert (fast.model_id, fast.model_version, fast.prediction_id) == (
        event.model_id,
        event.model_version,
        event.prediction_id,
    )
    assert fast.timestamp == event.timestamp.timestamp()
    assert fast.features == dict(event.features)
    assert (fast.prediction, fast.score) == (event.prediction, event.score)


@given(valid_record)
def test_valid_single_events_take_the_fast_path(record: dict[str, Any]) -> None:
    raw = orjson.dumps({"model_id": "m", **record})
    assert parse_single(raw) is not None or _maybe_wide(raw)


def _maybe_wide(raw: bytes) -> bool:
    # A float of 2**63 or more may stand for a wider integer where 19 digits are written.
    return re.search(rb"\d{19}", raw) is not None


def _with_wide_integer(record: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    place = data.draw(st.sampled_from(["features", "prediction", "timestamp", "score"]))
    value = data.draw(wide_integers)
    if place == "features":
        name = data.draw(st.sampled_from([*record["features"], "new"]))
        return {**record, "features": {**record["features"], name: value}}
    return {**record, place: value}


@given(st.lists(valid_record, min_size=1, max_size=4), st.data())
def test_an_integer_beyond_64_bits_is_never_accepted(
    records: list[dict[str, Any]], data: st.DataObject
) -> None:
    # orjson reads it as a float where the strict parser rejects it.
    index = data.draw(st.integers(0, len(records) - 1))
    records[index] = _with_wide_integer(records[index], data)
    raw = json.dumps({"model_id": "churn", "records": records}).encode()
    single = json.dumps({"model_id": "churn", **records[index]}).encode()
    assert _strict(raw) is None and _strict(single) is None
    assert parse_envelope(raw) is None
    assert parse_single(single) is None


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, 2**70])
@pytest.mark.parametrize("place", ["features", "prediction"])
def test_a_wide_integer_read_as_a_float_is_left_to_the_strict_parser(
    value: int, place: str
) -> None:
    event = {"prediction_id": "p", "timestamp": 1, "features": {"x": 1.5}, "prediction": 1}
    event |= {"features": {"x": value}} if place == "features" else {"prediction": value}
    single = json.dumps({"model_id": "m", **event}).encode()
    assert orjson.loads(single) and parse_single(single) is None
    assert parse_envelope(json.dumps({"model_id": "m", "records": [event]}).encode()) is None


@pytest.mark.parametrize("value", [INT_MAX, INT_MIN, 10**18])
def test_integers_of_64_bits_take_the_fast_path(value: int) -> None:
    event = {"prediction_id": "p", "timestamp": 1, "features": {"x": value}, "prediction": value}
    single = parse_single(orjson.dumps({"model_id": "m", **event}))
    assert single is not None and single.features["x"] == single.prediction == value
    columns = parse_envelope(orjson.dumps({"model_id": "m", "records": [event]}))
    assert columns is not None and columns.predictions == [value]


@given(
    st.floats()
    | st.floats(0, 2e9)
    | st.integers(0, 2**50).map(lambda k: k / 2**16)
    | st.sampled_from([0.0, -0.0, 0.5e-6, 1.5e-6, 2.5e-6, 7_258_118_400.0, 7_258_118_399.999_999])
)
def test_one_timestamp_is_read_as_in_a_column(value: float) -> None:
    in_column = timestamps_of(np.array([value]))
    expected = None if in_column is None else float(in_column[0])
    assert timestamp_of(value) == expected
