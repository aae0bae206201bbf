"""The native label decoder never accepts what the strict parser rejects, and agrees."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from driftline.errors import InvalidEventError
from schemas import label_decoder
from schemas.events import LabelColumns
from schemas.label_decoder import decode_labels
from schemas.parsing import parse_label_columns, strict_label_columns
from schemas.values import INT_MAX, INT_MIN, may_hold_wide_integer
from tests.schemas.strategies import BAD_UTF8, corrupt, text

# Labels the decoder reads (no key or type it declines), their values near the contract's
# limits: ids of 256 and 257 characters, timestamps below 0 and beyond its range.
plain_label = {
    "prediction_id": text(min_size=1, max_size=6) | st.sampled_from(["x" * 256, "é" * 257]),
    # Integers of 19 digits or more may lie beyond 64 bits: the decoder leaves them all.
    "label": st.integers(1 - 10**18, 10**18 - 1)
    | st.sampled_from([INT_MIN, INT_MAX])
    | st.floats(allow_nan=False, allow_infinity=False)
    | text(max_size=4)
    | st.booleans(),
    "timestamp": st.floats(min_value=0, max_value=7_000_000_000)
    | st.integers(0, 7_000_000_000)
    | st.sampled_from([-1, -0.5, 1e12, 2**62]),
}
plain_model = st.sampled_from(["churn", "churn", "a b", "m" * 129])
plain_single = st.fixed_dictionaries({"model_id": plain_model, **plain_label})
plain_envelope = st.fixed_dictionaries(
    {
        "model_id": plain_model,
        "records": st.lists(st.fixed_dictionaries(plain_label), min_size=1, max_size=5),
    }
)


# What breaks the contract, by field: one such value in an otherwise plain message.
BAD: dict[str, list[Any]] = {
    "model_id": ["a b", "m" * 129, "", 7, None],
    "prediction_id": ["", "é" * 257, 7, None, ["p"]],
    "label": [None, math.nan, math.inf, 2**64, -(2**63) - 1, [0], {"a": 1}],
    "timestamp": ["2026-01-01T00:00:00Z", "5", -1, 1e12, None, 2**64, True],
}


@st.composite
def one_fault(draw: st.DrawFn) -> dict[str, Any]:
    """A plain message with one thing wrong (or odd): a bad value, a key missing or extra."""
    data: dict[str, Any] = draw(plain_single | plain_envelope)
    where = data if "records" not in data else draw(st.sampled_from([data, *data["records"]]))
    keys = sorted(set(where) - {"records"})
    key = draw(st.sampled_from(keys))
    fault = draw(st.sampled_from(["bad", "bad", "missing", "extra"]))
    if fault == "missing":
        del where[key]
    elif fault == "extra":
        where[draw(st.sampled_from(["extra", "model_version", "model_id", "records"]))] = "v"
    else:
        where[key] = draw(st.sampled_from(BAD[key]))
    return data


def _dumps(data: Any, ascii_only: bool) -> bytes:
    # The stdlib encoder: it writes integers beyond 64 bits, NaN and, with ensure_ascii,
    # escapes (which the decoder declines), all of which the decoder has to get right.
    return json.dumps(data, ensure_ascii=ascii_only).encode()


def _strict(raw: bytes) -> LabelColumns | None:
    try:
        return strict_label_columns(raw)
    except InvalidEventError:
        return None


def _typed(columns: LabelColumns) -> tuple[Any, ...]:
    # 1 and 1.0 and True are equal in Python, and must stay three different labels.
    labels = [(type(value), value) for value in columns.labels]
    return columns.model_id, columns.prediction_ids, labels, columns.timestamps


def _agrees(raw: bytes) -> LabelColumns | None:
    decoded = decode_labels(raw)
    if decoded is not None:
        strict = _strict(raw)
        assert strict is not None, f"decoded what the strict parser rejects: {raw!r}"
        assert _typed(decoded) == _typed(strict)
        assert [type(t) for t in decoded.timestamps] == [float] * len(decoded)
    return decoded


def test_the_native_label_decoder_is_built() -> None:
    assert label_decoder.native is not None, "schemas/_envelope_native.c not compiled"


@given(one_fault() | plain_single | plain_envelope, st.booleans(), BAD_UTF8)
def test_the_decoder_agrees_with_the_strict_parser(data: Any, ascii_only: bool, bad: bytes) -> None:
    _agrees(corrupt(_dumps(data, ascii_only), bad))


@given(plain_single | plain_envelope, st.integers(0, 60), st.binary(max_size=6))
def test_broken_json_is_declined_or_agrees(data: Any, cut: int, tail: bytes) -> None:
    raw = _dumps(data, ascii_only=False)
    _agrees(raw[: max(0, len(raw) - cut)] + tail)


@given(plain_single | plain_envelope)
def test_plain_labels_the_contract_takes_are_decoded(data: dict[str, Any]) -> None:
    raw = _dumps(data, ascii_only=False)
    decoded = _agrees(raw)
    certain = b"\\" not in raw and not may_hold_wide_integer(raw)  # else left to the strict parser
    if certain and _strict(raw) is not None:
        assert decoded is not None
        assert parse_label_columns(raw) == decoded


def test_both_forms_are_read_whatever_the_order_of_keys() -> None:
    one = b'{"timestamp": 1714564800.25, "label": "yes", "prediction_id": "p", "model_id": "m"}'
    many = (
        b'{"records": [{"label": 1, "prediction_id": "a", "timestamp": 1714564800},'
        b' {"prediction_id": "b", "timestamp": 5, "label": true}], "model_id": "m"}'
    )
    assert _typed(_agrees(one) or LabelColumns("", [], [], [])) == (
        "m",
        ["p"],
        [(str, "yes")],
        [1714564800.25],
    )
    decoded = _agrees(many)
    assert decoded is not None
    assert decoded.labels == [1, True] and type(decoded.labels[1]) is bool


def test_what_it_cannot_certify_is_left_to_the_strict_parser() -> None:
    declined = [
        b'{"model_id": "m", "prediction_id": "p\\u00e9", "label": 1, "timestamp": 5}',
        b'{"model_id": "m", "prediction_id": "p", "label": 1, "timestamp": "2026-01-01T00:00Z"}',
        b'{"model_id": "m", "prediction_id": "p", "label": 1, "label": 2, "timestamp": 5}',
        b'{"model_id": "m", "records": [{"prediction_id": "p", "label": 1, "timestamp": 5}], '
        b'"prediction_id": "q"}',
        # "records" as a value: read as an envelope, declined; a single label to the strict
        # parser, as it is to its rule (a top-level "records" key makes an envelope).
        b'{"model_id": "m", "prediction_id": "records", "label": 1, "timestamp": 5}',
    ]
    for raw in declined:
        assert decode_labels(raw) is None
        assert _outcome(parse_label_columns, raw) == _outcome(strict_label_columns, raw)


def _outcome(parse: Any, raw: bytes) -> Any:
    try:
        return _typed(parse(raw))
    except InvalidEventError as exc:
        return str(exc)


def test_a_large_envelope_is_read_without_the_gil_and_agrees() -> None:
    # Above 64 KB the decoder lets other threads run; a number with more than 15 digits
    # then takes Python's conversion, the GIL taken back for it.
    records = [
        {"prediction_id": f"p{i}", "label": i % 3, "timestamp": 1714564800.123456789 + i}
        for i in range(2_000)
    ]
    raw = json.dumps({"model_id": "churn", "records": records}).encode()
    assert len(raw) > 64 * 1024
    decoded = _agrees(raw)
    assert decoded is not None and len(decoded) == 2_000


# -- runs of single labels read at once ------------------------------------------------


@st.composite
def label_stretch(draw: st.DrawFn) -> list[bytes]:
    """Single-label messages as a partition holds them: mostly plain, of one model or two,
    some with one fault, broken JSON or an envelope among them."""
    model = draw(plain_model)
    messages = []
    for _ in range(draw(st.integers(1, 6))):
        data = draw(one_fault() | plain_single | plain_single | plain_single | plain_envelope)
        if "records" not in data and draw(st.integers(0, 4)) > 0 and "model_id" in data:
            data["model_id"] = model  # mostly one model, as a run is
        raw = _dumps(data, ascii_only=draw(st.booleans()))
        if draw(st.integers(0, 9)) == 0:
            raw = raw[: draw(st.integers(0, len(raw)))]
        messages.append(raw)
    return messages


@given(label_stretch())
def test_a_run_reads_as_each_message_would_alone(messages: list[bytes]) -> None:
    """Read at once, a stretch of single labels gives what decode_labels gives each message,
    joined in order, when every message is a certified single label of one model; None
    otherwise (the caller then parses message by message)."""
    run = label_decoder.decode_label_run(messages)
    alone = [decode_labels(raw) for raw in messages]
    one_run = (
        all(columns is not None and len(columns) == 1 for columns in alone)
        and all(b'"records"' not in raw for raw in messages)
        and len({columns.model_id for columns in alone if columns is not None}) == 1
    )
    if not one_run:
        assert run is None
        return
    assert run is not None, f"declined a run each of whose messages is certified: {messages!r}"
    joined = LabelColumns(
        alone[0].model_id,  # type: ignore[union-attr]
        [c.prediction_ids[0] for c in alone if c is not None],
        [c.labels[0] for c in alone if c is not None],
        [c.timestamps[0] for c in alone if c is not None],
    )
    assert _typed(run) == _typed(joined)
    assert [type(t) for t in run.timestamps] == [float] * len(run)


def test_a_long_run_is_read_without_the_gil_and_agrees() -> None:
    messages = [
        json.dumps(
            {"model_id": "churn", "prediction_id": f"p-{i}", "label": i % 2, "timestamp": 1e9 + i}
        ).encode()
        for i in range(5_000)  # ~400 KB: above the size the decoder releases the GIL for
    ]
    run = label_decoder.decode_label_run(messages)
    assert run is not None and run.prediction_ids == [f"p-{i}" for i in range(5_000)]
    assert run.labels == [i % 2 for i in range(5_000)]
    assert label_decoder.decode_label_run([*messages, b'{"model_id": "churn"}']) is None


def test_a_run_with_one_message_it_cannot_take_is_declined_whole() -> None:
    def single(**changes: Any) -> bytes:
        data = {"model_id": "churn", "prediction_id": "p", "label": 1, "timestamp": 1e9}
        return json.dumps({**data, **changes}).encode()

    good = [single(prediction_id=f"p-{i}") for i in range(3)]
    assert label_decoder.decode_label_run(good) is not None
    for odd in (
        single(prediction_id="x" * 257),  # beyond the contract's id length
        single(model_id="other"),  # another model: a run of its own
        single(model_id="a b"),  # not a model id
        single(timestamp=-1),  # before the epoch
        single(label=None),  # the strict parser says why
        single(extra=1),
        json.dumps({"model_id": "churn", "records": []}).encode(),
    ):
        assert label_decoder.decode_label_run([*good[:2], odd, good[2]]) is None, odd
    assert label_decoder.decode_label_run([single(model_id="a b")] * 2) is None
