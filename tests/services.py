"""Fixtures for the real services integration tests use: a Kafka broker and PostgreSQL.

A fixture starts its service when it is not running (installing it on first use, which
takes a minute on a fresh machine) and never skips: a service that cannot start fails the
tests that need it, with its log. Services are shared by every test session on the machine
(two developers' runs, CI): each session holds a lease while it runs, and the last session
out stops a service that a test session started. One started by hand (``driftline local``)
is left running.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from driftline.local import kafka, postgres
from driftline.local.environment import Report, printer
from driftline.local.postgres import PostgresServer
from driftline.local.processes import is_alive, locked

STARTED_BY_TESTS = "started-by-tests"


@pytest.fixture(scope="session")
def kafka_bootstrap(pytestconfig: pytest.Config) -> Iterator[str]:
    """``127.0.0.1:<port>`` of a running broker (``DRIFTLINE_KAFKA_PORT``, default 19092)."""
    config = kafka.KafkaConfig.from_env()
    report = _live_report(pytestconfig)
    with _shared(
        config.run_dir,
        start=lambda: kafka.start(report=report),
        stop=lambda: kafka.stop(report=report),
        report=report,
    ) as broker:
        yield broker.bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test uses, so tests sharing the broker never share a topic."""
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture(scope="session")
def postgres_server(pytestconfig: pytest.Config) -> Iterator[PostgresServer]:
    """The running local PostgreSQL (``DRIFTLINE_POSTGRES_PORT``, default 15432)."""
    config = postgres.PostgresConfig.from_env()
    report = _live_report(pytestconfig)
    with _shared(
        config.home,
        start=lambda: postgres.start(report=report),
        stop=lambda: postgres.stop(report=report),
        report=report,
    ) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres.create_database(name, port=postgres_server.port)
    yield url
    postgres.drop_database(name, port=postgres_server.port)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a fresh SQLite database file in the test's temporary directory."""
    return f"sqlite+pysqlite:///{tmp_path}/driftline.db"


class _Started(Protocol):
    @property
    def started(self) -> bool: ...


_S = TypeVar("_S", bound=_Started)


@contextmanager
def _shared(
    home: Path, *, start: Callable[[], _S], stop: Callable[[], object], report: Report
) -> Iterator[_S]:
    """Run a service for this session under a lease; see the module docstring."""
    leases, marker, lock = home / "test-sessions", home / STARTED_BY_TESTS, home / "sessions.lock"
    mine = leases / str(os.getpid())
    # Starting and leasing under one lock, so no session stops a service another just leased.
    with locked(lock, timeout=1200):  # the first start may install packages
        service = start()
        leases.mkdir(parents=True, exist_ok=True)
        if service.started:
            marker.touch()
        elif not any(_session_alive(lease) for lease in leases.iterdir()):
            # Running before any live session: started by hand, or left by a session that
            # died. Either way not ours to stop.
            marker.unlink(missing_ok=True)
        mine.touch()
    try:
        yield service
    finally:
        with locked(lock):
            mine.unlink(missing_ok=True)
            others = [lease for lease in leases.iterdir() if _session_alive(lease)]
            if others:
                report(f"leaving {home.name} running for {len(others)} other test session(s)")
            elif marker.exists():
                stop()
                marker.unlink()


def _session_alive(lease: Path) -> bool:
    alive = lease.name.isdigit() and is_alive(int(lease.name))
    if not alive:
        lease.unlink(missing_ok=True)  # a session that died without cleaning up
    return alive


def _live_report(pytestconfig: pytest.Config) -> Report:
    """Progress lines shown as they happen, past pytest's output capture: installs are slow."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    write = printer(sys.stderr)

    def report(line: str) -> None:
        if capture is None:
            write(line)
            return
        with capture.global_and_fixture_disabled():
            write(line)

    return report
