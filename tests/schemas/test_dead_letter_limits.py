"""A dead letter fits one Kafka message whatever it embeds (driftline.limits)."""

from __future__ import annotations

import base64
import hashlib

import pydantic_core
import pytest

from driftline.limits import BROKER_MESSAGE_MAX_BYTES, MAX_MESSAGE_BYTES
from schemas.outbound import DEFAULT_MAX_PAYLOAD_BYTES, MAX_ERROR_CHARS, DeadLetter

# Values of one size (just under the limit) that serialize very differently: plain text,
# text made of characters JSON escapes to six bytes, quotes (two bytes), and bytes that are
# not UTF-8 (base64).
WORST_CASES = {
    "ascii": b"a" * (MAX_MESSAGE_BYTES - 100),
    "control characters": b"\x01" * (MAX_MESSAGE_BYTES - 100),
    "quotes": b'"' * (MAX_MESSAGE_BYTES - 100),
    "not utf-8": b"\xff" * (MAX_MESSAGE_BYTES - 100),
    "escapes after plain text": b"a" * 100_000 + b"\x01" * (MAX_MESSAGE_BYTES - 100_100),
}


def letter_of(value: bytes | None, error: str = "not valid JSON") -> DeadLetter:
    return DeadLetter.from_message(
        error, topic="t" * 249, partition=2**31 - 1, offset=2**63 - 1, value=value
    )


@pytest.mark.parametrize("name", sorted(WORST_CASES))
def test_letter_of_a_message_at_the_limit_fits_the_limit(name: str) -> None:
    value = WORST_CASES[name]
    # The longest error, of the characters that escape to the most bytes.
    letter = letter_of(value, error="\x01" * (MAX_ERROR_CHARS * 2))
    written = letter.to_json_bytes()
    assert len(written) <= MAX_MESSAGE_BYTES < BROKER_MESSAGE_MAX_BYTES
    assert len(pydantic_core.to_json(letter.payload)) - 2 <= DEFAULT_MAX_PAYLOAD_BYTES
    assert letter.payload_truncated
    assert letter.payload_size == len(value)
    assert letter.payload_sha256 == hashlib.sha256(value).hexdigest()
    kept = letter.payload_bytes()
    assert kept is not None and value.startswith(kept)
    assert DeadLetter.from_json_bytes(written) == letter


def test_the_kept_prefix_is_as_long_as_the_bound_allows() -> None:
    # 6 bytes per control character: 1/6 of the bound as characters, minus nothing.
    letter = letter_of(WORST_CASES["control characters"])
    assert len(letter.payload_bytes() or b"") == DEFAULT_MAX_PAYLOAD_BYTES // 6
    letter = letter_of(WORST_CASES["ascii"])
    assert len(letter.payload_bytes() or b"") == DEFAULT_MAX_PAYLOAD_BYTES
    letter = letter_of(WORST_CASES["not utf-8"])
    assert letter.payload_encoding == "base64"
    assert len(base64.b64decode(letter.payload or "")) == DEFAULT_MAX_PAYLOAD_BYTES // 4 * 3


def test_a_value_within_the_bound_is_kept_whole_with_its_hash() -> None:
    value = b'{"model_id": "churn", "note": "\\u0001 \\" tab\\t"}'
    letter = letter_of(value)
    assert not letter.payload_truncated
    assert letter.payload_bytes() == value
    assert letter.payload_sha256 == hashlib.sha256(value).hexdigest()


def test_a_null_value_has_no_hash() -> None:
    letter = letter_of(None)
    assert letter.payload is None and letter.payload_sha256 is None


def test_a_letter_written_before_the_hash_existed_still_reads() -> None:
    letter = letter_of(b"{")
    old = letter.model_dump(mode="json")
    del old["payload_sha256"]
    assert DeadLetter.model_validate(old).payload_sha256 is None


def test_the_bound_leaves_room_for_the_rest_of_the_letter() -> None:
    # Payload bound + the longest error escaped + a 249-character topic, with room to spare.
    assert DEFAULT_MAX_PAYLOAD_BYTES + 6 * MAX_ERROR_CHARS + 1000 < MAX_MESSAGE_BYTES // 2
