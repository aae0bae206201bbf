"""The model's own envelope decoder never accepts what the strict parser rejects, and agrees."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.errors import InvalidEventError
from schemas import typed_envelope
from schemas.events import PredictionEvent
from schemas.fast_batch import EnvelopeColumns
from schemas.parsing import parse_prediction_message
from schemas.typed_envelope import ModelEnvelopeDecoder, peek_model_id
from schemas.values import INT_MAX, INT_MIN
from tests.schemas.strategies import BAD_UTF8, PLACEHOLDER, corrupt, text, wide_integers

NUMERIC = ("a", "b")
CATEGORICAL = ("c",)


def _decoder(kind: str) -> ModelEnvelopeDecoder:
    decoder = ModelEnvelopeDecoder("churn", numeric=NUMERIC, categorical=CATEGORICAL)
    decoder.use_native = kind == "native"
    return decoder


DECODERS = {kind: _decoder(kind) for kind in ("native", "msgspec")}
KINDS = pytest.mark.parametrize("kind", sorted(DECODERS))


def test_the_native_decoder_is_built() -> None:
    # The throughput of issue 4 rests on it; a silent fallback would hide a broken build.
    assert typed_envelope.native_decoder_available(), "schemas/_envelope_native.c not compiled"


scalar = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=INT_MIN, max_value=INT_MAX)
    | wide_integers
    | text(max_size=5)
    | st.booleans()
    | st.none()
)
number = (
    st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers(INT_MIN, INT_MAX)
)
odd = st.lists(st.integers(0, 9), max_size=2) | st.dictionaries(text(max_size=2), st.integers())
features = st.fixed_dictionaries(
    {},
    optional={
        "a": number | wide_integers | text(max_size=2) | st.booleans(),
        "b": number | wide_integers,
        "c": scalar | odd,
        "zz": st.integers(0, 3),
    },
)
record = st.fixed_dictionaries(
    {
        "prediction_id": text(min_size=0, max_size=4) | st.integers(0, 9),
        "timestamp": st.floats(min_value=-10, max_value=8_000_000_000)
        | st.integers(min_value=-10, max_value=8_000_000_000)
        | wide_integers
        | st.just("2026-01-01T00:00:00Z"),
        "features": features,
        "prediction": scalar | odd,
    },
    optional={
        "score": st.none()
        | st.floats(min_value=-0.5, max_value=1.5)
        | st.integers(-1, 2)
        | st.just([0.2, 0.8]),
        "extra": st.just(1),
    },
)
envelope = st.fixed_dictionaries(
    {
        "model_id": st.sampled_from(["churn", "churn", "other"]),
        "records": st.lists(record, min_size=0, max_size=5),
    },
    optional={"model_version": text(max_size=3) | st.just("v" * 129) | st.integers(0, 9)},
)


def _dumps(data: Any) -> bytes:
    # The stdlib encoder: it writes integers beyond 64 bits (orjson refuses them) and
    # escapes non-ASCII text, both of which the decoder has to get right.
    return json.dumps(data).encode()


def _strict(raw: bytes) -> Any:
    try:
        return parse_prediction_message(raw)
    except InvalidEventError:
        return None


def _numeric(value: Any) -> float:
    return math.nan if value is None else float(value)


valid_record = st.fixed_dictionaries(
    {
        "prediction_id": st.text(min_size=1, max_size=8),
        "timestamp": st.floats(min_value=0, max_value=7_000_000_000)
        | st.integers(0, 7_000_000_000),
        "features": st.fixed_dictionaries(
            {},
            optional={
                "a": number,
                "b": number,
                "c": st.none()
                | st.text(max_size=4)
                | st.booleans()
                | st.integers(INT_MIN, INT_MAX)
                | st.floats(allow_nan=False, allow_infinity=False),
            },
        ),
        "prediction": st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=3)
        | st.booleans()
        | st.integers(INT_MIN, INT_MAX),
    },
    optional={"score": st.none() | st.floats(min_value=0, max_value=1) | st.sampled_from([0, 1])},
)
valid_envelope = st.fixed_dictionaries(
    {"model_id": st.just("churn"), "records": st.lists(valid_record, min_size=1, max_size=6)},
    optional={"model_version": st.text(max_size=4)},
)


@given(valid_envelope)
def test_valid_envelopes_are_decoded_with_the_strict_values(data: dict[str, Any]) -> None:
    # msgspec takes every valid envelope; the native decoder may decline escapes, then
    # msgspec decides (both run in decode()).
    raw = _dumps(data)
    _assert_agrees(DECODERS["msgspec"], raw, must_decode=True)
    _assert_agrees(DECODERS["native"], raw, must_decode=True)


@given(valid_envelope, st.booleans())
def test_both_decoders_give_the_same_columns(data: dict[str, Any], ascii_only: bool) -> None:
    raw = json.dumps(data, ensure_ascii=ascii_only).encode()
    from schemas import _envelope_native as native  # built at install; the test needs it

    if native.decode(raw, *DECODERS["native"]._native_names) is None:
        # It declines escapes and integers of 19+ digits by design, nothing else.
        text = raw.decode()
        assert "\\" in text or re.search(r"\d{19}", text), f"declined a plain envelope: {raw!r}"
        return
    fast, slow = DECODERS["native"].decode(raw), DECODERS["msgspec"].decode(raw)
    assert fast is not None and slow is not None
    assert (fast.prediction_ids, fast.predictions, fast.scores) == (
        slow.prediction_ids,
        slow.predictions,
        slow.scores,
    )
    np.testing.assert_array_equal(fast.timestamps, slow.timestamps)
    for name in NUMERIC:
        np.testing.assert_array_equal(fast.column(name), slow.column(name))
    assert fast.column("c") == slow.column("c")


@KINDS
@given(data=envelope, ascii_only=st.booleans(), bad=BAD_UTF8)
def test_the_decoder_agrees_with_the_strict_parser(
    kind: str, data: dict[str, Any], ascii_only: bool, bad: bytes
) -> None:
    raw = corrupt(json.dumps(data, ensure_ascii=ascii_only).encode(), bad)
    _assert_agrees(DECODERS[kind], raw, must_decode=False)


@KINDS
@given(raw=st.binary(max_size=40).map(lambda tail: _envelope()[:-40] + tail))
def test_broken_json_is_declined_or_agrees(kind: str, raw: bytes) -> None:
    _assert_agrees(DECODERS[kind], raw, must_decode=False)


def _assert_agrees(decoder: ModelEnvelopeDecoder, raw: bytes, must_decode: bool) -> None:
    fast = decoder.decode(raw)
    if fast is None:
        # A float of 2**63 or more may stand for a wider integer where 19 digits are written.
        may_decline = not must_decode or re.search(rb"\d{19}", raw)
        assert may_decline, f"a valid envelope was declined: {raw!r}"
        return  # the general path decides: always safe
    strict = _strict(raw)
    assert strict is not None, f"decoder accepted what the strict parser rejects: {raw!r}"
    assert (fast.model_id, fast.model_version) == (strict[0].model_id, strict[0].model_version)
    _assert_same_columns(fast, strict)


def _assert_same_columns(fast: EnvelopeColumns, strict: list[PredictionEvent]) -> None:
    assert fast.prediction_ids == [e.prediction_id for e in strict]
    assert fast.timestamps.tolist() == [e.timestamp.timestamp() for e in strict]
    for name in NUMERIC:
        expected = [_numeric(e.features.get(name)) for e in strict]
        np.testing.assert_array_equal(fast.column(name), np.array(expected))
    assert fast.column("c") == [e.features.get("c") for e in strict]
    assert fast.predictions == [e.prediction for e in strict]
    assert fast.scores == [e.score for e in strict]


def _envelope(**changes: Any) -> bytes:
    record = {
        "prediction_id": "p1",
        "timestamp": 1_767_225_600.25,
        "features": {"a": 1.5, "b": None, "c": "x"},
        "prediction": 1,
        "score": 0.75,
    }
    record.update(changes)
    return _dumps({"model_id": "churn", "model_version": "v1", "records": [record] * 3})


@KINDS
def test_a_plain_envelope_is_decoded_by_column(kind: str) -> None:
    columns = DECODERS[kind].decode(_envelope())
    assert columns is not None and len(columns) == 3
    numbers = columns.column("a")
    assert isinstance(numbers, np.ndarray) and numbers.tolist() == [1.5] * 3
    assert np.isnan(columns.column("b")).all()
    assert columns.column("c") == ["x"] * 3
    assert columns.timestamps.tolist() == [1_767_225_600.25] * 3
    assert (columns.predictions, columns.scores) == ([1] * 3, [0.75] * 3)


@pytest.mark.parametrize(
    "changes",
    [
        {"features": {"a": "1.5"}},  # an invalid value: the general path counts it
        {"features": {"a": True}},
        {"features": {"unknown": 1}},
        {"features": {"c": ["x"]}},
        {"timestamp": "2026-01-01T00:00:00Z"},
        {"score": [0.25, 0.75]},
        {"score": 1.5},
        {"prediction_id": ""},
        {"extra": 1},
        {"prediction": 2**70},  # beyond 64 bits: the strict parser rejects it
        {"features": {"a": 2**64}},  # msgspec and a plain reading would make it a float
        {"features": {"b": -(2**63) - 1}},
        {"features": {"c": 2**64}},
    ],
)
@KINDS
def test_what_it_cannot_certify_is_left_to_the_general_path(
    kind: str, changes: dict[str, Any]
) -> None:
    assert DECODERS[kind].decode(_envelope(**changes)) is None


@KINDS
def test_another_models_envelope_is_declined(kind: str) -> None:
    raw = _envelope().replace(b'"churn"', b'"other"')
    assert peek_model_id(raw) == "other" and DECODERS[kind].decode(raw) is None


@KINDS
def test_feature_names_need_not_be_identifiers(kind: str) -> None:
    decoder = ModelEnvelopeDecoder("m", numeric=["age group", "class"], categorical=["1st"])
    decoder.use_native = kind == "native"
    raw = _dumps(
        {
            "model_id": "m",
            "records": [
                {
                    "prediction_id": "p",
                    "timestamp": 1,
                    "features": {"age group": 3, "class": 1, "1st": "y"},
                    "prediction": "a",
                }
            ],
        }
    )
    columns = decoder.decode(raw)
    assert columns is not None
    age_group = columns.column("age group")
    assert isinstance(age_group, np.ndarray) and age_group.tolist() == [3.0]
    assert columns.column("1st") == ["y"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b' {\n "model_id" : "m.1:x" , "records": []}', "m.1:x"),
        (b'{"model_version": "v", "model_id": "m"}', None),
        (b'{"model_id": "bad id"}', None),
        (b"", None),
    ],
)
def test_the_model_id_is_read_from_the_head(raw: bytes, expected: str | None) -> None:
    assert peek_model_id(raw) == expected


EDGES = (np.array([-1.0, 0.0, 0.0, 2.5, 1e6]), np.array([]))


@given(valid_envelope)
def test_the_native_decoder_bins_like_numpy(data: dict[str, Any]) -> None:
    decoder = ModelEnvelopeDecoder("churn", NUMERIC, CATEGORICAL, edges=EDGES)
    raw = _dumps(data)
    columns = decoder.decode(raw)
    assert columns is not None or re.search(rb"\d{19}", raw)
    if columns is None or columns.feature_bins is None:
        return  # msgspec decided (an escape, a long integer): no bins, numpy bins later
    for name, edges in zip(NUMERIC, EDGES, strict=True):
        values = np.asarray(columns.column(name))
        expected = np.where(np.isnan(values), -1, np.searchsorted(edges, values, side="left"))
        np.testing.assert_array_equal(columns.feature_bins[name], expected)


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=0, max_size=30).map(sorted),
    st.lists(st.floats(-2e6, 2e6) | st.sampled_from([0.0, 1e-300, -1e300, 1e300]), max_size=30),
)
def test_grid_binning_is_exact(edges: list[float], values: list[float]) -> None:
    # Crowded, repeated and far-apart edges: the walk from the grid must still land on
    # np.searchsorted's answer.
    decoder = ModelEnvelopeDecoder("m", ["x"], [], edges=[np.array(edges)])
    records = [
        {"prediction_id": "p", "timestamp": 1, "features": {"x": v}, "prediction": 1}
        for v in values or [0.0]
    ]
    columns = decoder.decode(_dumps({"model_id": "m", "records": records}))
    assert columns is not None and columns.feature_bins is not None
    expected = np.searchsorted(np.array(edges), columns.column("x"), side="left")
    np.testing.assert_array_equal(columns.feature_bins["x"], expected)


# Few versions, so that runs often share one; some too long, some not UTF-8 once corrupted.
versions = st.sampled_from(["", "v1", "v2", "v" * 129, "v" + PLACEHOLDER])
# Valid, and without the escapes the native decoder declines: runs it decodes.
plain_text = st.text("ab\u00e9\u4e2d" + PLACEHOLDER, max_size=4)
plain_record = st.fixed_dictionaries(
    {
        "prediction_id": plain_text.filter(bool),
        "timestamp": st.integers(0, 7_000_000_000) | st.floats(0, 7_000_000_000),
        "features": st.fixed_dictionaries(
            {}, optional={"a": number, "b": number, "c": st.none() | plain_text | st.booleans()}
        ),
        "prediction": st.integers(-9, 9) | plain_text,
    },
    optional={"score": st.none() | st.floats(min_value=0, max_value=1)},
)
plain_single = st.tuples(plain_record, st.none() | versions).map(
    lambda pair: (
        {"model_id": "churn", **pair[0]} | ({} if pair[1] is None else {"model_version": pair[1]})
    )
)
odd_single = (valid_record | record).flatmap(
    lambda record: st.fixed_dictionaries(
        {"model_id": st.sampled_from(["churn", "churn", "other"])},
        optional={"model_version": versions | st.integers(0, 9)},
    ).map(lambda head: {**head, **record})
)


@given(
    # Mostly messages of a run the decoder takes, so that the odd one is the one to find.
    st.lists(
        st.sampled_from([plain_single] * 6 + [odd_single, envelope]).flatmap(lambda s: s),
        min_size=1,
        max_size=6,
    ),
    st.lists(st.sampled_from([False] * 6 + [True]), min_size=6, max_size=6),
    BAD_UTF8,
)
def test_single_events_decoded_together_agree_with_each_strict_parse(
    events: list[dict[str, Any]], ascii_only: list[bool], bad: bytes
) -> None:
    raws = [
        corrupt(json.dumps(event, ensure_ascii=ascii).encode(), bad)
        for event, ascii in zip(events, ascii_only, strict=False)
    ]
    _assert_run_agrees(raws)


@given(st.lists(plain_single, min_size=2, max_size=5), BAD_UTF8)
def test_a_single_run_is_decoded_only_when_every_version_is_valid_and_the_same(
    events: list[dict[str, Any]], bad: bytes
) -> None:
    _assert_run_agrees([corrupt(json.dumps(e, ensure_ascii=False).encode(), bad) for e in events])


@given(st.lists(plain_single, min_size=2, max_size=5), st.data())
def test_a_single_run_with_an_integer_beyond_64_bits_is_declined(
    events: list[dict[str, Any]], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(events) - 1))
    events[index] = _with_wide_integer(events[index], data)
    raws = [json.dumps(event, ensure_ascii=False).encode() for event in events]
    assert _strict(raws[index]) is None
    assert DECODERS["native"].decode_singles(raws) is None


def _assert_run_agrees(raws: list[bytes]) -> None:
    fast = DECODERS["native"].decode_singles(raws)
    if fast is None:
        return  # one at a time, as without this path
    strict = []
    for raw in raws:
        parsed = _strict(raw)
        assert parsed is not None and len(parsed) == 1, f"accepted a bad message: {raw!r}"
        strict.extend(parsed)
    assert {e.model_id for e in strict} == {"churn"}
    _assert_same_columns(fast, strict)
    # The stream keeps the last version named (an empty one changes nothing), one event at
    # a time; a run stands for its events only when they name one version at most.
    versions = {e.model_version for e in strict} - {""}
    assert len(versions) <= 1, f"a run of mixed versions was accepted: {raws!r}"
    assert fast.model_version == (versions.pop() if versions else "")


WIDE_PLACES = [("features", "a"), ("features", "b"), ("features", "c"), ("prediction",)]
WIDE_PLACES += [("timestamp",), ("score",)]


def _with_wide_integer(record: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """``record`` with an integer beyond 64 bits in one of the places that take numbers."""
    place = data.draw(st.sampled_from(WIDE_PLACES))
    value = data.draw(wide_integers)
    if place[0] == "features":
        return {**record, "features": {**record["features"], place[1]: value}}
    return {**record, place[0]: value}


@KINDS
@given(data=st.data())
def test_an_envelope_with_an_integer_beyond_64_bits_is_declined(
    kind: str, data: st.DataObject
) -> None:
    envelope: dict[str, Any] = data.draw(valid_envelope)
    records: list[dict[str, Any]] = envelope["records"]
    index = data.draw(st.integers(0, len(records) - 1))
    records[index] = _with_wide_integer(records[index], data)
    raw = _dumps(envelope)
    assert _strict(raw) is None
    assert DECODERS[kind].decode(raw) is None


def _single(version: str | None) -> bytes:
    event = {"model_id": "churn", **json.loads(_envelope())["records"][0]}
    if version is not None:
        event["model_version"] = version
    return json.dumps(event, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    "versions",
    [
        ["v1", "v" + PLACEHOLDER, "v1"],  # not UTF-8 once corrupted
        ["v1", "v" * 129, "v1"],
        ["v" * 129, None],
        ["v1", "v2"],
        ["v2", "v1", "v2"],
    ],
)
def test_every_version_of_a_single_run_is_checked(versions: list[str | None]) -> None:
    raws = [corrupt(_single(version), b"\xff") for version in versions]
    assert DECODERS["native"].decode_singles(raws) is None
    assert any(_strict(raw) is None for raw in raws) or len(set(versions) - {None, ""}) > 1


@pytest.mark.parametrize(
    ("versions", "expected"),
    [(["v1", "v1"], "v1"), (["", "v1", None], "v1"), ([None, ""], ""), (["v1", ""], "v1")],
)
def test_a_run_of_one_version_is_decoded_with_it(versions: list[str | None], expected: str) -> None:
    columns = DECODERS["native"].decode_singles([_single(version) for version in versions])
    assert columns is not None and columns.model_version == expected


def test_plain_single_events_are_decoded_together() -> None:
    events = [
        {"model_id": "churn", "model_version": "v2", **json.loads(_envelope())["records"][0]}
    ] * 4
    columns = DECODERS["native"].decode_singles([_dumps(e) for e in events])
    assert columns is not None and len(columns) == 4 and columns.model_version == "v2"


def test_a_message_holding_two_events_is_not_two_events() -> None:
    event = {"model_id": "churn", **json.loads(_envelope())["records"][0]}
    one = _dumps(event)
    assert DECODERS["native"].decode_singles([one, one]) is not None
    assert DECODERS["native"].decode_singles([one + b"," + one]) is None
    assert DECODERS["native"].decode_singles([one[:-1], b"}"]) is None


@given(st.lists(valid_record, min_size=1, max_size=6), st.text(max_size=3))
def test_valid_single_events_are_decoded_together(
    records: list[dict[str, Any]], version: str
) -> None:
    raws = [_dumps({"model_id": "churn", "model_version": version, **r}) for r in records]
    fast = DECODERS["native"].decode_singles(raws)
    text = b"".join(raws).decode()
    if fast is None:  # escapes and integers of 19+ digits are declined by design
        assert "\\" in text or re.search(r"\d{19}", text), f"declined plain events: {raws!r}"
        return
    assert fast.prediction_ids == [r["prediction_id"] for r in records]
    assert fast.model_version == version
