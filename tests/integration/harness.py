"""Running a real worker process against the real broker and database, from a test.

Every wait here is bounded: a helper polls until its condition holds or its deadline passes,
then fails with what it saw, so a broken pipeline fails the test instead of hanging CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from driftline.local.kafka import create_topics
from schemas.topics import Topics
from stream_app.app import LABEL_JOIN_TOPIC

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


def wait_for(
    condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``condition`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@dataclass
class WorkerProcess:
    """A ``driftline worker`` subprocess with its own app id, topics and log file."""

    bootstrap: str
    database_url: str
    prefix: str
    partitions: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.prefix)

    @property
    def log_path(self) -> Path:
        return self.workdir / "worker.log"

    def create_topics(self) -> None:
        names = [self.topics.predictions, self.topics.labels, self.prefix + LABEL_JOIN_TOPIC]
        create_topics(self.bootstrap, names, self.partitions)
        create_topics(
            self.bootstrap,
            [self.topics.window_partials, self.topics.retrain_triggers, self.topics.dead_letter],
            1,
        )

    def start(self, ready_timeout: float = 90.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DRIFTLINE_BROKER": f"kafka://{self.bootstrap}",
            "DRIFTLINE_DATABASE_URL": self.database_url,
            "DRIFTLINE_TOPIC_PREFIX": self.prefix,
            "DRIFTLINE_APP_ID": f"{self.prefix}app-{uuid.uuid4().hex[:6]}",
            "DRIFTLINE_PARTITIONS": str(self.partitions),
            "DRIFTLINE_IDLE_TIMEOUT_SECONDS": "2",
            "DRIFTLINE_TICK_SECONDS": "0.5",
            "DRIFTLINE_REGISTRY_REFRESH_SECONDS": "1",
            "DRIFTLINE_DATA_DIR": str(self.workdir / "faust"),
            "PYTHONPATH": str(ROOT),
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "driftline", "worker"],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, ready_timeout, "the worker to be ready")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited early:\n{self.tail()}")
        # Faust logs this once table recovery is done and the agents consume.
        return "Worker ready" in self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                raise AssertionError(f"worker did not stop on SIGTERM:\n{self.tail()}") from None
        return int(self.process.returncode)


async def produce(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]]) -> int:
    """Send ``(topic, key, value)`` in order; returns how many were sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    count = 0
    try:
        for topic, key, value in messages:
            await producer.send(topic, key=key, value=value)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


def produce_sync(bootstrap: str, messages: Sequence[tuple[str, bytes | None, bytes]]) -> int:
    return asyncio.run(produce(bootstrap, messages))


async def _read_all(bootstrap: str, topic: str, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while not consumer.assignment() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assignment = sorted(consumer.assignment())
        ends = await consumer.end_offsets(assignment)
        records: list[Any] = []
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in assignment}
            if all(positions[tp] >= ends[tp] for tp in assignment):
                break
            batch = await consumer.getmany(timeout_ms=500)
            for items in batch.values():
                records.extend(items)
        return records
    finally:
        # aiokafka's group-less consumer cancels an internal task on stop; that is not ours.
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


def read_topic(bootstrap: str, topic: str, timeout: float = 20.0) -> list[Any]:
    """Every record currently on ``topic`` (bounded by ``timeout``)."""
    return asyncio.run(_read_all(bootstrap, topic, timeout))
