"""Running a worker process: database migrations, the Faust worker, a clean SIGTERM.

``driftline worker`` calls :func:`run_worker`. On SIGTERM (or Ctrl-C) the worker stops
taking messages, finishes the batch in flight, then lets Faust commit offsets, flush the
producer and the table changelogs, and exit. A batch that cannot finish in time (the
database is down) is not committed: the worker exits with status 70 and the batch is
processed again when it restarts. Logs are one JSON object per line when
``DRIFTLINE_LOG_FORMAT=json``; counters are logged every minute, and served to Prometheus
when ``DRIFTLINE_METRICS_PORT`` is set (:mod:`stream_app.metrics`).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from driftline.errors import ServiceError
from driftline.kafka_security import bootstrap_of, connection_problem
from schemas.typed_envelope import native_decoder_available
from storage.db import make_engine, session_factory
from storage.migrate import upgrade
from stream_app import record_columns
from stream_app.app import EXIT_FATAL, Pipeline, create_pipeline
from stream_app.memory_trim import release_free_memory_off_loop
from stream_app.metrics import MetricsServer, pipeline_collector, serve, worker_registry
from stream_app.settings import WorkerSettings

log = logging.getLogger(__name__)

# CPython's cyclic collector by default runs a young collection every 700 container
# allocations net; what survives two is promoted to the oldest generation, and once the
# promoted objects reach a quarter of it a full collection runs. A batch of labels lives
# for thousands of allocations (its summaries, its joined pairs), so most of it is
# promoted before it dies, and full collections (~175 ms each at 1,000,000 outstanding)
# came about once a second of a label stream: ~17 % of the worker's main thread. Young
# collections every 50,000 let a batch die young. Measured in docs/benchmarks.md (seconds
# of garbage collection in a worker, with and without).
GC_THRESHOLDS = (50_000, 10, 10)

# How often the stats file (``stats_file``, for benchmarks and tests) is written. Not the
# tick: 150,000 labels in envelopes join in about a second, and a clock read once a tick
# timed only the labels joined after its first sample (the rest came before it).
STATS_SECONDS = 0.1


class JsonFormatter(logging.Formatter):
    """Structured logs: one JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data)


class DrainingWorker(faust.Worker):
    """A Faust worker that drains the batch in flight before it stops on a signal."""

    def __init__(self, pipeline: Pipeline, **options: Any) -> None:
        super().__init__(pipeline.app, **options)
        self.pipeline = pipeline

    async def _stop_on_signal(self, signal: signal.Signals) -> None:
        log.info("%s received: draining the batch in flight before stopping", signal.name)
        drained = await self.pipeline.drain()
        log.info("counters at stop: %s", self.pipeline.counters.as_dict())
        if not drained:
            # Stopping Faust now would cancel the agent, and take_events acknowledges a
            # batch however its loop ends: the batch (waiting for the database, say) would
            # be committed unprocessed. Exiting without a commit makes the restarted worker
            # read it again.
            log.error(
                "the batch in flight did not finish in time (is the database down?); "
                "exiting without committing it, so it is processed again on restart"
            )
            logging.shutdown()
            os._exit(EXIT_FATAL)
        await super()._stop_on_signal(signal)

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        if os.environ.get("DRIFTLINE_LOG_FORMAT") == "json":
            for handler in logger.handlers:
                handler.setFormatter(JsonFormatter())


def rss_bytes() -> int:
    """Resident memory of this process (Linux), for the stats file and benchmarks."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def build(settings: WorkerSettings) -> Pipeline:
    """Migrate the database and build the pipeline (without starting it)."""
    # Faust's data directory (and the join's spill files under it): a worker started in a
    # fresh directory makes it rather than stopping on FileNotFoundError.
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return create_pipeline(settings, session_factory(engine))


def run_worker(settings: WorkerSettings) -> None:
    """Run until SIGTERM / SIGINT; never returns."""
    metrics: tuple[CollectorRegistry, MetricsServer] | None = None
    if settings.metrics_port is not None:
        # First: a port in use stops the worker before it migrates or joins the group, with
        # a ConfigurationError the CLI prints as one line. Scrapes answer nothing until the
        # pipeline's collector is registered below.
        registry = worker_registry()
        metrics = registry, serve(registry, settings.metrics_host, settings.metrics_port)
    # Faust retries a refused login, an untrusted certificate or a listener of the other
    # protocol for ever, in tracebacks: one bounded try first ends the worker with one line
    # naming the setting. (A broker that is not up yet is left to Faust's retries.)
    security = settings.kafka_security()
    problem = asyncio.run(connection_problem(bootstrap_of(settings.broker), security))
    if problem is not None:
        raise ServiceError(problem)
    pipeline = build(settings)
    gc.set_threshold(*GC_THRESHOLDS)
    if not native_decoder_available():
        log.warning(
            "the native envelope decoder is not built (no C compiler at install time?): "
            "envelopes take the msgspec decoder at about half the speed; install gcc and "
            "the Python headers, then reinstall driftline"
        )
    if settings.whole_fetches and record_columns.native is None:
        log.warning(
            "the native record reader is not built (no C compiler at install time?): "
            "fetched records take aiokafka's reader, an object each; install gcc and the "
            "Python headers, then reinstall driftline"
        )

    async def report_counters() -> None:
        log.info("counters: %s", pipeline.counters.as_dict())

    pipeline.app.timer(60.0)(report_counters)
    if settings.malloc_trim_seconds:
        spill = pipeline.stage1.join.spill

        async def trim_memory() -> None:
            await release_free_memory_off_loop()
            if spill is not None:  # on the loop: the spill's files change with stage 1
                spill.release_pages()

        pipeline.app.timer(settings.malloc_trim_seconds)(trim_memory)
    if metrics is not None:
        registry, endpoint = metrics
        registry.register(pipeline_collector(pipeline))

        async def announce_metrics() -> None:  # once Faust has set up logging
            log.info("Prometheus metrics at %s", endpoint.url)

        pipeline.app.task(announce_metrics)
    if settings.stats_file:
        stats_path = Path(settings.stats_file)

        async def write_stats() -> None:
            join = pipeline.stage1.join
            stats = {
                **pipeline.counters.as_dict(),
                "rss_bytes": rss_bytes(),
                "join_memory_bytes": join.bytes_in_memory(),
                "join_disk_bytes": join.spill.bytes_on_disk if join.spill is not None else 0,
                "at": time.time(),
            }
            temporary = stats_path.with_suffix(".tmp")
            temporary.write_text(json.dumps(stats))
            temporary.replace(stats_path)  # readers never see half a file

        pipeline.app.timer(STATS_SECONDS)(write_stats)
    worker = DrainingWorker(pipeline, loglevel=settings.log_level)
    worker.execute_from_commandline()
