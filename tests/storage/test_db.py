"""Tests for storage.db: engines for SQLite and PostgreSQL, errors for anything else."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from driftline.errors import ConfigurationError
from storage import make_engine, session_factory, upgrade
from storage.db import SQLITE_BUSY_TIMEOUT_MS
from storage.models import drift_results, models, windows
from storage.repository import add_late_events, get_model, upsert_model, write_window_results
from tests.storage.helpers import at, count_rows, drift, window


@pytest.mark.parametrize(
    "url",
    [
        "mysql+pymysql://user@localhost/driftline",
        "postgresql+asyncpg://user@localhost/driftline",
        "postgresql+psycopg2://user@localhost/driftline",
        "sqlite+aiosqlite:///driftline.db",
        "mssql+pyodbc://user@dsn",
        "nosuchdb://user@localhost/x",
    ],
)
def test_unsupported_url_scheme_is_a_configuration_error(url: str) -> None:
    scheme = url.split(":", 1)[0]
    with pytest.raises(
        ConfigurationError, match=re.escape(f"unsupported database URL scheme {scheme!r}")
    ):
        make_engine(url)


def test_unparseable_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot parse the database URL"):
        make_engine("driftline.db")


def test_error_does_not_show_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_engine("postgres://admin:hunter2@db.example/driftline")
    assert "hunter2" not in str(caught.value)
    assert "'postgres'" in str(caught.value)


def test_plain_postgresql_url_uses_psycopg_without_connecting() -> None:
    engine = make_engine("postgresql://user@127.0.0.1:1/nowhere")
    assert engine.dialect.driver == "psycopg"
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()


def test_sqlite_connections_get_wal_foreign_keys_and_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        busy_timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert busy_timeout == SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()


def test_sqlite_select_runs_inside_the_transaction(sqlite_url: str) -> None:
    # sqlite3 on its own would run the SELECT outside any transaction (no BEGIN yet).
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("SELECT 1"))
        in_transaction = connection.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
        assert in_transaction
    engine.dispose()


def test_concurrent_sqlite_writers_wait_for_each_other(sqlite_url: str) -> None:
    # The stream writes windows from several threads; on SQLite a writer whose snapshot went
    # stale would fail with "database is locked" instead of waiting (see storage.db).
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        upsert_model(session, "churn", {})
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(10):
                with sessions.begin() as session:
                    hour = worker * 100 + n
                    write_window_results(session, window("churn", hour), drift=[drift()])
                    add_late_events(session, "churn", at(hour), 1)
        except BaseException as exc:  # reported below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        assert count_rows(session, windows) == 40
        assert session.execute(select(func.sum(windows.c.n_late))).scalar_one() == 40
    engine.dispose()


def test_nothing_is_committed_by_the_repository(
    sessions: sessionmaker[Session], model: str
) -> None:
    with sessions() as session:
        write_window_results(session, window(model), drift=[drift()])
        upsert_model(session, "other", {})
        session.rollback()
    with sessions() as session:
        assert count_rows(session, windows) == 0
        assert count_rows(session, drift_results) == 0
        assert get_model(session, "other") is None


def test_deleting_a_model_deletes_its_windows_and_results(
    engine: Engine, sessions: sessionmaker[Session], model: str
) -> None:
    with sessions.begin() as session:
        write_window_results(session, window(model), drift=[drift()])
    with sessions.begin() as session:
        session.execute(models.delete().where(models.c.model_id == model))
    with sessions() as session:
        assert count_rows(session, windows) == 0
        assert count_rows(session, drift_results) == 0


def test_import_creates_no_engine() -> None:
    # Importing storage must not connect anywhere. (What it may import is a layering contract
    # in pyproject.toml, [tool.importlinter].)
    script = """
import sys
import sqlalchemy

def refuse(*args, **kwargs):
    raise SystemExit("an engine was created at import time")

sqlalchemy.create_engine = refuse
import storage, storage.repository, storage.migrate, storage.db, storage.models
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_sqlite_file_in_a_folder_that_does_not_exist_yet_works(tmp_path: Path) -> None:
    """The default database, var/driftline.db, in a fresh directory."""
    path = tmp_path / "var" / "deeper" / "driftline.db"
    engine = make_engine(f"sqlite+pysqlite:///{path}")
    with engine.connect() as connection:
        assert connection.execute(text("select 1")).scalar() == 1
    assert path.exists()
