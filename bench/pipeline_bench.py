"""Throughput, latency and memory of the worker on the local Apache Kafka broker (issue 4).

Every figure comes with its baseline measured in the same run, on the same topic contents:

- a raw aiokafka consumer decoding single-event messages with orjson (in this process);
- a bare Faust agent that only consumes and decodes (``bench/bare_faust.py``, own process);
- the Driftline worker (``driftline worker``, own process), from its first event to the last
  window committed in SQL.

Run with ``make bench-pipeline`` (or ``python -m bench.pipeline_bench --output docs/benchmarks.md``);
``--quick`` runs smaller volumes. It generates its own data: 25 features (20 numeric, 5
categorical), a binary classifier's score, about 600 bytes per event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from aiokafka import AIOKafkaConsumer
from sqlalchemy.orm import Session, sessionmaker

from bench.detectors_bench import write_section as write_named
from driftline.local import kafka
from driftline.local.kafka import create_topics
from driftline.local.kafka_client import delete_topics_with_prefix
from driftline.local.worker_process import WorkerProcess, produce, wait_for
from driftline.producer import label_partition
from registration import register_model
from schemas.model_config import ModelConfig
from storage import history
from storage.db import make_engine, session_factory
from storage.migrate import upgrade
from stream_app.label_join import join_partition

PARTITIONS = 4
WINDOW = 60
PER_WINDOW = 5000
# Envelope runs put more events in a window: a model sending 200,000 predictions/s fills a
# one-minute window with 12 million, and the per-window work (merge, evaluation, one SQL
# transaction: ~10-25 ms) should weigh as little as it does in production. The figure with
# PER_WINDOW is reported beside it, so the cost of small windows is visible too.
ENVELOPE_PER_WINDOW = 100_000
# The same holds for single events (a model sending 100,000 events/s fills a one-minute
# window with 6 million): target 1's headline run uses ENVELOPE_PER_WINDOW too, and the
# same messages in PER_WINDOW windows are reported beside it.
SINGLE_PER_WINDOW = ENVELOPE_PER_WINDOW
# DRIFTLINE_BATCH_MAX counts messages: 5,000 single events are ~3 MB, 5,000 envelopes of 500
# records ~1.3 GB (and Faust buffers two batches ahead). Envelope runs take 200 at a time;
# single events through Faust's per-message path 5,000, and through whole fetches the
# worker's default.
SINGLE_BATCH_MAX = 5000
SLOW_PATH_MESSAGES = 150_000
ENVELOPE_BATCH_MAX = 200
# Target 2's configuration of the producer helper's envelopes without a label task.
HELPER_BASELINE = "without a task, producer helper's envelopes"
START = 1_767_225_600.0
NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
MODEL_ID = "bench"


def say(text: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def config(task: bool = True, horizon: int = 3600) -> ModelConfig:
    data: dict[str, Any] = {
        "model_id": MODEL_ID,
        "window_seconds": WINDOW,
        "allowed_lateness_seconds": 5,
        "label_horizon_seconds": horizon,
        "features": {
            **dict.fromkeys(NUMERIC, "numeric"),
            **dict.fromkeys(CATEGORICAL, "categorical"),
        },
    }
    if task:
        data.update(task="binary", classes=["0", "1"])
    return ModelConfig.from_dict(data)


def reference(rows: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({name: rng.normal(i, 1 + i / 10, rows) for i, name in enumerate(NUMERIC)})
    for name in CATEGORICAL:
        frame[name] = rng.choice(CATEGORIES, size=rows)
    frame["score"] = rng.random(rows)
    frame["prediction"] = np.where(frame["score"] >= 0.5, "1", "0")
    return frame


def records(count: int, seed: int = 2, per_window: int = PER_WINDOW) -> Iterator[dict[str, Any]]:
    """``count`` prediction records, ``per_window`` per one-minute window, in time order."""
    rng = np.random.default_rng(seed)
    chunk = 10_000
    for offset in range(0, count, chunk):
        n = min(chunk, count - offset)
        numbers = np.round(rng.normal(np.arange(20), 1 + np.arange(20) / 10, (n, 20)), 4)
        cats = rng.integers(0, len(CATEGORIES), (n, 5))
        scores = np.round(rng.random(n), 4)
        for i in range(n):
            index = offset + i
            features: dict[str, Any] = dict(zip(NUMERIC, numbers[i].tolist(), strict=True))
            features.update(
                {name: CATEGORIES[c] for name, c in zip(CATEGORICAL, cats[i], strict=True)}
            )
            yield {
                "prediction_id": f"p{index}",
                "timestamp": START
                + (index // per_window) * WINDOW
                + (index % per_window) * WINDOW / per_window,
                "features": features,
                "prediction": "1" if scores[i] >= 0.5 else "0",
                "score": float(scores[i]),
            }


def single_messages(
    topic: str, count: int, per_window: int = PER_WINDOW
) -> Iterator[tuple[str, bytes | None, bytes]]:
    for record in records(count, per_window=per_window):
        event = {"model_id": MODEL_ID, "model_version": "v1", **record}
        yield topic, record["prediction_id"].encode(), orjson.dumps(event)


def envelope_messages(
    topic: str, count: int, size: int, per_window: int = PER_WINDOW
) -> Iterator[tuple[str, bytes | None, bytes]]:
    batch: list[dict[str, Any]] = []
    for record in records(count, per_window=per_window):
        batch.append(record)
        if len(batch) == size:
            yield (
                topic,
                batch[0]["prediction_id"].encode(),
                orjson.dumps({"model_id": MODEL_ID, "model_version": "v1", "records": batch}),
            )
            batch = []
    if batch:
        yield (
            topic,
            batch[0]["prediction_id"].encode(),
            orjson.dumps({"model_id": MODEL_ID, "model_version": "v1", "records": batch}),
        )


def grouped_envelope_messages(
    topic: str, count: int, size: int, per_window: int = PER_WINDOW
) -> Iterator[tuple[str, bytes | None, bytes]]:
    """Envelopes as the producer helper makes them: each of one partition's ids, keyed by
    the first (so sent to that partition, where the worker joins them)."""
    pending: dict[int, list[dict[str, Any]]] = {}

    def envelope(batch: list[dict[str, Any]]) -> tuple[str, bytes | None, bytes]:
        value = orjson.dumps({"model_id": MODEL_ID, "model_version": "v1", "records": batch})
        return topic, batch[0]["prediction_id"].encode(), value

    for record in records(count, per_window=per_window):
        batch = pending.setdefault(join_partition(record["prediction_id"], PARTITIONS), [])
        batch.append(record)
        if len(batch) == size:
            yield envelope(batch)
            batch.clear()
    for batch in pending.values():
        if batch:
            yield envelope(batch)


def closers(topic: str, after: float) -> list[tuple[str, bytes | None, bytes]]:
    """One event per partition far enough ahead that every earlier window can close."""
    out: list[tuple[str, bytes | None, bytes]] = []
    for partition in range(PARTITIONS):
        key = next(
            f"close-{partition}-{i}"
            for i in range(10_000)
            if join_partition(f"close-{partition}-{i}", PARTITIONS) == partition
        )
        event = {
            "model_id": MODEL_ID,
            "prediction_id": key,
            "timestamp": after,
            "features": {},
            "prediction": "0",
            "score": 0.5,
        }
        out.append((topic, key.encode(), orjson.dumps(event)))
    return out


async def raw_consume_rate(bootstrap: str, topic: str, count: int) -> float:
    """Messages per second a plain aiokafka consumer reads and decodes with orjson."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
    )
    await consumer.start()
    try:
        seen, first = 0, 0.0
        deadline = time.monotonic() + 300
        while seen < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for items in batch.values():
                for item in items:
                    orjson.loads(item.value)
                first = first or time.time()
                seen += len(items)
        return seen / (time.time() - first)
    finally:
        with contextlib.suppress(asyncio.CancelledError):  # aiokafka's group-less stop
            await consumer.stop()


def bare_faust_rate(bootstrap: str, topic: str, count: int, workdir: Path) -> dict[str, float]:
    out = workdir / f"bare-{uuid.uuid4().hex[:6]}.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.bare_faust",
            "--broker",
            bootstrap,
            "--topic",
            topic,
            "--partitions",
            str(PARTITIONS),
            "--count",
            str(count),
            "--out",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(out.exists, 600, "the bare Faust agent to read every message", interval=0.5)
    finally:
        process.kill()
        process.wait(30)
    result = json.loads(out.read_text())
    return {
        "messages_per_s": result["messages"] / (result["last"] - result["first"]),
        "records_per_s": result["records"] / (result["last"] - result["first"]),
    }


def registered_database(
    workdir: Path, prefix: str, model: ModelConfig
) -> tuple[str, sessionmaker[Session]]:
    """A fresh SQLite database of the run with ``model`` registered on the bench reference."""
    url = f"sqlite+pysqlite:///{workdir / (prefix + 'db')}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        register_model(session, model, reference())
    return url, sessions


def driftline_run(
    bootstrap: str,
    workdir: Path,
    prefix: str,
    messages: list[tuple[str, bytes | None, bytes]],
    n_predictions: int,
    task: bool,
    samples_at: tuple[int, ...] = (),
    workers: int = 1,
    per_window: int = PER_WINDOW,
    batch_max: int | None = ENVELOPE_BATCH_MAX,
    settings: dict[str, str] | None = None,
    horizon: int = 3600,
) -> dict[str, Any]:
    """Run worker(s) over a pre-filled topic; events/s from first event to last window in SQL."""
    url, sessions = registered_database(workdir, prefix, config(task, horizon))
    stats_files = [workdir / f"{prefix}stats{i}.json" for i in range(workers)]
    processes = [
        WorkerProcess(
            bootstrap,
            url,
            prefix,
            PARTITIONS,
            workdir / f"{prefix}{i}",
            {
                "STATS_FILE": str(stats_files[i]),
                # None: the worker's own default
                **({"BATCH_MAX": str(batch_max)} if batch_max is not None else {}),
                **(settings or {}),
            },
            app_id=f"{prefix}app",  # one consumer group: the workers share the partitions
        )
        for i in range(workers)
    ]
    processes[0].create_topics()
    topic = processes[0].topics.predictions
    say(f"producing {len(messages):,} messages ({n_predictions:,} predictions)")
    asyncio.run(produce(bootstrap, [(topic, k, v) for _, k, v in messages]))
    last_window_start = START + ((n_predictions - 1) // per_window) * WINDOW
    asyncio.run(produce(bootstrap, closers(topic, last_window_start + 3 * WINDOW)))
    n_windows = (n_predictions - 1) // per_window + 1
    rss: dict[int, int] = {}
    try:
        # All at once: started one after another, the first read alone until the next had
        # started and the group had rebalanced, and a two-worker run measured mostly that.
        for process in processes:
            process.launch()
        for process in processes:
            process.wait_ready(timeout=120)

        def stats() -> dict[str, Any]:
            merged: dict[str, Any] = {"predictions": 0, "first_event_at": math.inf, "rss_bytes": 0}
            for path in stats_files:
                try:
                    one = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                merged["predictions"] += one["predictions"]
                merged["rss_bytes"] += one["rss_bytes"]
                if one["first_event_at"]:
                    merged["first_event_at"] = min(merged["first_event_at"], one["first_event_at"])
            return merged

        def done() -> bool:
            current = stats()
            for mark in samples_at:
                if mark not in rss and current["predictions"] >= mark:
                    rss[mark] = int(current["rss_bytes"])
            with sessions() as session:
                rows = history.window_history(session, MODEL_ID, None, None)
            final = [r for r in rows if r.finalized_at is not None and r.n_rows > PARTITIONS]
            return len(final) >= n_windows

        wait_for(done, 1800, f"{n_windows} final windows", interval=0.5)
        current = stats()
        with sessions() as session:
            rows = history.window_history(session, MODEL_ID, None, None)
        finished = max(r.finalized_at.timestamp() for r in rows if r.finalized_at is not None)
        elapsed = finished - current["first_event_at"]
        return {
            "predictions_per_s": n_predictions / elapsed,
            "elapsed_s": elapsed,
            "rss_bytes": current["rss_bytes"],
            "rss_at": rss,
            "windows": n_windows,
            "per_window": per_window,
            "workers": workers,
        }
    finally:
        for process in processes:
            process.stop()


def finalization_latency(bootstrap: str, workdir: Path, prefix: str, windows: int) -> list[float]:
    """Seconds from the moment a window can close (every partition's watermark past its end
    plus lateness) to its row being visible in SQL, polled every 10 ms."""
    url, sessions = registered_database(workdir, prefix, config(False))
    worker = WorkerProcess(bootstrap, url, prefix, PARTITIONS, workdir / prefix)
    worker.create_topics()
    worker.start(ready_timeout=120)
    topic = worker.topics.predictions
    all_records = list(records(windows * 200))
    latencies = []
    try:
        for w in range(windows):
            chunk = all_records[w * 200 : (w + 1) * 200]
            for record in chunk:  # 200 events, then the closers, per minute of event time
                record["timestamp"] = START + w * WINDOW + (record["timestamp"] - START) % WINDOW
            batch = [
                (topic, r["prediction_id"].encode(), orjson.dumps({"model_id": MODEL_ID, **r}))
                for r in chunk
            ]
            asyncio.run(produce(bootstrap, batch + closers(topic, START + (w + 1) * WINDOW + 5)))
            ready_at = time.time()
            start = START + w * WINDOW

            def final(start: float = start) -> bool:
                with sessions() as session:
                    return any(
                        r.window_start.timestamp() == start and r.finalized_at
                        for r in history.window_history(session, MODEL_ID, None, None)
                    )

            wait_for(final, 30, f"window {w} to be final", interval=0.01)
            latencies.append(time.time() - ready_at)
    finally:
        worker.stop()
    return latencies


def label_messages(topic: str, chosen: list[int], form: str) -> list[tuple[str, bytes, bytes]]:
    """Labels for predictions ``p{i}``: one a message, or envelopes of up to 500 per
    partition they join on (keyed by a member's id, so the default partitioner agrees)."""
    if form == "single labels":
        return [
            (
                topic,
                f"p{i}".encode(),
                orjson.dumps(
                    {
                        "model_id": MODEL_ID,
                        "prediction_id": f"p{i}",
                        "label": "1",
                        "timestamp": START,
                    }
                ),
            )
            for i in chosen
        ]
    groups: dict[int, list[str]] = {}
    for i in chosen:
        groups.setdefault(label_partition(f"p{i}", PARTITIONS), []).append(f"p{i}")
    found = []
    for ids in groups.values():
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            records = [{"prediction_id": p, "label": "1", "timestamp": START} for p in part]
            value = orjson.dumps({"model_id": MODEL_ID, "records": records})
            found.append((topic, part[0].encode(), value))
    return found


def label_join(
    bootstrap: str,
    workdir: Path,
    prefix: str,
    outstanding: int,
    labels: int,
    forms: tuple[str, ...] = ("single labels",),
    rounds: int = 1,
) -> dict[str, Any]:
    """Target 6: memory with ``outstanding`` predictions awaiting labels, then the join rate
    of each form: the median of ``rounds`` rounds, the forms taking turns in each (a form's
    few seconds alone moved by a factor of two between runs of the same code)."""
    week = 7 * 24 * 3600  # every summary stays within the label horizon
    url, _ = registered_database(workdir, prefix, config(True, horizon=week))
    stats_file = workdir / f"{prefix}stats.json"
    worker = WorkerProcess(
        bootstrap,
        url,
        prefix,
        PARTITIONS,
        workdir / prefix,
        # The worker's own batch size: with whole fetches a batch is a few partition
        # fetches whatever it counts (envelopes in flight stay bounded), and 200 made single
        # labels pay a flush, three awaited round trips, every 200 labels.
        {"STATS_FILE": str(stats_file)},
    )
    worker.create_topics()
    topics = worker.topics

    def stats() -> dict[str, Any]:
        try:
            return dict(json.loads(stats_file.read_text()))
        except (OSError, ValueError):
            return {}

    say(f"label join: {outstanding:,} predictions in envelopes, then {labels:,} labels")
    asyncio.run(
        produce(
            bootstrap,
            # A generator: ten million predictions are 5 GB of messages.
            ((topics.predictions, k, v) for _, k, v in envelope_messages("x", outstanding, 500)),
        )
    )
    worker.start(ready_timeout=120)
    try:
        early = outstanding // 10
        rss_early = wait_for(
            lambda: stats().get("rss_bytes") if stats().get("predictions", 0) >= early else None,
            900,
            f"{early:,} predictions",
        )
        # The RSS curve: at each tenth of the outstanding predictions.
        marks = [outstanding * k // 10 for k in range(1, 11)]
        curve: dict[int, int] = {}

        def every_prediction() -> bool:
            now = stats()
            for mark in marks:
                if mark not in curve and now.get("predictions", 0) >= mark:
                    curve[mark] = int(now["rss_bytes"])
            return bool(now.get("predictions", 0) >= outstanding)

        wait_for(every_prediction, 3600, "every prediction", interval=0.5)
        time.sleep(5)  # forwarded summaries land on their partitions
        full = stats()
        rss_full = full["rss_bytes"]
        # And once the buffers of the arrival are given back: the state alone.
        time.sleep(25)
        full = stats()
        rss_settled = full["rss_bytes"]
        on_disk = changelog_bytes(worker.app_id, "stage1-joins")
        rng = np.random.default_rng(3)
        chosen = rng.choice(outstanding, size=labels, replace=False).tolist()
        # Each form gets its share of the labels, in turn, on the same worker and state.
        runs: dict[str, list[float]] = {form: [] for form in forms}
        producing: dict[str, list[float]] = {form: [] for form in forms}
        share = labels // (len(forms) * rounds)
        turns = [form for _ in range(rounds) for form in forms]
        for index, form in enumerate(turns):
            part = chosen[index * share : (index + 1) * share]
            batch = label_messages(topics.labels, part, form)
            target = (index + 1) * share
            # Each form starts on a worker done with the one before: the quality revisions
            # its labels called for would otherwise be counted against this form.
            wait_until_settled(stats)
            say(
                f"label join: {share:,} labels as {form} ({len(batch):,} messages), "
                f"round {index // len(forms) + 1} of {rounds}"
            )
            base = int(stats().get("joined", 0))
            assert worker.process is not None
            with frozen(worker.process):
                began = time.time()
                asyncio.run(produce(bootstrap, batch))
                producing[form].append(time.time() - began)
            sent_at = time.time()
            say(f"label join: produced in {producing[form][-1]:.1f} s, the worker frozen")
            runs[form].append(joined_rate(stats, (sent_at, base), target, 900))
        rates = {form: float(np.median(found)) for form, found in runs.items()}
        return {
            "rss_early": rss_early,
            "rss_full": rss_full,
            "rss_settled": rss_settled,
            "early": early,
            "outstanding": outstanding,
            "labels": labels,
            "join_rate": rates[forms[0]],
            "rates": rates,
            "label_runs": runs,
            "label_share": share,
            "label_produce_seconds": producing,
            "rss_curve": curve,
            "changelog_bytes": on_disk,
            "join_memory_bytes": full.get("join_memory_bytes", 0),
            "join_disk_bytes": full.get("join_disk_bytes", 0),
        }
    finally:
        worker.stop()


@contextlib.contextmanager
def frozen(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """The worker stopped (SIGSTOP) while its labels are produced, so that it then reads a
    pre-filled topic, as the predictions benchmarks do by starting the worker after
    filling theirs. Produced while the worker read them, the labels came no faster than
    the bench's one Python producer sends them on a machine it shares with the worker and
    the broker (~30,000 single messages/s), and that is what the rate measured. A few
    seconds frozen is well inside the group's session timeout (60 s)."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def joined_rate(
    stats: Callable[[], dict[str, Any]], sent: tuple[float, int], goal: int, timeout: float
) -> float:
    """Labels joined a second by the worker's own clock (its stats file, written every
    0.1 s): from the first sample past the count when the worker could begin (``sent``:
    that time and count; samples written before it are stale) to the moment the count
    crossed ``goal``, interpolated between the samples around it."""
    start: tuple[float, int] | None = None
    previous: tuple[float, int] | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = stats()
        sample = (float(now.get("at", 0.0)), int(now.get("joined", 0)))
        if sample[0] < sent[0] or (previous is not None and sample[0] <= previous[0]):
            time.sleep(0.02)  # not written since the worker could begin, or since the last
            continue
        if sample[1] >= goal:
            if previous is None or previous[1] >= goal:  # joined before a sample was read
                return (goal - sent[1]) / max(sample[0] - sent[0], 1e-9)
            (t0, j0), (t1, j1) = previous, sample
            crossed = t0 + (goal - j0) / (j1 - j0) * (t1 - t0)
            # All within one tick: from the last sample before any joined.
            begin = start if start is not None else previous
            return (goal - begin[1]) / max(crossed - begin[0], 1e-9)
        if start is None and sample[1] > sent[1]:
            start = sample
        previous = sample
        time.sleep(0.02)
    raise TimeoutError(f"{goal:,} labels not joined within {timeout:.0f} s")


def wait_until_settled(
    stats: Callable[[], dict[str, Any]], quiet_seconds: float = 3.0, timeout: float = 180.0
) -> None:
    """Wait until the worker's quality revisions stopped (none for ``quiet_seconds``)."""
    last, since = None, time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        now = stats().get("quality_revisions")
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return
        time.sleep(0.5)
    say(f"the worker still revised windows after {timeout:.0f} s; measuring anyway")


def changelog_bytes(app_id: str, table: str) -> int:
    """Bytes the local broker keeps on disk for a table's changelog (all its partitions)."""
    data = kafka.KafkaConfig.from_env(None).data_dir
    return sum(
        path.stat().st_size
        for directory in data.glob(f"*{app_id}-{table}-changelog-*")
        for path in directory.glob("*.log")
    )


def label_task_rates(
    bootstrap: str, workdir: Path, prefix: str, n: int, repeats: int = 3
) -> dict[str, Any]:
    """Target 2: enveloped predictions of a binary model with a one-week label horizon (each
    summary kept for the join), against the same traffic without a label task.

    Each configuration runs ``repeats`` times, in a rotated order (ABC, BCA, CAB): the same
    code gave rates 1.5x apart from one minute to the next on this shared machine, and a
    baseline that always ran first, on the freshest broker, had an edge. The figures are
    the medians; every run is kept, in the order they ran.
    """
    mixed = list(envelope_messages("unused", n, 500, per_window=ENVELOPE_PER_WINDOW))
    grouped = list(grouped_envelope_messages("unused", n, 500, per_window=ENVELOPE_PER_WINDOW))
    configurations = (
        ("without a task", False, mixed, 1),
        # The helper's envelopes against the same envelopes without a task: its own baseline.
        (HELPER_BASELINE, False, grouped, 1),
        ("label task", True, mixed, 1),
        ("label task, producer helper's envelopes", True, grouped, 1),
        # A report, not the target (which is per worker): what a second process adds.
        ("label task, two worker processes", True, mixed, 2),
    )
    runs: dict[str, list[float]] = {name: [] for name, _, _, _ in configurations}
    order: list[str] = []
    for repeat in range(repeats):
        for index in range(len(configurations)):
            name, task, envelopes, workers = configurations[(index + repeat) % len(configurations)]
            say(f"envelopes of 500, {n:,} predictions, {name} ({repeat + 1} of {repeats})")
            run = driftline_run(
                bootstrap,
                workdir,
                f"{prefix}{repeat}{index}.",
                envelopes,
                n,
                task=task,
                workers=workers,
                per_window=ENVELOPE_PER_WINDOW,
                horizon=7 * 24 * 3600,
            )
            runs[name].append(run["predictions_per_s"])
            order.append(name)
    rates = {name: statistics.median(values) for name, values in runs.items()}
    return {"predictions": n, "rates": rates, "runs": runs, "order": order}


def machine() -> str:
    cpu = "unknown cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    import aiokafka
    import faust

    return (
        f"{cpu}, 2 cores; Python {platform.python_version()}, faust-streaming {faust.__version__}, "
        f"aiokafka {aiokafka.__version__}, Apache Kafka {kafka.KAFKA_VERSION} (KRaft, loopback)"
    )


def run_single_event_figures(
    bootstrap: str,
    workdir: Path,
    prefix: str,
    singles: int,
    results: dict[str, Any],
    per_window: int = PER_WINDOW,
) -> None:
    """Target 1: the worker against a bare Faust agent (and raw aiokafka) on the same topic.

    The worker reads events ``per_window`` to a window; with more than PER_WINDOW, the
    whole-fetch path runs again with PER_WINDOW (``driftline_single_small_windows``)."""
    baseline_topic = prefix + "baseline.single"
    create_topics(bootstrap, [baseline_topic], PARTITIONS)
    single = list(single_messages(baseline_topic, singles))
    results["message_bytes"] = statistics.mean(len(v) for _, _, v in single[:1000])
    say(f"producing {singles:,} single-event messages for the baselines")
    asyncio.run(produce(bootstrap, single))
    say("baseline: raw aiokafka consume + orjson decode")
    results["raw_single"] = asyncio.run(raw_consume_rate(bootstrap, baseline_topic, singles))
    # The per-message paths run at a few thousand a second: fewer messages give them a
    # stable rate (tens of seconds) without a run of many minutes.
    slow = min(singles, SLOW_PATH_MESSAGES)
    results["slow_singles"] = slow
    say(f"baseline: bare Faust agent consume + decode ({slow:,} messages)")
    results["bare_single"] = bare_faust_rate(bootstrap, baseline_topic, slow, workdir)
    paths = [
        ("driftline_single", "s.", "true", "whole fetches", singles, per_window),
        (
            "driftline_single_per_message",
            "m.",
            "false",
            "Faust's per-message path",
            slow,
            per_window,
        ),
    ]
    if per_window != PER_WINDOW:
        small = (
            "driftline_single_small_windows",
            "w.",
            "true",
            "whole fetches",
            singles,
            PER_WINDOW,
        )
        paths.append(small)
    for key, suffix, whole_fetches, path, count, window in paths:
        say(
            f"Driftline worker, one event per message, {path} ({count:,} messages, "
            f"{window:,} a window)"
        )
        messages = single[:count] if window == PER_WINDOW else None
        results[key] = driftline_run(
            bootstrap,
            workdir,
            prefix + suffix,
            messages or list(single_messages("unused", count, per_window=window)),
            count,
            task=False,
            # Whole fetches with the worker's default batch (20,000 records).
            batch_max=SINGLE_BATCH_MAX if whole_fetches == "false" else None,
            per_window=window,
            settings={"WHOLE_FETCHES": whole_fetches},
        )


def run_envelope_ceilings(
    bootstrap: str,
    workdir: Path,
    prefix: str,
    envelopes: list[tuple[str, bytes | None, bytes]],
    results: dict[str, Any],
) -> None:
    """What consuming and decoding the envelopes alone costs (no windows, no SQL)."""
    topic = prefix + "baseline.envelopes"
    create_topics(bootstrap, [topic], PARTITIONS)
    asyncio.run(produce(bootstrap, [(topic, k, v) for _, k, v in envelopes]))
    say("ceiling: raw aiokafka consume + orjson decode of the envelopes")
    per_message = statistics.mean(len(orjson.loads(v)["records"]) for _, _, v in envelopes[:10])
    raw = asyncio.run(raw_consume_rate(bootstrap, topic, len(envelopes)))
    results["raw_envelope_records"] = raw * per_message
    say("ceiling: bare Faust agent consume + orjson decode of the envelopes")
    results["bare_envelope"] = bare_faust_rate(bootstrap, topic, len(envelopes), workdir)


def clean_up(broker: Any, prefix: str) -> None:
    """Delete the run's topics (gigabytes of envelopes), then stop a broker we started."""
    try:
        deleted = delete_topics_with_prefix(broker.bootstrap, prefix)
        say(f"deleted {deleted} topics of this run")
    except Exception as error:  # the figures matter more than the clean-up
        say(
            f"could not delete this run's topics ({error}); `driftline local down` and remove var/kafka/data to reclaim the disk"
        )
    if broker.started:
        kafka.stop(report=say)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes (a smoke run)")
    parser.add_argument(
        "--memory", action="store_true", help="the memory run only: 5,000,000 predictions"
    )
    parser.add_argument(
        "--join", action="store_true", help="the label-join run only: 1,000,000 outstanding"
    )
    parser.add_argument(
        "--outstanding",
        type=int,
        help="--join: this many outstanding predictions (10,000,000 for the memory target)",
    )
    parser.add_argument(
        "--singles",
        action="store_true",
        help="the single-event figures only (whole fetches, Faust's path, the baselines)",
    )
    parser.add_argument(
        "--single-events",
        type=int,
        help="--singles: this many single-event messages (default 1,000,000: ~10 s at the "
        "target, so the last window's closing weighs little)",
    )
    parser.add_argument(
        "--output", type=Path, help="Markdown file whose pipeline section to rewrite"
    )
    args = parser.parse_args(argv)
    singles = 30_000 if args.quick else 150_000
    if args.singles:
        singles = args.single_events or (30_000 if args.quick else 1_000_000)
    # 4 M predictions: ~20 s at the target rate, so the second or so a run spends closing
    # its last window weighs little in the end-to-end figure.
    enveloped = 5_000_000 if args.memory else (200_000 if args.quick else 4_000_000)
    prefix = f"{'join' if args.join else 'bench'}{uuid.uuid4().hex[:6]}."
    broker = kafka.start(report=say)
    results: dict[str, Any] = {"singles": singles, "enveloped": enveloped}
    if args.join:
        try:
            with tempfile.TemporaryDirectory() as directory:
                outstanding = args.outstanding or (100_000 if args.quick else 1_000_000)
                results["label_task"] = label_task_rates(
                    broker.bootstrap,
                    Path(directory),
                    prefix + "lt",
                    min(2 * outstanding, 2_000_000),
                )
                results["join"] = label_join(
                    # Labels for 60 % of the predictions, all delayed past the predictions.
                    broker.bootstrap,
                    Path(directory),
                    prefix,
                    outstanding,
                    min(outstanding * 6 // 10, 600_000),
                    ("single labels", "label envelopes of 500"),
                    rounds=3,
                )
        finally:
            clean_up(broker, prefix)
        print(json.dumps(results, indent=2, default=str))
        if args.output:
            # The 10-million run (the memory target) keeps a section of its own.
            outstanding = results["join"]["outstanding"]
            name = "join" if outstanding == 1_000_000 else f"join-{outstanding}"
            write_named(args.output, name, render_join(results["join"], results["label_task"]))
        return 0
    if args.singles:
        try:
            with tempfile.TemporaryDirectory() as directory:
                run_single_event_figures(
                    broker.bootstrap,
                    Path(directory),
                    prefix,
                    singles,
                    results,
                    per_window=SINGLE_PER_WINDOW,
                )
        finally:
            clean_up(broker, prefix)
        print(json.dumps(results, indent=2, default=str))
        if args.output:
            write_named(args.output, "singles", render_singles(results))
        return 0
    try:
        with tempfile.TemporaryDirectory() as directory:
            workdir = Path(directory)
            if not args.memory:
                run_single_event_figures(broker.bootstrap, workdir, prefix, singles, results)
            say(f"Driftline worker, envelopes of 500 records, {ENVELOPE_PER_WINDOW:,} per window")
            envelopes = list(
                envelope_messages("unused", enveloped, 500, per_window=ENVELOPE_PER_WINDOW)
            )
            results["driftline_envelope"] = driftline_run(
                broker.bootstrap,
                workdir,
                prefix + "e.",
                envelopes,
                enveloped,
                task=False,
                # RSS every tenth of the run: the memory section shows the whole curve.
                samples_at=tuple(range(enveloped // 10, enveloped + 1, enveloped // 10)),
                per_window=ENVELOPE_PER_WINDOW,
            )
            if not args.memory:
                run_envelope_ceilings(broker.bootstrap, workdir, prefix, envelopes, results)
                say("Driftline, two worker processes (one consumer group), envelopes")
                results["driftline_two"] = driftline_run(
                    broker.bootstrap,
                    workdir,
                    prefix + "two.",
                    envelopes,
                    enveloped,
                    False,
                    workers=2,
                    per_window=ENVELOPE_PER_WINDOW,
                )
                del envelopes
                say(f"Driftline worker, envelopes, small windows of {PER_WINDOW:,} events")
                results["driftline_envelope_small"] = driftline_run(
                    broker.bootstrap,
                    workdir,
                    prefix + "es.",
                    list(envelope_messages("unused", enveloped, 500)),
                    enveloped,
                    task=False,
                )
                say("finalization latency, one window at a time")
                windows = 20 if args.quick else 40
                results["latency"] = finalization_latency(
                    broker.bootstrap, workdir, prefix + "lat.", windows
                )
    finally:
        clean_up(broker, prefix)
    print(json.dumps(results, indent=2, default=str))
    if args.output and args.memory:
        write_named(args.output, "memory", render_memory(results))
    elif args.output:
        write_named(args.output, "pipeline", render(results))
    return 0


def _prediction_verdict(
    with_task: float, without: float, helper: float, helper_without: float
) -> str:
    """Target 2's verdict, each kind of envelope against the same envelopes without a task;
    saying which met it when only the producer helper's (grouped by join partition, so no
    summary is forwarded) did."""

    def meets(rate: float, baseline: float) -> bool:
        return rate >= 150_000 and rate >= 0.6 * baseline

    if meets(with_task, without):
        return "**met**"
    if meets(helper, helper_without):
        return (
            f"**met** by the producer helper's envelopes ({helper / helper_without:.0%}); "
            f"not by envelopes of any producer ({with_task:,.0f}, {with_task / without:.0%})"
        )
    return "**not met**"


def render_join(j: dict[str, Any], task: dict[str, Any]) -> str:
    growth = (j["rss_full"] - j["rss_early"]) / 2**20
    per = (j["rss_full"] - j["rss_early"]) / (j["outstanding"] - j["early"])
    with_task, without = task["rates"]["label task"], task["rates"]["without a task"]
    helper = task["rates"]["label task, producer helper's envelopes"]
    two = task["rates"].get("label task, two worker processes")
    # Results recorded before the helper's envelopes had a baseline of their own: the other.
    helper_has_own = HELPER_BASELINE in task["rates"]
    helper_without = task["rates"][HELPER_BASELINE] if helper_has_own else without
    verdict = _prediction_verdict(with_task, without, helper, helper_without)
    runs: dict[str, list[float]] = task.get("runs", {})
    repeats = max((len(v) for v in runs.values()), default=1)
    median = f", median of {repeats} runs" if repeats > 1 else ""
    order: list[str] = task.get("order", [])
    runs_head = " each run (#: its place among all the runs) |" if runs else ""
    runs_rule = "---|" if runs else ""

    def runs_of(name: str) -> str:
        if not runs:
            return ""
        places = [i + 1 for i, ran in enumerate(order) if ran == name]
        shown = [f"{rate:,.0f} (#{place})" for rate, place in zip(runs[name], places, strict=True)]
        return " " + ", ".join(shown) + " |"

    enveloped_labels = j["rates"].get("label envelopes of 500", 0)
    labels_met = enveloped_labels >= 100_000 and j["join_rate"] >= 50_000
    label_runs: dict[str, list[float]] = j.get("label_runs", {})
    turns = max((len(found) for found in label_runs.values()), default=1)

    def label_runs_of(form: str) -> str:
        found = label_runs.get(form, [])
        if len(found) < 2:
            return ""
        return " (rounds: " + ", ".join(f"{rate:,.0f}" for rate in found) + ")"

    how_labels = (
        f"the median of {turns} rounds in which the two forms took turns, "
        f"{j.get('label_share', 0):,} labels a form a round"
        if turns > 1
        else "half the labels each,\none after the other"
    )
    singles_sent = j.get("label_produce_seconds", {}).get("single labels", [])
    sending = float(np.median(singles_sent)) if singles_sent else 0.0
    produced = (
        f" (the bench's one Python producer took {sending:.1f} s for a round of "
        f"single labels: {j.get('label_share', 0) / sending:,.0f} a second, "
        "on the cores the worker and the broker use)"
        if singles_sent
        else ""
    )
    curve = ", ".join(
        f"{int(n) / 1e6:g} M: {rss / 2**20:,.0f} MB" for n, rss in sorted(j["rss_curve"].items())
    )
    settled = j.get("rss_settled", j["rss_full"])
    whole = settled / j["outstanding"]
    rss_verdict = (
        ("met" if whole <= 120 else "not met")
        if j["outstanding"] >= 10_000_000
        else "measured at 10 million only"
    )
    helper_baseline_row = (
        f"| no label task, the producer helper's envelopes (their baseline) | "
        f"{helper_without:,.0f} |{runs_of(HELPER_BASELINE)}\n"
        if helper_has_own
        else ""
    )
    helper_of = "their baseline" if helper_has_own else "the baseline"
    two_row = (
        f"| the label task's envelopes, two worker processes in one group (a report: the target "
        f"is per worker) | {two:,.0f} ({two / with_task:.2f}× one worker) |"
        f"{runs_of('label task, two worker processes')}\n"
        if two is not None
        else ""
    )
    command = "python -m bench.pipeline_bench --join"
    if j["outstanding"] != 1_000_000:
        command += f" --outstanding {j['outstanding']}"
    return f"""### Label join: {j["outstanding"]:,} outstanding predictions (issues 4 and 12)

`{command} --output docs/benchmarks.md` on {machine()}.

**Enveloped predictions with a label task** (issue 12, target 2): worker end to end, first
event to last window in SQL, {task["predictions"]:,} predictions in envelopes of 500 keyed by
their first id (any producer's), the same messages for both models, and then the same
predictions as the producer helper envelopes them:

| model | predictions/s{median} |{runs_head}
|---|---|{runs_rule}
| no label task (the baseline, same run) | {without:,.0f} |{runs_of("without a task")}
| binary, one-week label horizon (every summary kept for the join) | **{with_task:,.0f}** ({with_task / without:.0%} of the baseline) |{runs_of("label task")}
{helper_baseline_row}| the same, envelopes of one join partition's ids each (as `PredictionProducer` sends them: no summary forwarded) | **{helper:,.0f}** ({helper / helper_without:.0%} of {helper_of}) |{runs_of("label task, producer helper's envelopes")}
{two_row}
Target (one worker): ≥ 150,000 predictions/s and ≥ 60 % of the baseline: {verdict}.

**Outstanding predictions and labels**: the binary model, {j["outstanding"]:,} predictions in
envelopes and no labels yet, then {j["labels"]:,} labels for random ones. Worker RSS
**{j["rss_full"] / 2**20:,.0f} MB** with {j["outstanding"]:,} outstanding predictions, 5 s after
the last, against {j["rss_early"] / 2**20:,.0f} MB at {j["early"]:,} (a change of
**{growth:,.0f} MB**, **{per:,.0f} bytes per outstanding prediction**; the early figure holds
the buffers of predictions still arriving, which the worker gives back every 5 s).
30 s after the last: **{settled / 2**20:,.0f} MB**, all of the worker's RSS over the
outstanding predictions **{whole:,.0f} bytes each** (target ≤ 120 at 10 million:
{rss_verdict}); the highest RSS on the way: {max(j["rss_curve"].values()) / 2**20:,.0f} MB. The summaries' segments: {j.get("join_memory_bytes", 0) / 2**20:,.0f} MB in
memory (`join_memory_mb`, default 256) and {j.get("join_disk_bytes", 0) / 2**20:,.0f} MB in spill files
on the worker's disk ({j.get("join_disk_bytes", 0) / j["outstanding"]:,.0f} bytes per outstanding prediction). Labels
joined at **{j["join_rate"]:,.0f} labels/s**{label_runs_of("single labels")} end to end one label a message (what a label
costs step by step, lookup included: `python -m bench.profile_stage1 --join 1000000`, in the
analysis below), and at **{enveloped_labels:,.0f} labels/s**{label_runs_of("label envelopes of 500")} in
label envelopes of 500 per partition (`PredictionProducer.labels`), {how_labels} on the same worker, each by the worker's clock (its stats file, every
0.1 s) from the first label joined to the last, interpolated between samples. Each round's
labels wait in the topic when the worker starts on them, as the predictions above do: the
worker is frozen (SIGSTOP) while they are produced{produced}. A round begins once the
worker made no quality revision for 3 s (targets 100,000 and 50,000 labels/s: {"met" if labels_met else "not met"}).

RSS by outstanding predictions: {curve}. The join table's changelog on the broker's disk
with every prediction outstanding: {j["changelog_bytes"] / 2**20:,.0f} MB
({j["changelog_bytes"] / j["outstanding"]:,.0f} bytes per outstanding prediction, before
compaction).
"""


def render_memory(r: dict[str, Any]) -> str:
    env = r["driftline_envelope"]
    mark = min(env["rss_at"])
    before, after = env["rss_at"][mark] / 2**20, env["rss_bytes"] / 2**20
    return f"""### Memory: 5,000,000 predictions through one worker (issue 4, target 4)

`python -m bench.pipeline_bench --memory --output docs/benchmarks.md`: envelopes of 500
records, no label join. RSS after {mark:,} predictions: {before:,.0f} MB; after
{r["enveloped"]:,}: {after:,.0f} MB; growth **{after - before:+,.1f} MB** (target ≤ 50 MB:
{"met" if after - before <= 50 else "NOT met"}). Throughput in this run:
{env["predictions_per_s"]:,.0f} predictions/s; `DRIFTLINE_BATCH_MAX={ENVELOPE_BATCH_MAX}`
(Faust fetches two batches ahead, so the batch size in messages bounds the envelopes in
flight). RSS along the run (MB, by predictions processed):
{", ".join(f"{at / 1e6:g} M: {rss / 2**20:,.0f}" for at, rss in sorted(env["rss_at"].items()))}.
"""


def render_singles(r: dict[str, Any]) -> str:
    raw = r["raw_single"]
    bare = r["bare_single"]["messages_per_s"]
    whole = r["driftline_single"]["predictions_per_s"]
    per_message = r["driftline_single_per_message"]["predictions_per_s"]
    met = whole >= 100_000 and whole >= 0.5 * raw
    window = r["driftline_single"]["per_window"]
    small = r.get("driftline_single_small_windows")
    small_row = (
        f"| Driftline, whole fetches, the same messages in windows of {PER_WINDOW:,} events "
        f"({small['windows']:,} windows) | {small['predictions_per_s']:,.0f} | "
        f"{small['predictions_per_s'] / whole:.2f}× windows of {window:,} |\n"
        if small
        else ""
    )
    return f"""### Single-event messages through whole fetches (issue 12, target 1)

`python -m bench.pipeline_bench --singles --output docs/benchmarks.md` on {machine()}:
{r["singles"]:,} single-event messages of about {r["message_bytes"]:.0f} bytes on 4
partitions, one-minute windows of {window:,} events (as the envelope runs: a model sending
100,000 events/s fills one with 6 million), worker end to end (first event to last window
in SQL), each figure against baselines consuming the same topic in the same run.

| what | events/s | against |
|---|---|---|
| raw aiokafka consumer + orjson decode (the client's rate) | {raw:,.0f} | |
| bare Faust agent, consume + decode | {bare:,.0f} | {bare / raw:.0%} of raw aiokafka |
| Driftline, Faust's per-message path (`whole_fetches` off) | {per_message:,.0f} | {per_message / bare:.0%} of bare Faust |
| **Driftline, whole fetches** (`whole_fetches`, the default) | **{whole:,.0f}** | **{whole / raw:.0%} of raw aiokafka**, {whole / per_message:.1f}× the per-message path |
{small_row}
Target: ≥ 100,000 events/s and ≥ 50 % of raw aiokafka: {"met" if met else "**not met**"}.

Whole fetches are the default: the label replay and three-kill crash-replay tests run
through them (`docs/reliability.md`). Faust's consumer thread reads each fetch's record
batches with the native reader into columns (no object per record), and stage 1 takes a
fetch of one model's single events whole, decoded in one native call from the fetched
bytes. The baselines' message counts: {r.get("slow_singles", r["singles"]):,} for the bare
Faust agent and the per-message path (their rates are stable at that length), all
{r["singles"]:,} for raw aiokafka and whole fetches. Small windows cost what each window
costs (merging the partitions' states, evaluating 25 features, one SQL transaction: "Window
size" under "The targets, the gaps, and why"), not what each event costs; what is left of a worker's time
is in the analysis below the tables.
"""


def render(r: dict[str, Any]) -> str:
    bare = r["bare_single"]["messages_per_s"]
    single = r["driftline_single"]["predictions_per_s"]
    per_message = r.get("driftline_single_per_message", {}).get("predictions_per_s", math.nan)
    env = r["driftline_envelope"]
    two = r.get("driftline_two", {})
    raw = r["raw_single"]
    rss = env["rss_at"]
    mark = min(rss) if rss else None
    growth = (env["rss_bytes"] - rss[mark]) / 2**20 if mark else float("nan")
    latency = sorted(r.get("latency", [])) or [float("nan")]
    p50 = latency[len(latency) // 2]
    p99 = latency[min(len(latency) - 1, round(0.99 * (len(latency) - 1)))]
    env_rate = env["predictions_per_s"]
    two_rate = two.get("predictions_per_s", float("nan"))
    raw_env = r.get("raw_envelope_records", float("nan"))
    bare_env = r.get("bare_envelope", {}).get("records_per_s", float("nan"))
    small = r.get("driftline_envelope_small", {})
    small_rate = small.get("predictions_per_s", float("nan"))
    return f"""## Pipeline on the local broker (issue 4)

Measured in one run of `python -m bench.pipeline_bench --output docs/benchmarks.md` on
{machine()}. Events carry 25 features (20 numeric, 5 categorical) and a score, about
{r["message_bytes"]:.0f} bytes each; 4 partitions; one-minute windows of {PER_WINDOW:,} events
for single events and of {ENVELOPE_PER_WINDOW:,} for envelopes (a model at 200,000
predictions/s fills a one-minute window with 12 million; the small-window row shows what
{PER_WINDOW:,}-event windows cost); the model has no task here (no label join), so the
figures are the feature path.

| what | figure | baseline in the same run | ratio | target | met |
|---|---|---|---|---|---|
| one event per message, worker end to end (first event to last window in SQL), whole fetches | {single:,.0f} events/s | raw aiokafka + orjson, single events: {raw:,.0f} msg/s | {single / raw:.0%} | ≥ 100,000/s and ≥ 50 % | {"yes" if single >= 100_000 and single >= 0.5 * raw else "no"} |
| the same through Faust's per-message path (`whole_fetches` off) | {per_message:,.0f} events/s | bare Faust agent, consume + decode: {bare:,.0f} msg/s; whole fetches: {single:,.0f}/s | {per_message / bare:.0%} of bare Faust; whole fetches {single / per_message:.1f}× | report | |
| envelopes of 500 records, worker end to end | {env_rate:,.0f} predictions/s | raw aiokafka + orjson, single events: {raw:,.0f} msg/s | {env_rate / raw:.2f}× | ≥ 200,000/s and > raw | {"yes" if env_rate >= 200_000 and env_rate > raw else "no"} |
| finalization: watermark past end + lateness → row visible in SQL | p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({len(latency)} windows) | | | p99 < 1 s | {"yes" if p99 < 1 else "no"} |
| envelopes: consume + orjson decode only, no windows (the ceilings) | raw aiokafka {raw_env:,.0f} records/s, bare Faust agent {bare_env:,.0f} records/s | Driftline end to end: {env_rate:,.0f}/s | {env_rate / bare_env:.2f}× bare Faust | report | |
| envelopes of 500 records, windows of {PER_WINDOW:,} events ({small.get("windows", 0):,} windows) | {small_rate:,.0f} predictions/s | envelopes, {ENVELOPE_PER_WINDOW:,}-event windows: {env_rate:,.0f}/s | {small_rate / env_rate:.2f}× | report | |
| two worker processes, envelopes, 4 partitions | {two_rate:,.0f} predictions/s | one worker: {env_rate:,.0f}/s | {two_rate / env_rate:.2f}× | report | |
| worker RSS growth from {mark or 0:,} to {r["enveloped"]:,} predictions | {growth:+.1f} MB (RSS {env["rss_bytes"] / 2**20:,.0f} MB) | | | ≤ 50 MB from 0.5 M to 5 M | see below |

Volumes: {r["singles"]:,} single-event messages, {r["enveloped"]:,} predictions in envelopes.
"""


if __name__ == "__main__":
    raise SystemExit(main())
