"""Health, auth and the error body: every read needs a key, keys are stored hashed, and bad
input gets a 4xx with one error shape, never a 500."""

from __future__ import annotations

from sqlalchemy import select

from storage.api_keys import revoke_key
from storage.models import api_keys
from tests.api.conftest import Api
from tests.stream_app import scenario


def test_health_and_readiness_answer_without_a_key(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/api/v1/readyz")
    assert ready.status_code == 200 and ready.json()["schema"] == ready.json()["head"]


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
