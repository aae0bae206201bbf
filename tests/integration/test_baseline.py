"""Models without a reference: their first windows become the baseline (real broker, SQL)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from storage import catalog, history
from tests.integration.harness import (
    WorkerProcess,
    final_windows,
    produce_sync,
    register,
)
from tests.stream_app import scenario

pytestmark = pytest.mark.integration


def test_baseline_windows_then_drift_and_auto_registration(
    kafka_bootstrap: str, topic_prefix: str, sqlite_url: str, tmp_path: Path
) -> None:
    sessions = register(sqlite_url, with_reference=False, baseline_windows=2)
    worker = WorkerProcess(
        kafka_bootstrap,
        sqlite_url,
        topic_prefix,
        2,
        tmp_path / "w",
        {"UNKNOWN_MODELS": "auto-register"},
    )
    worker.create_topics()
    worker.start()
    try:
        events = list(scenario.events(7, 200, drift_from=5, decay_from=99))
        topic = worker.topics.predictions
        stream = [(topic, e.prediction_id.encode(), e.prediction_json()) for e in events]
        # An unregistered model: registered on its first event, with default settings.
        stranger = [
            (
                topic,
                f"s{i}".encode(),
                e.prediction_json()
                .replace(b'"churn"', b'"stranger"')
                .replace(e.prediction_id.encode(), f"s{i}".encode()),
            )
            for i, e in enumerate(events[:50])
        ]
        produce_sync(kafka_bootstrap, stream + stranger)

        rows = final_windows(sessions, 7, 90)
        assert [r.n_rows for r in rows] == [200] * 7
        with sessions() as session:
            current = catalog.list_reference_profiles(session, scenario.MODEL_ID)
            income = history.drift_history(session, scenario.MODEL_ID, "income", None, None, "psi")
            stranger_model = catalog.get_model(session, "stranger")
        assert [p.source.split(" ", 2)[:2] for p in current] == [["baseline:", "2"]]
        judged = {r.window_start.timestamp(): r.status for r in income}
        starts = [scenario.START + w * scenario.WINDOW for w in range(7)]
        assert starts[0] not in judged and starts[1] not in judged  # the baseline itself
        assert judged[starts[5]] == "drift" and judged[starts[6]] == "drift"
        assert all(status != "drift" for start, status in judged.items() if start < starts[5])
        assert stranger_model is not None
        assert orjson.loads(orjson.dumps(stranger_model.config))["baseline_windows"] == 3
    finally:
        assert worker.stop() == 0
