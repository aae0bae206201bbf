"""Retraining triggers and dead letters: construction rules and serialized form."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from driftline.errors import InvalidEventError
from schemas import DeadLetter, RetrainTrigger

START = datetime(2024, 5, 1, 11, tzinfo=UTC)
END = datetime(2024, 5, 1, 12, tzinfo=UTC)


def trigger(**changes: object) -> RetrainTrigger:
    fields: dict[str, object] = {
        "trigger_id": "abc",
        "model_id": "churn",
        "model_version": "7",
        "reason": "3 of the last 5 windows drifted",
        "evidence": {"psi": {"age": 0.31}, "windows": [1, 2, 3]},
        "window_start": START,
        "window_end": END,
        "created_at": END,
        **changes,
    }
    return RetrainTrigger.model_validate(fields)


def test_trigger_serializes_every_field_with_utc_iso_times() -> None:
    doc = json.loads(trigger(data_start="2024-04-01T00:00:00Z", data_end=END).to_json_bytes())
    assert doc == {
        "trigger_id": "abc",
        "model_id": "churn",
        "model_version": "7",
        "reason": "3 of the last 5 windows drifted",
        "evidence": {"psi": {"age": 0.31}, "windows": [1, 2, 3]},
        "window_start": "2024-05-01T11:00:00Z",
        "window_end": "2024-05-01T12:00:00Z",
        "created_at": "2024-05-01T12:00:00Z",
        "data_start": "2024-04-01T00:00:00Z",
        "data_end": "2024-05-01T12:00:00Z",
    }


def test_trigger_created_at_defaults_to_now() -> None:
    before = datetime.now(UTC)
    made = RetrainTrigger(
        trigger_id="t", model_id="m", model_version="", reason="r",
        window_start=START, window_end=END,
    )  # fmt: skip
    assert before <= made.created_at <= datetime.now(UTC)
    assert made.evidence == {} and made.data_start is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"window_end": START}, "window_end\n  Value error, must be after window_start"),
        ({"data_start": END, "data_end": START}, "must be after data_start"),
        (
            {"evidence": {"when": datetime.now}},
            "evidence\n  Value error, must be JSON-serializable",
        ),
        ({"reason": ""}, "reason"),
        ({"model_id": "bad id"}, "model_id"),
        ({"extra": 1}, "extra"),
    ],
)
def test_trigger_rules(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        trigger(**changes)


def test_reading_a_broken_trigger_raises_invalid_event() -> None:
    with pytest.raises(InvalidEventError, match=r"^window_end: field required$"):
        RetrainTrigger.from_json_bytes(
            b'{"trigger_id": "t", "model_id": "m", "model_version": "", "reason": "r",'
            b' "evidence": {}, "window_start": 0, "created_at": 0,'
            b' "data_start": null, "data_end": null}'
        )


@pytest.mark.parametrize(
    ("value", "payload", "encoding"),
    [
        (b'{"model_id": 1}', '{"model_id": 1}', "utf-8"),
        ("prédiction".encode(), "prédiction", "utf-8"),
        (b"", "", "utf-8"),
        (b"\xff\x00", base64.b64encode(b"\xff\x00").decode(), "base64"),
        (None, None, "utf-8"),
    ],
)
def test_dead_letter_payload_encoding(
    value: bytes | None, payload: str | None, encoding: str
) -> None:
    letter = DeadLetter.from_message("bad", topic="t", partition=0, offset=5, value=value)
    assert (letter.payload, letter.payload_encoding) == (payload, encoding)
    assert letter.payload_bytes() == value
    assert letter.payload_size == len(value or b"")
    assert not letter.payload_truncated


def test_dead_letter_truncation_does_not_split_a_character() -> None:
    value = "é".encode() * 10  # 2 bytes each
    letter = DeadLetter.from_message(
        "bad", topic="t", partition=0, offset=0, value=value, max_payload_bytes=5
    )
    assert letter.payload == "éé"
    assert letter.payload_encoding == "utf-8"
    assert letter.payload_truncated and letter.payload_size == 20


def test_dead_letter_keeps_error_short() -> None:
    letter = DeadLetter.from_message("x" * 5000, topic="t", partition=0, offset=0, value=b"")
    assert len(letter.error) == 2000 and letter.error.endswith("…")


def test_dead_letter_json_has_every_key() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    letter = DeadLetter.from_message(
        "records[3].features.age: value must be a number, string, bool or null",
        topic="driftline.predictions.v1", partition=2, offset=9, value=b"{}", received_at=at,
    )  # fmt: skip
    assert json.loads(letter.to_json_bytes()) == {
        "error": "records[3].features.age: value must be a number, string, bool or null",
        "topic": "driftline.predictions.v1",
        "partition": 2,
        "offset": 9,
        "payload": "{}",
        "payload_encoding": "utf-8",
        "payload_size": 2,
        "payload_truncated": False,
        "payload_sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "received_at": "2024-05-01T00:00:00Z",
    }


@pytest.mark.parametrize("field", ["partition", "offset"])
def test_dead_letter_position_is_not_negative(field: str) -> None:
    position = {"partition": 0, "offset": 0, field: -1}
    with pytest.raises(ValidationError, match=field):
        DeadLetter.from_message(
            "bad", topic="t", value=b"", partition=position["partition"], offset=position["offset"]
        )
