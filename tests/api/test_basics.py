"""Health, auth and the error body: every read needs a key, keys are stored hashed, and bad
input gets a 4xx with one error shape, never a 500."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from api.settings import ApiSettings
from storage.api_keys import revoke_key
from storage.models import api_keys
from tests.api.conftest import Api
from tests.stream_app import scenario


def test_health_and_readiness_answer_without_a_key(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/api/v1/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["database"] == body["schema"] == "ok"
    assert body["schema_revision"] == body["head_revision"] and "broker" not in body


def test_reads_need_a_live_key(api: Api) -> None:
    missing = api.client.get("/api/v1/models")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    wrong = api.client.get("/api/v1/models", headers={"Authorization": "Bearer dl_nope"})
    assert wrong.status_code == 401
    ok = api.client.get("/api/v1/models", headers=api.read)
    assert ok.status_code == 200
    assert [m["model_id"] for m in ok.json()["models"]] == [scenario.MODEL_ID]
    with api.sessions.begin() as session:
        key_id = session.execute(
            select(api_keys.c.id).where(api_keys.c.name == "dashboard")
        ).scalar_one()
        assert revoke_key(session, key_id)
    assert api.client.get("/api/v1/models", headers=api.read).status_code == 401


def test_keys_are_stored_hashed(api: Api) -> None:
    presented = api.read["Authorization"].split()[1]
    with api.sessions() as session:
        stored = [tuple(row) for row in session.execute(select(api_keys))]
    assert stored and all(presented not in str(row) for row in stored)


def test_unknown_ids_are_404_with_the_error_body(api: Api) -> None:
    found = api.client.get(f"/api/v1/models/{scenario.MODEL_ID}", headers=api.read)
    assert found.status_code == 200 and found.json()["config"]["task"] == "binary"
    missing = api.client.get("/api/v1/models/ghost", headers=api.read)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"status": 404, "code": "not_found", "message": "no model 'ghost'", "details": []}
    }


def test_the_openapi_document_lists_the_routes(api: Api) -> None:
    document = api.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/models/{model_id}" in document["paths"]
    assert "ErrorBody" in document["components"]["schemas"]


def settings_app(api: Api, **settings: Any) -> TestClient:
    url = str(api.sessions.kw["bind"].url.render_as_string(hide_password=False))
    return TestClient(create_app(ApiSettings(database_url=url, **settings), api.sessions))


def test_readiness_says_which_check_failed(api: Api) -> None:
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        with settings_app(api, api_check_broker=f"127.0.0.1:{port}") as client:
            ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["broker"] == "unreachable" and ready.json()["database"] == "ok"


@pytest.mark.integration
def test_readiness_with_the_real_broker(api: Api, kafka_bootstrap: str) -> None:
    with settings_app(api, api_check_broker=kafka_bootstrap) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["broker"] == "ok"


def test_health_can_require_a_key(api: Api) -> None:
    with settings_app(api, api_open_health=False) as client:
        assert client.get("/healthz").status_code == 401
        assert client.get("/healthz", headers=api.read).status_code == 200


def test_cors_allows_the_configured_origins_only(api: Api) -> None:
    origin = "https://grafana.example.com"
    with settings_app(api, api_cors_origins=[origin]) as client:
        preflight = {"Origin": origin, "Access-Control-Request-Method": "GET"}
        allowed = client.options("/api/v1/models", headers=preflight)
        other = client.options(
            "/api/v1/models", headers={**preflight, "Origin": "https://evil.example.com"}
        )
    assert allowed.headers["access-control-allow-origin"] == origin
    assert "access-control-allow-origin" not in other.headers
