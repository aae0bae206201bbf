"""parse_prediction_message / parse_label_message: accepted shapes and rejection reasons."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.errors import InvalidEventError
from schemas import parse_label_message, parse_labels_message, parse_prediction_message
from schemas.events import MAX_BATCH_RECORDS, PredictionBatch, PredictionEvent
from schemas.parsing import parse_label_columns
from tests.examples import examples
from tests.schemas.examples import MISSING, batch, dumps, event, label, record

NOON = datetime(2024, 5, 1, 12, tzinfo=UTC)
WIDE = "integer out of range, JSON integers must fit in 64 bits"


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({}, "timestamp", NOON),
        ({"timestamp": 1714564800}, "timestamp", NOON),
        ({"timestamp": 1714564800.25}, "timestamp", NOON + timedelta(milliseconds=250)),
        ({"timestamp": "2024-05-01T12:00:00"}, "timestamp", NOON),  # naive: UTC
        ({"timestamp": "2024-05-01T14:00:00+02:00"}, "timestamp", NOON),
        ({"timestamp": "2024-05-01T12:00:00.5Z"}, "timestamp", NOON + timedelta(seconds=0.5)),
        ({"timestamp": "1970-01-01T00:00:00Z"}, "timestamp", datetime(1970, 1, 1, tzinfo=UTC)),
        ({"model_version": MISSING}, "model_version", ""),
        ({"score": MISSING}, "score", None),
        ({"score": None}, "score", None),
        ({"score": [0.1, 0.7, 0.2]}, "score", [0.1, 0.7, 0.2]),
        ({"score": 0}, "score", 0),
        ({"score": 1}, "score", 1),
        ({"prediction": "cat"}, "prediction", "cat"),
        ({"prediction": True}, "prediction", True),
        ({"prediction": 3.25}, "prediction", 3.25),
        ({"features": {}}, "features", {}),
        (
            {"features": {"a": None, "b": True, "c": "x"}},
            "features",
            {"a": None, "b": True, "c": "x"},
        ),
        ({"model_id": "team.a:model_1-b"}, "model_id", "team.a:model_1-b"),
    ],
)
def test_valid_single_event(changes: dict[str, Any], field: str, expected: Any) -> None:
    [parsed] = parse_prediction_message(dumps(event(**changes)))
    assert getattr(parsed, field) == expected


def test_json_types_are_kept() -> None:
    features = {"i": 3, "f": 3.0, "b": True, "s": "3", "n": None}
    [parsed] = parse_prediction_message(dumps(event(features=features)))
    assert {k: type(v) for k, v in parsed.features.items()} == {
        "i": int,
        "f": float,
        "b": bool,
        "s": str,
        "n": type(None),
    }


def test_timestamps_are_aware_utc() -> None:
    [parsed] = parse_prediction_message(dumps(event(timestamp="2024-05-01T14:00:00+02:00")))
    assert parsed.timestamp.tzinfo is UTC
    assert parsed.timestamp.utcoffset() == timedelta(0)
    assert parsed.timestamp.astimezone(timezone(timedelta(hours=2))).hour == 14


def test_non_finite_features_are_kept_for_the_detectors_to_count() -> None:
    raw = dumps(event()).replace(b'"income": 5120.5', b'"income": NaN, "debt": Infinity')
    [parsed] = parse_prediction_message(raw)
    income = parsed.features["income"]
    assert isinstance(income, float) and math.isnan(income)
    assert parsed.features["debt"] == math.inf


def test_str_input_is_accepted() -> None:
    [parsed] = parse_prediction_message(dumps(event()).decode())
    assert parsed.prediction_id == "p-000001"


def test_batch_expands_in_order_with_model_fields() -> None:
    records = [record(prediction_id=f"r{i}", prediction=i) for i in range(5)]
    events = parse_prediction_message(dumps(batch(records)))
    assert [e.prediction_id for e in events] == ["r0", "r1", "r2", "r3", "r4"]
    assert [e.prediction for e in events] == [0, 1, 2, 3, 4]
    assert {(e.model_id, e.model_version) for e in events} == {("churn-v2", "7")}
    assert all(isinstance(e, PredictionEvent) for e in events)


def test_batch_events_equal_validated_single_events() -> None:
    doc = batch()
    expanded = PredictionBatch.model_validate_json(dumps(doc)).events()
    singles = [
        PredictionEvent.model_validate({"model_id": "churn-v2", "model_version": "7", **r})
        for r in doc["records"]
    ]
    assert expanded == singles


def test_records_inside_values_does_not_make_a_batch() -> None:
    doc = event(features={"records": 3, "note": '"records"'}, prediction="records")
    [parsed] = parse_prediction_message(dumps(doc))
    assert parsed.features["records"] == 3


def test_largest_batch_is_accepted() -> None:
    records = [record(prediction_id=str(i)) for i in range(MAX_BATCH_RECORDS)]
    assert len(parse_prediction_message(dumps(batch(records)))) == MAX_BATCH_RECORDS


def _bad_record(i: int) -> dict[str, Any]:
    return record(prediction_id=f"r{i}", features={"age": {"years": 42}} if i == 3 else {})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"model_id": "m", ', "not valid JSON: EOF while parsing"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"event"', "must be a JSON object"),
        (b"\xff\xfe{}", "not valid UTF-8: byte 0"),
        (b'{"model_id": "m\xe9"}', "not valid UTF-8: byte 15"),
        (dumps(event(model_id=MISSING)), "model_id: field required"),
        (dumps(event(model_id="")), "model_id: string should have at least 1 character"),
        (dumps(event(model_id="has space")), "model_id: string should match pattern"),
        (dumps(event(model_id="m" * 129)), "model_id: string should have at most 128"),
        (dumps(event(prediction_id="")), "prediction_id: string should have at least 1"),
        (dumps(event(prediction_id="p" * 257)), "prediction_id: string should have at most 256"),
        (dumps(event(prediction_id=7)), "prediction_id: input should be a valid string"),
        (
            dumps(event(features={"age": {"years": 42}})),
            "features.age: value must be a number, string, bool or null",
        ),
        (
            dumps(event(features={"a.b": [1]})),
            'features["a.b"]: value must be a number, string, bool or null',
        ),
        (dumps(event(features=[1, 2])), "features: must be a JSON object"),
        (dumps(event(features={"": 1})), 'features[""] (the key): string should have at least 1'),
        (dumps(event(score=1.5)), "score: must be a probability in [0, 1]"),
        (dumps(event(score=-0.1)), "score: must be a probability in [0, 1]"),
        (dumps(event(score=[0.5, 1.01])), "score: must be a probability in [0, 1]"),
        (dumps(event(score=[])), "score: must be a probability in [0, 1]"),
        (dumps(event(score=True)), "score: must be a probability"),
        (dumps(event(score="0.5")), "score: must be a probability"),
        (dumps(event(prediction=None)), "prediction: must be a finite number, string or bool"),
        (dumps(event(prediction=MISSING)), "prediction: field required"),
        (dumps(event(prediction={"class": 1})), "prediction: must be a finite number"),
        (dumps(event()).replace(b'"prediction": 1', b'"prediction": NaN'), "prediction: must"),
        (dumps(event(timestamp=True)), "timestamp: must be an ISO 8601 string or epoch seconds"),
        (dumps(event(timestamp="yesterday")), "timestamp: not an ISO 8601 date-time string"),
        (dumps(event(timestamp="1714564800")), "timestamp: not an ISO 8601 date-time string"),
        (dumps(event(timestamp="")), "timestamp: not an ISO 8601"),
        (dumps(event(timestamp=None)), "timestamp: must be an ISO 8601 string or epoch seconds"),
        (dumps(event(timestamp=[1714564800])), "timestamp: must be an ISO 8601 string"),
        (dumps(event(timestamp=-1)), "timestamp: must not be before 1970-01-01"),
        (dumps(event(timestamp="1969-12-31T23:59:59Z")), "timestamp: must not be before 1970"),
        (dumps(event(timestamp="2200-01-01T00:00:00Z")), "timestamp: must be before 2200"),
        (dumps(event(timestamp=1714564800000)), "(epoch milliseconds? send seconds)"),
        (dumps(event(timestamp=1e300)), "timestamp: must be before 2200-01-01T00:00:00Z"),
        (dumps(event(timestamp="0001-01-01T00:30:00+01:00")), "timestamp: must not be before"),
        (dumps(event(timestamp="9999-12-31T23:30:00-01:00")), "timestamp: must be before 2200"),
        (dumps(event()).replace(b'"2024-05-01T12:00:00Z"', b"-Infinity"), "timestamp: epoch"),
        (dumps(event(features={"age": 2**64})), f"features.age: {WIDE}"),
        (dumps(event(features={"a b": -(2**63) - 1})), f'features["a b"]: {WIDE}'),
        (dumps(event(features={"age": 10**400})), f"features.age: {WIDE}"),
        (dumps(event(prediction=2**64)), f"prediction: {WIDE}"),
        (dumps(event(timestamp=2**64)), f"timestamp: {WIDE}"),
        (dumps(event(timestamp=-(10**30))), f"timestamp: {WIDE}"),
        (dumps(event(score=2**64)), "score: must be a probability"),
        (
            dumps(
                batch(records=[record(features={"age": 2**70} if i == 3 else {}) for i in range(5)])
            ),
            f"records[3].features.age: {WIDE}",
        ),
        (dumps(event(scores=[0.1, 0.9])), "scores: unknown field"),
        (dumps(event(records_count=1)), "records_count: unknown field"),
        (dumps(batch(records=[])), "records: list should have at least 1 item"),
        (
            dumps(batch(records=[record()] * (MAX_BATCH_RECORDS + 1))),
            "records: list should have at most 10000 items",
        ),
        (
            dumps(batch(records=[_bad_record(i) for i in range(5)])),
            "records[3].features.age: value must be a number, string, bool or null",
        ),
        (dumps(batch(records=[{**record(), "model_id": "m"}])), "records[0].model_id: unknown"),
        (dumps(batch(model_id=MISSING)), "model_id: field required"),
        (dumps({**batch(), "records": {"a": record()}}), "records: input should be a valid array"),
        (dumps({**event(), "records": [record()]}), "prediction_id: unknown field"),
    ],
)
def test_invalid_prediction_message(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_prediction_message(raw)
    message = str(caught.value)
    assert reason in message
    assert "\n" not in message
    assert len(message) < 300


def test_only_the_first_error_is_spelled_out() -> None:
    raw = dumps(event(model_id="", prediction_id="", score=2))
    with pytest.raises(InvalidEventError, match=r"^model_id: .* \(\+2 more\)$"):
        parse_prediction_message(raw)


def test_valid_label() -> None:
    parsed = parse_label_message(dumps(label(label="churned", timestamp="2024-05-01T12:00:00")))
    assert (parsed.model_id, parsed.prediction_id, parsed.label) == (
        "churn-v2",
        "p-000001",
        "churned",
    )
    assert parsed.timestamp == NOON


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (label(label=None), "label: must be a finite number, string or bool"),
        (label(label=[1]), "label: must be a finite number, string or bool"),
        (label(prediction_id=""), "prediction_id: string should have at least 1 character"),
        (label(timestamp=False), "timestamp: must be an ISO 8601 string or epoch seconds"),
        (label(model_version="1"), "model_version: unknown field"),
        (label(model_id=MISSING), "model_id: field required"),
        (label(label=2**64), f"label: {WIDE}"),
        (label(label=-(2**63) - 1), f"label: {WIDE}"),
        (label(timestamp=2**64), f"timestamp: {WIDE}"),
    ],
)
def test_invalid_label(doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason.replace("[", r"\[")):
        parse_label_message(dumps(doc))


def test_events_are_frozen() -> None:
    [parsed] = parse_prediction_message(dumps(event()))
    with pytest.raises(ValueError, match="frozen"):
        parsed.prediction_id = "other"


@pytest.mark.parametrize("value", [2**64 - 1, -(2**63), 2**63, 10**18])
def test_integers_of_64_bits_are_kept_exact(value: int) -> None:
    [parsed] = parse_prediction_message(dumps(event(features={"x": value}, prediction=value)))
    assert parsed.features["x"] == parsed.prediction == value
    assert type(parsed.prediction) is int
    assert parse_label_message(dumps(label(label=value))).label == value


def test_what_is_accepted_can_be_written_by_orjson() -> None:
    # orjson.dumps raises on integers beyond 64 bits: the pipeline serializes events again.
    [parsed] = parse_prediction_message(dumps(event(features={"x": 2**64 - 1, "y": -(2**63)})))
    assert orjson.loads(orjson.dumps(parsed.model_dump(mode="json")))["features"]["x"] == 2**64 - 1


def test_long_digit_runs_elsewhere_are_not_integers() -> None:
    digits = "1" * 40
    doc = event(prediction_id=digits, features={digits: "x", "f": float("0." + digits)})
    [parsed] = parse_prediction_message(dumps(doc))
    assert parsed.prediction_id == digits


def label_batch(*records: dict[str, Any], model_id: str = "churn-v2") -> dict[str, Any]:
    return {"model_id": model_id, "records": list(records)}


def label_record(**changes: Any) -> dict[str, Any]:
    doc = label(**changes)
    doc.pop("model_id")
    return doc


def test_a_label_envelope_gives_the_events_a_single_label_would() -> None:
    first = label_record(prediction_id="a", label=1)
    second = label_record(prediction_id="b", label="x", timestamp=1714564800.5)
    parsed = parse_labels_message(dumps(label_batch(first, second)))
    singles = [
        parse_label_message(dumps({"model_id": "churn-v2", **doc})) for doc in (first, second)
    ]
    assert parsed == singles
    assert [p.model_fields_set for p in parsed] == [s.model_fields_set for s in singles]
    assert parse_labels_message(dumps(label())) == [parse_label_message(dumps(label()))]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (label_batch(), "records: list should have at least 1 item"),
        (label_batch(label_record(), label_record(label=None)), "records[1].label: must be"),
        (label_batch(label_record(label=2**64)), f"records[0].label: {WIDE}"),
        (label_batch(label(), model_id="m"), r"records[0].model_id: unknown field"),
        ({"records": [label_record()]}, "model_id: field required"),
        (
            label_batch(*[label_record()] * (MAX_BATCH_RECORDS + 1)),
            f"records: list should have at most {MAX_BATCH_RECORDS}",
        ),
    ],
)
def test_invalid_label_envelope(doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_labels_message(dumps(doc))


def test_records_as_text_inside_a_single_label_is_not_an_envelope() -> None:
    [parsed] = parse_labels_message(dumps(label(prediction_id='"records"')))
    assert parsed.prediction_id == '"records"'


LABEL_VALUES = st.one_of(
    st.sampled_from([0, 1, "x", True, 2.5, None, [1], 2**64, float("nan")]), st.text(max_size=3)
)
TIMES = st.one_of(
    st.sampled_from([1714564800, 1714564800.5, "2024-05-03T08:30:00Z", "yesterday", -1, None]),
    st.floats(allow_nan=False, allow_infinity=False),
)


@settings(max_examples=examples(300), deadline=None)
@given(
    records=st.lists(
        st.fixed_dictionaries(
            {"prediction_id": st.sampled_from(["a", "b", "", "c" * 3]), "label": LABEL_VALUES},
            optional={"timestamp": TIMES},
        ),
        max_size=4,
    ),
    envelope=st.booleans(),
)
def test_label_columns_hold_what_the_label_events_hold(
    records: list[dict[str, Any]], envelope: bool
) -> None:
    """The worker's columnar parse accepts and refuses exactly what the event parse does."""
    if envelope:
        raw = dumps(label_batch(*records))
    else:
        raw = dumps({"model_id": "churn-v2", **(records[0] if records else {})})
    try:
        events = parse_labels_message(raw)
    except InvalidEventError as exc:
        with pytest.raises(InvalidEventError) as caught:
            parse_label_columns(raw)
        assert str(caught.value) == str(exc)
        return
    columns = parse_label_columns(raw)
    assert columns.model_id == events[0].model_id
    assert columns.prediction_ids == [e.prediction_id for e in events]
    assert columns.labels == [e.label for e in events]
    assert [type(v) for v in columns.labels] == [type(e.label) for e in events]
    assert columns.timestamps == [e.timestamp.timestamp() for e in events]
