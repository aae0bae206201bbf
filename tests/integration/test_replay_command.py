"""``driftline replay`` on a file with drift: every window final, and the same results as the
same events sent by the producer helper to a second worker.

The scenario's model, five one-minute windows of 400 predictions with drift from window 3,
each labeled a second after its prediction. Worker A reads what ``driftline replay`` sends
from a CSV file (labels in the file, ``--label-delay 1``); worker B reads the same events
sent through ``PredictionProducer`` (envelopes and label envelopes) and the end-of-stream
marker at the moment the replay chose. Both write to databases of their own.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from driftline.cli import main
from driftline.producer import PredictionProducer
from storage import history
from tests.integration.harness import WorkerProcess, register, wait_for
from tests.stream_app import scenario

pytestmark = pytest.mark.integration

WINDOWS, PER_WINDOW, DRIFT_FROM, PARTITIONS = 5, 400, 3, 2
SETTINGS = {"IDLE_TIMEOUT_SECONDS": "3600", "BATCH_MAX": "200"}


def events() -> list[scenario.Event]:
    return list(scenario.events(WINDOWS, PER_WINDOW, DRIFT_FROM, decay_from=99))


def as_file(path: Path) -> Path:
    rows = [
        {
            "prediction_id": e.prediction_id,
            "timestamp": e.timestamp,
            **e.features,
            "prediction": e.prediction,
            "score": e.score,
            "label": e.label,
        }
        for e in events()
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


async def produce(bootstrap: str, worker: WorkerProcess, marker: float) -> None:
    async with PredictionProducer(bootstrap, topics=worker.topics) as producer:
        for e in events():
            await producer.predict(
                scenario.MODEL_ID, e.prediction_id, e.timestamp, e.features, e.prediction, e.score
            )
        await producer.labels(
            scenario.MODEL_ID, [(e.prediction_id, e.label, e.timestamp + 1) for e in events()]
        )
        await producer.flush()
        await producer.end_of_stream(marker)


def results(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Per window: counts, drift and quality as the API would serve them."""
    with sessions() as session:
        windows = history.window_history(session, scenario.MODEL_ID, None, None)
        drift = {
            (f, r.window_start, r.method): (r.score, r.p_value, r.status)
            for f in ("age", "income", "plan", "tenure", "score")
            for r in history.drift_history(session, scenario.MODEL_ID, f, None, None)
        }
        accuracy = history.metric_history(session, scenario.MODEL_ID, "accuracy", None, None)
    return {
        "windows": [
            (w.window_start, w.n_rows, w.n_late, w.n_drifted, w.dataset_drift, w.n_labeled)
            for w in windows
        ],
        "final": all(w.finalized_at is not None for w in windows),
        "drift": drift,
        "accuracy": [(m.window_start, m.value, m.n_labeled) for m in accuracy],
    }


def complete(sessions: sessionmaker[Session]) -> dict[str, Any] | None:
    found = results(sessions)
    done = (
        found["final"]
        and len(found["windows"]) == WINDOWS
        and sum(w[5] for w in found["windows"]) == WINDOWS * PER_WINDOW
    )
    return found if done else None


def test_a_replayed_file_gives_the_results_of_the_producer_helper(
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    urls = {name: f"sqlite+pysqlite:///{tmp_path / f'{name}.db'}" for name in ("a", "b")}
    sessions = {name: register(url) for name, url in urls.items()}
    prefixes = {name: f"{topic_prefix}{name}." for name in urls}
    workers = {
        name: WorkerProcess(
            kafka_bootstrap, urls[name], prefixes[name], PARTITIONS, tmp_path / name, SETTINGS
        )
        for name in urls
    }
    for worker in workers.values():
        worker.create_topics()
        worker.start()
    try:
        argv = [
            "replay", scenario.MODEL_ID, str(as_file(tmp_path / "predictions.csv")),
            "--label-delay", "1", "--quiet", "--bootstrap", kafka_bootstrap,
            "--topic-prefix", prefixes["a"], "--database-url", urls["a"],
        ]  # fmt: skip
        assert main(argv) == 0
        out = capsys.readouterr().out
        n = WINDOWS * PER_WINDOW
        assert f"replayed {n:,} predictions and {n:,} labels of {scenario.MODEL_ID}" in out
        assert f"sent to {PARTITIONS} partitions" in out
        # The marker: the end of the last window plus the model's lateness, and a second.
        last_end = scenario.START + WINDOWS * scenario.WINDOW
        marker = last_end + scenario.LATENESS + 1
        assert re.search(r"end of stream at (\S+)", out)
        asyncio.run(produce(kafka_bootstrap, workers["b"], marker))
        replayed = wait_for(lambda: complete(sessions["a"]), 120, "the replay's windows final")
        produced = wait_for(lambda: complete(sessions["b"]), 120, "the produced windows final")
    finally:
        stopped = [worker.stop() for worker in workers.values()]
    assert stopped == [0, 0]
    assert replayed == produced
    drifted = [w[4] for w in replayed["windows"]]
    assert drifted == [w >= DRIFT_FROM for w in range(WINDOWS)]
    assert [w[1] for w in replayed["windows"]] == [PER_WINDOW] * WINDOWS
