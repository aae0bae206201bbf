"""Storage tests run on SQLite and on PostgreSQL (marked ``integration``).

The database URLs come from the shared fixtures ``sqlite_url`` and ``postgres_url`` in
tests/services.py: a fresh database per test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from storage import make_engine, session_factory, upgrade
from storage.repository import upsert_model

MODEL = "churn"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each kind."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def model(sessions: sessionmaker[Session]) -> str:
    """A registered model's id."""
    with sessions.begin() as session:
        upsert_model(session, MODEL, {"task": "binary"})
    return MODEL
