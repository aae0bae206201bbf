"""A worker killed (SIGKILL) three times while it processes a replay ends with the SQL of an
uninterrupted run: the same windows, the same numbers, no row counted twice or lost.

The replay: 640,000 events over ten one-minute windows on 4 partitions, in envelopes of 500
keyed by their first prediction id: 600,000 predictions of a model without a task
("volume"), 40,000 of the scenario's binary model ("churn"), labels (one message each) for
about half of churn's, and an end-of-stream marker on every partition that closes the last
window. Everything is on the topics before the first worker starts, so the worker is busy
from its first second to its last. It is killed at three seeded random moments (0-0.3 s
after the restarted worker's first offset commit; 0-4 s one message at a time) and
restarted each time under the same app id (consumer group and changelogs). Before each
kill the test checks that the worker made progress: the group's committed input offsets
advanced since it started, and input is left.

The expected SQL comes from stage 1 and stage 2 run in-process (``LocalPipeline``) on the
same messages with the real SQL writer; ``test_an_uninterrupted_worker_matches_the_local_run``
checks that a worker that is never killed writes exactly that.

``DRIFTLINE_CRASH_SEED`` picks other kill points (default 7). Run with ``-s`` to see the
kill points and the per-window counts. docs/reliability.md ("A worker killed while it
processes") has the measured results and the diagnosis.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from detectors import WindowState
from driftline.errors import ServiceError
from driftline.limits import BROKER_MESSAGE_MAX_BYTES
from registration import register_model
from schemas.control import end_of_stream_message
from schemas.model_config import ModelConfig
from storage import models
from stream_app import messages
from stream_app.model_loader import sql_loader
from stream_app.registry import ModelRegistry, ModelRuntime
from stream_app.sql_writer import SqlResultWriter
from stream_app.stage1_inputs import InputMessage
from tests.integration.harness import WorkerProcess, read_topic, register, wait_for, warnings_of
from tests.stream_app import scenario
from tests.stream_app.local_pipeline import LocalPipeline

pytestmark = pytest.mark.integration

PARTITIONS = 4
WINDOWS = 10
# Two models in the same replay, 640,000 events in all. "churn" (the scenario's, binary)
# has labels: every one of its predictions becomes a join entry, one changelog message
# each, which is what makes the worker slow, so it gets the smaller share. "volume" has no
# task: its envelopes only update window states. Whole fetches process a restarted run's
# share in a second or two: with half as much, the third kill found the stream done, and
# again with 400,000 events once stage 1 packed its labels for stage 2.
PER_WINDOW = {"volume": 60_000, "churn": 4_000}
LABELED_SHARE = 0.5  # of churn's predictions: 20,000 labels
ENVELOPE = 500
DRIFT_FROM = 5
KILLS = 3
SEED = int(os.environ.get("DRIFTLINE_CRASH_SEED", "7"))
# The kills land up to this long after each first commit: a restarted worker reading
# whole fetches (the default) is done with its share a second or two after its first
# commit; one reading a message at a time (DRIFTLINE_WHOLE_FETCHES=false) takes minutes.
ONE_AT_A_TIME = os.environ.get("DRIFTLINE_WHOLE_FETCHES", "true").lower() in ("false", "0")
KILL_WITHIN = float(os.environ.get("DRIFTLINE_CRASH_KILL_WITHIN", "4" if ONE_AT_A_TIME else "0.3"))
# Every window's end plus lateness is before it: the markers close every window.
END_OF_STREAM = scenario.START + WINDOWS * scenario.WINDOW + scenario.LATENESS + 1
WORKER_SETTINGS = {
    "SESSION_TIMEOUT_SECONDS": "6",  # the killed member leaves the group sooner
    # Only the markers close windows: an idle clock must not make a slow restart's
    # events late (the in-process run has no wall clock).
    "IDLE_TIMEOUT_SECONDS": "3600",
    "BATCH_MAX": "200",
}


def volume_config() -> ModelConfig:
    """The scenario's model without a task: no labels, no join entries."""
    data = scenario.model_config().model_dump(mode="json", exclude_none=True)
    for key in ("task", "classes", "positive_class"):
        data.pop(key, None)
    return ModelConfig.from_dict({**data, "model_id": "volume"})


def register_both(url: str) -> sessionmaker[Session]:
    sessions = register(url)
    with sessions.begin() as session:
        register_model(session, volume_config(), scenario.reference())
    return sessions


# -- the replay ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    predictions: list[tuple[bytes, bytes]]  # (key, envelope), in the order published
    labels: list[tuple[bytes, bytes]]  # (prediction id, label)

    @property
    def n_input(self) -> int:
        """Messages on the two input topics, the end-of-stream markers included."""
        return len(self.predictions) + len(self.labels) + PARTITIONS

    @property
    def n_events(self) -> int:
        return sum(PER_WINDOW.values()) * WINDOWS + len(self.labels)


def _records(
    rng: np.random.Generator, model_id: str, w: int, n: int
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``n`` predictions of window ``w`` in time order, and whether each one is "1"."""
    drift = w >= DRIFT_FROM
    age = rng.normal(40, 10, n).round(1)
    income = rng.lognormal(10 + (0.9 if drift else 0.0), 0.4, n)
    plans = np.array(["free", "pro", "team"])
    plan = plans[rng.choice(3, p=[0.2, 0.3, 0.5] if drift else [0.6, 0.3, 0.1], size=n)]
    tenure = rng.exponential(3.0, n)
    score = 1 / (1 + np.exp(-(age - 40) / 8))
    times = scenario.START + w * scenario.WINDOW + np.sort(rng.uniform(0, 59.999, n))
    records = [
        {
            "prediction_id": f"{model_id}-{w}-{i}",
            "timestamp": float(times[i]),
            "features": {
                "age": float(age[i]),
                "income": float(income[i]),
                "plan": str(plan[i]),
                "tenure": float(tenure[i]),
            },
            "prediction": "1" if score[i] >= 0.5 else "0",
            "score": float(score[i]),
        }
        for i in range(n)
    ]
    return records, rng.random(n) < score


def replay(seed: int = 3) -> Replay:
    """Window by window: each model's envelopes, keyed by their first prediction id."""
    rng = np.random.default_rng(seed)
    predictions: list[tuple[bytes, bytes]] = []
    labels: list[tuple[bytes, bytes]] = []
    for w in range(WINDOWS):
        for model_id, n in PER_WINDOW.items():
            records, truth = _records(rng, model_id, w, n)
            for start in range(0, n, ENVELOPE):
                chunk = records[start : start + ENVELOPE]
                envelope = {"model_id": model_id, "model_version": "v1", "records": chunk}
                predictions.append((chunk[0]["prediction_id"].encode(), orjson.dumps(envelope)))
            if model_id != scenario.MODEL_ID:
                continue
            for i in np.nonzero(rng.random(n) < LABELED_SHARE)[0].tolist():
                label = {
                    "model_id": model_id,
                    "prediction_id": records[i]["prediction_id"],
                    "label": str(int(truth[i])),
                    "timestamp": records[i]["timestamp"] + 1,
                }
                labels.append((records[i]["prediction_id"].encode(), orjson.dumps(label)))
    return Replay(predictions, labels)


async def publish(bootstrap: str, worker: WorkerProcess, data: Replay) -> None:
    """Envelopes and labels keyed as the producer helper keys them, then the markers."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        acks="all",
        max_request_size=BROKER_MESSAGE_MAX_BYTES,
    )
    await producer.start()
    try:
        for key, value in data.predictions:
            await producer.send(worker.topics.predictions, key=key, value=value)
        for key, value in data.labels:
            await producer.send(worker.topics.labels, key=key, value=value)
        await producer.flush()
        marker = end_of_stream_message(END_OF_STREAM)
        for partition in range(PARTITIONS):
            await producer.send(worker.topics.predictions, value=marker, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


async def run_locally(data: Replay, sessions: sessionmaker[Session]) -> None:
    """Stage 1 and stage 2 in-process on the same messages, writing through the SQL writer."""
    runtime = sql_loader(sessions)(scenario.MODEL_ID)
    assert isinstance(runtime, ModelRuntime)
    pipeline = LocalPipeline(runtime, PARTITIONS, idle_timeout=3600)
    # Both models, as the worker loads them.
    registry = ModelRegistry(sql_loader(sessions), 1e9)
    pipeline.registry = pipeline.stage1.registry = pipeline.stage2.registry = registry
    pipeline.use_writer(SqlResultWriter(sessions))
    predictions = [
        pipeline.message("prediction", key.decode(), value) for key, value in data.predictions
    ]
    labels = [pipeline.message("label", key.decode(), value) for key, value in data.labels]
    # Labels keep pace with the predictions (some before, some after theirs), as a worker
    # reading both topics at once would take them.
    step = max(1, len(labels) // len(predictions))
    for i in range(0, len(predictions), 20):
        await pipeline.feed(predictions[i : i + 20] + labels[i * step : (i + 20) * step])
    await pipeline.feed(labels[len(predictions) * step :])
    marker = end_of_stream_message(END_OF_STREAM)
    await pipeline.feed(
        InputMessage("prediction", "predictions", p, 10**9, None, marker) for p in range(PARTITIONS)
    )
    for _ in range(3):
        await pipeline.idle(1.0)


# -- progress, completion and the SQL compared -----------------------------------------------


class Offsets:
    """The group's committed offsets and the log ends, through one long-lived admin client."""

    def __init__(self, bootstrap: str, group: str, topics: Sequence[str]) -> None:
        self.bootstrap, self.group = bootstrap, group
        self.partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        self._runner = asyncio.Runner()
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None

    def _run(self, coroutine: Any) -> Any:
        return self._runner.run(coroutine)

    async def _start(self) -> None:
        if self._admin is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await self._admin.start()
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
            await self._consumer.start()

    async def _committed(self, partitions: Sequence[TopicPartition]) -> dict[Any, int]:
        await self._start()
        assert self._admin is not None
        found = await self._admin.list_consumer_group_offsets(self.group, partitions=partitions)
        return {tp: max(0, meta.offset) for tp, meta in found.items() if tp in partitions}

    async def _ends(self, partitions: Sequence[TopicPartition]) -> dict[Any, int]:
        await self._start()
        assert self._consumer is not None
        return dict(await self._consumer.end_offsets(list(partitions)))

    def committed(self, topics: Sequence[str] | None = None) -> int:
        tps = [tp for tp in self.partitions if topics is None or tp.topic in topics]
        return sum(self._run(self._committed(tps)).values())

    def lag(self) -> dict[str, int]:
        """Messages not committed yet by the group, per ``topic[partition]`` that has any."""
        committed = self._run(self._committed(self.partitions))
        ends = self._run(self._ends(self.partitions))
        behind = {tp: ends[tp] - committed.get(tp, 0) for tp in self.partitions}
        return {f"{tp.topic}[{tp.partition}]": n for tp, n in behind.items() if n}

    def close(self) -> None:
        async def stop() -> None:
            if self._admin is not None:
                await self._admin.close()
            if self._consumer is not None:
                await self._consumer.stop()

        self._run(stop())
        self._runner.close()


def snapshot(sessions: sessionmaker[Session]) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """What the results tables say, without timestamps and revision numbers (timing)."""
    w, d, q, dq = (
        models.windows,
        models.drift_results,
        models.quality_metrics,
        models.data_quality_results,
    )
    with sessions() as session:
        windows = session.execute(
            select(
                w.c.model_id,
                w.c.window_start,
                w.c.window_end,
                w.c.n_rows,
                w.c.n_late,
                w.c.n_invalid,
                w.c.n_drifted,
                w.c.share_drifted,
                w.c.dataset_drift,
                w.c.output_drift,
                w.c.label_coverage,
                w.c.n_labeled,
                w.c.finalized_at.is_not(None),
            )
        ).all()
        drift = session.execute(
            select(
                d.c.model_id,
                d.c.window_start,
                d.c.feature,
                d.c.method,
                d.c.score,
                d.c.p_value,
                d.c.status,
            )
        ).all()
        quality = session.execute(
            select(
                q.c.model_id,
                q.c.window_start,
                q.c.metric,
                q.c.value,
                q.c.n_labeled,
                q.c.label_coverage,
            )
        ).all()
        data_quality = session.execute(
            select(
                dq.c.model_id,
                dq.c.window_start,
                dq.c.feature,
                dq.c.n_rows,
                dq.c.n_valid,
                dq.c.mean,
            )
        ).all()
    return {
        "windows": {(r[0], _minute(r[1])): tuple(r[2:]) for r in windows},
        "drift": {(r[0], _minute(r[1]), r[2], r[3]): tuple(r[4:]) for r in drift},
        "quality": {(r[0], _minute(r[1]), r[2]): tuple(r[3:]) for r in quality},
        "data_quality": {(r[0], _minute(r[1]), r[2]): tuple(r[3:]) for r in data_quality},
    }


def _minute(moment: Any) -> int:
    """A window by its number in the replay (0 to 9)."""
    return int((moment.timestamp() - scenario.START) // scenario.WINDOW)


def say(text: str) -> None:
    """Progress on stderr (shown with ``-s``): where a slow run spends its time."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Every row that is missing, extra or different, one line each."""
    found: list[str] = []
    for table, rows in expected.items():
        got = actual[table]
        for key in sorted(rows.keys() | got.keys(), key=repr):
            if key not in got:
                found.append(f"{table} {key}: missing (expected {rows[key]})")
            elif key not in rows:
                found.append(f"{table} {key}: extra {got[key]}")
            elif not all(_same(a, b) for a, b in zip(rows[key], got[key], strict=True)):
                found.append(f"{table} {key}: expected {rows[key]}, got {got[key]}")
    return found


def partials_sent(bootstrap: str, topic: str, windows: set[tuple[str, int]]) -> list[str]:
    """What stage 1 sent stage 2 for ``windows`` (model, window number), one line per
    message: which stage fails a window that ends with too few rows or pairs."""
    lines = []
    for record in read_topic(bootstrap, topic):
        for message in messages.decode_all(record.value):
            if isinstance(message, messages.WatermarkMessage):
                continue
            window = (
                message.model_id,
                int((message.window_start - scenario.START) // scenario.WINDOW),
            )
            if window not in windows:
                continue
            if isinstance(message, messages.PartialMessage):
                what = f"partial from {message.source_partition}: {_rows(message.state)} rows"
            elif isinstance(message, messages.LabelsMessage):
                what = f"labels from {message.source_partition}: {len(message.y_true)} pairs"
            else:
                what = f"late from {message.source_partition}: {message.count}"
            lines.append(f"  {window} @{record.partition}:{record.offset} {what}")
    return lines


def last_counters(log: Path) -> str:
    """The worker's last counts line (a killed worker logs none at stop)."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if "counters" in line]
    return f"{log.parent.name}: {lines[-1][:1500] if lines else 'no counts logged'}"


def _rows(state: bytes) -> str:
    try:
        return str(WindowState.from_bytes(state).n_rows)
    except Exception as error:  # a baseline sample, or a state this test cannot read
        return f"? ({type(error).__name__})"


def _differing_keys(expected: dict[str, Any], actual: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {
        key
        for table, rows in expected.items()
        for key in rows.keys() | actual[table].keys()
        if rows.get(key) is None
        or actual[table].get(key) is None
        or not all(_same(a, b) for a, b in zip(rows[key], actual[table][key], strict=True))
    }


def wait_until_done(
    sessions: sessionmaker[Session], offsets: Offsets, worker: WorkerProcess, timeout: float
) -> dict[str, Any]:
    """Every window final, nothing left uncommitted, and the SQL steady for 3 s."""
    previous: list[Any] = [None]
    waiting: list[str] = ["nothing checked yet"]

    def done() -> dict[str, Any] | None:
        assert worker.process is not None and worker.process.poll() is None, worker.tail()
        now = snapshot(sessions)
        windows = now["windows"]
        final = sum(1 for row in windows.values() if row[-1])
        if final < WINDOWS * len(PER_WINDOW):
            waiting[0] = f"{final} of {WINDOWS * len(PER_WINDOW)} windows final"
            return None
        lag = offsets.lag()
        if lag:
            waiting[0] = f"uncommitted input {lag}"
            return None
        steady = now == previous[0]
        changed = differences(previous[0], now)[:5] if previous[0] is not None else ["(first)"]
        previous[0] = now
        waiting[0] = f"the SQL to stay unchanged for 3 s (last changes: {changed})"
        return now if steady else None

    try:
        found: dict[str, Any] = wait_for(done, timeout, "the replay processed", interval=3.0)
    except ServiceError:
        raise AssertionError(
            f"the worker did not finish the replay in {timeout:.0f} s: waiting for "
            f"{waiting[0]}; SQL so far: {summary(snapshot(sessions))}"
        ) from None
    return found


def summary(rows: dict[str, Any]) -> str:
    """Per model and window: rows, labeled rows and late events."""
    parts = []
    for model_id in sorted({key[0] for key in rows["windows"]}):
        cells = [
            f"{key[1]}:{row[1]}/{row[9]}/{row[2]}"
            for key, row in sorted(rows["windows"].items())
            if key[0] == model_id
        ]
        parts.append(f"{model_id} (window:rows/labeled/late) " + " ".join(cells))
    return "; ".join(parts)


# -- the tests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> Replay:
    return replay()


@pytest.fixture(scope="module")
def expected(data: Replay, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The SQL of the in-process run (computed once per module)."""
    path = tmp_path_factory.mktemp("expected") / "expected.db"
    sessions = register_both(f"sqlite+pysqlite:///{path}")
    started = time.monotonic()
    asyncio.run(run_locally(data, sessions))
    rows = snapshot(sessions)
    say(f"in-process run: {time.monotonic() - started:.1f} s; {summary(rows)}")
    counts = {key: row[1] for key, row in rows["windows"].items()}
    assert counts == {(m, w): n for m, n in PER_WINDOW.items() for w in range(WINDOWS)}
    assert sum(row[9] for row in rows["windows"].values()) == len(data.labels)
    return rows


# The killed workers keep the label join's summaries on disk (a budget of 0: every
# segment is spilled at the flush that writes it), the uninterrupted one in memory.
SPILLING = {"JOIN_MEMORY_MB": "0"}


def start_worker(
    kafka_bootstrap: str,
    topic_prefix: str,
    sqlite_url: str,
    workdir: Path,
    app_id: str = "",
    extra: dict[str, str] | None = None,
) -> WorkerProcess:
    worker = WorkerProcess(
        kafka_bootstrap,
        sqlite_url,
        topic_prefix,
        PARTITIONS,
        workdir,
        {**WORKER_SETTINGS, **(extra or {})},
    )
    if app_id:
        worker.app_id = app_id  # the same consumer group and changelogs: a restart
    else:
        worker.create_topics()
    return worker


def watched(worker: WorkerProcess) -> list[str]:
    topics = worker.topics
    return [topics.predictions, topics.labels, topics.label_join]


def kill_points(seed: int) -> list[float]:
    """Per kill: seconds to go on after the restarted worker's first offset commit.

    Up to ``KILL_WITHIN`` seconds: a restarted worker reads the labels (small messages)
    and the predictions (the slower, enveloped part) side by side, so kills land in either.
    """
    rng = random.Random(seed)
    return [rng.uniform(0.0, KILL_WITHIN) for _ in range(KILLS)]


def test_three_kills_during_a_replay_end_as_an_uninterrupted_run(
    kafka_bootstrap: str,
    topic_prefix: str,
    sqlite_url: str,
    tmp_path: Path,
    data: Replay,
    expected: dict[str, Any],
) -> None:
    sessions = register_both(sqlite_url)
    first = start_worker(kafka_bootstrap, topic_prefix, sqlite_url, tmp_path / "w0", "", SPILLING)
    asyncio.run(publish(kafka_bootstrap, first, data))
    inputs = [first.topics.predictions, first.topics.labels]
    offsets = Offsets(kafka_bootstrap, first.app_id, watched(first))
    worker = first
    notes: list[str] = []
    try:
        for kill, delay in enumerate(kill_points(SEED)):
            worker.start()
            at_start = offsets.committed(inputs)

            def committed_more(at_start: int = at_start) -> bool:
                return offsets.committed(inputs) > at_start

            wait_for(
                committed_more,
                120,
                "the restarted worker's first offset commit",
                interval=0.1,
            )
            time.sleep(delay)
            progress = offsets.committed(inputs)
            predictions = offsets.committed([first.topics.predictions])
            assert worker.process is not None and worker.process.poll() is None
            # It processed something since it started, and it is still busy.
            assert at_start < progress < data.n_input, (at_start, progress, data.n_input)
            worker.process.send_signal(signal.SIGKILL)
            worker.process.wait(30)
            notes.append(
                f"kill {kill + 1}: {delay:.2f} s after the first commit; input committed "
                f"{at_start} -> {progress} of {data.n_input} ({predictions} of "
                f"{len(data.predictions) + PARTITIONS} on the predictions topic)"
            )
            say(notes[-1])
            worker = start_worker(
                kafka_bootstrap,
                topic_prefix,
                sqlite_url,
                tmp_path / f"w{kill + 1}",
                first.app_id,
                SPILLING,
            )
        worker.start()
        actual = wait_until_done(sessions, offsets, worker, 150)
        say(f"after the kills: {summary(actual)}")
    finally:
        offsets.close()
        stopped = worker.stop()
    assert stopped == 0
    diff = differences(expected, actual)
    say(f"{len(diff)} rows differ")
    if diff:  # what each worker noticed, and what stage 2 was sent, for the diagnosis
        notes += [warnings_of(log) for log in sorted(tmp_path.glob("w*/worker.log"))]
        notes += [last_counters(log) for log in sorted(tmp_path.glob("w*/worker.log"))]
        wrong = {(key[0], key[1]) for key in _differing_keys(expected, actual)}
        notes += ["sent to stage 2 for the windows that differ:"]
        notes += partials_sent(kafka_bootstrap, first.topics.window_partials, wrong)
    detail = "\n".join(
        [*notes, f"expected: {summary(expected)}", f"actual:   {summary(actual)}", *diff[:40]]
    )
    assert not diff, detail


def test_an_uninterrupted_worker_matches_the_local_run(
    kafka_bootstrap: str,
    topic_prefix: str,
    sqlite_url: str,
    tmp_path: Path,
    data: Replay,
    expected: dict[str, Any],
) -> None:
    """The reference the crash test compares with: a clean worker run writes exactly it."""
    sessions = register_both(sqlite_url)
    worker = start_worker(kafka_bootstrap, topic_prefix, sqlite_url, tmp_path / "w")
    asyncio.run(publish(kafka_bootstrap, worker, data))
    offsets = Offsets(kafka_bootstrap, worker.app_id, watched(worker))
    try:
        started = time.monotonic()
        worker.start()
        say(f"clean worker ready after {time.monotonic() - started:.1f} s")
        actual = wait_until_done(sessions, offsets, worker, 150)
        say(f"clean worker done after {time.monotonic() - started:.1f} s")
    finally:
        offsets.close()
        stopped = worker.stop()
    assert stopped == 0
    diff = differences(expected, actual)
    assert not diff, "\n".join([f"actual: {summary(actual)}", *diff[:40]])
