"""Quality revisions of a final window come at most once per ``revision_seconds``, and the
last one counts every label, as revising at every tick does."""

from __future__ import annotations

import asyncio
import dataclasses

from stream_app.results import ReportRows
from stream_app.revision_pace import RevisionPace
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import runtime

RUNTIME = runtime(label_horizon_seconds=100 * scenario.WINDOW)
EVENTS = list(scenario.events(3, 40, drift_from=99, decay_from=99))
FIRST = [e for e in EVENTS if e.window == 0]


async def labeled_in_steps(revision_seconds: float) -> LocalPipeline:
    """Window 0 final, then its labels in three steps a second apart, then quiet."""
    pipeline = LocalPipeline(RUNTIME, 2, revision_seconds=revision_seconds)
    pipeline.clock.now = scenario.START
    await pipeline.feed_predictions(EVENTS)
    await pipeline.idle(10.0)  # window 0 final (the later windows moved the watermark)
    for step in range(3):
        part = FIRST[step::3]
        await pipeline.feed(
            pipeline.message("label", e.prediction_id, e.label_json()) for e in part
        )
        await pipeline.idle(1.0)
    await pipeline.idle(revision_seconds + 1.0)
    return pipeline


def revisions_of_first(pipeline: LocalPipeline) -> list[int]:
    start = FIRST[0].timestamp - FIRST[0].timestamp % scenario.WINDOW
    return [rows.window.n_labeled for _, s, rows in pipeline.writer.revisions if s == start]


def test_a_window_is_revised_at_most_once_per_pace_and_its_last_revision_counts_all() -> None:
    paced = asyncio.run(labeled_in_steps(5.0))
    every_tick = asyncio.run(labeled_in_steps(0.0))
    assert len(revisions_of_first(every_tick)) == 3  # one a step
    assert len(revisions_of_first(paced)) == 2  # the first step at once, the rest together
    assert revisions_of_first(paced)[-1] == revisions_of_first(every_tick)[-1] == len(FIRST)
    assert timeless(paced.writer.revisions[-1][2]) == timeless(every_tick.writer.revisions[-1][2])


def timeless(rows: ReportRows) -> ReportRows:
    """The rows without when they were written and how many revisions came before."""
    window = dataclasses.replace(rows.window, quality_revision=0, finalized_at=None)
    return dataclasses.replace(rows, window=window)


def test_the_pace_forgets_windows_once_their_time_is_past() -> None:
    now = [0.0]
    pace = RevisionPace(5.0, lambda: now[0])
    assert pace.due("a")
    pace.revised("a")
    now[0] = 4.9
    assert not pace.due("a")
    pace.forget_past()
    assert not pace.due("a")
    now[0] = 5.0
    assert pace.due("a")
    pace.forget_past()
    assert pace._revised_at == {}
