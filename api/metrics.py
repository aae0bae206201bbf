"""Prometheus metrics at ``GET /metrics``: the API's own HTTP traffic, and the monitoring
results and pipeline state read from the results database at scrape time.

Each app gets its own :class:`~prometheus_client.CollectorRegistry` (``app.state.metrics``),
never the process-global one, so several apps (and tests) never share or collide on series.

* HTTP: ``driftline_api_requests_total{method,route,status}`` and
  ``driftline_api_request_seconds{method,route}``, where ``route`` is the route *template*
  (``/api/v1/models/{model_id}/drift``), never the raw path, so the label set stays bounded.
  Requests no route matched count under ``route="<unmatched>"``.
* Results (:class:`ResultsCollector`): one short SQL query per family, across all models,
  run on a plain connection (no write transaction, so SQLite's ``BEGIN IMMEDIATE`` never
  blocks a scrape behind the writer). "Latest window" is a model's latest *finalized*
  window (placeholders opened by late events or labels don't count). If the database does
  not answer, the scrape still succeeds with ``driftline_results_up 0`` and no result series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, Row, Select, and_, case, func, select, true
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import replace_params
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import key_unless_open
from api.errors import ERROR_RESPONSES
from storage.models import (
    alerts,
    drift_results,
    notifications,
    quality_metrics,
    retrain_triggers,
    windows,
)

log = logging.getLogger(__name__)

UNMATCHED = "<unmatched>"


# --- HTTP metrics of the API itself -------------------------------------------------------


def route_template(scope: Scope) -> str:
    """The matched route's template with the prefixes of the routers it was included through
    (``/api/v1/models/{model_id}/drift``), from what the router left in the scope.

    The router writes the matched route into the (shared) scope, but FastAPI's nested
    routers keep a route's own path there (``/models/{model_id}/drift``), without the
    ``include_router`` prefixes. The request path ends with that path filled in with the
    path parameters, and what precedes it is the (static) include prefixes.
    """
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str) or not template:
        return UNMATCHED
    try:
        convertors = dict(getattr(route, "param_convertors", {}))
        filled, _ = replace_params(template, convertors, dict(scope.get("path_params", {})))
    except (KeyError, TypeError, ValueError, AssertionError):
        return template
    path = str(scope.get("path", ""))
    if filled and path.endswith(filled):
        return path[: len(path) - len(filled)] + template
    return template


class RequestMetrics:
    """Pure ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, requests: Counter, seconds: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # unless a response starts: an exception escaped every handler

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = str(scope.get("method", ""))
            self.requests.labels(method, route, str(status)).inc()
            self.seconds.labels(method, route).observe(elapsed)


# --- Results and pipeline state, read at scrape time ---------------------------------------


def _seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _finalized() -> Any:
    return windows.c.finalized_at.is_not(None)


def _latest_windows() -> Any:
    """Subquery: each model's latest finalized window start."""
    return (
        select(windows.c.model_id, func.max(windows.c.window_start).label("window_start"))
        .where(_finalized())
        .group_by(windows.c.model_id)
        .subquery("latest")
    )


class ResultsCollector(Collector):
    """Gauges from the results tables, one query per family, fresh at every scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "driftline_results_up", "1 if the results database answered this scrape"
        )
        try:
            engine: Engine = self.sessions.kw["bind"]
            with engine.connect() as connection:
                families = list(self._families(connection))
        except Exception:
            log.exception("metrics: reading the results database failed")
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]

    def _families(self, connection: Connection) -> Iterator[Metric]:
        def rows(query: Select[Any]) -> Sequence[Row[Any]]:
            return connection.execute(query).all()

        yield from _drift(rows)
        yield _quality(rows)
        yield from _windows(rows)
        yield _outbox(rows)
        yield _alerts(rows)
        yield _notifications(rows)


def _drift(rows: Any) -> Iterator[Metric]:
    latest = _latest_windows()
    d = drift_results.c
    query = (
        select(d.model_id, d.feature, d.method, d.score, d.status)
        .join(
            latest,
            and_(d.model_id == latest.c.model_id, d.window_start == latest.c.window_start),
        )
        .where(d.is_primary.is_(true()))
        .order_by(d.model_id, d.feature)
    )
    score = GaugeMetricFamily(
        "driftline_drift_score",
        "Drift score of the primary method in the model's latest finalized window",
        labels=["model", "feature", "method"],
    )
    detected = GaugeMetricFamily(
        "driftline_drift_detected",
        "1 if the feature drifted in the model's latest finalized window, else 0",
        labels=["model", "feature"],
    )
    for model_id, feature, method, value, status in rows(query):
        if value is not None:
            score.add_metric([model_id, feature, method], value)
        if status != "no data":
            detected.add_metric([model_id, feature], 1 if status == "drift" else 0)
    yield score
    yield detected


def _quality(rows: Any) -> Metric:
    q = quality_metrics.c
    # Labels arrive late: the latest window with a value, per model and metric.
    latest = (
        select(q.model_id, q.metric, func.max(q.window_start).label("window_start"))
        .where(q.value.is_not(None))
        .group_by(q.model_id, q.metric)
        .subquery("latest_metric")
    )
    query = (
        select(q.model_id, q.metric, q.value)
        .join(
            latest,
            and_(
                q.model_id == latest.c.model_id,
                q.metric == latest.c.metric,
                q.window_start == latest.c.window_start,
            ),
        )
        .order_by(q.model_id, q.metric)
    )
    family = GaugeMetricFamily(
        "driftline_quality_metric",
        "Latest value of each quality metric (its latest window with labels)",
        labels=["model", "metric"],
    )
    for model_id, metric, value in rows(query):
        family.add_metric([model_id, metric], value)
    return family


def _windows(rows: Any) -> Iterator[Metric]:
    w = windows.c
    latest = _latest_windows()
    totals = (
        select(
            w.model_id,
            func.count().label("n"),
            func.max(w.window_end).label("last_end"),
        )
        .where(_finalized())
        .group_by(w.model_id)
        .subquery("totals")
    )
    query = (
        select(totals.c.model_id, totals.c.n, totals.c.last_end, w.label_coverage)
        .join(latest, latest.c.model_id == totals.c.model_id)
        .join(
            windows,
            and_(w.model_id == latest.c.model_id, w.window_start == latest.c.window_start),
        )
        .order_by(totals.c.model_id)
    )
    coverage = GaugeMetricFamily(
        "driftline_label_coverage",
        "Share of the latest finalized window's predictions that have a label",
        labels=["model"],
    )
    total = GaugeMetricFamily(
        "driftline_windows_total", "Windows finalized per model", labels=["model"]
    )
    end = GaugeMetricFamily(
        "driftline_latest_window_end_seconds",
        "End of the latest finalized window, unix seconds (time() minus it: finalization lag)",
        labels=["model"],
    )
    for model_id, n, last_end, label_coverage in rows(query):
        total.add_metric([model_id], n)
        if label_coverage is not None:
            coverage.add_metric([model_id], label_coverage)
        seconds = _seconds(_aware(last_end))
        if seconds is not None:
            end.add_metric([model_id], seconds)
    yield coverage
    yield total
    yield end


def _aware(value: Any) -> datetime | None:
    """``max()`` over a UTC column comes back naive from some drivers: it is UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    moment: datetime = value
    return moment


def _outbox(rows: Any) -> Metric:
    n = notifications.c
    triggers = select(func.count()).where(retrain_triggers.c.published_at.is_(None))
    pending = select(func.count()).where(n.sent_at.is_(None), n.failed_at.is_(None))
    query = select(triggers.scalar_subquery(), pending.scalar_subquery())
    family = GaugeMetricFamily(
        "driftline_outbox_pending", "Outbox rows not sent yet", labels=["outbox"]
    )
    for n_triggers, n_notifications in rows(query):
        family.add_metric(["triggers"], n_triggers)
        family.add_metric(["notifications"], n_notifications)
    return family


def _alerts(rows: Any) -> Metric:
    a = alerts.c
    query = (
        select(a.model_id, a.severity, func.count())
        .where(a.status == "firing")
        .group_by(a.model_id, a.severity)
        .order_by(a.model_id, a.severity)
    )
    family = GaugeMetricFamily(
        "driftline_alerts_firing", "Alerts firing now", labels=["model", "severity"]
    )
    for model_id, severity, count in rows(query):
        family.add_metric([model_id, severity], count)
    return family


def _notifications(rows: Any) -> Metric:
    n = notifications.c
    outcome = case(
        (n.sent_at.is_not(None), "sent"), (n.failed_at.is_not(None), "failed"), else_="pending"
    ).label("outcome")
    query = (
        select(n.receiver, n.integration, outcome, func.count())
        .group_by(n.receiver, n.integration, outcome)
        .order_by(n.receiver, n.integration, outcome)
    )
    family = GaugeMetricFamily(
        "driftline_notifications_total",
        "Notifications sent, given up on (failed) or pending, per receiver and integration",
        labels=["receiver", "integration", "outcome"],
    )
    for receiver, integration, result, count in rows(query):
        family.add_metric([receiver, integration, result], count)
    return family


# --- Wiring ---------------------------------------------------------------------------------


def install(app: FastAPI) -> CollectorRegistry:
    """Give ``app`` its registry (``app.state.metrics``), the results collector and the HTTP
    middleware. Call after ``app.state.sessions`` is set, after the other middleware (so this
    one is outermost and times everything)."""
    registry = CollectorRegistry()
    requests = Counter(
        "driftline_api_requests",
        "HTTP requests answered by the API",
        ["method", "route", "status"],
        registry=registry,
    )
    seconds = Histogram(
        "driftline_api_request_seconds",
        "Time to answer an HTTP request",
        ["method", "route"],
        registry=registry,
    )
    registry.register(ResultsCollector(app.state.sessions))
    app.state.metrics = registry
    app.add_middleware(RequestMetrics, requests=requests, seconds=seconds)
    return registry


router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: the API's requests, and results read from the database",
    response_class=Response,
    dependencies=[Depends(key_unless_open("api_open_metrics"))],
    responses={401: ERROR_RESPONSES[401], 200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
