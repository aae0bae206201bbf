"""Labels rewrite a window's small quality part, never its ~20 KB drift part."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from detectors.quality import quality_state_from_dict
from stream_app.stage2 import QUALITY_FIELDS, WindowRecord
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import runtime, window_start

RUNTIME = runtime(label_horizon_seconds=10 * scenario.WINDOW)


def keys(w: int) -> tuple[str, str]:
    start = window_start(w)
    return f"0|r|{scenario.MODEL_ID}|{start!r}", f"0|q|{scenario.MODEL_ID}|{start!r}"


def test_labels_after_finalization_leave_the_drift_part_alone() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    events = list(scenario.events(2, 80, drift_from=99, decay_from=99))
    asyncio.run(pipeline.feed_predictions(events))
    asyncio.run(pipeline.idle(3 * scenario.WINDOW))  # window 0 is final
    drift_key, quality_key = keys(0)
    drift_part = pipeline.stage2.records.get(drift_key)
    assert drift_part is not None
    first = [e for e in events if e.window == 0][:30]
    asyncio.run(
        pipeline.feed(pipeline.message("label", e.prediction_id, e.label_json()) for e in first)
    )
    assert pipeline.stage2.records.get(drift_key) == drift_part, "not rewritten by labels"
    quality_part = pipeline.stage2.records.get(quality_key)
    assert quality_part is not None
    record = WindowRecord.from_bytes(drift_part, quality_part)
    assert record.final and record.revision_pending
    assert record.quality is not None
    assert quality_state_from_dict(record.quality).n_labeled == 30
    asyncio.run(pipeline.idle(1.0))  # the tick revises it
    [(_, start, revised)] = pipeline.writer.revisions
    assert start == window_start(0) and revised.window.n_labeled == 30
    after = pipeline.stage2.records.get(quality_key)
    assert after is not None and not orjson.loads(after)["revision_pending"]
    assert pipeline.stage2.records.get(drift_key) == drift_part, "nor by the revision"
    assert WindowRecord.from_bytes(drift_part, after).revision == 1


def test_a_quality_part_written_before_it_held_the_revision_keeps_the_drift_part_s() -> None:
    record = WindowRecord("m", 0.0, 60.0, quality={"kind": "x"}, revision=3, final=True)
    drift_part = orjson.loads(record.to_bytes())
    assert "revision" not in drift_part
    older_drift = orjson.dumps({**drift_part, "revision": 3})
    older_quality = orjson.loads(record.quality_bytes() or b"")
    del older_quality["revision"]
    read = WindowRecord.from_bytes(older_drift, orjson.dumps(older_quality))
    assert read.revision == 3
    assert WindowRecord.from_bytes(record.to_bytes(), record.quality_bytes()).revision == 3


def test_a_record_written_whole_by_an_older_worker_still_reads() -> None:
    record = WindowRecord(
        "m", 0.0, 60.0, quality={"kind": "x"}, recent_labels={"0": [[5, "p", 3]]}, final=True
    )
    drift_part = record.to_bytes()
    data = orjson.loads(drift_part)
    assert not set(QUALITY_FIELDS) & set(data), "the drift part holds no quality fields"
    old_format = orjson.dumps(
        {**data, "quality": record.quality, "recent_labels": record.recent_labels,
         "revision_pending": True}
    )  # fmt: skip
    read = WindowRecord.from_bytes(old_format)
    assert read.quality == record.quality and read.recent_labels == record.recent_labels
    assert read.revision_pending
    newer = WindowRecord.from_bytes(old_format, record.quality_bytes())
    assert newer.revision_pending is False, "the quality part wins over stale whole-record fields"


def test_each_part_keeps_the_offset_of_what_it_applied() -> None:
    """The drift part's offset (partials, late counts) and the quality part's (labels) are
    read back apart: one part durable without the other cannot claim the other's messages
    (tests/stream_app/test_stage2_crash_model.py kills stage 2 between them)."""
    record = WindowRecord(
        "m", 0.0, 60.0, quality={"kind": "x"}, applied_offset=4, quality_applied_offset=7
    )
    read = WindowRecord.from_bytes(record.to_bytes(), record.quality_bytes())
    assert (read.applied_offset, read.quality_applied_offset) == (4, 7)
    assert "quality_applied_offset" not in orjson.loads(record.to_bytes())
    alone = WindowRecord.from_bytes(record.to_bytes())  # no quality part (yet, or lost)
    assert (alone.applied_offset, alone.quality_applied_offset) == (4, -1)
    whole = orjson.dumps({**orjson.loads(record.to_bytes()), "quality": {"kind": "x"}})
    assert WindowRecord.from_bytes(whole).quality_applied_offset == 4  # before the split
    fields = record.quality_fields()
    assert (
        WindowRecord.from_bytes(record.to_bytes(), quality_fields=fields).quality_applied_offset
        == 7
    )


def test_a_final_window_awaiting_its_revision_is_not_read_by_the_finalization_scan() -> None:
    """Labels keep final windows out of the known-final keys until revised; the scan
    skips them (decoding each on every watermark cost a fifth of a labelled stream), and
    once revised they are known final again and retired at their horizon."""
    pipeline = LocalPipeline(RUNTIME, 1)
    events = list(scenario.events(2, 40, drift_from=99, decay_from=99))
    asyncio.run(pipeline.feed_predictions(events))
    asyncio.run(pipeline.idle(3 * scenario.WINDOW))  # both windows final
    drift_key, _ = keys(0)
    asyncio.run(
        pipeline.stage1.process(
            [pipeline.message("label", e.prediction_id, e.label_json()) for e in events[:10]]
        )
    )
    decoded: list[bytes] = []
    original = WindowRecord.from_bytes

    def counting(raw: bytes, quality: bytes | None = None) -> WindowRecord:
        decoded.append(raw)
        return original(raw, quality)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WindowRecord, "from_bytes", staticmethod(counting))
        asyncio.run(pipeline.deliver())  # the labels
        decoded.clear()
        for _ in range(3):  # as each watermark message does
            asyncio.run(pipeline.stage2.finalize_ready(0))
        assert pipeline.stage2.records.get(drift_key) not in decoded
    assert drift_key in pipeline.stage2._revising
    asyncio.run(pipeline.idle(1.0))  # the tick revises it
    assert drift_key not in pipeline.stage2._revising
    assert drift_key in pipeline.stage2._final_keys
    asyncio.run(pipeline.idle(10_000))  # past the label horizon (labels by their last mark)
    asyncio.run(pipeline.idle(10))
    assert pipeline.stage2.records.get(drift_key) is None
