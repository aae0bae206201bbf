"""Months of predictions and labels replayed through a real worker: every label joins once.

The shape that lost a third of the labels before: predictions in batch envelopes keyed by
their first prediction id (so each prediction's summary is forwarded to the partition its
label hashes to), labels as single messages keyed by prediction id, weekly windows, the
two topics written in event-time order and read by the worker in whatever order its
fetches return. Run for envelopes and for single events, each over four partitions.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from driftline.cli import main
from driftline.errors import ServiceError
from storage import history
from stream_app.windows import window_start
from tests.integration.harness import WorkerProcess, final_windows, register, wait_for
from tests.stream_app import scenario

pytestmark = pytest.mark.integration

DAY = 86_400.0
WEEK = 7 * DAY
WINDOWS, PER_WINDOW, PARTITIONS = 12, 250, 4
FIRST = window_start(scenario.START, WEEK)


def _stream(seed: int) -> tuple[list[tuple[float, str, scenario.Event]], Counter[int]]:
    """Predictions and (for 60 %) labels 1-4 days later, in event-time order."""
    rng = np.random.default_rng(seed)
    out: list[tuple[float, str, scenario.Event]] = []
    labeled: Counter[int] = Counter()
    for event in scenario.events(WINDOWS, PER_WINDOW, drift_from=99, decay_from=99, seed=seed):
        offset = event.timestamp - (scenario.START + event.window * scenario.WINDOW)
        moment = FIRST + event.window * WEEK + offset * (WEEK / scenario.WINDOW)
        stretched = scenario.Event(**{**event.__dict__, "timestamp": moment})
        out.append((moment, "prediction", stretched))
        if rng.random() < 0.6:
            out.append((moment + rng.uniform(1, 4) * DAY, "label", stretched))
            labeled[event.window] += 1
    out.sort(key=lambda item: item[0])
    return out, labeled


async def _replay(
    bootstrap: str,
    worker: WorkerProcess,
    stream: list[tuple[float, str, scenario.Event]],
    envelope: int,
) -> None:
    """Predictions in envelopes of ``envelope`` keyed by their first id, as a producer other
    than the helper sends them (the helper envelopes one partition's ids at a time), so
    summaries are forwarded; labels alone, keyed by prediction id."""
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await kafka.start()
    records: list[dict[str, object]] = []

    async def send_envelope() -> None:
        if records:
            value = orjson.dumps({"model_id": scenario.MODEL_ID, "records": records})
            first = str(records[0]["prediction_id"]).encode()
            await kafka.send(worker.topics.predictions, key=first, value=value)
            records.clear()

    try:
        for moment, kind, e in stream:
            if kind == "prediction":
                record = {
                    "prediction_id": e.prediction_id,
                    "timestamp": moment,
                    "features": e.features,
                    "prediction": e.prediction,
                }
                if e.score is not None:
                    record["score"] = e.score
                records.append(record)
                if len(records) >= envelope:
                    await send_envelope()
            else:
                label = {
                    "model_id": scenario.MODEL_ID,
                    "prediction_id": e.prediction_id,
                    "label": e.label,
                    "timestamp": moment,
                }
                await kafka.send(
                    worker.topics.labels, key=e.prediction_id.encode(), value=orjson.dumps(label)
                )
        await send_envelope()
        await kafka.flush()
    finally:
        await kafka.stop()


@pytest.mark.parametrize(("envelope", "seed"), [(500, 3), (1, 4)], ids=["envelopes", "singles"])
def test_a_long_replay_joins_every_label_exactly_once(
    kafka_bootstrap: str,
    topic_prefix: str,
    sqlite_url: str,
    tmp_path: Path,
    envelope: int,
    seed: int,
) -> None:
    sessions = register(
        sqlite_url,
        window_seconds=int(WEEK),
        allowed_lateness_seconds=int(DAY),
        label_horizon_seconds=int(WEEK),
    )
    worker = WorkerProcess(
        kafka_bootstrap,
        sqlite_url,
        topic_prefix,
        PARTITIONS,
        tmp_path / "w",
        {"IDLE_TIMEOUT_SECONDS": str(DAY), "BATCH_MAX": "200"},
    )
    worker.create_topics()
    worker.start()
    try:
        stream, labeled = _stream(seed)
        asyncio.run(_replay(kafka_bootstrap, worker, stream, envelope))
        # Everything was published: close the last windows now, not a week of clock later.
        # Until the replay's end plus the lateness, not "now": the marker is not ordered
        # against the labels topic, and a flush to now passes every label horizon, so labels
        # read after the marker would be dropped (as the README says).
        until = str(max(moment for moment, _, _ in stream) + DAY + 1)
        flush = ["flush", "--bootstrap", kafka_bootstrap, "--topic-prefix", topic_prefix]
        assert main([*flush, "--until", until]) == 0
        final_windows(sessions, WINDOWS, 120)

        # A partition that has seen no prediction yet does not hold windows back (stage 2's
        # low watermark): with six envelopes over four partitions, a window may be final
        # before a partition's partial arrives, which then rewrites it complete. Wait for
        # that, bounded, rather than read the first version.
        def complete_rows() -> list[int] | None:
            with sessions() as session:
                found = history.window_history(session, scenario.MODEL_ID, None, None)
            counts = [r.n_rows for r in found]
            return counts if counts == [PER_WINDOW] * WINDOWS else None

        wait_for(complete_rows, 60, f"{PER_WINDOW} rows in each of {WINDOWS} windows")
        expected = [labeled[w] for w in range(WINDOWS)]
        seen: list[int | None] = []

        def labels_in_sql() -> list[int] | None:
            with sessions() as session:
                found = history.window_history(session, scenario.MODEL_ID, None, None)
            seen[:] = [r.n_labeled for r in found]
            return list(expected) if seen == expected else None

        try:
            wait_for(labels_in_sql, 60, f"labeled counts {expected} in SQL")
        except ServiceError:
            print(worker.tail(60))
            raise AssertionError(f"labeled counts in SQL: {seen}, expected {expected}") from None
    finally:
        assert worker.stop() == 0
