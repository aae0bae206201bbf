"""Fuzz the native envelope decoder against the strict parser.

Every input is fed to the native decoder twice: whole, as one envelope
(``ModelEnvelopeDecoder.decode``'s native step), and split at newlines, as a run of
single-event messages (``decode_singles``). Whenever the decoder accepts, the strict parser
(:func:`schemas.parsing.parse_prediction_message`) must accept every message too and give
the same values, with the same JSON types; a decoder or parser that raises anything but
:class:`~driftline.errors.InvalidEventError` is a crash. The orjson fast paths get the same
input on the way, being cheap.

Run it with ``make fuzz`` (``FUZZ_SECONDS``, default 60); any libFuzzer flag may follow,
e.g. ``python fuzz/fuzz_native_decoder.py -max_total_time=600 corpus/``. Without a corpus
directory it starts from seeds written to a temporary one. Not part of ``make test``.
"""

from __future__ import annotations

import json
import math
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris
import msgspec  # noqa: F401  (imported before the instrumented block: not instrumented)
import numpy as np
import pydantic  # noqa: F401

# Coverage feedback from Driftline's own Python; the C decoder is not instrumented.
with atheris.instrument_imports(include=["schemas", "driftline"]):
    from driftline.errors import InvalidEventError
    from schemas.events import PredictionEvent
    from schemas.fast_batch import EnvelopeColumns, parse_envelope, parse_single
    from schemas.parsing import parse_prediction_message
    from schemas.typed_envelope import ModelEnvelopeDecoder, native_decoder_available

NUMERIC = ("a", "b")
CATEGORICAL = ("c",)
EDGES = (np.array([-1.0, 0.0, 0.0, 2.5, 1e6]), np.array([]))
DECODER = ModelEnvelopeDecoder("churn", NUMERIC, CATEGORICAL, edges=EDGES)
PLAIN = ModelEnvelopeDecoder("churn", NUMERIC, CATEGORICAL)  # no bins: the other branch
MAX_MESSAGES = 64


def _strict(raw: bytes) -> list[PredictionEvent] | None:
    try:
        return parse_prediction_message(raw)
    except InvalidEventError:
        return None


def _same(fast: list[Any], strict: list[Any], what: str) -> None:
    # == alone would let 1 stand for 1.0 or True: the JSON type is part of the answer.
    assert fast == strict, f"{what}: {fast!r} != {strict!r}"
    assert list(map(type, fast)) == list(map(type, strict)), f"{what}: types differ"


def _check_columns(fast: EnvelopeColumns, strict: list[PredictionEvent], what: str) -> None:
    assert (fast.model_id, fast.model_version) == (
        strict[0].model_id,
        strict[0].model_version,
    ), what
    _same(fast.prediction_ids, [e.prediction_id for e in strict], f"{what} ids")
    times = [e.timestamp.timestamp() for e in strict]
    assert fast.timestamps.tolist() == times, f"{what} timestamps"
    for name, edges in zip(NUMERIC, EDGES, strict=True):
        values = [e.features.get(name) for e in strict]
        expected = np.array([math.nan if v is None else float(v) for v in values])
        np.testing.assert_array_equal(fast.column(name), expected, err_msg=f"{what} {name}")
        if fast.feature_bins is not None:
            bins = np.where(np.isnan(expected), -1, np.searchsorted(edges, expected, "left"))
            np.testing.assert_array_equal(fast.feature_bins[name], bins, err_msg=f"{what} bins")
    categories = fast.column("c")
    assert isinstance(categories, list), what
    _same(categories, [e.features.get("c") for e in strict], f"{what} c")
    _same(fast.predictions, [e.prediction for e in strict], f"{what} predictions")
    assert fast.scores == [e.score for e in strict], f"{what} scores"


def _check_envelope(raw: bytes) -> None:
    for decoder in (DECODER, PLAIN):
        fast = decoder._decode_native(raw)
        if fast is not None:
            strict = _strict(raw)
            assert strict is not None, f"native accepted what the strict parser rejects: {raw!r}"
            _check_columns(fast, strict, "envelope")
    general = parse_envelope(raw)
    if general is not None:
        strict = _strict(raw)
        assert strict is not None, f"parse_envelope accepted a rejected message: {raw!r}"
        assert general.features == [dict(e.features) for e in strict], "parse_envelope"
        _same(general.predictions, [e.prediction for e in strict], "parse_envelope")


def _check_singles(raws: list[bytes]) -> None:
    fast = DECODER.decode_singles(raws)
    if fast is None:
        return
    strict: list[PredictionEvent] = []
    for raw in raws:
        parsed = _strict(raw)
        assert parsed is not None, f"a run holding a rejected message was accepted: {raw!r}"
        assert len(parsed) == 1, f"an envelope passed for a single event: {raw!r}"
        strict.extend(parsed)
    # One version stands for the run (the stream keeps the last non-empty one).
    versions = {e.model_version for e in strict} - {""}
    assert len(versions) <= 1, f"a run of mixed versions was accepted: {raws!r}"
    expected_version = versions.pop() if versions else ""
    assert fast.model_version == expected_version, "singles version"
    head = strict[0].model_copy(update={"model_version": expected_version})
    _check_columns(fast, [head, *strict[1:]], "singles")


def _check_single(raw: bytes) -> None:
    fast = parse_single(raw)
    if fast is None:
        return
    strict = _strict(raw)
    assert strict is not None and len(strict) == 1, f"parse_single accepted: {raw!r}"
    [event] = strict
    _same([fast.prediction], [event.prediction], "parse_single prediction")
    assert fast.features == dict(event.features), "parse_single features"
    assert fast.timestamp == event.timestamp.timestamp(), "parse_single timestamp"


def test_one_input(data: bytes) -> None:
    _check_envelope(data)
    raws = data.split(b"\n")[:MAX_MESSAGES]
    _check_singles(raws)
    _check_single(raws[0])


# Values a JSON-aware mutation puts in place of another: the edges of the contract.
INTERESTING: list[Any] = [
    *(0, -1, 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**18, 10**30),
    *(0.0, -0.0, 0.5, 1.0, 1.5, 1e16, 2.0**63, 1e308, 5e-324, math.nan, math.inf),
    *(1767225600, 1767225600.123456789, 7258118400, -1, "2026-01-01T00:00:00Z"),
    *("0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00", "", "x", "\u00e9", "\ud7ff"),
    *("\\", '"', "\x00", "v" * 129, "p" * 257, "churn", "other", "records", None, True, False),
    *([0.25, 0.75], [], {}, {"a": 1}),
]
KEYS = ["model_id", "model_version", "records", "prediction_id", "timestamp", "features"]
KEYS += ["prediction", "score", "a", "b", "c", "zz", "records"]
BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"]


def _mutate_json(doc: Any, rng: random.Random) -> Any:
    """``doc`` with one value replaced, one key added, renamed or removed."""
    if isinstance(doc, list) and doc and rng.random() < 0.8:
        index = rng.randrange(len(doc))
        doc[index] = _mutate_json(doc[index], rng)
        if rng.random() < 0.1:
            doc.append(doc[index])
        return doc
    if isinstance(doc, dict) and doc and rng.random() < 0.8:
        key = rng.choice(list(doc))
        action = rng.random()
        if action < 0.7:
            doc[key] = _mutate_json(doc[key], rng)
        elif action < 0.8:
            del doc[key]
        elif action < 0.9:
            doc[rng.choice(KEYS)] = doc.pop(key)
        else:
            doc[rng.choice(KEYS)] = rng.choice(INTERESTING)
        return doc
    return rng.choice(INTERESTING)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """Half the time a JSON-aware change to one message, else libFuzzer's byte mutations.

    The C decoder gives no coverage feedback (gcc cannot instrument it for libFuzzer), so
    byte mutations alone rarely get past its first decline; these keep messages valid JSON
    and change one thing the contract cares about.
    """
    rng = random.Random(seed)
    parts = data.split(b"\n")
    if rng.random() < 0.5:
        index = rng.randrange(len(parts))
        try:
            doc = json.loads(parts[index])
        except (ValueError, RecursionError):
            return bytes(atheris.Mutate(data, max_size))
        text = json.dumps(
            _mutate_json(doc, rng),
            ensure_ascii=rng.random() < 0.3,
            separators=rng.choice([(",", ":"), (", ", ": "), (" ,\t", " :\r\n ")]),
        ).encode("utf-8", "surrogatepass")  # a lone surrogate: bytes that are not UTF-8
        if rng.random() < 0.1:
            text = text.replace("\u00e9".encode(), rng.choice(BAD_BYTES))
        parts[index] = text
        if rng.random() < 0.1:
            parts.append(parts[rng.randrange(len(parts))])
        return b"\n".join(parts)[:max_size]
    return bytes(atheris.Mutate(data, max_size))


def _seeds() -> list[bytes]:
    record = {
        "prediction_id": "p-1",
        "timestamp": 1767225600.25,
        "features": {"a": 1.5, "b": None, "c": "x\u00e9"},
        "prediction": 1,
        "score": 0.75,
    }
    other = {**record, "prediction_id": "p-2", "features": {"c": 3}, "prediction": "yes"}
    envelope = {"model_id": "churn", "model_version": "v1", "records": [record, other]}
    singles = [{"model_id": "churn", "model_version": "v1", **r} for r in (record, other)]
    dump = json.dumps
    return [
        dump(envelope, ensure_ascii=False).encode(),
        dump({**envelope, "records": [record] * 3}).encode(),
        b"\n".join(dump(s, ensure_ascii=False).encode() for s in singles),
        b"\n".join(dump({**s, "model_version": ""}).encode() for s in singles),
        dump(singles[0], separators=(",", ":")).encode(),
    ]


def main() -> None:
    if not native_decoder_available():
        sys.exit("schemas/_envelope_native.c is not built: pip install -e . --no-deps")
    args = list(sys.argv)
    work = Path(tempfile.mkdtemp(prefix="driftline-fuzz-"))
    if not any(not arg.startswith("-") for arg in args[1:]):
        corpus = work / "corpus"
        corpus.mkdir()
        for index, seed in enumerate(_seeds()):
            (corpus / f"seed-{index}").write_bytes(seed)
        args.append(str(corpus))
    if not any(arg.startswith("-artifact_prefix=") for arg in args):
        args.insert(1, f"-artifact_prefix={work}/")  # crash files, not in the work tree
    sys.stderr.write(f"corpus and crash files: {work}\n")
    dictionary = Path(__file__).with_name("json.dict")
    if not any(arg.startswith("-dict=") for arg in args):
        args.insert(1, f"-dict={dictionary}")
    atheris.Setup(args, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
