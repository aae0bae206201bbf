"""Worker settings: environment variables (``DRIFTLINE_…``) over a config file over defaults.

The config file is TOML or JSON, named by ``--config`` or ``DRIFTLINE_CONFIG``; its keys are
the field names below. Nothing is read at import time: :func:`load_settings` reads when
called.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from driftline.errors import ConfigurationError
from driftline.kafka_security import KafkaSecurity
from driftline.limits import MAX_MESSAGE_BYTES

# Stage 1's batch by default, in messages (batch_max).
WHOLE_FETCH_BATCH = 20_000
PER_MESSAGE_BATCH = 2_000


class WorkerSettings(BaseSettings):
    """Everything a Driftline worker process needs to know."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", extra="forbid")

    broker: str = Field(default="kafka://127.0.0.1:19092", description="Kafka bootstrap URL")
    database_url: str = Field(
        default="sqlite+pysqlite:///var/driftline.db", description="SQLAlchemy URL of the results"
    )
    topic_prefix: str = Field(default="", description="Put in front of every topic name")
    app_id: str = Field(default="driftline", description="Consumer group and changelog prefix")
    partitions: int = Field(default=4, ge=1, description="Partitions of predictions and labels")
    stage2_partitions: int = Field(default=1, ge=1, description="Partitions of window-partials")
    idle_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Quiet time after which a partition's watermark follows the clock",
    )
    tick_seconds: float = Field(default=1.0, gt=0, description="Timer period: idle windows, expiry")
    revision_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Least time between two quality revisions of one final window: its labels "
        "are counted as they come, its rows in SQL (and the triggers and alerts they make) "
        "rewritten at most this often; 0: at every tick that follows new labels. A lever on "
        "the database's write load during a label backfill",
    )
    batch_max: int | None = Field(
        default=None,
        ge=1,
        description="Most messages per stage-1 batch, each batch made durable before the "
        "next (three broker round trips). Default: 20,000 with whole_fetches (a batch is at "
        "most 8 partition fetches, about 15,000 single events), 2,000 without; without "
        "whole_fetches two batches are fetched ahead, so with envelopes of hundreds of "
        "records use ~200",
    )
    batch_within_seconds: float = Field(default=0.2, gt=0, description="Longest wait for a batch")
    whole_fetches: bool = Field(
        default=True,
        description="Hand stage 1 each partition's fetch as one event (several times faster "
        "for single-event messages; relies on faust-streaming internals, checked at start). "
        "Off: one event per message, Faust's own path",
    )
    decode_threads: int = Field(
        default=2,
        ge=1,
        description="Threads decoding the envelopes and fetched single events of a batch "
        "(the native decoder parses without the GIL, so two threads use two cores); 1 "
        "decodes in the event loop",
    )
    unknown_models: Literal["dead-letter", "auto-register"] = Field(
        default="dead-letter",
        description="Events of unregistered models: to the dead-letter topic, or register the "
        "model with default settings (its first windows become its baseline)",
    )
    registry_refresh_seconds: float = Field(default=30.0, gt=0)
    max_future_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="Events and labels stamped further ahead of the worker's clock are refused",
    )
    session_timeout_seconds: float = Field(
        default=60.0,
        ge=6,
        description="How long the group waits for a worker that stopped heart-beating "
        "(a crashed worker's partitions move after this)",
    )
    send_timeout_seconds: float = Field(
        default=120.0,
        ge=5,
        description="A send the broker has not acknowledged in this long (to stage 2, a "
        "changelog, the dead letters) stops the worker without acknowledging its input, "
        "which a restart reads again; Faust's own default waits 20 minutes",
    )
    stall_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A batch or tick in progress this long without change is logged as a "
        "stall, with where every task waits",
    )
    alerts_file: str | None = Field(
        default=None,
        description="Alert routing file (YAML): with it, the worker also delivers alerts",
    )
    alert_tick_seconds: float = Field(
        default=0.5, gt=0, description="How often the alert relay plans and delivers"
    )
    alert_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a relay holds a notification it is sending before another may",
    )
    alert_max_retry_seconds: float = Field(
        default=60.0, gt=0, description="Longest wait between two tries of a notification"
    )
    malloc_trim_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Give freed memory back to the system this often (glibc; 0: never)",
    )
    partition_fetch_mb: float = Field(
        default=4.0,
        gt=0,
        description="Most megabytes one fetch reads from a partition (Kafka's "
        "max.partition.fetch.bytes): larger fetches make larger stage-1 batches, so fewer "
        "durable flushes per message",
    )
    producer_batch_kb: int = Field(
        default=512,
        ge=16,
        # A batch is one record batch on the broker: at most MAX_MESSAGE_BYTES, so every
        # topic that takes Driftline's largest message takes a full batch too.
        le=MAX_MESSAGE_BYTES // 1024,
        description="Most kilobytes the worker's producer puts in one batch per partition "
        "(Kafka's batch.size): aiokafka holds the next send to a partition whose batch is "
        "full until that batch leaves, one broker round trip per batch",
    )
    whole_fetches_ahead: int = Field(
        default=64,
        ge=1,
        description="Whole fetches queued for stage 1 (each up to partition_fetch_mb): more "
        "keeps it busier reading a backlog, at that much memory",
    )
    join_memory_mb: float = Field(
        default=256.0,
        ge=0,
        description="Memory for the predictions waiting for their labels; beyond it their "
        "summaries go to files under data_dir/join-spill (0: all on disk)",
    )
    store: str = Field(default="memory://", description="Faust table store")
    data_dir: str = Field(default="var/faust", description="Faust's data directory")
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    stats_file: str | None = Field(
        default=None, description="Write counters and memory use here as JSON every 0.1 s"
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve the worker's Prometheus metrics at http://metrics_host:port/metrics "
        "(unset: not served; 0: any free port, logged)",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the metrics endpoint listens on (0.0.0.0: every interface)",
    )
    # The config file's kafka_* keys (without the prefix): how to connect to Kafka
    # (driftline/kafka_security.py); DRIFTLINE_KAFKA_* variables win over them.
    kafka_file: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @property
    def stage1_batch(self) -> int:
        """``batch_max``, or its default for the consumer path in use.

        Each batch ends with three awaited broker round trips (its sends, its join-table
        and window-table writes: the order a crash replay relies on), about a third of a
        single-event worker's time with batches of 5,000. Whole fetches are already in
        memory, so a larger batch only spreads those round trips over more events (A/B in
        docs/benchmarks.md).
        """
        if self.batch_max is not None:
            return self.batch_max
        return WHOLE_FETCH_BATCH if self.whole_fetches else PER_MESSAGE_BATCH

    def kafka_security(self) -> KafkaSecurity:
        """The connection settings: DRIFTLINE_KAFKA_* over the config file's kafka_* keys."""
        given = {
            key: value
            for key, value in self.kafka_file.items()
            if f"DRIFTLINE_KAFKA_{key.upper()}" not in os.environ
        }
        return KafkaSecurity.load(**given)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> WorkerSettings:
    """Defaults, then the config file, then ``DRIFTLINE_*`` variables, then ``overrides``."""
    path = config_file or os.environ.get("DRIFTLINE_CONFIG")
    from_file: dict[str, Any] = {}
    if path:
        from_file = _read_config(Path(path))
    env_set = {
        name for name in WorkerSettings.model_fields if f"DRIFTLINE_{name.upper()}" in os.environ
    }
    # The environment wins over the file: drop file keys the environment sets.
    values = {k: v for k, v in from_file.items() if k not in env_set and not k.startswith("kafka_")}
    values["kafka_file"] = {
        k.removeprefix("kafka_"): v for k, v in from_file.items() if k.startswith("kafka_")
    }
    values.update(overrides)
    try:
        return WorkerSettings(**values)
    except ValidationError as exc:
        raise ConfigurationError(f"invalid worker settings: {exc}") from exc


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigurationError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"config file {path} must hold a table/object of settings")
    return data
