"""A ``driftline worker`` subprocess with its own app id, topics and log, and bounded waits.

Used by the demo and by the integration tests, so both run the worker exactly as an
operator would: a separate process, configured through ``DRIFTLINE_*`` variables, stopped
with SIGTERM.
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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from driftline.errors import ServiceError
from driftline.local.kafka import create_topics
from schemas.topics import Topics

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``condition`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise ServiceError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@dataclass
class WorkerProcess:
    """One worker process; ``settings`` are extra ``DRIFTLINE_*`` values (without prefix)."""

    bootstrap: str
    database_url: str
    prefix: str
    partitions: int
    workdir: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    app_id: str = ""

    def __post_init__(self) -> None:
        self.app_id = self.app_id or f"{self.prefix}app-{uuid.uuid4().hex[:6]}"

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.prefix)

    @property
    def log_path(self) -> Path:
        return self.workdir / "worker.log"

    def create_topics(self) -> None:
        """Create the topics first: a producer would auto-create them with one partition."""
        names = [self.topics.predictions, self.topics.labels, self.topics.label_join]
        create_topics(self.bootstrap, names, self.partitions)
        create_topics(
            self.bootstrap,
            [self.topics.window_partials, self.topics.retrain_triggers, self.topics.dead_letter],
            1,
        )

    def start(self, ready_timeout: float = 90.0) -> None:
        """Start the worker and wait until it consumes."""
        self.launch()
        self.wait_ready(ready_timeout)

    def launch(self) -> None:
        """Start the worker without waiting (several at once join their group together)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        values = {
            "BROKER": f"kafka://{self.bootstrap}",
            "DATABASE_URL": self.database_url,
            "TOPIC_PREFIX": self.prefix,
            "APP_ID": self.app_id,
            "PARTITIONS": str(self.partitions),
            "IDLE_TIMEOUT_SECONDS": "2",
            "TICK_SECONDS": "0.5",
            "REGISTRY_REFRESH_SECONDS": "1",
            "DATA_DIR": str(self.workdir / "faust"),
            **self.settings,
        }
        env = {**os.environ, **{f"DRIFTLINE_{k}": v for k, v in values.items()}}
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "driftline", "worker"],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = 90.0) -> None:
        wait_for(self._ready, timeout, f"the worker to be ready (log: {self.log_path})")

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise ServiceError(f"the worker exited early; its log ends with:\n{self.tail()}")
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
                raise ServiceError(f"the worker did not stop on SIGTERM:\n{self.tail()}") from None
        return int(self.process.returncode)


async def produce(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]]) -> int:
    """Send ``(topic, key, value)`` in order with Kafka's default partitioner; returns the count."""
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


def produce_sync(bootstrap: str, messages: Iterable[tuple[str, bytes | None, bytes]]) -> int:
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
