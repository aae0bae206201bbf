"""The stream's logic end to end in memory: windows, watermarks, joins, late events, triggers."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import numpy as np
import orjson
import pytest
from sklearn import metrics as skm

from detectors import WindowState
from registration import profile_reference
from stream_app import messages
from stream_app.registry import ModelRuntime
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline

WINDOWS, PER_WINDOW, DRIFT_FROM, DECAY_FROM = 7, 300, 3, 4
LABELED_SHARE = 0.4


def runtime(**overrides: Any) -> ModelRuntime:
    config = scenario.model_config(**overrides)
    return ModelRuntime(config, profile_reference(config, scenario.reference()))


RUNTIME = runtime()


async def run_scenario(n_partitions: int) -> tuple[LocalPipeline, dict[int, list[scenario.Event]]]:
    """Predictions in time order; 40 % labeled: a few labels before their prediction, the rest
    two windows later (after the window is final, so its quality is revised)."""
    pipeline = LocalPipeline(RUNTIME, n_partitions)
    rng = np.random.default_rng(5)
    labeled: dict[int, list[scenario.Event]] = defaultdict(list)
    delayed: dict[int, list[scenario.Event]] = defaultdict(list)
    by_window: dict[int, list[scenario.Event]] = defaultdict(list)
    for event in scenario.events(WINDOWS, PER_WINDOW, DRIFT_FROM, DECAY_FROM):
        by_window[event.window].append(event)
    for w in range(WINDOWS):
        batch = [
            pipeline.message("label", e.prediction_id, e.label_json()) for e in delayed.pop(w, [])
        ]
        for e in by_window[w]:
            draw = rng.random()
            if draw < 0.05:  # the label overtakes its prediction
                batch.append(pipeline.message("label", e.prediction_id, e.label_json()))
                labeled[w].append(e)
            elif draw < LABELED_SHARE:
                delayed[w + 2].append(e)
                labeled[w].append(e)
            batch.append(pipeline.message("prediction", e.prediction_id, e.prediction_json()))
        for start in range(0, len(batch), 97):
            await pipeline.feed(batch[start : start + 97])
    await pipeline.idle(60.0)  # the stream goes quiet: the timer closes the last windows
    rest = [e for events in delayed.values() for e in events]
    await pipeline.feed(pipeline.message("label", e.prediction_id, e.label_json()) for e in rest)
    await pipeline.idle(0.0)  # the timer writes the revisions the last labels call for
    return pipeline, labeled


def window_start(w: int) -> float:
    return scenario.START + w * scenario.WINDOW


def test_every_window_is_finalized_with_its_events() -> None:
    pipeline, _ = asyncio.run(run_scenario(4))
    assert sorted(pipeline.writer.windows) == [
        (scenario.MODEL_ID, window_start(w)) for w in range(WINDOWS)
    ]
    for w in range(WINDOWS):
        assert (
            pipeline.writer.windows[(scenario.MODEL_ID, window_start(w))].window.n_rows
            == PER_WINDOW
        )
    assert pipeline.dead_letters == []
    assert pipeline.counters.late == 0


def test_drift_on_exactly_the_shifted_features_after_the_change() -> None:
    pipeline, _ = asyncio.run(run_scenario(4))
    for w in range(WINDOWS):
        rows = pipeline.writer.windows[(scenario.MODEL_ID, window_start(w))]
        drifted = {
            r.feature
            for r in rows.drift
            if r.is_primary and r.status == "drift" and not r.is_output
        }
        expected = set(scenario.DRIFTED_FEATURES) if w >= DRIFT_FROM else set()
        assert drifted == expected, (w, drifted)


def test_quality_metrics_equal_sklearn_on_the_joined_pairs() -> None:
    pipeline, labeled = asyncio.run(run_scenario(4))
    latest: dict[float, Any] = {start: rows for _, start, rows in pipeline.writer.revisions}
    for w in range(WINDOWS):
        start = window_start(w)
        rows = latest.get(start, pipeline.writer.windows[(scenario.MODEL_ID, start)])
        values = {m.metric: m.value for m in rows.metrics}
        pairs = labeled[w]
        y_true = [e.label for e in pairs]
        y_pred = [e.prediction for e in pairs]
        scores = [e.score for e in pairs]
        assert values["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-9)
        assert values["f1"] == pytest.approx(
            skm.f1_score(y_true, y_pred, pos_label="1", zero_division=0), abs=1e-9
        )
        assert values["roc_auc"] == pytest.approx(skm.roc_auc_score(y_true, scores), abs=0.005)
        assert rows.window.label_coverage == pytest.approx(len(pairs) / PER_WINDOW)


def test_late_labels_revise_final_windows() -> None:
    pipeline, _ = asyncio.run(run_scenario(2))
    revised = {start for _, start, _ in pipeline.writer.revisions}
    assert revised == {window_start(w) for w in range(WINDOWS)}
    first = pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))]
    last_revision = [
        rows for _, start, rows in pipeline.writer.revisions if start == window_start(0)
    ][-1]
    revised_window, first_window = last_revision.window, first.window
    assert revised_window.quality_revision is not None
    assert first_window.quality_revision is not None
    assert revised_window.quality_revision > first_window.quality_revision
    assert (revised_window.label_coverage or 0) > (first_window.label_coverage or 0)
    assert pipeline.counters.quality_revisions >= WINDOWS


def test_retraining_trigger_fires_once_despite_persisting_drift() -> None:
    pipeline, _ = asyncio.run(run_scenario(4))
    assert len(pipeline.published) == 1
    trigger = pipeline.published[0]
    assert trigger.model_id == scenario.MODEL_ID and trigger.model_version == "v1"
    # K=2 of M=3: the second drifted window fires.
    assert trigger.window_start.timestamp() == window_start(DRIFT_FROM + 1)
    assert trigger.evidence["rule"] == "drift"
    assert len(pipeline.writer.triggers) == 1


def test_four_partitions_give_the_same_results_as_one() -> None:
    four, _ = asyncio.run(run_scenario(4))
    one, _ = asyncio.run(run_scenario(1))
    assert four.writer.windows.keys() == one.writer.windows.keys()
    for key, rows in one.writer.windows.items():
        other = four.writer.windows[key]
        assert other.window.n_rows == rows.window.n_rows
        scores = {(r.feature, r.method): r.score for r in rows.drift}
        other_scores = {(r.feature, r.method): r.score for r in other.drift}
        assert other_scores.keys() == scores.keys()
        for name, score in scores.items():
            assert other_scores[name] == pytest.approx(score, rel=1e-9, abs=1e-12), name


def test_late_events_are_counted_per_window_not_added() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    events = list(scenario.events(3, 50, drift_from=99, decay_from=99))
    batch = [pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in events]
    asyncio.run(pipeline.feed(batch))
    straggler = events[0]  # window 0, long closed: watermark is in window 2
    late = pipeline.message(
        "prediction", "late-1", straggler.prediction_json().replace(b"w0-0", b"late-1")
    )
    asyncio.run(pipeline.feed([late]))
    asyncio.run(pipeline.idle(60))
    start0 = window_start(0)
    assert pipeline.writer.windows[(scenario.MODEL_ID, start0)].window.n_rows == 50
    assert pipeline.writer.late[(scenario.MODEL_ID, start0)] == 1
    assert pipeline.counters.late == 1


def test_an_idle_stream_closes_its_windows_on_the_timer() -> None:
    pipeline = LocalPipeline(RUNTIME, 2, idle_timeout=5.0)
    events = list(scenario.events(1, 40, drift_from=99, decay_from=99))
    asyncio.run(pipeline.feed_predictions(events))
    asyncio.run(pipeline.idle(1.0))
    assert pipeline.writer.windows == {}  # still within the idle timeout
    asyncio.run(pipeline.idle(scenario.WINDOW + scenario.LATENESS + 5.0))
    assert list(pipeline.writer.windows) == [(scenario.MODEL_ID, window_start(0))]


def test_bad_messages_go_to_the_dead_letter_topic_and_the_rest_flows() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    good = list(scenario.events(1, 10, drift_from=99, decay_from=99))
    bad = [
        pipeline.message("prediction", "x1", b"{not json"),
        pipeline.message("prediction", "x2", b'{"model_id": "churn", "prediction_id": "x2"}'),
        pipeline.message(
            "prediction", "x3", good[0].prediction_json().replace(b'"churn"', b'"ghost"')
        ),
        pipeline.message("label", "x4", b'{"model_id": "churn"}'),
    ]
    batch = bad + [
        pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in good
    ]
    asyncio.run(pipeline.feed(batch))
    asyncio.run(pipeline.idle(200))
    # Stage 1 takes a batch's labels before its predictions: in the order of the input.
    position = {(m.kind, m.offset): i for i, m in enumerate(bad)}
    letters = sorted(pipeline.dead_letters, key=lambda d: position[(d[0].kind, d[0].offset)])
    reasons = [reason for _, reason in letters]
    assert len(reasons) == 4
    assert reasons[0].startswith("not valid JSON")
    assert "timestamp" in reasons[1] or "features" in reasons[1]
    assert "unknown model 'ghost'" in reasons[2]
    assert pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))].window.n_rows == 10


def test_windows_are_finalized_once_when_every_partition_has_reported() -> None:
    pipeline, _ = asyncio.run(run_scenario(4))
    assert pipeline.counters.windows_finalized == WINDOWS


def test_an_empty_partition_does_not_hold_windows_back() -> None:
    # No task: no label join, so nothing is forwarded to the other partitions.
    pipeline = LocalPipeline(runtime(task=None, classes=[]), 4)
    events = list(scenario.events(2, 40, drift_from=99, decay_from=99))
    # Everything on partition 1: partitions 0, 2 and 3 never see an event.
    batch = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json(), partition=1)
        for e in events
    ]
    asyncio.run(pipeline.feed(batch))
    assert pipeline.writer.windows == {}  # stage 2 has not heard from the other partitions
    asyncio.run(pipeline.idle(0.1))  # the timer reports them empty
    assert list(pipeline.writer.windows) == [(scenario.MODEL_ID, window_start(0))]


def test_a_partial_past_the_label_horizon_does_not_overwrite_the_window() -> None:
    pipeline = LocalPipeline(runtime(label_horizon_seconds=60), 1)
    events = list(scenario.events(1, 30, drift_from=99, decay_from=99))
    asyncio.run(pipeline.feed_predictions(events))
    asyncio.run(pipeline.idle(10_000))  # final; the label-join topic hears the watermark
    asyncio.run(pipeline.idle(10))  # ... which holds the labels: dropped past its horizon
    assert pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))].window.n_rows == 30
    assert RUNTIME.profile is not None
    stray = WindowState.empty(RUNTIME.profile, RUNTIME.task)
    partial = messages.PartialMessage(
        scenario.MODEL_ID, window_start(0), window_start(1), 3, stray.to_bytes()
    )
    asyncio.run(pipeline.stage2.handle(0, partial))
    asyncio.run(pipeline.idle(1))
    assert pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))].window.n_rows == 30
    assert pipeline.counters.expired_messages == 1


def test_without_a_reference_the_first_windows_become_the_baseline() -> None:
    config = scenario.model_config(baseline_windows=2)
    pipeline = LocalPipeline(ModelRuntime(config, None), 2)
    events = list(scenario.events(6, 300, drift_from=4, decay_from=99))
    for w in range(6):
        batch = [
            pipeline.message("prediction", e.prediction_id, e.prediction_json())
            for e in events
            if e.window == w
        ]
        asyncio.run(pipeline.feed(batch))
    asyncio.run(pipeline.idle(100))
    [(model_id, profile, source)] = pipeline.writer.profiles
    assert model_id == scenario.MODEL_ID and source.startswith("baseline: 2 windows")
    assert set(profile.features) == {"age", "income", "plan", "tenure"}
    rows = {start: r for (_, start), r in pipeline.writer.windows.items()}
    assert [rows[window_start(w)].window.n_rows for w in range(6)] == [300] * 6
    judged = {w for w in range(6) if rows[window_start(w)].drift}
    assert {0, 1}.isdisjoint(judged) and {4, 5} <= judged
    for w in judged:
        drifted = {
            d.feature for d in rows[window_start(w)].drift if d.is_primary and d.status == "drift"
        }
        expected = set(scenario.DRIFTED_FEATURES) if w >= 4 else set()
        assert drifted & {"age", "income", "plan", "tenure"} == expected, w


def test_baseline_windows_report_their_labels() -> None:
    config = scenario.model_config(baseline_windows=3)
    pipeline = LocalPipeline(ModelRuntime(config, None), 1)
    events = list(scenario.events(1, 100, drift_from=99, decay_from=99))
    batch = [pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in events]
    batch += [pipeline.message("label", e.prediction_id, e.label_json()) for e in events[:40]]
    asyncio.run(pipeline.feed(batch))
    asyncio.run(pipeline.idle(100))
    rows = pipeline.writer.windows[(scenario.MODEL_ID, window_start(0))]
    assert rows.drift == [] and rows.window.label_coverage == pytest.approx(0.4)
    accuracy = {m.metric: m.value for m in rows.metrics}["accuracy"]
    y_true = [e.label for e in events[:40]]
    assert accuracy == pytest.approx(
        skm.accuracy_score(y_true, [e.prediction for e in events[:40]])
    )


def test_unknown_models_are_registered_when_configured() -> None:
    registered: list[str] = []

    async def auto_register(event: Any) -> ModelRuntime:
        registered.append(event.model_id)
        config = scenario.model_config(model_id=event.model_id, task=None, classes=[])
        made = ModelRuntime(config, None)
        pipeline.registry.put(made)
        return made

    pipeline = LocalPipeline(RUNTIME, 1, auto_register=auto_register)
    events = list(scenario.events(1, 20, drift_from=99, decay_from=99))
    batch = [
        pipeline.message(
            "prediction", e.prediction_id, e.prediction_json().replace(b'"churn"', b'"fresh"')
        )
        for e in events
    ]
    asyncio.run(pipeline.feed(batch))
    asyncio.run(pipeline.idle(100))
    assert registered == ["fresh"]
    assert pipeline.dead_letters == []
    assert pipeline.writer.windows[("fresh", window_start(0))].window.n_rows == 20


def _envelope(chunk: list[Any], **feature_changes: Any) -> bytes:
    records = [
        {
            "prediction_id": e.prediction_id,
            "timestamp": e.timestamp,
            "features": {**e.features, **feature_changes},
            "prediction": e.prediction,
            "score": e.score,
        }
        for e in chunk
    ]
    return orjson.dumps({"model_id": scenario.MODEL_ID, "model_version": "v1", "records": records})


@pytest.mark.parametrize("decode_threads", [1, 2])
def test_batch_envelopes_give_the_same_windows_as_single_events(decode_threads: int) -> None:
    events = list(scenario.events(4, 600, drift_from=2, decay_from=3))
    single = LocalPipeline(RUNTIME, 2)
    asyncio.run(single.feed_predictions(events))
    enveloped = LocalPipeline(RUNTIME, 2, decode_threads=decode_threads)
    batch = []
    for offset in range(0, len(events), 250):
        chunk = events[offset : offset + 250]
        batch.append(enveloped.message("prediction", chunk[0].prediction_id, _envelope(chunk)))
    asyncio.run(enveloped.feed(batch))
    labels = [e for e in events if e.window < 3][::3]
    for pipeline in (single, enveloped):
        asyncio.run(
            pipeline.feed(
                pipeline.message("label", e.prediction_id, e.label_json()) for e in labels
            )
        )
        asyncio.run(pipeline.idle(100))
    assert single.writer.windows.keys() == enveloped.writer.windows.keys()
    for key, rows in single.writer.windows.items():
        other = enveloped.writer.windows[key]
        assert other.window.n_rows == rows.window.n_rows
        assert {(d.feature, d.method): d.score for d in other.drift} == {
            (d.feature, d.method): d.score for d in rows.drift
        }
    for (_, start, rows), (_, other_start, other) in zip(
        single.writer.revisions, enveloped.writer.revisions, strict=True
    ):
        assert start == other_start
        assert {m.metric: m.value for m in rows.metrics} == {
            m.metric: m.value for m in other.metrics
        }
    assert single.writer.revisions, "labels arrived after the windows were final"
    assert enveloped.counters.predictions == single.counters.predictions == len(events)


def test_ready_windows_are_finalized_oldest_first() -> None:
    pipeline = LocalPipeline(runtime(task=None, classes=[]), 2)
    events = list(scenario.events(2, 20, drift_from=99, decay_from=99))
    later = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json(), partition=0)
        for e in events
        if e.window == 1
    ]
    earlier = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json(), partition=1)
        for e in events
        if e.window == 0
    ]
    asyncio.run(pipeline.feed(later))  # window 1's record exists before window 0's
    asyncio.run(pipeline.feed(earlier))
    asyncio.run(pipeline.idle(100))
    assert list(pipeline.writer.windows) == [
        (scenario.MODEL_ID, window_start(0)),
        (scenario.MODEL_ID, window_start(1)),
    ]


def test_join_entries_expire_after_the_label_horizon() -> None:
    pipeline = LocalPipeline(runtime(label_horizon_seconds=60), 1)
    events = list(scenario.events(1, 30, drift_from=99, decay_from=99))
    asyncio.run(pipeline.feed_predictions(events))
    asyncio.run(pipeline.idle(1))
    assert pipeline.stage1.join.waiting_summaries() == 30
    assert list(pipeline.stage1.joins.data) == ["0#c0"]  # type: ignore[attr-defined]
    asyncio.run(pipeline.idle(10_000))  # the watermark follows the clock past every horizon
    assert pipeline.stage1.joins.data == {}  # type: ignore[attr-defined]
    assert pipeline.stage1.join.waiting_summaries() == 0
    assert pipeline.counters.unlabeled_predictions == 30
    asyncio.run(pipeline.idle(10))  # nothing left to sweep: no more counting
    assert pipeline.counters.unlabeled_predictions == 30


def test_a_partition_with_a_backlog_is_behind_not_idle() -> None:
    pipeline = LocalPipeline(runtime(task=None, classes=[]), 2, idle_timeout=5.0)
    events = list(scenario.events(1, 20, drift_from=99, decay_from=99))
    batch = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json(), partition=p)
        for p in (0, 1)
        for e in events[:10]
    ]
    asyncio.run(pipeline.feed(batch))
    pipeline.stage1.note_log_end(
        1, pipeline.stage1.clocks.positions[1] + 50
    )  # 50 events still to come
    pipeline.clock.now += 1_000
    assert pipeline.stage1.clock(1).watermark() == pipeline.stage1.clock(1).event_watermark
    assert pipeline.stage1.clock(0).watermark() > pipeline.stage1.clock(0).event_watermark  # type: ignore[operator]
    asyncio.run(pipeline.idle(0))
    assert pipeline.writer.windows == {}  # partition 1 holds the window open
    pipeline.stage1.note_log_end(1, pipeline.stage1.clocks.positions[1] + 1)  # caught up
    asyncio.run(pipeline.idle(0))
    assert list(pipeline.writer.windows) == [(scenario.MODEL_ID, window_start(0))]


def test_envelopes_decoded_on_threads_count_like_the_event_loop() -> None:
    # Among them one the model's decoder declines (a string in a numeric feature: an
    # invalid value for the general path to count) and one of an unknown model.
    events = list(scenario.events(2, 400, drift_from=9, decay_from=9))
    feature = next(n for n, v in events[0].features.items() if isinstance(v, float))
    counts = []
    for threads in (1, 2):
        pipeline = LocalPipeline(RUNTIME, 1, decode_threads=threads)
        chunks = [events[i : i + 100] for i in range(0, len(events), 100)]
        raws = [_envelope(c) for c in chunks[:-1]] + [_envelope(chunks[-1], **{feature: "x"})]
        raws.append(raws[0].replace(scenario.MODEL_ID.encode(), b"nobody", 1))
        asyncio.run(pipeline.feed(pipeline.message("prediction", "k", raw) for raw in raws))
        asyncio.run(pipeline.idle(100))
        counts.append(
            (
                pipeline.counters.predictions,
                len(pipeline.dead_letters),
                {k: r.window.n_rows for k, r in pipeline.writer.windows.items()},
                {
                    k: [(q.feature, q.invalid_rate) for q in r.data_quality]
                    for k, r in pipeline.writer.windows.items()
                },
            )
        )
    assert counts[0] == counts[1]
    assert counts[0][0] == len(events) and counts[0][1] == 1
    invalid = [rate for rows in counts[0][3].values() for name, rate in rows if name == feature]
    assert any(invalid), "the string values were not counted as invalid"


def test_runs_of_single_events_count_like_one_message_at_a_time() -> None:
    # Single events are decoded a run at a time; an envelope, a bad event, another model's
    # event or a label in between must change nothing against one message per batch.
    events = list(scenario.events(3, 300, drift_from=1, decay_from=9))
    results = []
    for batch_size in (1, 10_000):
        pipeline = LocalPipeline(RUNTIME, 2)
        messages = []
        for i, event in enumerate(events):
            if i % 97 == 5:
                messages.append(pipeline.message("prediction", "k", b'{"model_id": "m"'))
            if i % 211 == 7:
                messages.append(pipeline.message("prediction", "e", _envelope(events[i : i + 3])))
            if i % 53 == 3:
                other = event.prediction_json().replace(scenario.MODEL_ID.encode(), b"nobody")
                messages.append(pipeline.message("prediction", "o", other))
            if i % 5 == 0:
                messages.append(pipeline.message("label", event.prediction_id, event.label_json()))
            messages.append(
                pipeline.message("prediction", event.prediction_id, event.prediction_json())
            )
        for start in range(0, len(messages), batch_size):
            asyncio.run(pipeline.feed(messages[start : start + batch_size]))
        asyncio.run(pipeline.idle(100))
        results.append(
            (
                pipeline.counters.predictions,
                pipeline.counters.late,
                pipeline.counters.joined,
                len(pipeline.dead_letters),
                {k: r.window.n_rows for k, r in pipeline.writer.windows.items()},
                {
                    k: {(d.feature, d.method): d.score for d in r.drift}
                    for k, r in pipeline.writer.windows.items()
                },
            )
        )
    assert results[0] == results[1]
    assert results[0][3] > 0 and results[0][2] > 0


def test_final_windows_are_dropped_after_their_label_horizon() -> None:
    # Final windows are known by key after the first scan (not parsed again); they must
    # still go once the watermark passes their label horizon, and only then.
    pipeline = LocalPipeline(runtime(label_horizon_seconds=180), 1)
    events = list(scenario.events(2, 30, drift_from=99, decay_from=99))
    asyncio.run(pipeline.feed_predictions(events))

    def kept() -> set[float]:
        return {
            float(key.rsplit("|", 1)[1])
            for key, _ in pipeline.stage2.records.items()
            if "|r|" in key
        }

    asyncio.run(pipeline.idle(60))  # the clock passes the windows: final, within the horizon
    assert len(pipeline.writer.windows) == 2 and kept() == {window_start(0), window_start(1)}
    asyncio.run(pipeline.idle(60))  # still within the horizon: kept, now known final by key
    assert kept() == {window_start(0), window_start(1)}
    asyncio.run(pipeline.idle(10_000))
    assert kept() == {window_start(0), window_start(1)}  # labels held by the last mark heard
    asyncio.run(pipeline.idle(10))
    assert kept() == set()


def test_a_window_begun_as_a_sample_counts_the_events_of_the_fast_paths() -> None:
    # The reference appears while a window is open: the window stays a sample, and events
    # that take the fast paths from then on (runs of single events, envelopes) must be
    # counted in it, not dropped.
    config = scenario.model_config(baseline_windows=1)
    pipeline = LocalPipeline(ModelRuntime(config, None), 1)
    events = list(scenario.events(2, 200, drift_from=99, decay_from=99))
    first = [e for e in events if e.window == 1][:60]
    rest = [e for e in events if e.window == 1][60:]
    asyncio.run(
        pipeline.feed(
            pipeline.message("prediction", e.prediction_id, e.prediction_json())
            for e in [*(e for e in events if e.window == 0), *first]
        )
    )
    pipeline.registry.put(runtime(baseline_windows=1))  # the reference now exists
    batch = [
        pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in rest[:70]
    ]
    batch.append(pipeline.message("prediction", "e", _envelope(rest[70:])))
    asyncio.run(pipeline.feed(batch))
    asyncio.run(pipeline.idle(100))
    rows = {start: r for (_, start), r in pipeline.writer.windows.items()}
    assert rows[window_start(1)].window.n_rows == 200
    assert pipeline.counters.predictions == 400
