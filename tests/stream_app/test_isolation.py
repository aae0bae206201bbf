"""One bad message costs one dead letter, never its batch; infrastructure errors never ack.

Each case here lost data before: an exception after validation escaped stage 1 (the whole
batch was acknowledged unprocessed) or stage 2 (the rest of its batch was dropped).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from sqlalchemy.exc import OperationalError

from driftline.errors import StorageUnavailableError
from stream_app.registry import ModelRegistry
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import RUNTIME, window_start

GOOD = list(scenario.events(1, 20, drift_from=99, decay_from=99))


def _prediction(**changes: Any) -> bytes:
    data = orjson.loads(GOOD[0].prediction_json())
    data.update(prediction_id="bad", **changes)
    return orjson.dumps(data)


def _label(label: Any) -> bytes:
    return orjson.dumps(
        {
            "model_id": scenario.MODEL_ID,
            "prediction_id": GOOD[1].prediction_id,
            "label": label,
            "timestamp": GOOD[1].timestamp + 1,
        }
    )


def _envelope(records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"model_id": scenario.MODEL_ID, "model_version": "v1", "records": records})


def _record(event: scenario.Event, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(event.prediction_json())
    data.pop("model_id")
    data.pop("model_version")
    data.update(changes)
    return data


BAD_PREDICTIONS = {
    "offset past year 1": _prediction(timestamp="0001-01-01T00:30:00+01:00"),
    "offset past year 9999": _prediction(timestamp="9999-12-31T23:30:00-01:00"),
    "prediction not a class": _prediction(prediction="7"),
    "bool prediction": _prediction(prediction=True),
    "score above 1": _prediction(score=1.5),
    # Accepted by the contract (before 2200) but it would move the partition's watermark
    # to 2199, making every later event of the partition late.
    "far future": _prediction(timestamp="2199-01-01T00:00:00Z"),
    "envelope with one far-future record": _envelope(
        [_record(GOOD[2], prediction_id="bad-env"), _record(GOOD[3], timestamp=7_000_000_000.0)]
    ),
    "envelope with one bad class": _envelope(
        [_record(GOOD[2]), _record(GOOD[3], prediction_id="bad-env", prediction="2.5")]
    ),
}


@pytest.mark.parametrize("value", BAD_PREDICTIONS.values(), ids=list(BAD_PREDICTIONS))
def test_a_bad_prediction_is_dead_lettered_and_its_batch_flows(value: bytes) -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    batch = [pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in GOOD[:5]]
    batch.append(pipeline.message("prediction", "bad", value))
    batch += [
        pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in GOOD[5:]
    ]
    asyncio.run(pipeline.feed(batch))
    asyncio.run(pipeline.idle(200))
    assert [m.key for m, _ in pipeline.dead_letters] == [b"bad"]
    assert pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))].window.n_rows == 20


def test_a_far_future_label_does_not_expire_the_join() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    predictions = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in GOOD
    ]
    future = orjson.loads(GOOD[0].label_json())
    future.update(prediction_id="elsewhere", timestamp="2199-01-01T00:00:00Z")
    labels = [pipeline.message("label", "elsewhere", orjson.dumps(future))]
    labels += [pipeline.message("label", e.prediction_id, e.label_json()) for e in GOOD]
    asyncio.run(pipeline.feed(predictions[:10] + labels[:1]))
    asyncio.run(pipeline.idle(0.0))  # the timer: expiry runs
    asyncio.run(pipeline.feed(predictions[10:] + labels[1:]))
    asyncio.run(pipeline.idle(200))
    assert [m.key for m, _ in pipeline.dead_letters] == [b"elsewhere"]
    assert "ahead of the worker's clock" in pipeline.dead_letters[0][1]
    rows = pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))]
    assert rows.window.n_labeled == 20


@pytest.mark.parametrize("label", ["7", True, 2.5, None])
def test_a_label_outside_the_classes_is_dead_lettered_not_dropped_in_stage_2(label: Any) -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    predictions = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in GOOD
    ]
    labels = [
        pipeline.message("label", e.prediction_id, _label(label) if i == 1 else e.label_json())
        for i, e in enumerate(GOOD)
    ]
    asyncio.run(pipeline.feed(predictions + labels))
    asyncio.run(pipeline.idle(200))
    assert len(pipeline.dead_letters) == 1
    message, reason = pipeline.dead_letters[0]
    assert message.kind == "label"
    assert "classes" in reason or "label" in reason
    rows = pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))]
    assert rows.window.n_labeled == 19  # every other label joined


def test_a_run_of_single_events_with_one_bad_class_loses_only_that_message() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    batch = [
        pipeline.message("prediction", "bad", _prediction(prediction="7"), partition=0)
        if i == 7
        else pipeline.message("prediction", e.prediction_id, e.prediction_json(), partition=0)
        for i, e in enumerate(GOOD)
    ]
    asyncio.run(pipeline.feed(batch))
    asyncio.run(pipeline.idle(200))
    assert [m.key for m, _ in pipeline.dead_letters] == [b"bad"]
    assert pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))].window.n_rows == 19


def test_an_unforeseen_error_caused_by_one_message_dead_letters_only_that_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    original = pipeline.stage1._prediction

    async def flaky(message: Any, work: Any, columns: Any = None) -> None:
        if message.offset == 3:
            raise ZeroDivisionError("a bug this message triggers")
        await original(message, work, columns)

    monkeypatch.setattr(pipeline.stage1, "_prediction", flaky)
    # One message at a time (no runs of single events), so the patch sees each message.
    monkeypatch.setattr(pipeline.stage1, "_decode_single_runs", lambda *_: ({}, set()))
    batch = [pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in GOOD]
    asyncio.run(pipeline.feed(batch))
    asyncio.run(pipeline.idle(200))
    assert len(pipeline.dead_letters) == 1
    message, reason = pipeline.dead_letters[0]
    assert message.offset == 3
    assert reason == "could not be processed: ZeroDivisionError: a bug this message triggers"
    assert pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))].window.n_rows == 19


def test_a_database_error_is_not_blamed_on_the_message() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)

    def down(model_id: str) -> Any:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    pipeline.stage1.registry = ModelRegistry(down, 1e9)
    data = orjson.loads(GOOD[0].prediction_json())
    data["model_id"] = data.pop("model_id")  # last: not known before the batch starts
    message = pipeline.message("prediction", "p", orjson.dumps(data))
    with pytest.raises(StorageUnavailableError, match="connection refused"):
        asyncio.run(pipeline.stage1.process([message]))
    assert pipeline.dead_letters == []


def test_the_batch_waits_for_the_database_before_touching_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = iter([True, True, False])

    def flaky(model_id: str) -> Any:
        if next(failures):
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return RUNTIME

    pipeline = LocalPipeline(RUNTIME, 1)
    registry = ModelRegistry(flaky, 1e9)
    pipeline.stage1.registry = registry
    pipeline.stage2.registry = registry
    batch = [pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in GOOD]
    with caplog.at_level("INFO"):
        asyncio.run(pipeline.feed(batch))
        asyncio.run(pipeline.idle(200))
    assert pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))].window.n_rows == 20
    waiting = [r for r in caplog.records if "waiting for the database" in r.getMessage()]
    assert len(waiting) == 1  # one line for the outage, not one per retry
    assert any("reachable again" in r.getMessage() for r in caplog.records)
