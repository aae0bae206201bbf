"""Quality, anomalies, triggers, alerts, notifications and silences over data the real
pipeline wrote: the scenario's predictions and labels through both stages (in memory) with
stage 2's SQL writer (which also evaluates the model's default alert rules), then the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storage import notifications as notification_store
from storage.alerts import list_silences
from storage.types import utcnow
from tests.api.conftest import Api, write_stream
from tests.stream_app import scenario

WINDOWS, PER_WINDOW, DRIFT_FROM, DECAY_FROM = 5, 200, 3, 3
MODEL = f"/api/v1/models/{scenario.MODEL_ID}"


@pytest.fixture
def written(api: Api) -> Api:
    """Window by window: the predictions, then their labels; accuracy decays from window 3."""
    write_stream(
        api.sessions, WINDOWS, PER_WINDOW, DRIFT_FROM, decay_from=DECAY_FROM, labels=True, seed=99
    )
    return api


def at(window: int) -> str:
    moment = datetime.fromtimestamp(scenario.START + window * scenario.WINDOW, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def get(api: Api, path: str, **params: Any) -> Any:
    response = api.client.get(path, params=params, headers=api.read)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_metric_with_its_control_limits(written: Api) -> None:
    items = get(written, f"{MODEL}/metrics/accuracy")["items"]
    assert [i["window_start"] for i in items] == [at(w) for w in range(WINDOWS)]
    assert all(i["n_labeled"] == PER_WINDOW and i["label_coverage"] == 1.0 for i in items)
    decayed = items[DECAY_FROM]
    assert decayed["anomaly"] is True and decayed["value"] < decayed["lower"] < decayed["upper"]
    assert decayed["lower"] < decayed["mean"] < decayed["upper"]
    assert all(i["anomaly"] is not True for i in items[:DECAY_FROM])
    verdict = get(written, f"{MODEL}/anomalies", series="metric:accuracy")["items"]
    assert [(v["window_start"], v["mean"], v["upper"]) for v in verdict] == [
        (decayed["window_start"], decayed["mean"], decayed["upper"])
    ]
    ranged = get(written, f"{MODEL}/metrics/accuracy", start=at(1), end=at(3))["items"]
    assert [i["window_start"] for i in ranged] == [at(1), at(2)]
    assert get(written, f"{MODEL}/metrics/no_such_metric")["items"] == []


def test_anomalies_only_flagged_by_default(written: Api) -> None:
    flagged = get(written, f"{MODEL}/anomalies")["items"]
    assert flagged and all(a["anomaly"] is True for a in flagged)
    series = {a["series"] for a in flagged if a["window_start"] == at(DRIFT_FROM)}
    assert {f"drift:{f}" for f in scenario.DRIFTED_FEATURES} | {"metric:accuracy"} <= series
    everything = get(written, f"{MODEL}/anomalies", only="false")["items"]
    assert len(everything) > len(flagged)
    assert any(a["anomaly"] is None for a in everything)  # no history yet in window 0
    early = get(written, f"{MODEL}/anomalies", only="false", end=at(1))["items"]
    assert early and {a["window_start"] for a in early} == {at(0)}
    assert get(written, f"{MODEL}/anomalies", end=at(DRIFT_FROM))["items"] == []


def test_the_drift_trigger(written: Api) -> None:
    (trigger,) = get(written, f"{MODEL}/triggers")["items"]
    assert trigger["evidence"]["rule"] == "drift" and trigger["reason"]
    assert trigger["window_start"] == at(WINDOWS - 1)
    assert trigger["data_start"] == at(DRIFT_FROM) and trigger["data_end"] == at(WINDOWS)
    assert trigger["published_at"] is None and trigger["created_at"]


def test_drift_fires_alerts(written: Api) -> None:
    alerts = get(written, f"{MODEL}/alerts")["items"]
    features = {a["subject"] for a in alerts if a["rule"] == "feature-drift"}
    assert features == set(scenario.DRIFTED_FEATURES)
    assert all(a["window_start"] in {at(w) for w in range(DRIFT_FROM, WINDOWS)} for a in alerts)
    assert all(a["labels"]["model"] == scenario.MODEL_ID for a in alerts)
    firing = get(written, f"{MODEL}/alerts", status="firing")["items"]
    resolved = get(written, f"{MODEL}/alerts", status="resolved")["items"]
    assert {a["status"] for a in firing} <= {"firing"}
    assert {a["status"] for a in resolved} <= {"resolved"}
    assert len(firing) + len(resolved) == len(alerts)


def test_notifications_with_their_attempts(written: Api) -> None:
    assert get(written, "/api/v1/notifications")["items"] == []  # no routing file: none
    now = utcnow()
    with written.sessions.begin() as session:
        for name in ("n-sent", "n-failed", "n-unsent"):
            notification_store.add_notification(
                session,
                notification_store.NotificationRecord(
                    id=name,
                    receiver="team",
                    integration="slack",
                    group_key=name,
                    seq=0,
                    status="firing",
                    payload={},
                    created_at=now,
                    sent_at=None,
                    failed_at=None,
                    attempts=0,
                    next_attempt_at=now,
                    last_error=None,
                    claimed_by="relay",
                    claimed_until=now + timedelta(minutes=1),
                ),
            )
        notification_store.record_attempt(
            session, "n-sent", owner="relay", at=now, seconds=0.1, error="503", retryable=True
        )
        # the failed attempt released the lease: the relay takes the notification again
        notification_store.claim_due(session, owner="relay", now=now, lease_seconds=60, limit=9)
        notification_store.record_attempt(session, "n-sent", owner="relay", at=now, seconds=0.2)
        notification_store.record_attempt(
            session, "n-failed", owner="relay", at=now, seconds=0.3, error="404", retryable=False
        )
    every = {n["id"]: n for n in get(written, "/api/v1/notifications")["items"]}
    assert {k: n["status"] for k, n in every.items()} == {
        "n-sent": "sent",
        "n-failed": "failed",
        "n-unsent": "unsent",
    }
    sent = every["n-sent"]
    assert sent["attempts"] == 2 and sent["alert_status"] == "firing"
    assert [(a["ok"], a["retryable"], a["error"]) for a in sent["attempt_log"]] == [
        (False, True, "503"),
        (True, None, None),
    ]
    assert every["n-failed"]["last_error"] == "404" and every["n-unsent"]["attempt_log"] == []
    for status in ("sent", "failed", "unsent"):
        (only,) = get(written, "/api/v1/notifications", status=status)["items"]
        assert only["id"] == f"n-{status}"
    assert get(written, "/api/v1/notifications", receiver="other")["items"] == []

    # A page at a time, by creation time then id, each with its own attempts.
    seen, cursor = [], None
    for _ in range(4):
        page = get(
            written, "/api/v1/notifications", limit=2, **({"cursor": cursor} if cursor else {})
        )
        seen += [(n["id"], len(n["attempt_log"])) for n in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [("n-failed", 1), ("n-sent", 2), ("n-unsent", 0)]


SILENCE = {
    "matchers": ['model="churn"', "rule=~.*drift"],
    "duration": "2h",
    "comment": "retraining",
    "created_by": "ops",
}


def test_silence_round_trip(written: Api) -> None:
    client = written.client
    created = client.post("/api/v1/silences", json=SILENCE, headers=written.admin)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["active"] and silence["matchers"] == SILENCE["matchers"]
    ends = datetime.fromisoformat(silence["ends_at"]) - datetime.fromisoformat(silence["starts_at"])
    assert ends == timedelta(hours=2)
    later = (utcnow() + timedelta(days=1)).isoformat()
    body = {**SILENCE, "duration": None, "ends_at": later}
    second = client.post("/api/v1/silences", json=body, headers=written.admin)
    assert second.status_code == 201, second.text
    active = [s["id"] for s in get(written, "/api/v1/silences")["items"]]
    assert active == [second.json()["id"], silence["id"]]  # latest ending first

    expired = client.post(f"/api/v1/silences/{silence['id']}/expire", headers=written.admin)
    assert expired.status_code == 200 and expired.json()["active"] is False
    assert [s["id"] for s in get(written, "/api/v1/silences")["items"]] == [second.json()["id"]]
    every = {s["id"]: s["active"] for s in get(written, "/api/v1/silences", all="true")["items"]}
    assert every == {silence["id"]: False, second.json()["id"]: True}
    again = client.post(f"/api/v1/silences/{silence['id']}/expire", headers=written.admin)
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    ghost = client.post("/api/v1/silences/nope/expire", headers=written.admin)
    assert ghost.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("post", "/api/v1/silences", SILENCE), ("post", "/api/v1/silences/any/expire", None)],
)
def test_mutations_need_an_admin_key(api: Api, method: str, path: str, body: Any) -> None:
    send = getattr(api.client, method)
    kwargs = {"json": body} if body is not None else {}
    missing = send(path, **kwargs)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
    read = send(path, headers=api.read, **kwargs)
    assert read.status_code == 403 and read.json()["error"]["code"] == "forbidden"
    with api.sessions.begin() as session:
        assert list_silences(session) == []


@pytest.mark.parametrize(
    "path",
    ["/metrics/accuracy", "/anomalies", "/triggers", "/alerts"],
)
def test_reads_need_a_key_and_a_known_model(api: Api, path: str) -> None:
    assert api.client.get(f"{MODEL}{path}").status_code == 401
    response = api.client.get(f"/api/v1/models/ghost{path}", headers=api.read)
    assert response.status_code == 404 and response.json()["error"]["status"] == 404


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (f"{MODEL}/metrics/accuracy", {"start": "2026-01-01T00:00:00"}, 400),
        (f"{MODEL}/metrics/accuracy", {"end": "yesterday"}, 422),
        (f"{MODEL}/anomalies", {"end": "2026-01-01T00:00:00"}, 400),
        (f"{MODEL}/anomalies", {"only": "maybe"}, 422),
        (f"{MODEL}/alerts", {"status": "snoozed"}, 422),
        ("/api/v1/notifications", {"status": "lost"}, 422),
        ("/api/v1/silences", {"all": "perhaps"}, 422),
    ],
)
def test_bad_reads_are_a_4xx_with_the_error_body(
    api: Api, path: str, params: dict[str, Any], status: int
) -> None:
    response = api.client.get(path, params=params, headers=api.read)
    assert response.status_code == status, response.text
    assert response.json()["error"]["status"] == status


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"matchers": ['model="churn"', "not a matcher"]}, "not a matcher"),
        ({"matchers": ["rule=~(unclosed"]}, "(unclosed"),
        ({"matchers": []}, "matchers"),
        ({"duration": "soon"}, "duration"),
        ({"duration": None}, "duration or ends_at"),
        ({"ends_at": "2030-01-01T00:00:00Z"}, "duration or ends_at"),  # both
        ({"duration": None, "ends_at": "2030-01-01T00:00:00"}, "offset"),
        ({"comment": ""}, "comment"),
        ({"created_by": None}, "created_by"),
    ],
)
def test_a_bad_silence_is_422_naming_the_problem(
    api: Api, change: dict[str, Any], named: str
) -> None:
    body = {**SILENCE, **change}
    response = api.client.post("/api/v1/silences", json=body, headers=api.admin)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["status"] == 422 and named in str(error)


def test_a_silence_ending_in_the_past_is_400(api: Api) -> None:
    body = {**SILENCE, "duration": None, "ends_at": "2020-01-01T00:00:00Z"}
    response = api.client.post("/api/v1/silences", json=body, headers=api.admin)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
