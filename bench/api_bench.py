"""HTTP API under load: a feature's drift history and a window's report, p99 at 200 requests/s.

What it measures (issue 10): with 50 features × 10,000 windows of results in PostgreSQL, the
latency of

(a) the drift history of one feature over the full range, one page
    (``GET /api/v1/models/<id>/drift?feature=f07&method=psi``: the first 1,000 windows at the
    default ``DRIFTLINE_API_PAGE_LIMIT``), and, as a separate line, all 10,000 windows of it in
    one response (``limit=10000`` against a server started with
    ``DRIFTLINE_API_PAGE_LIMIT=10000``);
(b) one window's full report (``GET /api/v1/models/<id>/windows/<start>``, random windows);
(c) the two alternating, request by request;

while wrk (Debian's, installed with apt-get when missing) drives the API over loopback for a
bounded time with a read key. wrk is closed-loop: ``-c N`` connections each send the next
request when the last one is answered, so the run sweeps the connection count (1, 2, 4, 8)
and reports, per endpoint, the first count at which the throughput reaches 200 requests/s
and the p50 / p90 / p99 there (the target: p99 under 50 ms).

How:

1. A PostgreSQL of its own (``driftline.local.postgres`` on a free port, in a temporary run
   dir; stopped and deleted at the end), a database migrated with ``storage.migrate``, a
   model with 50 numeric features registered (``registration.register_model``) and a read
   key (``storage.api_keys.create_key``). Then 10,000 hourly windows bulk-loaded with COPY:
   the windows rows, drift results (PSI, the primary method, and KS per feature: 1,000,000
   rows), data quality per feature (500,000 rows), 5 quality metrics and 4 anomaly series
   per window, and a dozen alerts; then ``VACUUM ANALYZE`` (what autovacuum would have done
   to a database that grew over a year).
2. The API as its own process on a free 127.0.0.1 port, in three configurations:
   ``driftline api`` (one uvicorn worker, as deployed); ``uvicorn --factory
   api.main:create_app --workers 2`` (``driftline api`` has no worker option); and two
   uvicorn processes with a listening socket each (``SO_REUSEPORT``, created with
   ``IPPROTO_TCP``; ``--serve-workers 2``, see :func:`serve_workers`: uvicorn's
   ``--workers`` path loses ``TCP_NODELAY`` and can leave a worker without connections).
3. wrk ``-t1 -cN -dD --latency`` per endpoint and connection count, a Lua script choosing
   the request; its Latency Distribution, Requests/sec and error lines are parsed, and the
   CPU each API process, PostgreSQL and the whole machine used meanwhile read from /proc.
4. Baseline in the same run: the same requests answered in-process, one after another: the
   SQL the routes' storage calls send, alone on a psycopg connection; the storage functions
   themselves (key lookup, model lookup, ``drift_page`` / ``history.window_details`` +
   ``alerts.alerts_of_model``, one transaction each, on an engine made as the API makes
   it); and those with the route's response model and its JSON: the database's share
   against HTTP/ASGI's. The full garbage collections during them are timed, and the drift
   pages measured again after ``gc.freeze()``. The statements are also captured and run
   under ``EXPLAIN (ANALYZE, BUFFERS)``.

Run with::

    .venv/bin/python -m bench.api_bench --output docs/benchmarks.md

``--quick`` is a smoke run (1,000 windows × 10 features, 5 s per wrk run). The full run takes
about half an hour on 2 cores (loading a minute or two, then 14 wrk runs of 30 s per
configuration); it prints progress on stderr, then the raw figures (JSON) and the Markdown
section on stdout.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import event
from sqlalchemy.orm import Session

from api.drift_json import drift_page_json
from api.schemas import WindowReport
from bench.detectors_bench import write_section
from driftline.local import postgres
from driftline.local.processes import port_in_use
from registration import register_model
from schemas.model_config import ModelConfig
from storage import alerts as alert_store
from storage import catalog, history
from storage.api_keys import create_key, find_key
from storage.db import make_engine, session_factory
from storage.drift_pages import DriftPoint, drift_page
from storage.migrate import upgrade

MODEL_ID = "bench-api"
FEATURE = "f07"
START = datetime(2025, 1, 1, tzinfo=UTC)
WINDOW = timedelta(hours=1)
TARGET_RPS = 200.0
TARGET_P99_S = 0.050
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
SERIES = ("volume", "positive_rate", "accuracy", "roc_auc")
PSI_DRIFT, PSI_WARNING, KS_ALPHA = 0.2, 0.1, 0.05
HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS = {
    "drift": "drift history of one feature, one page (1,000 windows)",
    "window": "one window's report (random windows)",
    "mixed": "the two alternating",
    "full": "drift history of one feature, all windows in one response",
}


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
        "p90": percentile(values, 0.90),
        "p99": percentile(values, 0.99),
        "max": max(values, default=math.nan),
        "mean": statistics.fmean(values) if values else math.nan,
    }


def free_port() -> int:
    """A free port on 127.0.0.1 in 20000–30000 (away from the shared services' ports)."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20_000, 30_000)
        if not port_in_use(port):
            return port
    raise RuntimeError("no free port on 127.0.0.1 in 20000-30000")


def window_start(index: int) -> datetime:
    return START + index * WINDOW


def url_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- 1. the database


@contextmanager
def own_postgres(workdir: Path) -> Iterator[postgres.PostgresServer]:
    """A PostgreSQL cluster of its own on a free port (as tests/faults' ``own_postgres``),
    stopped and its files deleted afterwards."""
    port = free_port()
    run = workdir / "run"
    run.mkdir()
    workdir.chmod(0o755)  # the server runs as the postgres user and must enter the run dir
    run.chmod(0o755)
    os.environ["DRIFTLINE_RUN_DIR"] = str(run)
    os.environ["DRIFTLINE_POSTGRES_PORT"] = str(port)
    home = postgres.PostgresConfig.from_env(port).home
    try:
        yield postgres.start(port, report=say)
    finally:
        postgres.stop(port, report=say)
        shutil.rmtree(home, ignore_errors=True)


def model_config(n_features: int) -> ModelConfig:
    return ModelConfig.from_dict(
        {
            "model_id": MODEL_ID,
            "task": "binary",
            "classes": ["0", "1"],
            "features": {f"f{i:02d}": "numeric" for i in range(n_features)},
            "window_seconds": int(WINDOW.total_seconds()),
        }
    )


def pg_text(value: object) -> str:
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    if isinstance(value, bool | np.bool_):
        return "t" if value else "f"
    if isinstance(value, float | np.floating):
        return "\\N" if math.isnan(value) else repr(float(value))
    return str(value)


@dataclass
class Loader:
    """COPYs rows into one table, a chunk at a time, and tells the rate on stderr."""

    connection: psycopg.Connection[Any]
    table: str
    columns: Sequence[str]
    total: int
    rows: int = 0
    began: float = 0.0
    last_note: float = 0.0

    def copy(self, chunks: Iterator[list[Sequence[object]]]) -> float:
        self.began = self.last_note = time.monotonic()
        statement = f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN"
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            for chunk in chunks:
                text = "".join("\t".join(pg_text(v) for v in row) + "\n" for row in chunk)
                copy.write(text)
                self.rows += len(chunk)
                if time.monotonic() - self.last_note >= 5:
                    self.last_note = time.monotonic()
                    self.note()
        self.connection.commit()
        seconds = time.monotonic() - self.began
        self.note()
        return seconds

    def note(self) -> None:
        elapsed = max(time.monotonic() - self.began, 1e-9)
        say(f"  {self.table}: {self.rows:,}/{self.total:,} rows, {self.rows / elapsed:,.0f} rows/s")


def drifting_matrix(rng: np.random.Generator, n_windows: int, n_features: int) -> np.ndarray:
    """Which feature drifts in which window: a few episodes per feature, 10 to 200 windows
    long; ``FEATURE`` (f07) drifts in about 8% of the windows."""
    drifting = np.zeros((n_windows, n_features), dtype=bool)
    for feature in range(n_features):
        episodes = rng.poisson(2) + (3 if feature == 7 else 0)
        for _ in range(episodes):
            length = int(rng.integers(10, 200))
            begin = int(rng.integers(0, max(1, n_windows - length)))
            drifting[begin : begin + length, feature] = True
    return drifting


def load(url: str, n_windows: int, n_features: int, seed: int = 10) -> dict[str, Any]:
    """Fill the migrated database at ``url``: ``n_windows`` windows of ``n_features``
    features with drift, data quality, metrics and anomalies; return the load figures."""
    rng = np.random.default_rng(seed)
    features = [f"f{i:02d}" for i in range(n_features)]
    drifting = drifting_matrix(rng, n_windows, n_features)
    starts = [window_start(i).isoformat() for i in range(n_windows)]
    n_rows = rng.poisson(5000, n_windows)
    psi = np.where(
        drifting,
        rng.uniform(0.15, 0.6, drifting.shape),
        rng.lognormal(math.log(0.03), 0.6, drifting.shape),
    )
    ks = np.where(
        drifting, rng.uniform(0.05, 0.3, drifting.shape), rng.uniform(0.002, 0.03, drifting.shape)
    )
    # Two-sample KS p-value with about 5,000 events on each side (asymptotic form).
    p_value = np.minimum(1.0, 2 * np.exp(-2 * 2500 * ks**2))
    adjusted = np.minimum(1.0, p_value * n_features)
    n_drifted = (psi >= PSI_DRIFT).sum(axis=1)
    finalized = [
        (window_start(i) + WINDOW + timedelta(minutes=5)).isoformat() for i in range(n_windows)
    ]
    chunk = 500
    loaded: dict[str, Any] = {}
    parameters = make_url_params(url)
    with psycopg.connect(**parameters) as connection:

        def windows_rows() -> Iterator[list[Sequence[object]]]:
            for first in range(0, n_windows, chunk):
                rows: list[Sequence[object]] = []
                for w in range(first, min(first + chunk, n_windows)):
                    labeled = int(n_rows[w] * 0.8)
                    share = float(n_drifted[w]) / n_features
                    rows.append(
                        (
                            MODEL_ID, starts[w], (window_start(w) + WINDOW).isoformat(),
                            int(n_rows[w]), int(rng.poisson(3)), int(rng.poisson(1)),
                            int(n_drifted[w]), share, share >= 0.5, False, 0.8, labeled, 1,
                            finalized[w], finalized[w],
                        )
                    )  # fmt: skip
                yield rows

        def drift_rows() -> Iterator[list[Sequence[object]]]:
            for first in range(0, n_windows, chunk):
                rows: list[Sequence[object]] = []
                for w in range(first, min(first + chunk, n_windows)):
                    for f, name in enumerate(features):
                        score = float(psi[w, f])
                        status = (
                            "drift" if score >= PSI_DRIFT
                            else "warning" if score >= PSI_WARNING else "ok"
                        )  # fmt: skip
                        rows.append(
                            (MODEL_ID, starts[w], name, "psi", score, None, None, PSI_DRIFT,
                             score >= PSI_DRIFT, status, True, False)
                        )  # fmt: skip
                        ks_drifted = bool(adjusted[w, f] < KS_ALPHA)
                        rows.append(
                            (MODEL_ID, starts[w], name, "ks", float(ks[w, f]),
                             float(p_value[w, f]), float(adjusted[w, f]), KS_ALPHA, ks_drifted,
                             "drift" if ks_drifted else "ok", False, False)
                        )  # fmt: skip
                yield rows

        def quality_rows() -> Iterator[list[Sequence[object]]]:
            for first in range(0, n_windows, chunk):
                rows: list[Sequence[object]] = []
                for w in range(first, min(first + chunk, n_windows)):
                    missing = rng.beta(1, 200, n_features)
                    means = rng.normal(0, 1, n_features) + drifting[w] * 1.5
                    for f, name in enumerate(features):
                        valid = int(n_rows[w] * (1 - missing[f]))
                        rows.append(
                            (MODEL_ID, starts[w], name, int(n_rows[w]), valid,
                             float(missing[f]), 0.0, float(missing[f]) / 4, None,
                             float(means[f]))
                        )  # fmt: skip
                yield rows

        def metric_rows() -> Iterator[list[Sequence[object]]]:
            for first in range(0, n_windows, chunk):
                rows: list[Sequence[object]] = []
                for w in range(first, min(first + chunk, n_windows)):
                    drop = 0.08 * float(n_drifted[w]) / n_features
                    for metric in METRICS:
                        value = float(np.clip(rng.normal(0.85 - drop, 0.01), 0, 1))
                        rows.append(
                            (MODEL_ID, starts[w], metric, value, 1, int(n_rows[w] * 0.8), 0.8,
                             finalized[w])
                        )  # fmt: skip
                yield rows

        def anomaly_rows() -> Iterator[list[Sequence[object]]]:
            centres = {"volume": (5000.0, 70.0), "positive_rate": (0.3, 0.01)}
            for first in range(0, n_windows, chunk):
                rows: list[Sequence[object]] = []
                for w in range(first, min(first + chunk, n_windows)):
                    for series in SERIES:
                        mean, std = centres.get(series, (0.85, 0.01))
                        value = float(n_rows[w]) if series == "volume" else rng.normal(mean, std)
                        lower, upper = mean - 3 * std, mean + 3 * std
                        outside = not lower <= value <= upper
                        reason = (
                            "within limits" if not outside
                            else "above upper limit" if value > upper else "below lower limit"
                        )  # fmt: skip
                        rows.append(
                            (MODEL_ID, starts[w], series, value, mean, std, lower, upper, 30,
                             outside, reason)
                        )  # fmt: skip
                yield rows

        tables: list[tuple[str, Sequence[str], int, Callable[[], Iterator[Any]]]] = [
            ("windows", ("model_id", "window_start", "window_end", "n_rows", "n_late",
                         "n_invalid", "n_drifted", "share_drifted", "dataset_drift",
                         "output_drift", "label_coverage", "n_labeled", "quality_revision",
                         "finalized_at", "updated_at"), n_windows, windows_rows),
            ("drift_results", ("model_id", "window_start", "feature", "method", "score",
                               "p_value", "adjusted_p_value", "threshold", "drifted", "status",
                               "is_primary", "is_output"), 2 * n_windows * n_features,
             drift_rows),
            ("data_quality_results", ("model_id", "window_start", "feature", "n_rows",
                                      "n_valid", "missing_rate", "invalid_rate",
                                      "out_of_range_rate", "unseen_rate", "mean"),
             n_windows * n_features, quality_rows),
            ("quality_metrics", ("model_id", "window_start", "metric", "value", "revision",
                                 "n_labeled", "label_coverage", "updated_at"),
             n_windows * len(METRICS), metric_rows),
            ("anomalies", ("model_id", "window_start", "series", "value", "mean", "std",
                           "lower", "upper", "n_history", "anomaly", "reason"),
             n_windows * len(SERIES), anomaly_rows),
        ]  # fmt: skip
        began = time.monotonic()
        for table, columns, total, rows in tables:
            say(f"loading {total:,} rows into {table} (COPY)")
            seconds = Loader(connection, table, columns, total).copy(rows())
            loaded[table] = {"rows": total, "seconds": seconds, "rows_per_s": total / seconds}
        loaded["load_seconds"] = time.monotonic() - began
        say("VACUUM ANALYZE")
        vacuum_began = time.monotonic()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")
        loaded["vacuum_seconds"] = time.monotonic() - vacuum_began
        sizes = connection.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
            "WHERE relname IN ('drift_results', 'windows', 'data_quality_results')"
        ).fetchall()
        loaded["sizes_mb"] = {str(name): int(size) / 2**20 for name, size in sizes}
    loaded["f07_drifted_windows"] = int((psi[:, 7] >= PSI_DRIFT).sum()) if n_features > 7 else 0
    return loaded


def make_url_params(url: str) -> dict[str, Any]:
    """psycopg.connect keywords for a ``postgresql+psycopg://user@host:port/db`` URL."""
    match = re.fullmatch(r"postgresql\+psycopg://(\w+)@([\d.]+):(\d+)/(\w+)", url)
    if match is None:
        raise ValueError(f"unexpected database URL {url!r}")
    user, host, port, dbname = match.groups()
    return {"user": user, "host": host, "port": int(port), "dbname": dbname}


def add_alerts(url: str, n_windows: int, n_features: int, count: int = 12) -> None:
    """A dozen alerts of the model (some firing, some resolved), as the relay leaves them:
    the window report lists the model's alerts of its window."""
    engine = make_engine(url)
    rng = random.Random(12)
    try:
        with session_factory(engine).begin() as session:
            for index in range(count):
                feature = f"f{rng.randrange(n_features):02d}"
                at = window_start(rng.randrange(n_windows))
                resolved = index % 3 != 0
                alert_store.save_alert(
                    session,
                    alert_store.AlertRecord(
                        fingerprint=f"{index:04x}{rng.getrandbits(48):012x}",
                        model_id=MODEL_ID,
                        model_version="v1",
                        rule="feature-drift",
                        subject=feature,
                        severity="warning",
                        status="resolved" if resolved else "firing",
                        labels={"model": MODEL_ID, "feature": feature, "rule": "feature-drift"},
                        summary=f"{feature} drifted (psi 0.31 >= 0.2)",
                        evidence={"score": 0.31, "threshold": 0.2, "method": "psi"},
                        window_start=at,
                        window_end=at + WINDOW,
                        starts_at=at,
                        resolved_at=at + 5 * WINDOW if resolved else None,
                        updated_at=at + 5 * WINDOW,
                    ),
                )
    finally:
        engine.dispose()


def prepare(url: str, n_windows: int, n_features: int) -> tuple[str, dict[str, Any]]:
    """Migrate, register the model, create a read key, load the results; (key, figures)."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        with session_factory(engine).begin() as session:
            register_model(session, model_config(n_features))
            _, key = create_key(session, "api bench", "read")
    finally:
        engine.dispose()
    figures = load(url, n_windows, n_features)
    add_alerts(url, n_windows, n_features)
    return key, figures


Statement = tuple[str, dict[str, Any]]


def storage_statements(url: str, key: str, at: datetime, n_windows: int) -> dict[str, Statement]:
    """The SQL the routes' storage calls send (as SQLAlchemy renders it for psycopg, with
    its parameters), captured from the engine while they run once."""
    engine = make_engine(url)
    sent: list[Statement] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
        sent.append((statement, dict(params or {})))

    event.listen(engine, "before_cursor_execute", capture)
    calls: dict[str, Callable[[Session], object]] = {
        "API key": lambda s: find_key(s, key),
        "model": lambda s: catalog.get_model(s, MODEL_ID),
        "drift page": lambda s: drift_page(s, MODEL_ID, features=[FEATURE], method="psi"),
        "drift history": lambda s: drift_page(
            s, MODEL_ID, features=[FEATURE], method="psi", limit=n_windows
        ),
        "window report": lambda s: history.window_details(s, MODEL_ID, at),
        "window report: alerts": lambda s: alert_store.alerts_of_model(s, MODEL_ID, at),
    }
    found: dict[str, Statement] = {}
    try:
        with session_factory(engine)() as session:
            for name, call in calls.items():
                sent.clear()
                call(session)
                if len(sent) == 1:
                    found[name] = sent[0]
                else:
                    for (statement, params), table in zip(
                        sent,
                        ("windows", "drift", "data quality", "metrics", "anomalies"),
                        strict=False,
                    ):
                        found[f"{name}: {table}"] = (statement, params)
    finally:
        engine.dispose()
    return found


def query_plans(url: str, statements: dict[str, Statement]) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement the routes' storage calls send."""
    plans: dict[str, list[str]] = {}
    with psycopg.connect(**make_url_params(url)) as connection:
        for name, (statement, params) in statements.items():
            rows = connection.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params).fetchall()
            plans[name] = [str(row[0]) for row in rows]
    return plans


# -- 4. the baseline: the storage functions in process


def baseline(
    url: str, key: str, n_windows: int, calls: int, statements: dict[str, Statement]
) -> dict[str, Any]:
    """The routes' storage calls (and the response they build) in process, one transaction
    per request, on an engine made as the API makes it (``make_engine``: pool pre-ping)."""
    engine = make_engine(url)
    sessions = session_factory(engine)
    rng = random.Random(7)
    times: dict[str, list[float]] = {}

    def drift_storage(limit: int) -> Callable[[], list[DriftPoint]]:
        def run() -> list[DriftPoint]:
            with sessions.begin() as session:
                find_key(session, key)
                catalog.get_model(session, MODEL_ID)
                return drift_page(session, MODEL_ID, features=[FEATURE], method="psi", limit=limit)

        return run

    def drift_json(limit: int) -> Callable[[], object]:
        storage = drift_storage(limit)

        def run() -> object:
            return drift_page_json(MODEL_ID, storage(), None)  # as the route writes it

        return run

    def window_storage() -> tuple[Any, list[alert_store.AlertRecord]]:
        at = window_start(rng.randrange(n_windows))
        with sessions.begin() as session:
            find_key(session, key)
            catalog.get_model(session, MODEL_ID)
            details = history.window_details(session, MODEL_ID, at)
            alerts = alert_store.alerts_of_model(session, MODEL_ID, at)
        return details, alerts

    def window_json() -> object:
        details, alerts = window_storage()
        return WindowReport.of(details, alerts).model_dump_json()

    connection = psycopg.connect(**make_url_params(url))

    def sql_only(*names: str) -> Callable[[], object]:
        """The statements storage sends for a request (those named, and every one whose name
        starts with a name ending in ":"), in one transaction on a plain psycopg connection."""
        chosen = [
            statement
            for name, statement in statements.items()
            if name in names or any(n.endswith(":") and name.startswith(n) for n in names)
        ]

        def run() -> object:
            rows = [connection.execute(sql, params).fetchall() for sql, params in chosen]
            connection.commit()
            return rows

        return run

    cases: dict[str, tuple[Callable[[], object], int]] = {
        "drift_storage": (drift_storage(1000), calls),
        "drift_json": (drift_json(1000), calls),
        "drift_sql": (sql_only("API key", "model", "drift page"), calls),
        "window_sql": (sql_only("API key", "model", "window report:"), calls),
        "window_storage": (window_storage, calls),
        "window_json": (window_json, calls),
        "full_storage": (drift_storage(10_000), max(10, calls // 5)),
        "full_json": (drift_json(10_000), max(10, calls // 5)),
        "full_sql": (sql_only("API key", "model", "drift history"), max(10, calls // 5)),
    }
    full_collections: dict[str, list[float]] = {}
    began_collection: list[float] = []
    current = ""

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            began_collection[:] = [time.perf_counter()]
        elif began_collection:
            full_collections.setdefault(current, []).append(
                time.perf_counter() - began_collection[0]
            )

    def measure(name: str, call: Callable[[], object], n: int) -> None:
        nonlocal current
        for _ in range(3):  # warm-up: statement caches, the pool, the page cache
            call()
        current = name
        took = []
        for _ in range(n):
            began = time.perf_counter()
            call()
            took.append(time.perf_counter() - began)
        current = ""
        times[name] = took
        say(
            f"  in process, {name}: p50 {ms(percentile(took, 0.5))}, "
            f"p99 {ms(percentile(took, 0.99))} ({n} calls, "
            f"{len(full_collections.get(name, []))} full garbage collections)"
        )

    gc.callbacks.append(on_gc)
    try:
        for name, (call, n) in cases.items():
            measure(name, call, n)
        # The same drift pages with every object alive now moved out of the collector's
        # reach (gc.freeze(), as an app could do once it has started): what the full
        # collections cost the tail.
        gc.collect()
        gc.freeze()
        try:
            measure("drift_json_frozen", drift_json(1000), calls)
        finally:
            gc.unfreeze()
    finally:
        gc.callbacks.remove(on_gc)
        connection.close()
        engine.dispose()
    found: dict[str, Any] = {name: summary(took) for name, took in times.items()}
    found["full_collections"] = {name: summary(v) for name, v in full_collections.items()}
    return found


def api_heap(url: str) -> dict[str, Any]:
    """In a fresh interpreter, as the API process starts: the objects the garbage collector
    tracks once ``create_app`` ran, the heavy modules imported, and a full collection's time."""
    code = (
        "import gc, json, sys, time\n"
        "from api.main import create_app\n"
        "from api.settings import ApiSettings\n"
        f"create_app(ApiSettings(database_url={url!r}))\n"
        "took = []\n"
        "for _ in range(5):\n"
        "    began = time.perf_counter(); gc.collect(); took.append(time.perf_counter() - began)\n"
        "print(json.dumps({'objects': len(gc.get_objects()), 'modules': len(sys.modules),\n"
        "    'heavy': [m for m in ('numpy', 'pandas', 'scipy', 'sklearn', 'pyarrow') "
        "if m in sys.modules], 'collect_s': sorted(took)[2]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"measuring the API's heap failed:\n{done.stderr}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


# -- 2. the API process


@dataclass
class Server:
    label: str
    command: list[str]
    env: dict[str, str]
    port: int
    log: Path
    workers: int = 1
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        say(f"starting the API ({self.label}) on {self.base}: {' '.join(self.command[1:])}")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the workers stop with it
            )
        began = time.monotonic()
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the API exited during start-up; read {self.log}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as answer:
                    # Every worker has started once each logged it (the first to start
                    # answers /healthz alone).
                    started = self.log.read_text(errors="replace").count(
                        "Application startup complete"
                    )
                    if answer.status == 200 and started >= self.workers:
                        say(
                            f"  /healthz answered, {started} worker(s) started, after "
                            f"{time.monotonic() - began:.1f} s"
                        )
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"the API did not answer /healthz within {timeout:.0f} s; read {self.log}"
        )

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)  # the group we started: uvicorn and its workers
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        self.process = None

    def get(self, path: str, key: str) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status), bytes(answer.read())


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


CONFIGS = {
    "1 worker": "`driftline api` (one uvicorn worker, as deployed)",
    "2 workers": "`uvicorn --factory api.main:create_app --workers 2`",
    "2 workers (SO_REUSEPORT)": "two uvicorn processes, each with a listening socket of its "
    "own on the port (`SO_REUSEPORT`: the kernel spreads new connections over them), created "
    "with `IPPROTO_TCP` so that `TCP_NODELAY` is set (`python -m bench.api_bench "
    "--serve-workers 2`)",
}


def servers(url: str, workdir: Path) -> list[tuple[str, Server, Server]]:
    """Per configuration: the server at the default page limit, and one at 10,000."""
    made = []
    for label in CONFIGS:
        pair = []
        for page_limit in (None, 10_000):
            port = free_port()
            env = {**os.environ, "DRIFTLINE_DATABASE_URL": url, "DRIFTLINE_API_PORT": str(port)}
            env.pop("DRIFTLINE_API_PAGE_LIMIT", None)
            if page_limit:
                env["DRIFTLINE_API_PAGE_LIMIT"] = str(page_limit)
            if label == "1 worker":
                command = [sys.executable, "-m", "driftline", "api", "--host", HOST]
                command += ["--port", str(port)]
            elif label == "2 workers":
                command = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app"]
                command += ["--host", HOST, "--port", str(port), "--workers", "2"]
            else:
                command = [sys.executable, "-m", "bench.api_bench", "--serve-workers", "2"]
                command += ["--serve-port", str(port)]
            log = workdir / f"api-{label.replace(' ', '_')}-{page_limit or 'default'}.log"
            workers = 1 if label == "1 worker" else 2
            pair.append(Server(label, command, env, port, log, workers))
        made.append((label, pair[0], pair[1]))
    return made


def serve_one(port: int) -> None:
    """One uvicorn process of ``serve_workers``, on a listening socket of its own."""
    import socket

    import uvicorn

    from api.main import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((HOST, port))
    app = create_app()
    gc.collect()  # as `driftline api` does
    gc.freeze()
    uvicorn.Server(uvicorn.Config(app, host=HOST, port=port)).run(sockets=[sock])


def serve_workers(workers: int, port: int) -> int:
    """Serve the API from ``workers`` uvicorn processes, each on a listening socket of its
    own on ``port`` (``SO_REUSEPORT``: the kernel spreads new connections over the sockets),
    each socket created with ``IPPROTO_TCP``.

    Two things ``uvicorn --workers N`` does not do. Its workers share one listening socket,
    and asyncio's accept loop takes every pending connection when it wakes, so connections
    opened together can all land on one worker. And ``Config.bind_socket`` leaves that
    socket's ``proto`` at 0, accepted connections inherit it, and asyncio only sets
    ``TCP_NODELAY`` on sockets whose ``proto`` is ``IPPROTO_TCP``: Nagle's algorithm then
    holds the body of each keep-alive response (written after its headers) until the
    client's delayed ACK, about 40 ms on Linux (Kludex/uvicorn issue #3149). One worker
    (``driftline api``) is not affected: asyncio binds that socket itself, from
    ``getaddrinfo``.
    """
    import multiprocessing

    children = [multiprocessing.Process(target=serve_one, args=(port,)) for _ in range(workers)]
    for child in children:
        child.start()

    def stop(signum: int, frame: object) -> None:
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()
    return 0


# -- 3. wrk


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package with apt-get when it is missing (as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed: run `sudo apt-get install -y wrk` and try again")
    say("wrk is not installed: installing Debian's package with apt-get (about half a minute)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "wrk"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get installed wrk but it is not on PATH")
    return found


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
    first = (done.stdout + done.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk"


LUA = """\
-- Written by bench/api_bench.py ({kind}): the drift path, a window report, or alternating.
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {key}"
local drift = {drift}
local windows = {{
{windows}
}}
local kind = "{kind}"
local n = 0
init = function(args)
  math.randomseed(os.time())
  n = math.random(1, #windows)
end
request = function()
  n = n + 1
  local path = drift
  if kind == "window" or (kind == "mixed" and n % 2 == 1) then
    path = windows[(n % #windows) + 1]
  end
  return wrk.format(nil, path)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50=%.0f p90=%.0f p99=%.0f p999=%.0f max=%.0f " ..
    "status=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def lua_script(path: Path, kind: str, key: str, drift_path: str, window_paths: list[str]) -> Path:
    path.write_text(
        LUA.format(
            kind=kind,
            key=key,
            drift=json.dumps(drift_path),
            windows=",\n".join(json.dumps(p) for p in window_paths),
        )
    )
    return path


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds_of(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * UNITS[match[2]]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/sec, the Latency Distribution (50/75/90/99 %), errors; and the exact figures
    the Lua ``done`` hook printed (p99.9, max, status errors)."""
    parsed: dict[str, Any] = {}
    for q, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.M):
        parsed[f"p{q}"] = seconds_of(value)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    parsed["rps"] = float(rate[1]) if rate else math.nan
    total = re.search(r"^\s+(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", output, re.M)
    if total:
        parsed["requests"] = int(total[1])
        parsed["read"] = total[3]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    parsed["non_2xx"] = int(non2xx[1]) if non2xx else 0
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    parsed["socket_errors"] = sum(int(n) for n in socket.groups()) if socket else 0
    extra = re.search(r"^BENCH (.*)$", output, re.M)
    if extra:
        fields = dict(item.split("=") for item in extra[1].split())
        parsed["p999"] = float(fields["p999"]) * 1e-6
        parsed["max"] = float(fields["max"]) * 1e-6
        parsed["p99_exact"] = float(fields["p99"]) * 1e-6
    for q in ("p50", "p90", "p99"):
        if q not in parsed:
            raise ValueError(f"wrk printed no latency distribution:\n{output}")
    return parsed


def run_wrk(
    wrk: str, script: Path | None, url: str, connections: int, duration: float
) -> dict[str, Any]:
    """One wrk run of ``duration`` seconds at ``connections``; the Lua ``script`` picks the
    requests (without one, wrk asks for ``url`` alone)."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    command += ["--timeout", "10s", *(["-s", str(script)] if script else []), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return {"connections": connections, "duration": duration, **parse_wrk(done.stdout)}


def ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    return f"{seconds * 1e3:,.1f} ms" if seconds < 0.1 else f"{seconds * 1e3:,.0f} ms"


# -- the run


TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) the process and its exited, reaped children have used so
    far; 0 once it is gone. Summed over a process tree, nothing is counted twice, and a
    child that exits (a PostgreSQL backend whose pooled connection was closed) keeps its
    time, in its parent's."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(n) for n in fields[11:15]) / TICK  # utime, stime, cutime, cstime


def tree_cpu(pid: int) -> dict[int, float]:
    return {each: process_cpu(each) for each in descendants(pid)}


def descendants(pid: int) -> list[int]:
    """The process and every process under it (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, in clock ticks."""
    numbers = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = numbers[3] + numbers[4]  # idle, iowait
    return sum(numbers) - idle, sum(numbers)


@dataclass
class CpuMeter:
    """Where the machine's CPU went during one wrk run: each API process, PostgreSQL (the
    postmaster and its backends), and the machine as a whole (in cores: CPU s per s)."""

    api_pid: int
    postgres_pid: int

    def __enter__(self) -> CpuMeter:
        self.api = tree_cpu(self.api_pid)
        self.pg = tree_cpu(self.postgres_pid)
        self.machine = machine_jiffies()
        self.began = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        seconds = time.monotonic() - self.began
        busy, total = machine_jiffies()
        api, pg = tree_cpu(self.api_pid), tree_cpu(self.postgres_pid)
        cores = os.cpu_count() or 1
        share = (busy - self.machine[0]) / max(1, total - self.machine[1])
        per_api = sorted(
            ((api.get(pid, 0.0) - before) / seconds for pid, before in self.api.items()),
            reverse=True,
        )
        self.figures: dict[str, Any] = {
            "api_cores": [round(c, 3) for c in per_api if c > 0.005],
            "postgres_cores": (sum(pg.values()) - sum(self.pg.values())) / seconds,
            "machine_busy": share,
            "machine_cores": share * cores,
        }


def sweep(
    wrk: str,
    server: Server,
    postgres_pid: int,
    scripts: dict[str, Path],
    kinds: Sequence[str],
    connections: Sequence[int],
    duration: float,
) -> dict[str, list[dict[str, Any]]]:
    say(f"  warm-up, 3 s of {'/'.join(kinds)} at 2 connections")
    for kind in kinds:
        run_wrk(wrk, scripts[kind], server.base + "/", 2, 3)
    assert server.process is not None
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        found[kind] = []
        for c in connections:
            with CpuMeter(server.process.pid, postgres_pid) as meter:
                result = run_wrk(wrk, scripts[kind], server.base + "/", c, duration)
            result["cpu"] = cpu = meter.figures
            found[kind].append(result)
            errors = result["non_2xx"] + result["socket_errors"]
            say(
                f"  {kind:6} -c{c}: {result['rps']:7.1f} req/s, p50 {ms(result['p50'])}, "
                f"p90 {ms(result['p90'])}, p99 {ms(result['p99'])}; cores: API "
                + "+".join(f"{a:.2f}" for a in cpu["api_cores"])
                + f", PostgreSQL {cpu['postgres_cores']:.2f}, machine {cpu['machine_cores']:.2f}"
                + (f", {errors} ERRORS" if errors else "")
            )
    return found


def operating_point(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The first connection count reaching the target rate, whether p99 met the target
    there, and the best rate with p99 within it."""
    reached = [r for r in runs if r["rps"] >= TARGET_RPS]
    at = reached[0] if reached else None
    within = [r for r in runs if r["p99"] < TARGET_P99_S]
    best = max(within, key=lambda r: r["rps"]) if within else None
    return {
        "at_target": at,
        "met": bool(at and at["p99"] < TARGET_P99_S and not at["non_2xx"]),
        "max_rps": max((r["rps"] for r in runs), default=math.nan),
        "best_within_p99": best,
    }


def check_responses(server: Server, key: str, paths: dict[str, str]) -> dict[str, Any]:
    """One request per endpoint before the load: status, size, items (fails loudly)."""
    checked: dict[str, Any] = {}
    for kind, path in paths.items():
        status, body = server.get(path, key)
        data = json.loads(body)
        items = len(data["items"]) if "items" in data else len(data.get("drift", []))
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}")
        checked[kind] = {"bytes": len(body), "items": items, "path": path}
        say(f"  {kind}: HTTP {status}, {len(body):,} bytes, {items:,} drift rows")
    return checked


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "windows": args.windows,
        "features": args.features,
        "duration": args.duration,
        "connections": args.connections,
        "quick": args.quick,
        "commit": commit(),
    }
    wrk = ensure_wrk()
    results["wrk"] = wrk_version(wrk)
    began = time.monotonic()
    with own_postgres(workdir) as server_pg:
        url = postgres.create_database("driftline_api_bench", port=server_pg.port)
        with psycopg.connect(**make_url_params(url)) as connection:
            row = connection.execute("SHOW server_version").fetchone()
            results["postgres_version"] = str(row[0]) if row else "?"
        say(
            f"database {url}: loading {args.windows:,} windows × {args.features} features "
            f"({2 * args.windows * args.features:,} drift rows)"
        )
        key, results["load"] = prepare(url, args.windows, args.features)
        some_window = window_start(args.windows // 2)
        statements = storage_statements(url, key, some_window, args.windows)
        results["statements"] = {name: statement for name, (statement, _) in statements.items()}
        results["plans"] = query_plans(url, statements)
        for name, plan in results["plans"].items():
            say(f"  plan, {name}: {plan[0].strip()} | {plan[-1].strip()}")
        say(f"baseline: the routes' storage calls in process ({args.baseline_calls} calls each)")
        results["baseline"] = baseline(url, key, args.windows, args.baseline_calls, statements)
        results["api_heap"] = heap = api_heap(url)
        say(
            f"the API process after start-up: {heap['objects']:,} objects tracked by the garbage "
            f"collector ({', '.join(heap['heavy'])} imported); a full collection "
            f"{ms(heap['collect_s'])}"
        )

        prefix = f"/api/v1/models/{MODEL_ID}"
        drift_path = f"{prefix}/drift?feature={FEATURE}&method=psi"
        full_path = f"{drift_path}&limit={args.windows}"
        starts = [url_time(window_start(i)) for i in range(args.windows)]
        random.Random(3).shuffle(starts)
        window_paths = [f"{prefix}/windows/{s}" for s in starts]
        scripts = {
            kind: lua_script(workdir / f"{kind}.lua", kind, key, path, window_paths)
            for kind, path in (
                ("drift", drift_path), ("window", drift_path), ("mixed", drift_path),
                ("full", full_path),
            )
        }  # fmt: skip
        results["configs"] = {}
        for label, default, unlimited in servers(url, workdir):
            if label not in args.configs:
                continue
            config: dict[str, Any] = {}
            with serving(default) as server:
                config["responses"] = check_responses(
                    server, key, {"drift": drift_path, "window": window_paths[0]}
                )
                config["healthz"] = run_wrk(wrk, None, server.base + "/healthz", 1, 3)
                say(
                    f"  /healthz at one connection: p50 {ms(config['healthz']['p50'])}, "
                    f"p99 {ms(config['healthz']['p99'])}"
                )
                config["runs"] = sweep(
                    wrk,
                    server,
                    server_pg.pid,
                    scripts,
                    ("drift", "window", "mixed"),
                    args.connections,
                    args.duration,
                )
            with serving(unlimited) as server:
                config["responses"].update(check_responses(server, key, {"full": full_path}))
                config["runs"].update(
                    sweep(
                        wrk,
                        server,
                        server_pg.pid,
                        scripts,
                        ("full",),
                        args.full_connections,
                        args.duration,
                    )
                )
            config["points"] = {
                kind: operating_point(runs) for kind, runs in config["runs"].items()
            }
            results["configs"][label] = config
    results["run_seconds"] = time.monotonic() - began
    return results


def commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
            cwd=ROOT,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return found.stdout.strip() or "?"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(results: dict[str, Any]) -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    loop = "uvloop" if version("uvloop") != "not installed" else "asyncio"
    parser = "httptools" if version("httptools") != "not installed" else "h11"
    return (
        f"{cpu}, {os.cpu_count()} cores (wrk, the API and PostgreSQL share them); Python "
        f"{platform.python_version()}, PostgreSQL {results['postgres_version']}, FastAPI "
        f"{version('fastapi')}, uvicorn {version('uvicorn')} ({loop} event loop, {parser} HTTP "
        f"parser), pydantic {version('pydantic')}, SQLAlchemy {version('sqlalchemy')}, psycopg "
        f"{version('psycopg')}, {results['wrk']}"
    )


# -- 6. the report


def run_cell(r: dict[str, Any]) -> str:
    flag = f" ({r['non_2xx']} non-2xx)" if r["non_2xx"] else ""
    return f"{r['rps']:,.0f} req/s: {ms(r['p50'])} / {ms(r['p90'])} / {ms(r['p99'])}{flag}"


def verdict(point: dict[str, Any]) -> str:
    at = point["at_target"]
    if at is None:
        return f"**no**: at most {point['max_rps']:,.0f} req/s (never {TARGET_RPS:.0f})"
    word = "**yes**" if point["met"] else "**no**"
    return f"{word}: -c{at['connections']} {at['rps']:,.0f} req/s, p99 {ms(at['p99'])}"


def plan_note(plan: Sequence[str]) -> str:
    """The plan's scan (or its top node), its buffers and its execution time, in a line."""
    scans = [line.strip() for line in plan if "Scan" in line]
    node = (scans[0] if scans else plan[0].strip()).removeprefix("->").strip()
    node = re.sub(r"\s+\(cost=[^)]*\)", "", node)
    buffers = next((line.strip() for line in plan if "Buffers:" in line), "")
    took = next((line.strip() for line in plan if line.startswith("Execution Time")), "")
    sort = " after a sort" if any("Sort Key" in line for line in plan[:4]) else ""
    return f"`{node}`{sort}; {buffers.lower()}; {took.lower()}"


def cpu_cell(cpu: dict[str, Any]) -> str:
    api = "+".join(f"{c:.2f}" for c in cpu["api_cores"]) or "0"
    return f"{api} / {cpu['postgres_cores']:.2f} / {cpu['machine_cores']:.2f}"


def execution_ms(plan: Sequence[str]) -> float:
    found = [float(n) for line in plan for n in re.findall(r"Execution Time: ([\d.]+) ms", line)]
    return sum(found)


def removed_by_filter(plan: Sequence[str]) -> int:
    found = [int(n) for line in plan for n in re.findall(r"Rows Removed by Filter: (\d+)", line)]
    return sum(found)


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    configs = results["configs"]
    labels = list(configs)
    base = results["baseline"]
    load = results["load"]
    all_c = sorted(
        {
            r["connections"]
            for cfg in configs.values()
            for runs in cfg["runs"].values()
            for r in runs
        }
    )
    lines = [
        "| configuration | endpoint | "
        + " | ".join(f"-c{c}" for c in all_c)
        + " | p99 < 50 ms at ≥ 200 req/s |",
        "|---|---|" + "---|" * len(all_c) + "---|",
    ]
    for label in labels:
        cfg = configs[label]
        for kind, runs in cfg["runs"].items():
            by_c = {r["connections"]: r for r in runs}
            cells = [run_cell(by_c[c]) if c in by_c else "" for c in all_c]
            lines.append(
                f"| {label} | {ENDPOINTS[kind]} | "
                + " | ".join(cells)
                + f" | {verdict(cfg['points'][kind])} |"
            )
    table = "\n".join(lines)

    first = configs[labels[0]]
    sizes = first["responses"]

    def http_c1(cfg: dict[str, Any], kind: str) -> dict[str, Any]:
        found = next((r for r in cfg["runs"].get(kind, []) if r["connections"] == 1), None)
        return found or {"p50": math.nan, "p99": math.nan}

    base_rows = []
    for kind, storage, built, sql in (
        ("drift", "drift_storage", "drift_json", "drift_sql"),
        ("window", "window_storage", "window_json", "window_sql"),
        ("full", "full_storage", "full_json", "full_sql"),
    ):
        http = http_c1(first, kind)
        base_rows.append(
            f"| {ENDPOINTS[kind]} | {sizes[kind]['bytes'] / 1024:,.0f} KiB, "
            f"{sizes[kind]['items']:,} drift rows | "
            f"{ms(base[sql]['p50'])} / {ms(base[sql]['p99'])} | "
            f"{ms(base[storage]['p50'])} / {ms(base[storage]['p99'])} | "
            f"{ms(base[built]['p50'])} / {ms(base[built]['p99'])} | "
            f"{ms(http['p50'])} / {ms(http['p99'])} | "
            f"{http['p50'] / base[storage]['p50']:.1f}× | "
            f"{base[sql]['p50'] / http['p50']:.0%} / {base[storage]['p50'] / http['p50']:.0%} |"
        )
    base_table = "\n".join(base_rows)

    verdicts = []
    for label in labels:
        points = configs[label]["points"]
        verdicts.append(
            f"{label}: "
            + "; ".join(
                f"{kind} {verdict(points[kind])}"
                for kind in ("drift", "window", "mixed", "full")
                if kind in points
            )
        )
    best_window = max((configs[label]["points"]["window"]["max_rps"], label) for label in labels)
    best_drift = max((configs[label]["points"]["drift"]["max_rps"], label) for label in labels)
    loaded = ", ".join(
        f"`{name}` {figures['rows']:,} rows in {figures['seconds']:.1f} s "
        f"({figures['rows_per_s']:,.0f} rows/s)"
        for name, figures in load.items()
        if isinstance(figures, dict) and "rows" in figures
    )
    plans = "\n".join(f"  - {name}: {plan_note(plan)}" for name, plan in results["plans"].items())
    page_rows = max(1, sizes["drift"]["items"])
    per_row_storage = (base["drift_storage"]["p50"] - base["drift_sql"]["p50"]) / page_rows
    per_row_json = (base["drift_json"]["p50"] - base["drift_storage"]["p50"]) / page_rows
    removed = removed_by_filter(results["plans"].get("drift page", []))
    index_note = (
        f"- The drift history reads the index on `(model_id, feature, window_start)` and drops "
        f"the other method's rows after fetching them ({removed:,} rows removed by filter for "
        "one page): an index on `(model_id, feature, method, window_start)` would read half "
        "the index entries and heap rows, and one that also `INCLUDE`s the returned columns "
        "would allow an index-only scan. Either is a migration; none was added.\n"
        if removed
        else ""
    )
    window_ms = [
        execution_ms(plan) for name, plan in results["plans"].items() if name.startswith("window")
    ]
    healthz_p50 = {label: configs[label]["healthz"]["p50"] for label in labels}
    healthz = ", ".join(f"{label} p50 {ms(p50)}" for label, p50 in healthz_p50.items())
    nagle = healthz_p50.get("2 workers", 0.0) > 0.030 > healthz_p50.get(labels[0], 1.0)
    nagle_note = (
        "`uvicorn --workers 2` loses `TCP_NODELAY`: its listening socket is bound by uvicorn's "
        "`Config.bind_socket` with `proto` 0, accepted connections inherit it, and asyncio sets "
        "`TCP_NODELAY` only on sockets whose `proto` is `IPPROTO_TCP`; the body of every "
        "keep-alive response (written after its headers) then waits for the client's delayed "
        "ACK, about 40 ms on Linux (Kludex/uvicorn issue #3149). The third configuration creates "
        "its sockets with `IPPROTO_TCP`, as the open uvicorn pull request #3154 does; "
        "`driftline api` (one worker: asyncio binds the socket) is not affected."
        if nagle
        else "No configuration showed the ~40 ms delayed-ACK stall of uvicorn issue #3149."
    )
    described = "; ".join(f"**{label}**: {CONFIGS[label]}" for label in labels)
    reproduce = "python -m bench.api_bench --output docs/benchmarks.md"
    if args.quick:
        reproduce += " --quick"

    cpu_lines = [
        "| configuration | endpoint | " + " | ".join(f"-c{c}" for c in all_c) + " |",
        "|---|---|" + "---|" * len(all_c),
    ]
    for label in labels:
        for kind, runs in configs[label]["runs"].items():
            by_c = {r["connections"]: r for r in runs}
            cells = [cpu_cell(by_c[c]["cpu"]) if c in by_c else "" for c in all_c]
            cpu_lines.append(f"| {label} | {kind} | " + " | ".join(cells) + " |")
    cpu_table = "\n".join(cpu_lines)

    def rps(label: str, kind: str, c: int) -> float:
        return next(
            (r["rps"] for r in configs[label]["runs"].get(kind, []) if r["connections"] == c),
            math.nan,
        )

    top = max(all_c)
    one = labels[0]
    one_top = next(r for r in configs[one]["runs"]["window"] if r["connections"] == top)
    scaling_note = (
        f"- One process is the ceiling. With {one}, from -c1 to -c{top}: drift pages "
        f"{rps(one, 'drift', 1):.0f} → {rps(one, 'drift', top):.0f} req/s, window reports "
        f"{rps(one, 'window', 1):.0f} → {rps(one, 'window', top):.0f} req/s, while the API "
        f"process used {sum(one_top['cpu']['api_cores']):.2f} cores (window reports at "
        f"-c{top}) and PostgreSQL {one_top['cpu']['postgres_cores']:.2f}: the route is sync, "
        "so it runs in the thread pool, but only one thread runs Python at a time; more "
        "connections only queue."
    )
    uneven = []
    for label in labels:
        if "worker" not in label or label == one:
            continue
        for kind, runs in configs[label]["runs"].items():
            for r in runs:
                cores = r["cpu"]["api_cores"]
                if r["connections"] >= 2 and cores and cores[0] >= 0.8 * sum(cores):
                    uneven.append(
                        f"{label}, {kind} -c{r['connections']}: "
                        + "+".join(f"{c:.2f}" for c in cores)
                    )
    spread_note = (
        "- Connections are not spread evenly over two workers. With `uvicorn --workers 2` both "
        "wait on one listening socket and asyncio's accept loop takes every pending connection "
        "when it wakes, so the connections wrk opens together may all land on one worker; with "
        "`SO_REUSEPORT` the kernel hashes each connection to one of the sockets, which can be "
        "uneven too with few connections. Keep-alive connections then stay where they landed. "
        f"In {len(uneven)} runs at -c2 or more one worker did at least 80% of the API's work "
        "(cores used per API process): " + "; ".join(uneven) + "."
        if uneven
        else "- Every run at -c2 or more spread its work over both workers."
    )
    heap = results["api_heap"]
    collections = base.get("full_collections", {}).get("drift_json")
    gc_note = (
        f"- The p99 of the drift pages is the garbage collector's. The API process tracks "
        f"{heap['objects']:,} objects once started ({', '.join(heap['heavy'])} are imported "
        f"with it), and a full collection walks all of them: {ms(heap['collect_s'])} in a "
        f"fresh process. A drift page allocates thousands of objects, so every few dozen "
        f"pages one lands in a full collection: in process, {collections['n']:.0f} full "
        f"collections of median {ms(collections['p50'])} during {base['drift_json']['n']:.0f} "
        f"pages (p50 {ms(base['drift_json']['p50'])}, p99 {ms(base['drift_json']['p99'])}); the "
        f"same pages after `gc.freeze()` (the objects alive moved out of the collector's "
        f"reach): p50 {ms(base['drift_json_frozen']['p50'])}, p99 "
        f"{ms(base['drift_json_frozen']['p99'])}. `driftline api` (and `--serve-workers`) "
        "call `gc.freeze()` once the app is built; `uvicorn --workers 2` does not."
        if collections
        else f"- The API process tracks {heap['objects']:,} objects once started; a full "
        f"collection takes {ms(heap['collect_s'])}. No full collection fell within the "
        "in-process drift pages."
    )
    return f"""## HTTP API under load (issue 10)

Measured in one run of `{reproduce}` ({results["run_seconds"] / 60:.0f} min, at commit
{results["commit"]}). {results["windows"]:,} hourly windows × {results["features"]} numeric
features of one model in a PostgreSQL of the run's own, loaded with COPY: {loaded}; then
`VACUUM ANALYZE` ({load["vacuum_seconds"]:.0f} s; `drift_results` is
{load["sizes_mb"].get("drift_results", math.nan):,.0f} MB with its indexes). The drift rows
are PSI (primary) and KS for every feature and window, with drift episodes (f07 drifted in
{load["f07_drifted_windows"]:,} windows); each window also has data quality per feature,
{len(METRICS)} quality metrics and {len(SERIES)} anomaly series, and the model a dozen
alerts.

The API runs as its own process, behind a read key, in three configurations: {described}.
wrk (`-t1 --latency`, {results["duration"]:g} s per run, a Lua script picking the request)
sends over loopback `/api/v1/models/<id>/drift?feature=f07&method=psi` (the first page:
1,000 windows at the default page limit), `/api/v1/models/<id>/windows/<start>` for the
windows in random order, or the two alternating; and the full history,
`…/drift?feature=f07&method=psi&limit={results["windows"]}`, to a second server started with
`DRIFTLINE_API_PAGE_LIMIT={results["windows"]}`. wrk is closed-loop (each connection sends
its next request when the last one is answered), so a run's rate is what `-cN` connections
get; the target holds where a run reaches 200 req/s with p99 under 50 ms. Cells: req/s:
p50 / p90 / p99.

{table}

Baseline in the same run, in process, one request after another: the drift query alone
(the SQL storage sends, on a plain psycopg connection); the storage functions the route
calls, in one transaction (API key, model, then `drift_page`: SQLAlchemy rows into
tuples, or `window_details` and `alerts_of_model`: rows into dataclasses); those plus the
JSON the route writes (the drift page with orjson straight from the tuples, the window
report through its response model); against HTTP at one connection ({labels[0]}). p50 / p99:

| request | response | SQL alone | storage functions | + JSON | HTTP, wrk -c1 | HTTP / storage | database's share (SQL / storage) |
|---|---|---|---|---|---|---|---|
{base_table}

- **Target, p99 under 50 ms while serving 200 requests/s:** {"; ".join(verdicts)}. The
  most any configuration served: window reports {best_window[0]:,.0f} req/s
  ({best_window[1]}), drift pages {best_drift[0]:,.0f} req/s ({best_drift[1]}).
- Where a drift page's time goes (1,000 rows, medians): its SQL (API key, model, the page)
  {ms(base["drift_sql"]["p50"])}; SQLAlchemy turning the rows into `DriftPoint` tuples in
  storage ({per_row_storage * 1e6:,.1f} µs a row) brings it to
  {ms(base["drift_storage"]["p50"])}; the JSON adds {per_row_json * 1e6:,.1f} µs a row; HTTP
  (uvicorn with uvloop and httptools, the middleware, the thread pool the sync route and its
  dependencies run in) the rest, up to {ms(http_c1(first, "drift")["p50"])} at one
  connection.
{scaling_note}
{gc_note}
- `/healthz` at one connection (wrk): {healthz}. {nagle_note}
{spread_note}
- Query plans of the statements storage sends (captured from the engine, then
  `EXPLAIN (ANALYZE, BUFFERS)` once after the load):
{plans}
{index_note}- The window report's {len(window_ms)} queries take
  {sum(window_ms):.2f} ms together inside PostgreSQL (primary-key range scans, and the
  model's alerts of that window).

Cores busy during each run (CPU seconds per second, from /proc): each API process /
PostgreSQL / the whole machine, wrk included (it has {os.cpu_count()}):

{cpu_table}

- Machine: {machine(results)}.
- Reproduce: `{reproduce}` (installs wrk with apt-get when missing; starts and removes its
  own PostgreSQL on a free port; `--quick` is a smoke run of 1,000 windows × 10 features).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--windows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per wrk run")
    parser.add_argument(
        "--connections",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 4, 8],
        help="wrk connection counts to sweep (comma-separated)",
    )
    parser.add_argument(
        "--full-connections",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 4],
        help="connection counts for the full-history requests",
    )
    parser.add_argument("--baseline-calls", type=int, default=300)
    parser.add_argument(
        "--configs",
        type=lambda text: [c.strip() for c in text.split(",")],
        default=list(CONFIGS),
        help=f"server configurations to measure (comma-separated; default: {', '.join(CONFIGS)})",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 × 10, 5 s")
    parser.add_argument("--serve-workers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help="Markdown file whose api section to rewrite")
    args = parser.parse_args(argv)
    if args.serve_workers:  # the API process of the "2 workers (SO_REUSEPORT)" configuration
        return serve_workers(args.serve_workers, args.serve_port)
    unknown = set(args.configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configurations {sorted(unknown)}; choose from {list(CONFIGS)}")
    # SIGTERM ends the run as Ctrl-C does: the API, wrk and PostgreSQL are stopped first.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.quick:
        args.windows, args.features, args.duration = 1000, 10, 5.0
        args.connections, args.full_connections, args.baseline_calls = [1, 4], [1], 50
    with tempfile.TemporaryDirectory(prefix="driftline-api-bench-") as directory:
        results = run(args, Path(directory))
    print(json.dumps(results, indent=2, default=str))
    text = render(results, args)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_section(args.output, "api", text)
        say(f"wrote {args.output}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
