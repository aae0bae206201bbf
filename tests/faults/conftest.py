"""Fixtures of the fault suite: the clean-run baseline, and a broker and a PostgreSQL of a
test's own (own ports, own directories), which the test may stop and start.

The shared services of :mod:`tests.services` are never stopped here: other test sessions
use them at the same time.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from driftline.local import kafka, postgres
from driftline.local.processes import port_in_use
from driftline.local.worker_process import WorkerProcess
from tests.faults.stream import (
    PARTITIONS,
    WORKER_SETTINGS,
    BaselineRun,
    Stream,
    baseline,
    build_stream,
)


def _quiet(line: str) -> None:
    return None


def free_ports(span: int) -> int:
    """A port with the ``span - 1`` ports after it free too (outside the shared services')."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20_000, 30_000)
        if not any(port_in_use(p) for p in range(port, port + span)):
            return port
    raise RuntimeError("no free port pair on 127.0.0.1")


@pytest.fixture(scope="session")
def fault_stream() -> Stream:
    return build_stream()


@pytest.fixture(scope="session")
def clean_run(fault_stream: Stream, tmp_path_factory: pytest.TempPathFactory) -> BaselineRun:
    """The stream through both stages in process, nothing disturbed: what every run must store."""
    run = baseline(fault_stream.chunks, tmp_path_factory.mktemp("clean") / "clean.db")
    assert not run.dead_letters
    return run


@dataclass
class OwnService:
    """A service only this test uses: ``stop()`` and ``start()`` it, timed."""

    port: int
    start_service: Callable[[], object]
    stop_service: Callable[[], object]
    timings: dict[str, float] = field(default_factory=dict)

    def stop(self) -> float:
        began = time.monotonic()
        self.stop_service()
        self.timings["stop"] = time.monotonic() - began
        return self.timings["stop"]

    def start(self) -> float:
        began = time.monotonic()
        self.start_service()
        self.timings["start"] = time.monotonic() - began
        return self.timings["start"]


@pytest.fixture
def own_kafka(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OwnService]:
    """A single-node broker on ports of its own, its log dir under the test's tmp dir (kept
    across a stop and a start)."""
    port = free_ports(2)
    monkeypatch.setenv("DRIFTLINE_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DRIFTLINE_KAFKA_PORT", str(port))
    config = kafka.KafkaConfig.from_env(port)
    assert config.run_dir.is_relative_to(tmp_path)
    service = OwnService(
        port,
        lambda: kafka.start(port, timeout=120, report=_quiet),
        lambda: kafka.stop(port, timeout=60, report=_quiet),
    )
    service.start()
    try:
        yield service
    finally:
        kafka.stop(port, report=_quiet)
        shutil.rmtree(config.run_dir, ignore_errors=True)


@pytest.fixture
def own_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OwnService]:
    """A PostgreSQL cluster on a port of its own (as tests/integration/test_outbox_outage.py)."""
    port = free_ports(1)
    monkeypatch.setenv("DRIFTLINE_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DRIFTLINE_POSTGRES_PORT", str(port))
    home = postgres.PostgresConfig.from_env(port).home
    service = OwnService(
        port,
        lambda: postgres.start(port, report=_quiet),
        lambda: postgres.stop(port, report=_quiet),
    )
    service.start()
    try:
        yield service
    finally:
        postgres.stop(port, report=_quiet)
        shutil.rmtree(home, ignore_errors=True)


WorkerFactory = Callable[..., WorkerProcess]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerFactory]:
    """Makes worker processes (stopped at the end if still running)."""
    made: list[WorkerProcess] = []

    def make(bootstrap: str, url: str, prefix: str, name: str, **settings: str) -> WorkerProcess:
        worker = WorkerProcess(
            bootstrap,
            url,
            prefix,
            PARTITIONS,
            tmp_path / name,
            {**WORKER_SETTINGS, "STATS_FILE": str(tmp_path / name / "stats.json"), **settings},
        )
        made.append(worker)
        return worker

    yield make
    for worker in made:
        if worker.process is not None and worker.process.poll() is None:
            try:
                worker.stop(30)
            except Exception:
                worker.process.kill()
