"""Alert delivery: window finalized → Slack message received, and notifications/s of the relay.

Four measurements, on a SQLite database file (and on PostgreSQL with ``--postgres-url``), with
the relay driven as the worker drives it: a ``mode`` timer (what Faust's ``app.timer`` runs)
calling ``AlertRelay.tick()`` every ``alert_tick_seconds`` (0.5 s) on an asyncio loop, and a
local Slack-speaking server (:class:`driftline.sinks.slack.SlackSink`, 127.0.0.1 only)
answering every webhook post after ``--sink-latency`` (50 ms):

1. **Latency.** ``--models`` models (200); a routing file whose default route waits
   ``group_wait: 30s`` and whose ``severity="critical"`` route waits ``0s``, one Slack
   webhook receiver. While the relay ticks, a producer writes one window per model at a
   steady ``--rate`` (5 windows/s) exactly as stage 2 does (results and alerts in one
   transaction, in a worker thread); each window fires a critical ``dataset-drift`` alert
   (and warning ``feature-drift`` alerts, which the default route holds for 30 s). Latency is
   the sink's arrival time of the model's critical message minus ``time.monotonic()`` right
   after the window's transaction committed. Nothing may be lost or sent twice.
2. **Throughput.** ``--throughput-models`` models (400) with a critical alert each, all
   written before the relay starts; the time from the relay's first tick until every
   notification is recorded as sent, with the relay's default concurrency (8) and, as the
   baseline in the same run, with ``concurrency=1`` (one send at a time, what a naive relay
   does).
3. **A planning pass** with nothing due (what every tick pays) with ``--planning-models``
   (200, 400, 800) models firing, and the share of it spent deciding what is muted.
4. **One post** by the Slack webhook notifier to a sink answering at once, against the same
   post on one kept-alive HTTP session.

Run with::

    make bench     # or: .venv/bin/python -m bench.alerts_bench --output docs/benchmarks.md

``--quick`` is a smoke run (fewer models, a faster producer). A run takes about two and a half
minutes on 2 cores, twice that with ``--postgres-url``; it prints progress on stderr, then the
raw figures (JSON) and the Markdown section on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import slack_sdk.version
import sqlalchemy
from mode.timers import Timer
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from alerting import evaluation, grouping
from alerting.dispatch import BATCH, CONCURRENCY, AlertRelay
from alerting.integrations import build_integrations
from alerting.notifiers import Notification, Notifier
from alerting.notifiers.slack import SDK_LOGGER, SlackWebhookNotifier, blocks_of, text_of
from alerting.relay_setup import build_alert_relay
from alerting.routing import load_routing
from alerting.rules import WindowEvidence
from bench.detectors_bench import write_section
from driftline.sinks.slack import SlackSink
from schemas.alert_rules import AlertRuleSpec
from storage import alerts as alert_store
from storage import notifications as outbox
from storage.catalog import upsert_model
from storage.db import make_engine, session_factory
from storage.migrate import upgrade
from storage.outbox import lease_owner
from storage.results import write_window_results
from storage.rows import DriftRow, WindowRow
from storage.transactions import Transactions
from storage.types import utcnow
from stream_app.settings import WorkerSettings

T = TypeVar("T")

TICK_SECONDS: float = WorkerSettings.model_fields["alert_tick_seconds"].default
TARGET_P99_SECONDS = 2.0
START = datetime(2026, 11, 1, tzinfo=UTC)
FEATURES = [f"feature_{i:02d}" for i in range(25)]
DRIFTED = FEATURES[:3]
# The default rules' drift part: the dataset drifting is critical, each feature a warning.
LATENCY_RULES = [
    AlertRuleSpec(name="feature-drift", kind="feature_drift"),
    AlertRuleSpec(name="dataset-drift", kind="dataset_drift", severity="critical"),
]
THROUGHPUT_RULES = [AlertRuleSpec(name="dataset-drift", kind="dataset_drift", severity="critical")]
ROUTING = """\
route:
  receiver: ml-team
  group_by: [model]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      group_wait: 0s
receivers:
  - name: ml-team
    slack:
      - webhook_url_env: SLACK_URL
"""
TITLE = re.compile(r"^\[FIRING:\d+\] (?P<model>\S+): (?P<severity>critical|warning)$")


def say(text: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": max(values, default=math.nan),
        "mean": statistics.fmean(values) if values else math.nan,
    }


# -- the database


@dataclass(frozen=True)
class Database:
    label: str  # "SQLite" or "PostgreSQL"
    url: str


@contextmanager
def fresh_database(kind: Database, workdir: Path) -> Iterator[str]:
    """A URL of an empty database for one run: a new SQLite file, or a new PostgreSQL
    database on the server of ``--postgres-url``, dropped afterwards."""
    if kind.label == "SQLite":
        yield f"sqlite+pysqlite:///{workdir}/alerts-{uuid.uuid4().hex[:8]}.db"
        return
    name = f"driftline_alerts_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(kind.url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(kind.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def database(url: str, models: Sequence[str]) -> Iterator[sessionmaker[Session]]:
    """Sessions on ``url``, migrated, with ``models`` registered; the engine disposed after."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions.begin() as session:
            for model in models:
                upsert_model(session, model, {"model_id": model})
        yield sessions
    finally:
        engine.dispose()


def write_window(
    sessions: sessionmaker[Session], model: str, rules: Sequence[AlertRuleSpec]
) -> float:
    """Write the model's first window as stage 2 does (results and alerts in one
    transaction); return ``time.monotonic()`` right after the commit."""
    row = WindowRow(
        model_id=model,
        window_start=START,
        window_end=START + timedelta(minutes=1),
        n_rows=5000,
        n_drifted=len(DRIFTED),
        share_drifted=len(DRIFTED) / len(FEATURES),
        dataset_drift=True,
        output_drift=False,
    )
    drift = [
        DriftRow(
            feature=name,
            method="psi",
            score=0.4 if name in DRIFTED else 0.01,
            threshold=0.2,
            drifted=name in DRIFTED,
            status="drift" if name in DRIFTED else "ok",
            is_primary=True,
        )
        for name in FEATURES
    ]
    with sessions.begin() as session:
        write_window_results(session, row, drift)
        evidence = WindowEvidence(model_id=model, model_version="v1", window=row, drift=drift)
        changes = evaluation.record_window(session, rules, evidence)
    committed = time.monotonic()
    if not any(change.alert.signal.severity == "critical" for change in changes):
        raise RuntimeError(f"the window of {model} fired no critical alert: {changes}")
    return committed


# -- the relay, timed


def kind_of(work: Callable[[Session], Any]) -> str:
    """Which of the relay's transactions ``work`` is, from its qualified name."""
    name = getattr(work, "__qualname__", "")
    if "._send." in name:
        return "record"
    if "_claim" in name:
        return "claim"
    if ".plan." in name:
        return "plan"
    return "other"


class TimedTransactions(Transactions):
    """The relay's :class:`Transactions`, timing each unit of work by kind: ``awaited`` is what
    the relay waited for (thread hand-off and database locks included), ``inside`` the
    transaction itself in its worker thread (begin to commit)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__(sessions, "the alert relay")
        self.awaited: dict[str, list[float]] = defaultdict(list)
        self.inside: dict[str, list[float]] = defaultdict(list)

    def _in_thread(self, work: Callable[[Session], T]) -> T:
        began = time.perf_counter()
        try:
            return super()._in_thread(work)
        finally:
            self.inside[kind_of(work)].append(time.perf_counter() - began)

    async def run(self, work: Callable[[Session], T]) -> T:
        began = time.perf_counter()
        try:
            return await super().run(work)
        finally:
            self.awaited[kind_of(work)].append(time.perf_counter() - began)

    def totals(self) -> dict[str, dict[str, float]]:
        return {
            kind: {
                "count": len(self.awaited[kind]),
                "awaited_s": sum(self.awaited[kind]),
                "inside_s": sum(self.inside[kind]),
                "awaited_median_ms": statistics.median(self.awaited[kind]) * 1e3,
                "inside_median_ms": statistics.median(self.inside[kind]) * 1e3,
            }
            for kind in sorted(self.awaited)
            if self.awaited[kind] and self.inside[kind]
        }


class TimedNotifier:
    """A notifier timing its own sends (inside the relay's concurrency slot, unlike the
    attempt's recorded ``seconds``, which start before the slot is taken)."""

    def __init__(self, inner: Notifier) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    async def send(self, notification: Notification) -> None:
        began = time.perf_counter()
        try:
            await self.inner.send(notification)
        finally:
            self.seconds.append(time.perf_counter() - began)


def make_relay(
    routing_file: Path, sessions: sessionmaker[Session], sink: SlackSink, concurrency: int
) -> tuple[AlertRelay, TimedTransactions]:
    """The worker's relay (:func:`build_alert_relay`), or one like it with another
    concurrency; its transactions are timed."""
    environ = {"SLACK_URL": sink.url_webhook}
    if concurrency == CONCURRENCY:
        relay = build_alert_relay(routing_file, sessions, environ=environ)
    else:
        relay = AlertRelay(
            load_routing(routing_file),
            Transactions(sessions, "the alert relay"),
            build_integrations(load_routing(routing_file).receivers, environ),
            owner=lease_owner(),
            concurrency=concurrency,
        )
    timed = TimedTransactions(sessions)
    relay.transactions = timed
    for notifiers in relay.integrations.values():
        for integration, notifier in notifiers.items():
            notifiers[integration] = TimedNotifier(notifier)
    return relay, timed


def send_seconds(relay: AlertRelay) -> list[float]:
    return [
        seconds
        for notifiers in relay.integrations.values()
        for notifier in notifiers.values()
        if isinstance(notifier, TimedNotifier)
        for seconds in notifier.seconds
    ]


@dataclass
class Driver:
    """Ticks the relay as the worker's timer does, until stopped."""

    relay: AlertRelay
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ticks: list[tuple[float, float]] = field(default_factory=list)  # (began, ended), monotonic

    async def run(self) -> None:
        async for _ in Timer(TICK_SECONDS, name="alert relay"):
            if self.stop.is_set():
                return
            began = time.monotonic()
            await self.relay.tick()
            self.ticks.append((began, time.monotonic()))

    async def finish(self, task: asyncio.Task[None]) -> None:
        self.stop.set()
        try:
            await asyncio.wait_for(task, timeout=30)
        except TimeoutError:
            say("the relay's last tick did not end within 30 s; cancelled")


def arrivals(sink: SlackSink, severity: str = "critical") -> dict[str, list[float]]:
    """Sink arrival times of each model's firing messages of ``severity`` (the model and the
    severity read from the Slack title)."""
    found: dict[str, list[float]] = defaultdict(list)
    for request in sink.delivered:
        match = TITLE.match(str(request.body["blocks"][0]["text"]["text"]))
        if match and match["severity"] == severity:
            found[match["model"]].append(request.received_at)
    return found


def model_of_group(group_key: str) -> str:
    return str(json.loads(group_key.split(":", 1)[1])["model"])


def plan_breakdown(
    sessions: sessionmaker[Session], routing_file: Path, repeats: int = 5
) -> dict[str, float]:
    """What one planning pass costs on the database as the run left it, step by step (the
    steps of ``AlertRelay._plan`` before it writes anything; rolled back). Medians, seconds."""
    routing = load_routing(routing_file)
    steps: dict[str, list[float]] = defaultdict(list)
    sizes: dict[str, float] = {}
    for _ in range(repeats):
        with sessions() as session:
            now = utcnow()
            began = time.perf_counter()
            firing = alert_store.firing_alerts(session)
            read_alerts = time.perf_counter()
            groups = outbox.load_groups(session)
            told = {fingerprint for g in groups for fingerprint in g.notified}
            known = {a.fingerprint: a for a in alert_store.get_alerts(session, told)}
            silences = alert_store.list_silences(session, active_at=now)
            read_rest = time.perf_counter()
            grouping.muted(firing, silences, routing, now)
            muted = time.perf_counter()
            states = {
                (g.receiver, g.group_key): grouping.GroupState(
                    g.receiver,
                    g.group_key,
                    dict(g.group_labels),
                    g.first_seen_at,
                    g.last_sent_at,
                    tuple(g.notified),
                    g.seq,
                )
                for g in groups
            }
            decided = grouping.plan(firing, known, silences, states, routing, now)
            planned = time.perf_counter()
            session.rollback()
        steps["read_firing"].append(read_alerts - began)
        steps["read_groups"].append(read_rest - read_alerts)
        steps["muted"].append(muted - read_rest)
        steps["plan"].append(planned - muted)
        sizes = {"firing": len(firing), "groups": len(groups), "due": len(decided.notices)}
    return {**{name: statistics.median(v) for name, v in steps.items()}, **sizes}


# -- 1. latency


async def latency_run(
    sessions: sessionmaker[Session],
    models: Sequence[str],
    routing_file: Path,
    sink: SlackSink,
    rate: float,
) -> dict[str, Any]:
    n_models = len(models)
    relay, timed = make_relay(routing_file, sessions, sink, CONCURRENCY)
    wall_minus_mono = time.time() - time.monotonic()
    driver = Driver(relay)
    task = asyncio.create_task(driver.run())
    committed: dict[str, float] = {}
    write_seconds: list[float] = []
    began = time.monotonic() + TICK_SECONDS  # the producer starts once the relay ticks
    try:
        for index, model in enumerate(models):
            await asyncio.sleep(max(0.0, began + index / rate - time.monotonic()))
            before = time.monotonic()
            committed[model] = await asyncio.to_thread(write_window, sessions, model, LATENCY_RULES)
            write_seconds.append(committed[model] - before)
            if (index + 1) % max(1, n_models // 5) == 0:
                arrived = arrivals(sink)
                so_far = [arrived[m][0] - committed[m] for m in committed if arrived.get(m)]
                say(
                    f"  {index + 1}/{n_models} windows written, {len(so_far)} critical "
                    f"messages received, p50 so far {percentile(so_far, 0.5) * 1e3:.0f} ms, "
                    f"max {max(so_far, default=math.nan) * 1e3:.0f} ms"
                )
        produced = time.monotonic() - began
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(arrivals(sink)) < n_models:
            await asyncio.sleep(0.05)
        await asyncio.sleep(3 * TICK_SECONDS)  # a duplicate would come within a tick or two
    finally:
        await driver.finish(task)
    arrived = arrivals(sink)
    latencies = [arrived[m][0] - committed[m] for m in models if arrived.get(m)]
    fifth = max(1, n_models // 5)
    first_fifth = [arrived[m][0] - committed[m] for m in models[:fifth] if arrived.get(m)]
    last_fifth = [arrived[m][0] - committed[m] for m in models[-fifth:] if arrived.get(m)]
    lost = [m for m in models if not arrived.get(m)]
    duplicated = [m for m in models if len(arrived.get(m, [])) > 1]
    # Where the time goes, per notification: waiting for the tick that plans it (the
    # notification row's created_at is the planning tick's clock), then planning, claiming
    # and sending it; the HTTP post alone is the attempt's recorded duration.
    with sessions() as session:
        rows = [r for r in outbox.list_notifications(session) if r.group_key.startswith("0.0:")]
        attempts = outbox.list_attempts(session)
    attempt_seconds = {a.notification_id: a.seconds for a in attempts if a.ok}
    to_plan, plan_to_sink, http = [], [], []
    for row in rows:
        model = model_of_group(row.group_key)
        if not arrived.get(model):
            continue
        planned = row.created_at.timestamp() - wall_minus_mono
        to_plan.append(planned - committed[model])
        plan_to_sink.append(arrived[model][0] - planned)
        if row.id in attempt_seconds:
            http.append(attempt_seconds[row.id])
    warnings = arrivals(sink, "warning")
    warning_delays = [warnings[m][0] - committed[m] for m in warnings if m in committed]
    durations = [end - start for start, end in driver.ticks]
    plans = timed.inside.get("plan", [])
    tenth = max(1, len(plans) // 10)
    return {
        "models": n_models,
        "rate": rate,
        "produced_rate": n_models / produced if produced > 0 else math.nan,
        "latency": summary(latencies),
        "latency_first_fifth": percentile(first_fifth, 0.5),
        "latency_last_fifth": percentile(last_fifth, 0.5),
        "lost": lost,
        "duplicated": duplicated,
        "failed": relay.failed,
        "retries": relay.retries,
        "to_plan": summary(to_plan),
        "plan_to_sink": summary(plan_to_sink),
        "http": summary(http),
        "send": summary(send_seconds(relay)),
        "write": summary(write_seconds),
        "ticks": summary(durations),
        "transactions": timed.totals(),
        "plan_first_tenth": statistics.median(plans[:tenth]) if plans else math.nan,
        "plan_last_tenth": statistics.median(plans[-tenth:]) if plans else math.nan,
        "plan_breakdown": plan_breakdown(sessions, routing_file),
        "warnings_received": sum(len(v) for v in warnings.values()),
        "warning_min_delay": min(warning_delays, default=math.nan),
    }


# -- 2. throughput


async def throughput_run(
    sessions: sessionmaker[Session],
    models: Sequence[str],
    routing_file: Path,
    sink: SlackSink,
    concurrency: int,
) -> dict[str, Any]:
    n_models = len(models)
    for model in models:
        write_window(sessions, model, THROUGHPUT_RULES)
    relay, timed = make_relay(routing_file, sessions, sink, concurrency)
    driver = Driver(relay)
    task = asyncio.create_task(driver.run())
    cpu_began = time.process_time()
    # Sequential sends at 50 ms take n × 50 ms; allow for several times that.
    deadline = time.monotonic() + 60 + n_models * 0.5 / concurrency
    last_report = time.monotonic()
    try:
        while relay.sent < n_models and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            if time.monotonic() - last_report >= 5:
                last_report = time.monotonic()
                say(f"  {relay.sent}/{n_models} notifications delivered")
        ended = time.monotonic()
        cpu = time.process_time() - cpu_began
        await asyncio.sleep(3 * TICK_SECONDS)
    finally:
        await driver.finish(task)
    started = driver.ticks[0][0] if driver.ticks else math.nan
    arrived = arrivals(sink)
    seconds = ended - started
    plan = timed.totals().get("plan", {})
    with sessions() as session:
        attempts = outbox.list_attempts(session)
    return {
        "models": n_models,
        "concurrency": concurrency,
        "delivered": relay.sent,
        "seconds": seconds,
        "per_second": relay.sent / seconds if seconds > 0 else math.nan,
        "plan_seconds": plan.get("awaited_s", math.nan),
        "after_plan_per_second": relay.sent / (seconds - plan.get("awaited_s", 0.0)),
        "lost": [m for m in models if not arrived.get(m)],
        "duplicated": [m for m in models if len(arrived.get(m, [])) > 1],
        "failed": relay.failed,
        "retries": relay.retries,
        "http": summary([a.seconds for a in attempts if a.ok]),
        "send": summary(send_seconds(relay)),
        # This process's CPU (every thread: relay, database calls, the sink) from the relay's
        # start to the last delivery, the first 0.5 s being the timer's first sleep.
        "cpu_seconds": cpu,
        "cpu_share": cpu / (ended - started + TICK_SECONDS),
        "transactions": timed.totals(),
        "plan_breakdown": plan_breakdown(sessions, routing_file),
    }


# -- 3. a planning pass as firing alerts accumulate


def planning_scale(
    sessions: sessionmaker[Session],
    models: Sequence[str],
    routing_file: Path,
    sink: SlackSink,
    sizes: Sequence[int],
) -> list[dict[str, Any]]:
    """The relay's planning transaction when nothing is due (what every tick pays), with
    ``n`` models each firing one critical and three warning alerts, for each ``n`` in
    ``sizes``; and the share of it spent deciding which alerts are muted (inhibition).

    The warnings' groups wait an hour here instead of 30 s, so none comes due while the
    windows of the larger sizes are written."""
    held = routing_file.with_name("alerts-held.yaml")
    held.write_text(ROUTING.replace("group_wait: 30s", "group_wait: 1h"))
    relay, _ = make_relay(held, sessions, sink, CONCURRENCY)

    async def idle_passes(repeats: int) -> list[float]:
        await relay.plan()  # the groups of the new windows (their notices stay unsent)
        seconds = []
        for _ in range(repeats):
            began = time.perf_counter()
            planned = await relay.plan()
            seconds.append(time.perf_counter() - began)
            if planned:
                raise RuntimeError(f"{planned} notices planned in a pass meant to plan none")
        return seconds

    found = []
    done = 0
    for n in sorted(sizes):
        for model in models[done:n]:
            write_window(sessions, model, LATENCY_RULES)
        done = n
        passes = asyncio.run(idle_passes(3))
        steps = plan_breakdown(sessions, held, repeats=3)
        # grouping.plan decides what is muted itself: the share of its reads and plan.
        computed = steps["read_firing"] + steps["read_groups"] + steps["plan"]
        muted_share = steps["muted"] / computed if computed > 0 else math.nan
        found.append(
            {"models": n, "pass_s": statistics.median(passes), "muted_share": muted_share, **steps}
        )
        say(
            f"  {n} models firing ({steps['firing']:.0f} alerts): a planning pass with nothing "
            f"due takes {statistics.median(passes) * 1e3:,.0f} ms, {muted_share:.0%} of it "
            "deciding what is muted"
        )
    return found


# -- 4. what one post costs


async def post_cost(sink: SlackSink, count: int) -> dict[str, Any]:
    """One notification posted ``count`` times to a sink answering at once: with the
    notifier (a new aiohttp session, so a new connection, per post) and, for comparison,
    with slack-sdk's webhook client on one kept-alive session."""
    notification = Notification(
        title="[FIRING:1] m-0000: critical",
        lines=("critical · m-0000 · 3 features drifted (share 0.12)",),
        severity="critical",
        fields={"group": "model=m-0000", "window": "2026-11-01 00:00–00:01 UTC"},
        key="ml-team/0.0/1/1",
    )
    notifier = SlackWebhookNotifier(sink.url_webhook)
    fresh: list[float] = []
    for _ in range(count):
        began = time.perf_counter()
        await notifier.send(notification)
        fresh.append(time.perf_counter() - began)
    kept: list[float] = []
    async with aiohttp.ClientSession() as session:
        client = AsyncWebhookClient(sink.url_webhook, session=session, logger=SDK_LOGGER)
        for _ in range(count):
            began = time.perf_counter()
            response = await client.send(text=text_of(notification), blocks=blocks_of(notification))
            kept.append(time.perf_counter() - began)
            if response.status_code != 200:
                raise RuntimeError(f"the sink answered {response.status_code}")
    return {"new_session": summary(fresh), "kept_session": summary(kept)}


# -- the run


def run_database(
    kind: Database, workdir: Path, args: argparse.Namespace, routing_file: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    say(
        f"{kind.label}: latency, {args.models} models, one window each at {args.rate:g}/s "
        f"(about {args.models / args.rate:.0f} s)"
    )
    models = [f"m-{i:04d}" for i in range(args.models)]
    with (
        fresh_database(kind, workdir) as url,
        database(url, models) as sessions,
        SlackSink() as sink,
    ):
        sink.set_latency(args.sink_latency)
        results["latency"] = asyncio.run(
            latency_run(sessions, models, routing_file, sink, args.rate)
        )
    lat = results["latency"]["latency"]
    say(
        f"{kind.label}: latency p50 {lat['p50'] * 1e3:.0f} ms, p99 {lat['p99'] * 1e3:.0f} ms, "
        f"max {lat['max'] * 1e3:.0f} ms; lost {len(results['latency']['lost'])}, "
        f"duplicated {len(results['latency']['duplicated'])}"
    )
    for concurrency in (CONCURRENCY, 1):
        name = f"throughput_{concurrency}"
        say(
            f"{kind.label}: throughput, {args.throughput_models} notifications at once, "
            f"concurrency {concurrency}, sink answering in {args.sink_latency * 1e3:.0f} ms"
        )
        models = [f"t-{i:04d}" for i in range(args.throughput_models)]
        with (
            fresh_database(kind, workdir) as url,
            database(url, models) as sessions,
            SlackSink() as sink,
        ):
            sink.set_latency(args.sink_latency)
            results[name] = asyncio.run(
                throughput_run(sessions, models, routing_file, sink, concurrency)
            )
        r = results[name]
        say(
            f"{kind.label}: {r['delivered']}/{r['models']} in {r['seconds']:.2f} s: "
            f"{r['per_second']:.1f} notifications/s (planning {r['plan_seconds']:.2f} s of it)"
        )
    say(
        f"{kind.label}: a planning pass with {', '.join(map(str, args.planning_models))} models firing"
    )
    models = [f"p-{i:04d}" for i in range(max(args.planning_models))]
    with (
        fresh_database(kind, workdir) as url,
        database(url, models) as sessions,
        SlackSink() as sink,
    ):
        results["planning"] = planning_scale(
            sessions, models, routing_file, sink, args.planning_models
        )
    return results


def machine(postgres_version: str | None) -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    databases = f"SQLite {sqlite3.sqlite_version}" + (
        f", PostgreSQL {postgres_version}" if postgres_version else ""
    )
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, {databases}, "
        f"SQLAlchemy {sqlalchemy.__version__}, slack-sdk {slack_sdk.version.__version__}, "
        f"aiohttp {aiohttp.__version__}"
    )


def postgres_version(url: str) -> str:
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("SHOW server_version").scalar())
    finally:
        engine.dispose()


def commit() -> str:
    """The checked-out commit (the relay measured), or "?" outside a git work tree."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return found.stdout.strip() or "?"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.0f} ms"


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    labels = [label for label in ("SQLite", "PostgreSQL") if label in results]
    bound = CONCURRENCY / args.sink_latency
    rows, verdicts = [], []
    for label in labels:
        r = results[label]
        lat = r["latency"]["latency"]
        lost, dup = r["latency"]["lost"], r["latency"]["duplicated"]
        met = lat["p99"] < TARGET_P99_SECONDS and not lost and not dup
        verdicts.append(f"{label} {'met' if met else 'NOT met'} (p99 {ms(lat['p99'])})")
        rows.append(
            f"| {label}: window committed → Slack sink received ({lat['n']:.0f} of "
            f"{r['latency']['models']} windows, {r['latency']['produced_rate']:.1f}/s) | "
            f"p50 {ms(lat['p50'])}, p95 {ms(lat['p95'])}, p99 **{ms(lat['p99'])}**, max "
            f"{ms(lat['max'])}; lost {len(lost)}, sent twice {len(dup)} | | | p99 < 2 s | "
            f"{'yes' if met else 'no'} |"
        )
        fast, slow = r[f"throughput_{CONCURRENCY}"], r["throughput_1"]
        rows.append(
            f"| {label}: {fast['models']} group notifications due at once, sink answering in "
            f"{ms(args.sink_latency)} | **{fast['per_second']:.1f} notifications/s** "
            f"({fast['seconds']:.2f} s, {fast['plan_seconds']:.2f} s of it the planning "
            f"transaction) | concurrency 1: {slow['per_second']:.1f}/s ({slow['seconds']:.2f} s) "
            f"| **{fast['per_second'] / slow['per_second']:.1f}×** | report; bound "
            f"{CONCURRENCY} / {args.sink_latency:g} s = {bound:.0f}/s: "
            f"{fast['per_second'] / bound:.0%} of it | |"
        )
        planning = r["planning"]
        rows.append(
            f"| {label}: one planning pass with nothing due (every tick pays it), "
            + " / ".join(f"{p['models']}" for p in planning)
            + " models firing, 4 alerts each | "
            + " / ".join(f"{ms(p['pass_s'])}" for p in planning)
            + " (deciding what is muted: "
            + " / ".join(f"{p['muted_share']:.0%}" for p in planning)
            + ") | | | report | |"
        )
    post = results["post"]
    rows.append(
        f"| one post by the Slack webhook notifier (a new aiohttp session per post), sink "
        f"answering at once | p50 {post['new_session']['p50'] * 1e3:.1f} ms | one kept-alive "
        f"session: p50 {post['kept_session']['p50'] * 1e3:.1f} ms | "
        f"{post['new_session']['p50'] / post['kept_session']['p50']:.1f}× | report | |"
    )
    table = "\n".join(rows)

    first = labels[0]
    r = results[first]
    lat = r["latency"]
    fast, slow = r[f"throughput_{CONCURRENCY}"], r["throughput_1"]
    tx, ftx, stx = lat["transactions"], fast["transactions"], slow["transactions"]
    planning = r["planning"]
    n = fast["models"]

    def inside(data: dict[str, Any], kind: str) -> str:
        return f"{data[kind]['inside_median_ms']:.1f} ms" if kind in data else "n/a"

    # A window committed just after a tick read the alerts waits for that tick, the timer's
    # sleep and the next tick, then its post: the latency's worst case is about that.
    post_s = lat["send"]["p50"]
    tick_limit = (TARGET_P99_SECONDS - TICK_SECONDS - post_s) / 2
    beyond = [p for p in planning if p["pass_s"] > tick_limit]
    waves = math.ceil(BATCH / CONCURRENCY)
    ceiling = BATCH / (waves * fast["send"]["p50"])
    small, large = planning[0], planning[-1]
    growth = (
        math.log(large["pass_s"] / small["pass_s"]) / math.log(large["models"] / small["models"])
        if large["models"] > small["models"]
        else math.nan
    )
    shape = (
        "quadratically"
        if growth >= 1.6
        else ("faster than linearly" if growth >= 1.2 else "about linearly")
    )
    within = [p["models"] for p in planning if p["pass_s"] <= tick_limit]
    reach = (
        large["models"] * (tick_limit / large["pass_s"]) ** (1 / growth) if growth > 0 else math.inf
    )
    scale_note = (
        f"the pass with {beyond[0]['models']} models firing ({ms(beyond[0]['pass_s'])}) is "
        f"past it, so by this estimate p99 passes 2 s somewhere "
        + (f"between {max(within)} and " if within else "below ")
        + f"{beyond[0]['models']} models firing at once (`--models N` measures it directly)"
        if beyond
        else f"every pass measured, up to {large['models']} models firing, is within it; "
        f"growing as measured, a pass would reach it near {reach:,.0f} models firing at once "
        "(an estimate: `--models N` measures the latency directly)"
    )
    quadratic_note = (
        " Deciding what is muted is most of it: inhibition compares every firing target "
        "alert with every firing source alert; keying the sources by their `equal` labels "
        "makes it linear."
        if growth >= 1.6 and large["muted_share"] >= 0.5
        else " Each tick reads and decides everything firing again, whether or not anything "
        "changed since the last."
    )
    plan_grew = lat["plan_last_tenth"] > 1.2 * lat["plan_first_tenth"]
    growth_note = (
        f"because the planning transaction did (median {ms(lat['plan_first_tenth'])} in the "
        f"first tenth of the ticks, {ms(lat['plan_last_tenth'])} in the last)"
        if plan_grew
        else f"(planning transaction median {ms(lat['plan_first_tenth'])} in the first "
        f"tenth of the ticks, {ms(lat['plan_last_tenth'])} in the last)"
    )
    received = lat["warnings_received"]
    warnings_note = (
        f"{received} warning messages came during the run, the first "
        f"{lat['warning_min_delay']:.1f} s after its window"
        if received
        else "none came during the run"
    )
    broken = [
        label
        for label in labels
        for part in ("latency", f"throughput_{CONCURRENCY}", "throughput_1")
        if results[label][part]["lost"] or results[label][part]["duplicated"]
    ]
    broken_note = (
        f"\n- **Messages were lost or sent twice in this run ({', '.join(broken)})**: a bug.\n"
        if broken
        else ""
    )
    postgres_note = ""
    if "PostgreSQL" in results:
        pg = results["PostgreSQL"]
        pg_fast = pg[f"throughput_{CONCURRENCY}"]
        pg_lat = pg["latency"]
        postgres_note = (
            f"\n- On PostgreSQL (no single write lock, but every statement a round trip to a "
            f"server process sharing the 2 cores): latency p99 {ms(pg_lat['latency']['p99'])}, "
            f"the planning transaction median {inside(pg_lat['transactions'], 'plan')} against "
            f"{inside(tx, 'plan')} on SQLite, a window written in median "
            f"{ms(pg_lat['write']['p50'])} against {ms(lat['write']['p50'])}; throughput "
            f"{pg_fast['per_second']:.1f} notifications/s, a post median "
            f"{ms(pg_fast['send']['p50'])}, the record transaction median "
            f"{inside(pg_fast['transactions'], 'record')} at concurrency {CONCURRENCY}."
        )
    reproduce = "python -m bench.alerts_bench --output docs/benchmarks.md"
    if args.quick:
        reproduce += " --quick"
    if "PostgreSQL" in results:
        reproduce += " --postgres-url postgresql+psycopg://…"
    routing = ROUTING.split("receivers:")[0].rstrip()
    return f"""## Alert delivery

Measured in one run of `{reproduce}` ({results["run_seconds"]:.0f} s, at commit
{results.get("commit", "?")}). The relay is
driven as in the worker: a `mode` timer (what Faust's `app.timer` runs) calls
`AlertRelay.tick()` every {TICK_SECONDS:g} s (`alert_tick_seconds`) on an asyncio loop. A tick
plans the due group notifications in one transaction, then claims them ({BATCH} at a time) and
posts them with concurrency {CONCURRENCY} through slack-sdk's webhook client to a local
Slack-speaking server (`driftline.sinks.slack.SlackSink` on 127.0.0.1, in the same process)
that answers every post after {ms(args.sink_latency)}. Windows are written as stage 2 writes
them (results and alerts in one transaction, in a worker thread of the relay's loop); each
has 25 features of which 3 drift, so it fires a critical `dataset-drift` alert and 3 warning
`feature-drift` alerts. Routing (one Slack webhook receiver, `ml-team`):

```yaml
{routing}
```

A model's critical alert is a group of its own, told at once; its warnings wait 30 s in
another group ({warnings_note}).

- **Latency**: {lat["models"]} models, one window each, written at a steady
  {lat["rate"]:g} windows/s while the relay ticks. Latency is the sink's arrival time of the
  model's critical message (the model read from the Slack title) minus `time.monotonic()`
  right after the window's transaction committed.
- **Throughput**: {n} models with a critical alert each, all written before the relay
  starts; from the relay's first tick until all {n} are recorded as sent. Baseline in the
  same run: the same relay with `concurrency=1` (one post at a time, as a naive relay does).
- **Planning pass**: the relay's planning transaction on a tick with nothing due, with
  {", ".join(str(p["models"]) for p in planning)} models each firing one critical and three
  warning alerts.

| what | figure | baseline in the same run | ratio | target | met |
|---|---|---|---|---|---|
{table}

- **Target, p99 under 2 s with `group_wait: 0s` for critical alerts, at {lat["models"]}
  windows: {"; ".join(verdicts)}.**{broken_note}
- Where a critical notification's time goes ({first}, medians): waiting for the tick that
  plans it {ms(lat["to_plan"]["p50"])} (p99 {ms(lat["to_plan"]["p99"])}), since the timer sleeps
  {TICK_SECONDS:g} s *between* ticks, so the period is {TICK_SECONDS:g} s plus the tick itself
  (median {ms(lat["ticks"]["p50"])}, p99 {ms(lat["ticks"]["p99"])}); then from the planning
  tick's start to the sink {ms(lat["plan_to_sink"]["p50"])} (p99
  {ms(lat["plan_to_sink"]["p99"])}): the planning transaction ({inside(tx, "plan")}), the
  claim ({inside(tx, "claim")}) and the post ({ms(lat["send"]["p50"])}, the sink's
  {ms(args.sink_latency)} included). The latency grew along the run (p50
  {ms(lat["latency_first_fifth"])} over the first fifth of the windows, {ms(lat["latency_last_fifth"])}
  over the last) {growth_note}.
- **The planning pass grows {shape} with the alerts firing** (as n^{growth:.1f} from
  {small["models"]} to {large["models"]} models), and every tick pays it, due or not:
  {", ".join(f"{ms(p['pass_s'])} with {p['models']} models ({p['firing']:.0f} alerts)" for p in planning)}.
  With {large["models"]} models: reading the {large["firing"]:.0f} firing alerts
  {ms(large["read_firing"])}, the {large["groups"]:.0f} groups and the alerts they told about
  {ms(large["read_groups"])}, `grouping.plan` {ms(large["plan"])}, of which deciding what is
  muted (silences, inhibition) {ms(large["muted"])}.{quadratic_note} A window committed just
  after a tick read the alerts waits for that tick, the {TICK_SECONDS:g} s sleep and the next
  tick, then its post, so p99 stays under 2 s only while a pass takes under about
  {ms(tick_limit)}; {scale_note}.
- Throughput ({first}, concurrency {CONCURRENCY}): {fast["per_second"]:.1f} notifications/s is
  {fast["per_second"] / bound:.0%} of the {bound:.0f}/s that {CONCURRENCY} posts of
  {ms(args.sink_latency)} at a time would allow. Where the rest goes: planning the {n}
  groups is one transaction of {fast["plan_seconds"]:.2f} s
  ({fast["plan_seconds"] / n * 1e3:.1f} ms per group: the message built, the group saved and
  one notification row inserted, row by row) before the first post; a post took median
  {ms(fast["send"]["p50"])}, not {ms(args.sink_latency)} ({ms(slow["send"]["p50"])} one at a
  time); and a claim's {BATCH} posts all finish before the next claim, so each claim is
  {waves} rounds of {CONCURRENCY} slots: {BATCH} / ({waves} × {ms(fast["send"]["p50"])}) =
  {ceiling:.0f}/s at most once planned ({fast["after_plan_per_second"]:.0f}/s measured after the
  planning transaction). Every post is then followed by a transaction of its own recording
  the attempt (median {inside(ftx, "record")} with {CONCURRENCY} posts at a time,
  {inside(stx, "record")} with one: on SQLite they take turns on the single write lock,
  `BEGIN IMMEDIATE`, and each commit syncs the log). The attempt durations the relay
  records (`notification_attempts.seconds`) start before a post waits for one of the
  {CONCURRENCY} slots: median {ms(fast["http"]["p50"])} here for a {ms(args.sink_latency)}
  answer. With one post at a time the relay does {slow["per_second"]:.1f}/s,
  {1e3 / slow["per_second"]:.0f} ms per notification. The process used
  {fast["cpu_share"]:.0%} of one core meanwhile (relay, database threads and sink
  together).{postgres_note}
- A post opens a new aiohttp session, so a new connection, every time
  (`SlackWebhookNotifier.send`): {post["new_session"]["p50"] * 1e3:.1f} ms against
  {post["kept_session"]["p50"] * 1e3:.1f} ms on one kept-alive session here, on loopback
  without TLS; against Slack it is a TCP and TLS handshake per message.
- Machine: {machine(results.get("postgres_version"))}. The Slack sink and the window
  producer share the relay's process and cores; the machine is shared with other work, and
  the planning passes varied by tens of per cent from run to run.
- Reproduce: `make bench` (runs `python -m bench.alerts_bench --output docs/benchmarks.md`;
  add `--postgres-url postgresql+psycopg://user@127.0.0.1:5432/postgres` for PostgreSQL, on
  databases the run creates and drops).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--models", type=int, default=200, help="latency: windows (one per model)")
    parser.add_argument("--rate", type=float, default=5.0, help="latency: windows per second")
    parser.add_argument(
        "--throughput-models", type=int, default=400, help="throughput: notifications due at once"
    )
    parser.add_argument(
        "--sink-latency", type=float, default=0.05, help="seconds the Slack sink takes to answer"
    )
    parser.add_argument(
        "--postgres-url",
        help="also measure on PostgreSQL: a server where this user may create databases "
        "(each run gets a database of its own, dropped afterwards)",
    )
    parser.add_argument(
        "--planning-models",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[200, 400, 800],
        help="models firing at which to time a planning pass (comma-separated)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer models")
    parser.add_argument("--output", type=Path, help="Markdown file whose alerts section to rewrite")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.rate, args.throughput_models = 40, 10.0, 80
        args.planning_models = [50, 100]
    kinds = [Database("SQLite", "")]
    results: dict[str, Any] = {}
    if args.postgres_url:
        kinds.append(Database("PostgreSQL", args.postgres_url))
        results["postgres_version"] = postgres_version(args.postgres_url)
    results["commit"] = commit()
    began = time.monotonic()
    say("one post, sink answering at once: new session per post, then one kept-alive session")
    with SlackSink() as sink:
        results["post"] = asyncio.run(post_cost(sink, 100))
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        routing_file = workdir / "alerts.yaml"
        routing_file.write_text(ROUTING)
        for kind in kinds:
            results[kind.label] = run_database(kind, workdir, args, routing_file)
    results["run_seconds"] = time.monotonic() - began
    print(json.dumps(results, indent=2, default=str))
    text = render(results, args)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_section(args.output, "alerts", text)
        say(f"wrote {args.output}")
    print(text)
    broken = any(
        results[k.label][part]["lost"] or results[k.label][part]["duplicated"]
        for k in kinds
        for part in ("latency", f"throughput_{CONCURRENCY}", "throughput_1")
    )
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
