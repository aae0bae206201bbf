"""An API over a migrated database with the scenario's model registered, and a read and an
admin key."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from api.settings import ApiSettings
from storage.api_keys import create_key
from tests.integration.harness import register


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every API test runs the pipeline's code into a database first: integration tests
    (``make test``), not part of the one-minute ``make test-unit``."""
    here = str(__file__).rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.integration)
