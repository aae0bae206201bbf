"""Seeded generator of messages the worker must dead-letter, one reason each.

Every kind breaks the event contract (never only a feature's value: a string or NaN in a
numeric feature is counted as invalid or missing in its window, not dead-lettered):
truncated JSON, wrong types, payloads just under the message limit, deep nesting, odd
Unicode and invalid UTF-8, NaN and infinities, timestamps before year 1 or after 9999
(with UTC offsets that push them past), integers of 2**64 and more, unknown models, empty
envelopes, labels outside the model's classes, malformed labels. The generator is checked in
process (tests/faults/test_bad_messages.py): stage 1 dead-letters every one.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import orjson

from driftline.limits import MAX_MESSAGE_BYTES
from tests.faults.stream import Message
from tests.stream_app import scenario

HUGE = 20  # payloads near the limit: ~1 MB each
_TS = scenario.START + 30.0


def _prediction(i: int, **changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "model_id": scenario.MODEL_ID,
        "model_version": "v1",
        "prediction_id": f"bad-{i}",
        "timestamp": _TS,
        "features": {"age": 41.0, "income": 22000.0, "plan": "pro", "tenure": 2.5},
        "prediction": "1",
        "score": 0.7,
    }
    event.update(changes)
    return event


def _raw(i: int, field: str, literal: bytes) -> bytes:
    """A prediction whose ``field`` holds ``literal`` verbatim (not JSON orjson would write)."""
    body = orjson.dumps(_prediction(i, **{field: "@@"}))
    return body.replace(b'"@@"', literal)


def truncated(rng: random.Random, i: int) -> Message:
    body = orjson.dumps(_prediction(i))
    return Message("prediction", f"bad-{i}".encode(), body[: rng.randrange(1, len(body) - 1)])


def wrong_type(rng: random.Random, i: int) -> Message:
    changes: dict[str, object] = rng.choice(
        [
            {"prediction_id": i},
            {"features": [1, 2, 3]},
            {"features": None},
            {"timestamp": "yesterday"},
            {"timestamp": True},
            {"model_id": 7},
            {"score": "high"},
            {"prediction": {"class": "1"}},
        ]
    )
    return Message("prediction", f"bad-{i}".encode(), orjson.dumps(_prediction(i, **changes)))


def huge(rng: random.Random, i: int) -> Message:
    # A prediction id far over its 256 characters, the message just under the limit.
    size = MAX_MESSAGE_BYTES - rng.randrange(100, 2000)
    body = orjson.dumps(_prediction(i, prediction_id="@@"))
    pad = size - len(body) + 2
    return Message("prediction", f"bad-{i}".encode(), body.replace(b"@@", b"x" * pad))


def deep(rng: random.Random, i: int) -> Message:
    depth = rng.choice([64, 600, 5000, 50_000])
    nested = b"[" * depth + b"1" + b"]" * depth
    if rng.random() < 0.5:
        return Message("prediction", f"bad-{i}".encode(), _raw(i, "features", nested))
    return Message(
        "prediction", f"bad-{i}".encode(), b'{"model_id": "churn", "x": ' + nested + b"}"
    )


def odd_text(rng: random.Random, i: int) -> Message:
    choice = rng.randrange(4)
    if choice == 0:  # invalid UTF-8 inside a string
        value = _raw(
            i, "prediction_id", b'"bad-\xff\xfe' + bytes([rng.randrange(0x80, 0xC0)]) + b'"'
        )
    elif choice == 1:  # a lone surrogate
        value = _raw(i, "prediction_id", b'"bad-\\ud800"')
    elif choice == 2:  # a model id of odd Unicode: right-to-left override, zero width, emoji
        model = rng.choice(
            ["ch\u202eurn", "churn\u200b", "\U0001f525churn", "\uff43\uff48\uff55\uff52\uff4e"]
        )
        value = orjson.dumps(_prediction(i, model_id=model))
    else:  # a NUL byte and invalid UTF-8 in the model id
        value = _raw(i, "model_id", b'"ch\x00\xc3\x28urn"')
    return Message("prediction", f"bad-{i}".encode(), value)


def non_finite(rng: random.Random, i: int) -> Message:
    field, literal = rng.choice(
        [
            ("score", b"NaN"),
            ("score", b"Infinity"),
            ("timestamp", b"-Infinity"),
            ("timestamp", b"1e999"),
            ("timestamp", b"NaN"),
            ("score", b"1e400"),
        ]
    )
    return Message("prediction", f"bad-{i}".encode(), _raw(i, field, literal))


def far_time(rng: random.Random, i: int) -> Message:
    stamp: object = rng.choice(
        [
            "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
            "9999-12-31T23:30:00-01:00",  # after 9999 in UTC
            "0000-06-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            -62_135_596_801.0,  # one second before 0001-01-01
            253_402_300_800.0,  # 10000-01-01
            -1e18,
            1e18,
        ]
    )
    return Message("prediction", f"bad-{i}".encode(), orjson.dumps(_prediction(i, timestamp=stamp)))


def wide_int(rng: random.Random, i: int) -> Message:
    big = str(2**64 + rng.randrange(0, 10**6)).encode()
    if rng.random() < 0.5:
        return Message("prediction", f"bad-{i}".encode(), _raw(i, "timestamp", big))
    features = b'{"age": ' + big + b', "income": 1.0, "plan": "pro", "tenure": 1.0}'
    return Message("prediction", f"bad-{i}".encode(), _raw(i, "features", features))


def unknown_model(rng: random.Random, i: int) -> Message:
    model = f"ghost-{rng.randrange(1000)}"
    return Message("prediction", f"bad-{i}".encode(), orjson.dumps(_prediction(i, model_id=model)))


def empty_batch(rng: random.Random, i: int) -> Message:
    envelope = {"model_id": scenario.MODEL_ID, "model_version": "v1", "records": []}
    return Message("prediction", f"bad-{i}".encode(), orjson.dumps(envelope))


def label_out_of_class(rng: random.Random, i: int) -> Message:
    label = rng.choice(["2", "yes", "-1", ""])
    event = {
        "model_id": scenario.MODEL_ID,
        "prediction_id": f"bad-{i}",
        "label": label,
        "timestamp": _TS,
    }
    return Message("label", f"bad-{i}".encode(), orjson.dumps(event))


def bad_label(rng: random.Random, i: int) -> Message:
    event = orjson.dumps(
        {"model_id": scenario.MODEL_ID, "prediction_id": f"bad-{i}", "label": "1", "timestamp": _TS}
    )
    value = rng.choice(
        [
            event[: rng.randrange(1, len(event) - 1)],
            event.replace(b'"label":"1"', b'"label":{"v":1}'),
            event.replace(b'"timestamp":', b'"timestamp":"x","t":'),
        ]
    )
    return Message("label", f"bad-{i}".encode(), value)


KINDS: dict[str, Callable[[random.Random, int], Message]] = {
    "truncated JSON": truncated,
    "wrong types": wrong_type,
    "deep nesting": deep,
    "odd unicode / invalid UTF-8": odd_text,
    "NaN / infinity": non_finite,
    "timestamps past year 1 / 9999": far_time,
    "integers >= 2**64": wide_int,
    "unknown models": unknown_model,
    "empty batches": empty_batch,
    "labels out of class": label_out_of_class,
    "malformed labels": bad_label,
}


def generate(n: int, seed: int = 20261129) -> tuple[list[Message], Counter[str]]:
    """``n`` bad messages (``HUGE`` of them near the limit), and how many of each kind."""
    rng = random.Random(seed)
    names = list(KINDS)
    out: list[Message] = []
    kinds: Counter[str] = Counter()
    for i in range(n):
        make: Callable[[random.Random, int], Message]
        if i < HUGE:
            name, make = "huge payloads", huge
        else:
            name = names[i % len(names)]
            make = KINDS[name]
        out.append(make(rng, i))
        kinds[name] += 1
    rng.shuffle(out)
    return out, kinds


def mix(chunks: list[list[Message]], bad: list[Message], seed: int = 7) -> list[list[Message]]:
    """``bad`` spread over the chunks, each at a random place among the valid messages."""
    rng = random.Random(seed)
    per = -(-len(bad) // len(chunks))
    mixed = []
    for n, chunk in enumerate(chunks):
        merged = list(chunk)
        for message in bad[n * per : (n + 1) * per]:
            merged.insert(rng.randrange(len(merged) + 1), message)
        mixed.append(merged)
    return mixed
