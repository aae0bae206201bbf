"""A deleted model is unregistered for the worker: the SQL loader answers ``DeletedModel``,
the registry serves no configuration for it (its events are dead-lettered like an unknown
model's), says it was deleted, and serves it again once it is registered again."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from registration import register_model
from schemas.events import PredictionEvent
from storage import catalog
from stream_app.model_loader import sql_loader
from stream_app.registry import DeletedModel, ModelRegistry, ModelRuntime
from tests.integration.harness import register
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.outage import refused
from tests.stream_app.test_stages import RUNTIME

DELETED_AT = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_the_sql_loader_serves_no_deleted_model_until_it_is_registered_again(
    sqlite_url: str,
) -> None:
    sessions = register(sqlite_url)
    now = [0.0]
    registry = ModelRegistry(sql_loader(sessions), refresh_seconds=30, clock=lambda: now[0])
    runtime = registry.get(scenario.MODEL_ID)
    assert runtime is not None and runtime.profile is not None
    with sessions.begin() as session:
        assert catalog.delete_model(session, scenario.MODEL_ID, DELETED_AT)
    assert registry.get(scenario.MODEL_ID) is runtime  # cached until the refresh
    now[0] += 30
    assert registry.get(scenario.MODEL_ID) is None
    deletion = registry.deletion(scenario.MODEL_ID)
    assert deletion == DeletedModel(scenario.MODEL_ID, DELETED_AT)
    assert "was deleted at 2026-11-30T12:00:00+00:00" in deletion.reason
    assert registry.get("ghost") is None and registry.deletion("ghost") is None

    with sessions.begin() as session:  # restores it, reference and all
        register_model(session, scenario.model_config())
    now[0] += 30
    asyncio.run(registry.prefetch([scenario.MODEL_ID]))
    restored = registry.get(scenario.MODEL_ID)
    assert restored is not None and restored.profile == runtime.profile
    assert registry.deletion(scenario.MODEL_ID) is None

    with sessions.begin() as session:
        catalog.delete_model(session, scenario.MODEL_ID, DELETED_AT)
    now[0] += 30
    asyncio.run(registry.prefetch([scenario.MODEL_ID]))  # the batch path loads it this way
    assert registry.get(scenario.MODEL_ID) is None
    assert registry.deletion(scenario.MODEL_ID) is not None


def test_a_deleted_models_events_are_dead_lettered_and_counted_nowhere() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    deleted = DeletedModel(scenario.MODEL_ID, DELETED_AT)
    registry = ModelRegistry(lambda m: deleted if m == scenario.MODEL_ID else None, 1e9)
    pipeline.stage1.registry = pipeline.stage2.registry = registry
    events = list(scenario.events(1, 10, drift_from=99, decay_from=99))
    batch = [pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in events]
    batch += [pipeline.message("label", e.prediction_id, e.label_json()) for e in events[:3]]
    asyncio.run(pipeline.feed(batch))
    asyncio.run(pipeline.idle(200))
    assert len(pipeline.dead_letters) == 13
    assert all("'churn'" in reason for _, reason in pipeline.dead_letters)
    assert pipeline.writer.windows == {}
    assert all("was deleted at" in reason for _, reason in pipeline.dead_letters)


def test_an_auto_registering_worker_does_not_bring_a_deleted_model_back() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    deleted = DeletedModel(scenario.MODEL_ID, DELETED_AT)
    registry = ModelRegistry(lambda m: deleted if m == scenario.MODEL_ID else None, 1e9)
    pipeline.stage1.registry = pipeline.stage2.registry = registry
    asked: list[str] = []

    async def auto_register(event: PredictionEvent) -> None:
        asked.append(event.model_id)

    pipeline.stage1.auto_register = auto_register
    events = list(scenario.events(1, 5, drift_from=99, decay_from=99))
    asyncio.run(
        pipeline.feed(
            pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in events
        )
    )
    assert asked == []
    assert len(pipeline.dead_letters) == 5
    assert all("was deleted at" in reason for _, reason in pipeline.dead_letters)


def test_stage_two_loads_a_missing_or_stale_model_in_a_thread_not_on_the_event_loop() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    now = [0.0]
    on_the_loop: list[bool] = []

    def loader(model_id: str) -> ModelRuntime | None:
        on_the_loop.append(threading.current_thread() is threading.main_thread())
        return RUNTIME if model_id == scenario.MODEL_ID else None

    pipeline.stage2.registry = ModelRegistry(loader, refresh_seconds=30, clock=lambda: now[0])
    events = list(scenario.events(2, 20, drift_from=99, decay_from=99))
    first, second = events[:20], events[20:]
    for part in (first, second):
        batch = [pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in part]
        asyncio.run(pipeline.feed(batch))
        now[0] += 31  # what stage 2 loaded for the first part is stale for the second
    asyncio.run(pipeline.idle(200))
    assert len(on_the_loop) >= 2 and not any(on_the_loop), on_the_loop
    assert pipeline.writer.windows  # and the windows were counted


def test_stage_two_goes_on_with_a_stale_model_while_the_database_is_down() -> None:
    pipeline = LocalPipeline(RUNTIME, 1)
    now, down = [0.0], [False]

    def loader(model_id: str) -> ModelRuntime | None:
        if down[0]:
            raise refused()
        return RUNTIME if model_id == scenario.MODEL_ID else None

    registry = ModelRegistry(loader, refresh_seconds=30, clock=lambda: now[0])
    pipeline.stage2.registry = registry
    events = list(scenario.events(3, 20, drift_from=99, decay_from=99))
    # A window's partial reaches stage 2 with the next window's batch: the second batch
    # loads the model, the third finds it stale with the database down.
    for window, outage in ((0, False), (1, False), (2, True)):
        down[0] = outage
        part = events[window * 20 : (window + 1) * 20]
        batch = [pipeline.message("prediction", e.prediction_id, e.prediction_json()) for e in part]
        asyncio.run(pipeline.feed(batch))
        now[0] += 31
    assert pipeline.stage2.registry.get(scenario.MODEL_ID) is RUNTIME  # served stale
    down[0] = False
    asyncio.run(pipeline.idle(200))
    assert sorted(r.window.n_rows for r in pipeline.writer.windows.values()) == [20, 20, 20]
