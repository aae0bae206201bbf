"""A model that goes quiet: with a volume rule, the windows it had no events in are
evaluated for alerts (no result rows), the last few of a long silence only, once each."""

from __future__ import annotations

import asyncio
from typing import Any

from registration import profile_reference
from stream_app.registry import ModelRuntime
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline

NO_DATA = {"rules": [{"name": "no-data", "kind": "volume", "for_windows": 2}]}


def runtime(**overrides: Any) -> ModelRuntime:
    config = scenario.model_config(**overrides)
    return ModelRuntime(config, profile_reference(config, scenario.reference()))


async def feed_windows(pipeline: LocalPipeline, windows: set[int], total: int) -> None:
    events = [e for e in scenario.events(total, 50, 99, 99) if e.window in windows]
    await pipeline.feed(
        pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in events
    )


def starts(pipeline: LocalPipeline) -> list[int]:
    return [round((o.start - scenario.START) / scenario.WINDOW) for o in pipeline.writer.empty]


def test_windows_without_events_are_evaluated_once_each() -> None:
    async def run() -> LocalPipeline:
        pipeline = LocalPipeline(runtime(alerts=NO_DATA), 1)
        await feed_windows(pipeline, {0, 1, 4}, 6)  # nothing in windows 2 and 3
        await pipeline.idle(0)
        await pipeline.idle(0)
        return pipeline

    pipeline = asyncio.run(run())
    assert starts(pipeline) == [2, 3]
    assert all(o.rows.window.n_rows == 0 and not o.write_results for o in pipeline.writer.empty)
    assert [rule.kind for rule in pipeline.writer.empty[0].alerts.rules] == ["volume"]
    finalized = sorted(
        round((s - scenario.START) / scenario.WINDOW) for _, s in pipeline.writer.windows
    )
    assert finalized == [0, 1], "window 4 is still open; the empty ones wrote no rows"


def test_without_a_volume_rule_nothing_is_evaluated_for_quiet_windows() -> None:
    async def run() -> LocalPipeline:
        pipeline = LocalPipeline(runtime(), 1)
        await feed_windows(pipeline, {0, 4}, 6)
        await pipeline.idle(0)
        return pipeline

    assert asyncio.run(run()).writer.empty == []


def test_a_long_silence_costs_a_few_evaluations_not_one_per_window() -> None:
    async def run() -> LocalPipeline:
        pipeline = LocalPipeline(runtime(alerts=NO_DATA), 1)
        await feed_windows(pipeline, {0}, 1)
        await pipeline.idle(10_000 * scenario.WINDOW)  # quiet for 10,000 windows
        await pipeline.idle(0)
        return pipeline

    pipeline = asyncio.run(run())
    assert 1 <= len(pipeline.writer.empty) <= 3  # for_windows 2 + keep 0 + 1
    assert starts(pipeline)[-1] > 9_000


def test_an_empty_window_commits_its_alerts_and_no_rows(tmp_path: Any) -> None:
    from schemas.alert_rules import AlertRuleSpec
    from storage import history
    from storage.alerts import firing_alerts
    from storage.catalog import upsert_model
    from storage.db import make_engine, session_factory
    from storage.migrate import upgrade
    from stream_app.results import AlertInputs, WindowOutcome
    from stream_app.sql_writer import SqlResultWriter

    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        upsert_model(session, "churn", {"model_id": "churn"})
    rules = (AlertRuleSpec(name="no-data", kind="volume"),)
    writer = SqlResultWriter(sessions)
    outcome = WindowOutcome.empty("churn", 120.0, 180.0, AlertInputs(rules, {"team": "risk"}))
    asyncio.run(writer.commit_window(outcome))
    with sessions() as session:
        [alert] = firing_alerts(session)
        assert history.window_history(session, "churn", None, None) == []
    assert (alert.rule, alert.summary, alert.labels["team"]) == ("no-data", "no data", "risk")
