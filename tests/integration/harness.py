"""The worker process and topic helpers integration tests use (they live in the package)."""

from driftline.local.worker_process import (
    WorkerProcess,
    produce,
    produce_sync,
    read_topic,
    wait_for,
)

__all__ = ["WorkerProcess", "produce", "produce_sync", "read_topic", "wait_for"]
