"""Property tests: what a model serializes, the parsers read back unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic_core
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    DeadLetter,
    LabelEvent,
    PredictionBatch,
    PredictionEvent,
    PredictionRecord,
    RetrainTrigger,
    parse_label_message,
    parse_prediction_message,
)

model_ids = st.from_regex(r"\A[A-Za-z0-9._:-]{1,128}\Z")
ids = st.text(min_size=1, max_size=256)
times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)
)
finite = st.floats(allow_nan=False, allow_infinity=False)
# The JSON contract: integers fit in 64 bits, signed or not.
outcomes = st.one_of(st.integers(-(2**63), 2**64 - 1), finite, st.text(), st.booleans())
feature_values = st.one_of(outcomes, st.none())
features = st.dictionaries(st.text(min_size=1, max_size=30), feature_values, max_size=12)
probabilities = st.floats(min_value=0.0, max_value=1.0)
scores = st.one_of(st.none(), probabilities, st.lists(probabilities, min_size=1, max_size=6))


@st.composite
def prediction_events(draw: st.DrawFn) -> PredictionEvent:
    return PredictionEvent(
        model_id=draw(model_ids),
        model_version=draw(st.text(max_size=128)),
        prediction_id=draw(ids),
        timestamp=draw(times),
        features=draw(features),
        prediction=draw(outcomes),
        score=draw(scores),
    )


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value)


@given(prediction_events())
def test_prediction_event_round_trip(event: PredictionEvent) -> None:
    [parsed] = parse_prediction_message(event.model_dump_json().encode())
    assert parsed == event
    assert _types(parsed.model_dump()) == _types(event.model_dump())  # 3 stays int, 3.0 float


@given(st.lists(prediction_events(), min_size=1, max_size=20), model_ids, st.text(max_size=9))
def test_batch_round_trip(events: list[PredictionEvent], model_id: str, version: str) -> None:
    records = [
        PredictionRecord(**event.model_dump(exclude={"model_id", "model_version"}))
        for event in events
    ]
    envelope = PredictionBatch(model_id=model_id, model_version=version, records=records)
    parsed = parse_prediction_message(envelope.model_dump_json().encode())
    expected = [
        e.model_copy(update={"model_id": model_id, "model_version": version}) for e in events
    ]
    assert parsed == expected


@given(model_ids, ids, outcomes, times)
def test_label_round_trip(model_id: str, prediction_id: str, label: Any, at: datetime) -> None:
    event = LabelEvent(model_id=model_id, prediction_id=prediction_id, label=label, timestamp=at)
    assert parse_label_message(event.model_dump_json().encode()) == event


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), finite, st.text()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    ids,
    model_ids,
    st.dictionaries(st.text(), json_values, max_size=5),
    st.lists(times, min_size=2, max_size=2, unique=True).map(sorted),
)
def test_retrain_trigger_round_trip(
    trigger_id: str, model_id: str, evidence: dict[str, Any], window: list[datetime]
) -> None:
    trigger = RetrainTrigger(
        trigger_id=trigger_id,
        model_id=model_id,
        model_version="3",
        reason="drift",
        evidence=evidence,
        window_start=window[0],
        window_end=window[1],
    )
    assert RetrainTrigger.from_json_bytes(trigger.to_json_bytes()) == trigger


@given(st.binary(max_size=300), st.integers(1, 400), st.none() | st.just(b""))
def test_dead_letter_round_trip(value: bytes, limit: int, other: bytes | None) -> None:
    for payload in (value, other):
        letter = DeadLetter.from_message(
            "bad", topic="t", partition=1, offset=2, value=payload, max_payload_bytes=limit
        )
        assert DeadLetter.from_json_bytes(letter.to_json_bytes()) == letter
        kept = letter.payload_bytes()
        if payload is None:
            assert kept is None
        else:
            assert kept is not None and payload.startswith(kept)
            # The limit bounds the payload as written (escaped or base64), not the bytes kept.
            assert letter.payload is not None
            assert len(pydantic_core.to_json(letter.payload)) - 2 <= limit
            assert letter.payload_truncated == (len(kept) < len(payload))
            assert letter.payload_size == len(payload)
