"""``GET /metrics`` over data the real pipeline wrote (as in test_drift.py): the results
gauges agree with storage and the API, and the API's own request metrics use route templates."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, delete, func, insert, select
from sqlalchemy.orm import sessionmaker

from api.main import create_app
from api.metrics import ResultsCollector
from api.settings import ApiSettings
from storage.models import alerts, notifications, quality_metrics, retrain_triggers, windows
from tests.api.conftest import DRIFT_FROM, WINDOWS, Api
from tests.stream_app import scenario

MODEL = scenario.MODEL_ID
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


def test_results_gauges_match_storage_and_the_api(written: Api) -> None:
    with written.sessions.begin() as session:
        finalized = windows.c.finalized_at.is_not(None)
        latest, n_windows, last_end = session.execute(
            select(
                func.max(windows.c.window_start), func.count(), func.max(windows.c.window_end)
            ).where(windows.c.model_id == MODEL, finalized)
        ).one()
        firing = Counter(
            severity
            for (severity,) in session.execute(
                select(alerts.c.severity).where(alerts.c.status == "firing")
            )
        )
        pending = session.scalar(
            select(func.count()).where(retrain_triggers.c.published_at.is_(None))
        )
    stamp = latest.isoformat().replace("+00:00", "Z")
    assert latest.timestamp() >= scenario.START + DRIFT_FROM * scenario.WINDOW  # drifted
    report = written.client.get(
        f"/api/v1/models/{MODEL}/windows/{stamp}", headers=written.read
    ).json()
    primary = {d["feature"]: d for d in report["drift"] if d["is_primary"]}

    samples = scrape(written.client)

    assert value(samples, "driftline_results_up") == 1
    for feature in scenario.DRIFTED_FEATURES:
        reported = primary[feature]
        scraped = value(
            samples,
            "driftline_drift_score",
            model=MODEL,
            feature=feature,
            method=reported["method"],
        )
        assert scraped == pytest.approx(reported["score"], rel=1e-12)
    detected = {
        labels["feature"]: value(samples, "driftline_drift_detected", **labels)
        for labels in series(samples, "driftline_drift_detected")
    }
    assert set(detected) == set(primary)  # the features and the model's outputs
    assert {f for f, v in detected.items() if v == 1} == set(scenario.DRIFTED_FEATURES)
    assert {f for f, v in detected.items() if v == 0} == set(primary) - set(
        scenario.DRIFTED_FEATURES
    )
    # Only the latest window's primary method: one score per feature.
    assert len(series(samples, "driftline_drift_score")) == len(primary)

    assert value(samples, "driftline_windows_total", model=MODEL) == n_windows == WINDOWS
    assert value(samples, "driftline_latest_window_end_seconds", model=MODEL) == (
        last_end.timestamp()
    )
    coverage = report["window"]["label_coverage"]
    assert value(samples, "driftline_label_coverage", model=MODEL) == coverage
    assert value(samples, "driftline_outbox_pending", outbox="triggers") == pending
    assert value(samples, "driftline_outbox_pending", outbox="notifications") == 0
    assert firing  # the drift alerts
    for severity, count in firing.items():
        assert value(samples, "driftline_alerts_firing", model=MODEL, severity=severity) == count


def test_request_metrics_use_the_route_template(written: Api) -> None:
    route = "/api/v1/models/{model_id}/drift"
    before = scrape(written.client)
    for _ in range(3):
        response = written.client.get(f"/api/v1/models/{MODEL}/drift", headers=written.read)
        assert response.status_code == 200
    written.client.get(f"/api/v1/models/{MODEL}/drift")  # no key: 401
    written.client.get("/no/such/path")
    after = scrape(written.client)

    def delta(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    total = "driftline_api_requests_total"
    assert delta(total, method="GET", route=route, status="200") == 3
    assert delta(total, method="GET", route=route, status="401") == 1
    assert delta(total, method="GET", route="<unmatched>", status="404") == 1
    assert delta(total, method="GET", route="/metrics", status="200") == 1  # the first scrape
    seconds = "driftline_api_request_seconds_count"
    assert delta(seconds, method="GET", route=route) == 4
    routes = {labels["route"] for labels in series(after, total)}
    assert not any(MODEL in r for r in routes)  # never a raw path


def test_a_locked_scrape_needs_a_read_key(api: Api, api_database_url: str) -> None:
    settings = ApiSettings(database_url=api_database_url, api_open_metrics=False)
    with TestClient(create_app(settings, api.sessions)) as client:
        response = client.get("/metrics")
        assert response.status_code == 401
        assert response.json()["error"]["status"] == 401
        assert client.get("/metrics", headers={"X-API-Key": "nope"}).status_code == 401
        assert value(scrape(client, **api.read), "driftline_results_up") == 1
        assert value(scrape(client, **api.admin), "driftline_results_up") == 1
    assert api.client.get("/metrics").status_code == 200  # open by default


def test_apps_have_their_own_registries(api: Api, api_database_url: str) -> None:
    other = create_app(ApiSettings(database_url=api_database_url), api.sessions)
    assert other.state.metrics is not api.client.app.state.metrics  # type: ignore[attr-defined]


def test_a_database_that_does_not_answer_is_results_up_0(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path}/missing/dir/results.db")
    try:
        families = list(ResultsCollector(sessionmaker(bind=engine)).collect())
    finally:
        engine.dispose()
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [
        ("driftline_results_up", [0])
    ]


def test_quality_metrics_and_notifications(written: Api) -> None:
    now = datetime.now(UTC)
    with written.sessions.begin() as session:
        starts = session.scalars(
            select(windows.c.window_start)
            .where(windows.c.model_id == MODEL, windows.c.finalized_at.is_not(None))
            .order_by(windows.c.window_start.desc())
            .limit(2)
        ).all()
        # The pipeline saw no labels (metrics without values): labelled ones instead.
        session.execute(delete(quality_metrics).where(quality_metrics.c.model_id == MODEL))
        # Labels arrive late: the latest window with a value counts, per metric.
        for start, accuracy, auc in [(starts[1], 0.8, 0.7), (starts[0], None, 0.9)]:
            for metric, metric_value in [("accuracy", accuracy), ("auc", auc)]:
                session.execute(
                    insert(quality_metrics).values(
                        model_id=MODEL,
                        window_start=start,
                        metric=metric,
                        value=metric_value,
                        revision=1,
                        updated_at=now,
                    )
                )
        outcomes = [("sent", now, None), ("sent", now, None), ("failed", None, now)]
        outcomes.append(("pending", None, None))
        for i, (status, sent_at, failed_at) in enumerate(outcomes):
            session.execute(
                insert(notifications).values(
                    id=f"n{i}",
                    receiver="team",
                    integration="slack",
                    group_key="g",
                    seq=i,
                    status=status,
                    payload={},
                    created_at=now,
                    sent_at=sent_at,
                    failed_at=failed_at,
                    attempts=1,
                    next_attempt_at=now,
                )
            )

    samples = scrape(written.client)

    assert value(samples, "driftline_quality_metric", model=MODEL, metric="accuracy") == 0.8
    assert value(samples, "driftline_quality_metric", model=MODEL, metric="auc") == 0.9
    total = "driftline_notifications_total"
    labels = {"receiver": "team", "integration": "slack"}
    assert value(samples, total, outcome="sent", **labels) == 2
    assert value(samples, total, outcome="failed", **labels) == 1
    assert value(samples, total, outcome="pending", **labels) == 1
    assert value(samples, "driftline_outbox_pending", outbox="notifications") == 1
