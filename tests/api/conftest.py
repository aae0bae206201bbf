"""An API over a migrated database with the scenario's model registered, and a read and an
admin key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from api.settings import ApiSettings
from storage.api_keys import create_key
from stream_app.sql_writer import SqlResultWriter
from tests.integration.harness import register
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline
from tests.stream_app.test_stages import RUNTIME

# The stream the API tests read: drift from window 3 on (scenario.DRIFTED_FEATURES).
WINDOWS, PER_WINDOW, DRIFT_FROM = 5, 200, 3


@dataclass
class Api:
    client: TestClient
    sessions: sessionmaker[Session]
    read: dict[str, str]
    admin: dict[str, str]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def api_database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def api(api_database_url: str) -> Iterator[Api]:
    sessions = register(api_database_url)
    with sessions.begin() as session:
        _, read = create_key(session, "dashboard", "read")
        _, admin = create_key(session, "ci", "admin")
    app = create_app(ApiSettings(database_url=api_database_url), sessions)
    with TestClient(app) as client:
        yield Api(
            client,
            sessions,
            {"Authorization": f"Bearer {read}"},
            {"X-API-Key": admin},
        )


def write_stream(
    sessions: sessionmaker[Session],
    windows: int = WINDOWS,
    per_window: int = PER_WINDOW,
    drift_from: int = DRIFT_FROM,
    *,
    decay_from: int = 99,
    labels: bool = False,
    seed: int = 2,
) -> None:
    """The scenario's stream through both stages (in memory) with stage 2's SQL writer;
    with ``labels``, each window's labels right after its predictions."""

    async def run() -> None:
        pipeline = LocalPipeline(RUNTIME, 2)
        pipeline.use_writer(SqlResultWriter(sessions))
        events = list(scenario.events(windows, per_window, drift_from, decay_from, seed))
        for window in range(windows):
            batch = [e for e in events if e.window == window]
            await pipeline.feed_predictions(batch)
            if labels:
                await pipeline.feed(
                    pipeline.message("label", e.prediction_id, e.label_json()) for e in batch
                )
        await pipeline.idle(3 * scenario.WINDOW)

    asyncio.run(run())


@pytest.fixture
def written(api: Api) -> Api:
    """``api`` over the stream :func:`write_stream` writes (no labels)."""
    write_stream(api.sessions)
    return api


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every API test runs the pipeline's code into a database first: integration tests
    (``make test``), not part of the one-minute ``make test-unit``."""
    here = str(__file__).rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.integration)
