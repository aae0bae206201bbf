"""The streaming pipeline end to end: a real broker, a real worker process, SQLite and PostgreSQL.

One scenario carries most assertions (it is the expensive part: a worker start): drift
injected at a known window on known features, labels whose quality drops at a known window
(some arriving before their prediction, most two windows late), bad messages among good
ones, and a retraining policy that must fire exactly once.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from sklearn import metrics as skm

from storage import history
from storage import triggers as trigger_store
from stream_app import record_columns
from tests.integration.harness import WorkerProcess, produce_sync, read_topic, register, wait_for
from tests.stream_app import scenario

pytestmark = pytest.mark.integration

WINDOWS, PER_WINDOW, DRIFT_FROM, DECAY_FROM = 6, 200, 3, 4


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def build_stream(
    topics: Any,
) -> tuple[list[tuple[str, bytes | None, bytes]], dict[int, list[scenario.Event]]]:
    rng = np.random.default_rng(11)
    by_window: dict[int, list[scenario.Event]] = defaultdict(list)
    for event in scenario.events(WINDOWS, PER_WINDOW, DRIFT_FROM, DECAY_FROM):
        by_window[event.window].append(event)
    labeled: dict[int, list[scenario.Event]] = defaultdict(list)
    delayed: dict[int, list[scenario.Event]] = defaultdict(list)
    out: list[tuple[str, bytes | None, bytes]] = []

    def label(e: scenario.Event) -> tuple[str, bytes | None, bytes]:
        return (topics.labels, e.prediction_id.encode(), e.label_json())

    for w in range(WINDOWS):
        out += [label(e) for e in delayed.pop(w, [])]
        for i, e in enumerate(by_window[w]):
            draw = rng.random()
            if draw < 0.05:
                out.append(label(e))
                labeled[w].append(e)
            elif draw < 0.4:
                delayed[w + 2].append(e)
                labeled[w].append(e)
            out.append((topics.predictions, e.prediction_id.encode(), e.prediction_json()))
            if w == 1 and i == 10:  # bad messages among good ones
                out.append((topics.predictions, b"bad-1", b"{not json"))
                out.append(
                    (topics.predictions, b"bad-2", b'{"model_id": "churn", "prediction_id": "x"}')
                )
                out.append(
                    (
                        topics.predictions,
                        b"bad-3",
                        e.prediction_json().replace(b'"churn"', b'"ghost"'),
                    )
                )
    out += [label(e) for events in delayed.values() for e in events]
    return out, labeled


@pytest.fixture
def worker_factory(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def make(
        database_url: str, partitions: int, suffix: str = "", **settings: str
    ) -> WorkerProcess:
        worker = WorkerProcess(
            kafka_bootstrap,
            database_url,
            topic_prefix + suffix,
            partitions,
            tmp_path / f"w{suffix}",
            settings,
        )
        worker.create_topics()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


def test_the_pipeline_end_to_end(
    worker_factory: Any, database_url: str, kafka_bootstrap: str
) -> None:
    run_the_scenario(worker_factory, database_url, kafka_bootstrap)


def test_the_pipeline_end_to_end_one_message_at_a_time(
    worker_factory: Any, sqlite_url: str, kafka_bootstrap: str
) -> None:
    """Stage 1 on Faust's per-message path (``whole_fetches`` off) gives the same results."""
    run_the_scenario(worker_factory, sqlite_url, kafka_bootstrap, WHOLE_FETCHES="false")


def run_the_scenario(
    worker_factory: Any, database_url: str, kafka_bootstrap: str, **settings: str
) -> None:
    sessions = register(database_url)
    worker = worker_factory(database_url, partitions=4, **settings)
    worker.start()
    stream, labeled = build_stream(worker.topics)
    produce_sync(kafka_bootstrap, stream)
    expected_coverage = {w: len(labeled[w]) / PER_WINDOW for w in range(WINDOWS)}

    def all_windows_complete() -> list[Any] | None:
        with sessions() as session:
            rows = history.window_history(session, scenario.MODEL_ID, None, None)
        done = len(rows) == WINDOWS and all(
            r.label_coverage is not None and abs(r.label_coverage - expected_coverage[i]) < 1e-9
            for i, r in enumerate(rows)
        )
        return rows if done else None

    try:
        windows = wait_for(all_windows_complete, 120, "every window final with all its labels")
    except Exception:
        print(worker.tail(80))
        raise
    assert [w.n_rows for w in windows] == [PER_WINDOW] * WINDOWS
    assert [w.window_start.timestamp() for w in windows] == [
        scenario.START + w * scenario.WINDOW for w in range(WINDOWS)
    ]

    with sessions() as session:
        for feature in ("age", "income", "plan", "tenure"):
            results = history.drift_history(
                session, scenario.MODEL_ID, feature, None, None, method="psi"
            )
            drifted = [r.status == "drift" for r in results]
            expected = [
                feature in scenario.DRIFTED_FEATURES and w >= DRIFT_FROM for w in range(WINDOWS)
            ]
            assert drifted == expected, feature
        accuracy = history.metric_history(session, scenario.MODEL_ID, "accuracy", None, None)
        auc = history.metric_history(session, scenario.MODEL_ID, "roc_auc", None, None)
        stored_triggers = trigger_store.triggers(session, scenario.MODEL_ID)
    for w in range(WINDOWS):
        pairs = labeled[w]
        y_true = [e.label for e in pairs]
        expected_accuracy = skm.accuracy_score(y_true, [e.prediction for e in pairs])
        assert accuracy[w].value == pytest.approx(expected_accuracy, abs=1e-9)
        assert auc[w].value == pytest.approx(
            skm.roc_auc_score(y_true, [e.score for e in pairs]), abs=0.005
        )
        assert accuracy[w].label_coverage == pytest.approx(expected_coverage[w])

    assert len(stored_triggers) == 1
    published = read_topic(kafka_bootstrap, worker.topics.retrain_triggers)
    assert [orjson.loads(r.value)["trigger_id"] for r in published] == [
        stored_triggers[0].trigger_id
    ]
    assert stored_triggers[0].published_at is not None

    letters = [
        orjson.loads(r.value) for r in read_topic(kafka_bootstrap, worker.topics.dead_letter)
    ]
    reasons = sorted(letter["error"] for letter in letters)
    assert len(reasons) == 3
    assert any(r.startswith("not valid JSON") for r in reasons)
    assert any("unknown model 'ghost'" in r for r in reasons)
    assert {letter["topic"] for letter in letters} == {worker.topics.predictions}

    assert worker.stop() == 0
    log = worker.log_path.read_text()
    assert "draining" in log
    whole = settings.get("WHOLE_FETCHES", "true") == "true"
    assert ("as one event (whole_fetches)" in log) == whole
    assert ("whole_fetches off" in log) != whole
    # Single events came as whole fetches read by the native reader, and stage 1 took some
    # of them whole (the ones holding a bad message went message by message).
    stopped = log[log.index("counters at stop: ") + len("counters at stop: ") :].splitlines()[0]
    counters = ast.literal_eval(stopped)
    assert (counters["whole_fetch_runs"] > 0) == (whole and record_columns.native is not None)


def test_late_events_and_an_idle_model(
    worker_factory: Any, sqlite_url: str, kafka_bootstrap: str
) -> None:
    sessions = register(sqlite_url)
    worker = worker_factory(sqlite_url, partitions=2)
    worker.start()
    events = list(scenario.events(3, 30, drift_from=99, decay_from=99))
    topic = worker.topics.predictions
    stream = [(topic, e.prediction_id.encode(), e.prediction_json()) for e in events]
    late = events[0].prediction_json().replace(b'"w0-0"', b'"late-0"')
    produce_sync(kafka_bootstrap, stream)

    def windows() -> list[Any]:
        with sessions() as session:
            return history.window_history(session, scenario.MODEL_ID, None, None)

    # The stream stops in window 2: only the idle timer can close it.
    rows = wait_for(lambda: windows() if len(windows()) == 3 else None, 60, "three windows")
    assert [r.n_rows for r in rows] == [30, 30, 30]
    produce_sync(kafka_bootstrap, [(topic, b"late-0", late)])
    wait_for(lambda: windows()[0].n_late == 1, 30, "the late event to be counted")
    assert windows()[0].n_rows == 30


def test_four_partitions_equal_one(
    worker_factory: Any, sqlite_url: str, tmp_path: Path, kafka_bootstrap: str
) -> None:
    other_url = f"sqlite+pysqlite:///{tmp_path / 'one.db'}"
    results = {}
    for partitions, url in ((4, sqlite_url), (1, other_url)):
        sessions = register(url)
        worker = worker_factory(url, partitions=partitions, suffix=f"p{partitions}.")
        worker.start()
        events = list(scenario.events(3, 150, drift_from=1, decay_from=99))
        produce_sync(
            kafka_bootstrap,
            [
                (worker.topics.predictions, e.prediction_id.encode(), e.prediction_json())
                for e in events
            ],
        )

        def scores(sessions: Any = sessions) -> dict[Any, Any] | None:
            with sessions() as session:
                rows = history.window_history(session, scenario.MODEL_ID, None, None)
                if len(rows) < 3:
                    return None
                return {
                    (f, r.window_start, r.method): r.score
                    for f in ("age", "income", "plan", "tenure")
                    for r in history.drift_history(session, scenario.MODEL_ID, f, None, None)
                }

        results[partitions] = wait_for(scores, 90, f"results of the {partitions}-partition run")
        worker.stop()
    assert results[4].keys() == results[1].keys()
    for key, value in results[1].items():
        assert results[4][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
