"""Prometheus metrics of a worker at ``http://DRIFTLINE_METRICS_HOST:DRIFTLINE_METRICS_PORT/metrics``.

The worker has its own :class:`~prometheus_client.CollectorRegistry` (never the
process-global one) with one collector, :class:`WorkerCollector`, that reads what the worker
already keeps at scrape time, so nothing is counted twice:

* every ``int`` field of :class:`~stream_app.counters.Counters` as a counter
  ``driftline_worker_<field>_total`` (``HELP`` below; a field without one still shows);
* ``driftline_worker_events_total{topic,outcome}``: per input topic, events ``accepted``
  (predictions, one per record of an envelope, and labels) and messages sent to the
  dead-letter topic (``dead_letter``, an envelope counts once);
* ``driftline_worker_last_finalized_window_end_seconds`` and
  ``driftline_worker_finalization_lag_seconds`` (now minus it), once a window is final;
* ``driftline_worker_notifications_total{receiver,integration,outcome}``: delivery attempts
  of this worker's alert relay (``sent``, ``retried``, ``failed``), with ``alerts_file``;
* ``driftline_worker_outbox_pending{outbox}``: triggers and notifications not sent yet, read
  from SQL at scrape time with ``driftline_worker_database_up`` (0: no SQL series).

The server (:func:`serve`) is prometheus-client's own, on a daemon thread: a scrape, and its
SQL query, never run on the worker's event loop. The counters it reads are plain ints and
small dicts (copied before iterating) written by the loop.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from alerting.dispatch import AlertRelay
from driftline.errors import ConfigurationError
from schemas.topics import Topics
from storage.models import notifications, retrain_triggers
from stream_app.counters import Counters

if TYPE_CHECKING:
    from stream_app.app import Pipeline
    from stream_app.label_join import LabelJoin

log = logging.getLogger(__name__)

PREFIX = "driftline_worker_"

HELP: dict[str, str] = {
    "predictions": "Prediction events processed by stage 1 (each record of an envelope counts)",
    "labels": "Labels accepted by stage 1",
    "joined": "Labels joined to their prediction",
    "late": "Predictions that came after their window had closed (counted as late)",
    "dead_letters": "Input messages sent to the dead-letter topic",
    "unmatched_labels": "Labels whose prediction never came within the label horizon",
    "unlabeled_predictions": "Predictions whose label never came within the label horizon",
    "windows_finalized": "Windows finalized and committed by stage 2 (baseline windows too)",
    "quality_revisions": "Quality revisions of final windows committed for late labels",
    "triggers": "New retraining triggers committed to the outbox",
    "outbox_sent": "Retraining triggers the outbox relay published (a resend counts again)",
    "skipped_stage2_messages": "Internal stage-2 messages refused (e.g. a label not of the "
    "model's classes)",
    "expired_messages": "Stage-2 messages dropped: their window was past its label horizon",
    "end_of_stream_markers": "End-of-stream markers applied to a partition's watermark",
    "duplicates": "Prediction ids seen again within the dedup horizon, not counted again",
    "replayed_messages": "Stage-2 messages read again after a crash, recognised, not re-applied",
    "replayed_pairs": "Labeled pairs and late events stage 1 sent again, not re-applied",
    "replayed_input": "Input messages read again below stage 1's checkpoint, skipped",
    "input_rewinds": "Times input was found past where a stage was, and read again from there",
    "fetch_restarts": "Partitions Faust had stopped fetching, found and read again",
    "commit_repairs": "Partitions whose offset commit Faust held, moved on to the durable offset",
    "stalls": "Batches or ticks logged as in progress for too long",
    "unready_batches": "Batches that came while tables were recovering (read again later)",
    "whole_fetch_runs": "Fetches of single events stage 1 took whole, as columns",
    "fetches_taken_apart": "Fetches read as columns that stage 1 took message by message",
    "whole_label_fetches": "Fetches of single labels stage 1 joined whole, as one run",
}


class WorkerCollector(Collector):
    """The worker's metrics, read from its live objects (and SQL) at every scrape."""

    def __init__(
        self,
        counters: Counters,
        topics: Topics,
        *,
        sessions: sessionmaker[Session] | None = None,
        alert_relay: AlertRelay | None = None,
        join: LabelJoin | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counters = counters
        self.join = join
        self.topics = topics
        self.sessions = sessions
        self.alert_relay = alert_relay
        self.clock = clock
        self._database_up = True

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterable[Metric]:
        yield from self._counters()
        yield self._events()
        yield from self._finalization()
        if self.join is not None:
            yield from self._join(self.join)
        if self.alert_relay is not None:
            yield self._notifications(self.alert_relay)
        if self.sessions is not None:
            yield from self._outbox(self.sessions)

    def _counters(self) -> Iterable[Metric]:
        for item in fields(Counters):
            value = getattr(self.counters, item.name)
            if type(value) is int:
                help_text = HELP.get(item.name, item.name.replace("_", " "))
                yield CounterMetricFamily(PREFIX + item.name, help_text, value=value)
        for name, text, moment in (
            ("first_event_timestamp_seconds", "first", self.counters.first_event_at),
            ("last_event_timestamp_seconds", "latest", self.counters.last_event_at),
        ):
            family = GaugeMetricFamily(
                PREFIX + name, f"Wall clock (unix seconds) of the {text} prediction processed"
            )
            if moment:
                family.add_metric([], moment)
            yield family

    def _events(self) -> Metric:
        family = CounterMetricFamily(
            PREFIX + "events",
            "Input per topic: events accepted (predictions, one per record of an envelope; "
            "labels), and messages sent to the dead-letter topic (an envelope counts once)",
            labels=["topic", "outcome"],
        )
        family.add_metric([self.topics.predictions, "accepted"], self.counters.predictions)
        family.add_metric([self.topics.labels, "accepted"], self.counters.labels)
        for topic, count in sorted(dict(self.counters.dead_letters_by_topic).items()):
            family.add_metric([topic, "dead_letter"], count)
        return family

    def _finalization(self) -> Iterable[Metric]:
        end = GaugeMetricFamily(
            PREFIX + "last_finalized_window_end_seconds",
            "End (unix seconds) of the latest window this worker finalized",
        )
        lag = GaugeMetricFamily(
            PREFIX + "finalization_lag_seconds",
            "Wall clock now minus the end of the latest window this worker finalized",
        )
        last_end = self.counters.last_finalized_window_end
        if last_end:
            end.add_metric([], last_end)
            lag.add_metric([], self.clock() - last_end)
        yield end
        yield lag

    def _join(self, join: LabelJoin) -> Iterable[Metric]:
        waiting = GaugeMetricFamily(
            PREFIX + "join_waiting_predictions",
            "Predictions waiting for their labels (outstanding in the label join)",
        )
        waiting.add_metric([], join.waiting_summaries())
        held = GaugeMetricFamily(
            PREFIX + "join_state_bytes",
            "Bytes of the waiting predictions' summaries, in memory (the budget is "
            "join_memory_mb) and in spill files on disk",
            labels=["where"],
        )
        held.add_metric(["memory"], join.bytes_in_memory())
        held.add_metric(["disk"], join.spill.bytes_on_disk if join.spill is not None else 0)
        yield waiting
        yield held

    def _notifications(self, relay: AlertRelay) -> Metric:
        family = CounterMetricFamily(
            PREFIX + "notifications",
            "Alert notification deliveries by this worker's relay: sent, retried (a failure "
            "that is tried again) and failed (for good), per receiver and integration",
            labels=["receiver", "integration", "outcome"],
        )
        for (receiver, integration, outcome), count in sorted(dict(relay.deliveries).items()):
            family.add_metric([receiver, integration, outcome], count)
        return family

    def _outbox(self, sessions: sessionmaker[Session]) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            PREFIX + "database_up", "1 if the results database answered this scrape"
        )
        pending = GaugeMetricFamily(
            PREFIX + "outbox_pending",
            "Outbox rows not sent yet: retraining triggers not published, notifications "
            "neither sent nor failed",
            labels=["outbox"],
        )
        try:
            n_triggers, n_notifications = _pending(sessions)
        except Exception as exc:
            if self._database_up:  # once per outage, not at every scrape
                log.warning(
                    "metrics: the outbox depth cannot be read from the database (%s: %s); "
                    "driftline_worker_database_up is 0 until it can",
                    type(exc).__name__,
                    exc,
                )
            self._database_up = False
            up.add_metric([], 0)
            yield up
            return
        self._database_up = True
        up.add_metric([], 1)
        pending.add_metric(["triggers"], n_triggers)
        pending.add_metric(["notifications"], n_notifications)
        yield up
        yield pending


def _pending(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """Unpublished triggers and undelivered notifications, the same counts as the API's
    ``driftline_outbox_pending``, on a plain connection (no write transaction)."""
    n = notifications.c
    triggers = select(func.count()).where(retrain_triggers.c.published_at.is_(None))
    waiting = select(func.count()).where(n.sent_at.is_(None), n.failed_at.is_(None))
    engine: Engine = sessions.kw["bind"]
    with engine.connect() as connection:
        row = connection.execute(
            select(triggers.scalar_subquery(), waiting.scalar_subquery())
        ).one()
    return int(row[0]), int(row[1])


def worker_registry(collector: WorkerCollector | None = None) -> CollectorRegistry:
    """A registry of the worker's own, with ``collector`` (or register it later)."""
    registry = CollectorRegistry()
    if collector is not None:
        registry.register(collector)
    return registry


def pipeline_collector(pipeline: Pipeline) -> WorkerCollector:
    """The collector of a built :class:`~stream_app.app.Pipeline`."""
    return WorkerCollector(
        pipeline.counters,
        pipeline.topics,
        sessions=pipeline.sessions,
        alert_relay=pipeline.alert_relay,
        join=pipeline.stage1.join,
    )


@dataclass
class MetricsServer:
    """The running endpoint; :meth:`close` stops it (the worker never needs to)."""

    server: WSGIServer
    thread: threading.Thread
    host: str

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` on ``host``:``port`` from a daemon thread.

    Raises
    ------
    ConfigurationError
        When the address cannot be bound (the port is in use, the host is not an address of
        this machine), saying which setting to change.
    """
    try:
        server, thread = start_http_server(port, host, registry=registry)
    except OSError as exc:
        unset = (
            "or unset DRIFTLINE_METRICS_PORT (metrics_port in a config file) to serve no metrics"
        )
        if exc.errno == errno.EADDRINUSE:
            message = (
                f"DRIFTLINE_METRICS_PORT {port} is in use on {host} (another worker or exporter "
                f"on this host?): choose another port, {unset}"
            )
        elif exc.errno == errno.EACCES:
            message = (
                f"DRIFTLINE_METRICS_PORT {port}: not allowed to listen on it (ports below 1024 "
                f"need privileges): choose another port, {unset}"
            )
        else:
            message = (
                f"cannot serve the worker's metrics on {host}:{port} ({exc}): check "
                f"DRIFTLINE_METRICS_HOST and DRIFTLINE_METRICS_PORT, {unset}"
            )
        raise ConfigurationError(message) from exc
    return MetricsServer(server, thread, host)
