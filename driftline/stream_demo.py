"""``driftline demo``: the whole pipeline on this machine, with drift at a known window.

It starts the local Kafka broker (unless one of ours runs), a local Slack-speaking server
and a local SMTP server, registers a model with a generated reference in a fresh SQLite
database, starts a worker process that also delivers alerts, and streams twelve
one-minute windows of predictions: drift on three features in windows 6 to 9, delayed
labels whose accuracy drops from window 8, and a few malformed messages. It streams the
first ten windows, waits for the drift alert to reach Slack and e-mail, then streams the
clean last two and waits for the resolved notice; then it prints the per-window results
from SQL and the messages delivered. Event times are the last twelve minutes, so nothing
waits for the wall clock.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import orjson
from sqlalchemy.orm import Session, sessionmaker

from driftline.demo import DRIFTED, generate, labels_for
from driftline.demo_alerts import RULES, DemoSinks, demo_sinks
from driftline.demo_api import demo_api
from driftline.demo_api import report as report_over_http
from driftline.local import kafka
from driftline.local.environment import run_dir
from driftline.local.worker_process import WorkerProcess, produce_sync, read_topic, wait_for
from registration import register_model
from schemas.model_config import ModelConfig
from storage import history, triggers
from storage.db import make_engine, session_factory
from storage.migrate import upgrade

MODEL_ID = "churn-demo"
WINDOW_SECONDS = 60
DRIFT_AT, DRIFT_UNTIL, DECAY_AT = 6, 10, 8
LABEL_DELAY_WINDOWS = 2


@dataclass
class DemoResult:
    """What the demo saw, for its test."""

    drifted: dict[int, list[str]] = field(default_factory=dict)
    accuracy: dict[int, float | None] = field(default_factory=dict)
    anomalies: dict[int, list[str]] = field(default_factory=dict)
    triggers: list[str] = field(default_factory=list)
    dead_letters: int = 0
    alerts: list[str] = field(default_factory=list)  # Slack message titles, in order
    emails: list[str] = field(default_factory=list)  # e-mail subjects, in order
    api_drifted: int = 0  # drifted results the HTTP API listed
    database_url: str = ""  # where the results are (the API and dashboard serve them after)


def demo_config() -> ModelConfig:
    return ModelConfig.from_dict(
        {
            "model_id": MODEL_ID,
            "description": "generated churn model for the Driftline demo",
            "task": "binary",
            "classes": ["0", "1"],
            "window_seconds": WINDOW_SECONDS,
            "allowed_lateness_seconds": 5,
            "label_horizon_seconds": 3600,
            "anomaly": {"min_history": 4},
            "retrain": {"min_drifted_windows": 2, "of_last_windows": 3, "cooldown_seconds": 86400},
            "alerts": RULES,
        }
    )


Message = tuple[str, bytes | None, bytes]


def _stream(
    topics: Any, windows: int, per_window: int, start: float, seed: int
) -> list[list[Message]]:
    """The messages of each window (its predictions, and labels of earlier windows)."""
    rng = np.random.default_rng(seed)
    chunks: list[list[Message]] = []
    delayed: dict[int, list[bytes]] = defaultdict(list)
    for w in range(windows):
        out: list[Message] = [(topics.labels, None, label) for label in delayed.pop(w, [])]
        chunks.append(out)
        frame = generate(rng, per_window, drift=DRIFT_AT <= w < DRIFT_UNTIL)
        times = (
            start + w * WINDOW_SECONDS + np.sort(rng.uniform(0, WINDOW_SECONDS - 0.01, per_window))
        )
        truth = labels_for(rng, frame["score"].to_numpy(), decayed=w >= DECAY_AT)
        for i, row in enumerate(frame.to_dict("records")):
            prediction_id = f"demo-{w}-{i}"
            score = float(row.pop("score"))
            event = {
                "model_id": MODEL_ID,
                "model_version": "2026.11.1",
                "prediction_id": prediction_id,
                "timestamp": float(times[i]),
                "features": {
                    k: (bool(v) if isinstance(v, np.bool_) else v) for k, v in row.items()
                },
                "prediction": "1" if score >= 0.5 else "0",
                "score": score,
            }
            out.append((topics.predictions, prediction_id.encode(), orjson.dumps(event)))
            if rng.random() < 0.3:
                label = {
                    "model_id": MODEL_ID,
                    "prediction_id": prediction_id,
                    "label": str(int(truth[i])),
                    "timestamp": float(times[i]) + 30,
                }
                delayed[w + LABEL_DELAY_WINDOWS].append(orjson.dumps(label))
        if w == 2:  # what a buggy producer sends: the stream must go on
            out.append((topics.predictions, b"oops-1", b"{this is not json"))
            out.append(
                (topics.predictions, b"oops-2", b'{"model_id": "churn-demo", "prediction_id": 7}')
            )
    chunks[-1] += [(topics.labels, None, label) for labels in delayed.values() for label in labels]
    # Labels are keyed like their predictions so they meet on the same partition.
    return [
        [
            (topic, key or orjson.loads(value)["prediction_id"].encode(), value)
            for topic, key, value in chunk
        ]
        for chunk in chunks
    ]


def _id_of(message: bytes) -> bytes:
    return str(orjson.loads(message)["prediction_id"]).encode()


def run(out: TextIO, *, windows: int = 12, per_window: int = 1000, seed: int = 7) -> DemoResult:
    def say(text: str) -> None:
        out.write(f"[{datetime.now():%H:%M:%S}] {text}\n")
        out.flush()

    say("Driftline demo: local Kafka broker, a worker, a stream with drift, results from SQL")
    broker = kafka.start(report=say)
    workdir = run_dir() / "demo"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    database_url = f"sqlite+pysqlite:///{workdir / 'driftline.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    reference = generate(np.random.default_rng(seed), 20_000, drift=False)
    reference["prediction"] = np.where(reference["score"] >= 0.5, "1", "0")
    with sessions.begin() as session:
        profile = register_model(session, demo_config(), reference, source="generated reference")
    assert profile is not None
    say(
        f"registered model {MODEL_ID}: {len(profile.features)} features, "
        f"reference of {profile.n_rows:,} rows"
    )

    try:
        with (
            demo_sinks(workdir, say) as sinks,
            demo_api(database_url, sessions, workdir, say) as api,
        ):
            result = _run_worker(
                out, say, broker, database_url, sessions, sinks, windows, per_window, seed
            )
            result.api_drifted = report_over_http(api, MODEL_ID, out)
            result.database_url = database_url
            return result
    finally:
        if broker.started:
            kafka.stop(report=say)


def _run_worker(
    out: TextIO,
    say: Callable[[str], None],
    broker: Any,
    database_url: str,
    sessions: sessionmaker[Session],
    sinks: DemoSinks,
    windows: int,
    per_window: int,
    seed: int,
) -> DemoResult:
    settings = {"ALERTS_FILE": str(sinks.routing_file)}
    workdir = sinks.routing_file.parent
    prefix = f"demo{uuid.uuid4().hex[:6]}."
    worker = WorkerProcess(broker.bootstrap, database_url, prefix, 4, workdir, settings=settings)
    worker.create_topics()
    say(f"starting a worker (log: {worker.log_path})")
    try:
        worker.start()
        start = math.floor(time.time() / WINDOW_SECONDS) * WINDOW_SECONDS - windows * WINDOW_SECONDS
        chunks = _stream(worker.topics, windows, per_window, start, seed)
        drifting, clean = chunks[:DRIFT_UNTIL], chunks[DRIFT_UNTIL:]
        say(
            f"streaming {sum(map(len, drifting)):,} messages: {len(drifting)} windows of "
            f"{per_window:,} predictions, drift on {', '.join(DRIFTED)} from window {DRIFT_AT}, "
            f"accuracy drop from window {DECAY_AT}"
        )
        produce_sync(broker.bootstrap, [m for chunk in drifting for m in chunk])
        _wait_until_final(sessions, len(drifting), say)
        sinks.wait(1)
        say("the drift alert reached Slack and e-mail")
        sinks.report(out)
        if clean:
            say(f"streaming {len(clean)} windows without drift")
            produce_sync(broker.bootstrap, [m for chunk in clean for m in chunk])
            _wait_until_final(sessions, windows, say)
            sinks.wait(2)
            say("the resolved notice reached Slack and e-mail")
            sinks.report(out, first=1)
        result = _report(sessions, out)
        result.alerts = [r.body["blocks"][0]["text"]["text"] for r in sinks.slack.delivered]
        result.emails = [mail.subject for mail in sinks.smtp.messages]
        result.dead_letters = len(read_topic(broker.bootstrap, worker.topics.dead_letter))
        out.write(
            f"\nDead letters: {result.dead_letters} malformed messages set aside with reasons "
            f"(topic {worker.topics.dead_letter}); the stream went on.\n"
        )
    finally:
        code = worker.stop()
        say(f"worker stopped (exit code {code})")
    return result


def _wait_until_final(sessions: sessionmaker[Session], windows: int, say: Any) -> None:
    last = [-1]

    def done() -> bool:
        with sessions() as session:
            rows = history.window_history(session, MODEL_ID, None, None)
        finished = sum(r.finalized_at is not None for r in rows)
        if finished != last[0]:
            say(f"windows final: {finished}/{windows}")
            last[0] = finished
        return finished == windows

    wait_for(done, 180, "every window to be final", interval=0.5)
    time.sleep(3.0)  # the last labels revise the quality of the last windows


def _report(sessions: sessionmaker[Session], out: TextIO) -> DemoResult:
    result = DemoResult()
    with sessions() as session:
        rows = history.window_history(session, MODEL_ID, None, None)
        metrics = {
            name: {
                m.window_start: m.value
                for m in history.metric_history(session, MODEL_ID, name, None, None)
            }
            for name in ("accuracy", "roc_auc")
        }
        anomalies = history.anomaly_history(session, MODEL_ID, None, None, only_anomalies=True)
        psi = {
            f: {
                r.window_start: r
                for r in history.drift_history(session, MODEL_ID, f, None, None, "psi")
            }
            for f in (
                "age",
                "income",
                "tenure",
                "sessions",
                "balance",
                "plan",
                "region",
                "mobile",
                "score",
            )
        }
        fired = triggers.triggers(session, MODEL_ID)
    out.write(
        f"\n{'window (UTC)':<12} {'events':>7}  {'drifted features (PSI)':<42} {'accuracy':>8} "
        f"{'AUC':>6} {'labels':>6}  anomalies\n"
    )
    for index, row in enumerate(rows):
        at = row.window_start
        drifted = [
            (f, r.score)
            for f, by in psi.items()
            if (r := by.get(at)) and r.status == "drift" and f != "score"
        ]
        flagged = sorted(a.series for a in anomalies if a.window_start == at)
        accuracy = metrics["accuracy"].get(at)
        auc = metrics["roc_auc"].get(at)
        result.drifted[index] = [f for f, _ in drifted]
        result.accuracy[index] = accuracy
        result.anomalies[index] = flagged
        text = ", ".join(f"{f} {s:.2f}" for f, s in drifted) or "-"
        out.write(
            f"{at:%H:%M:%S}     {row.n_rows:>7,}  {text:<42} {_fmt(accuracy):>8} {_fmt(auc):>6} "
            f"{(row.label_coverage or 0):>6.0%}  {_shorten(flagged)}\n"
        )
    for trigger in fired:
        result.triggers.append(trigger.trigger_id)
        out.write(
            f"\nRetraining trigger {trigger.trigger_id} at window {trigger.window_start:%H:%M:%S}: "
            f"{trigger.reason}; suggested training data "
            f"{trigger.data_start:%H:%M} to {trigger.data_end:%H:%M} UTC\n"
        )
    out.write(
        f"\nDrift: PSI >= 0.2 on the reference's deciles; anomalies: outside mean ± 3σ of earlier "
        f"windows. Results are in {Path(str(sessions.kw['bind'].url.database))}.\n"
    )
    return result


def _shorten(series: list[str], most: int = 3) -> str:
    if not series:
        return "-"
    more = f" (+{len(series) - most} more)" if len(series) > most else ""
    return ", ".join(series[:most]) + more


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
