"""Deleting a model: admin keys only, soft (hidden from the list, readable by id, its
history kept), unserved to the worker, and undone by PUT."""

from __future__ import annotations

from storage import catalog
from stream_app.model_loader import sql_loader
from stream_app.registry import DeletedModel
from tests.api.conftest import Api
from tests.stream_app import scenario

MODEL = f"/api/v1/models/{scenario.MODEL_ID}"


def test_only_an_admin_key_deletes_and_deleting_again_changes_nothing(api: Api) -> None:
    assert api.client.delete(MODEL).status_code == 401
    refused = api.client.delete(MODEL, headers=api.read)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    deleted = api.client.delete(MODEL, headers=api.admin)
    assert deleted.status_code == 204 and deleted.content == b""
    first = api.client.get(MODEL, headers=api.read).json()["deleted_at"]
    assert first is not None
    assert api.client.delete(MODEL, headers=api.admin).status_code == 204
    assert api.client.get(MODEL, headers=api.read).json()["deleted_at"] == first
    missing = api.client.delete("/api/v1/models/ghost", headers=api.admin)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "no model 'ghost'"


def test_a_deleted_model_is_hidden_kept_unserved_and_restored_by_put(api: Api) -> None:
    fingerprint = api.client.get(MODEL, headers=api.read).json()["current_fingerprint"]
    assert api.client.delete(MODEL, headers=api.admin).status_code == 204

    assert api.client.get("/api/v1/models", headers=api.read).json() == {"models": []}
    listed = api.client.get("/api/v1/models?include_deleted=true", headers=api.read).json()
    [model] = listed["models"]
    assert model["model_id"] == scenario.MODEL_ID and model["deleted_at"] is not None
    read = api.client.get(MODEL, headers=api.read).json()
    assert read["deleted_at"] == model["deleted_at"] and read["current_fingerprint"] == fingerprint
    references = api.client.get(f"{MODEL}/references", headers=api.read)
    assert references.status_code == 200 and len(references.json()["references"]) == 1
    csv = {**api.admin, "Content-Type": "text/csv"}
    upload = api.client.post(f"{MODEL}/references", content=b"age\n1\n", headers=csv)
    assert upload.status_code == 409 and "was deleted" in upload.json()["error"]["message"]

    # The worker treats it as unregistered: no configuration served, the deletion known.
    loaded = sql_loader(api.sessions)(scenario.MODEL_ID)
    assert isinstance(loaded, DeletedModel) and loaded.model_id == scenario.MODEL_ID

    config = scenario.model_config().model_dump(mode="json")
    restored = api.client.put(MODEL, json=config, headers=api.admin)
    assert restored.status_code == 200, restored.text
    assert restored.json()["deleted_at"] is None
    assert restored.json()["current_fingerprint"] == fingerprint
    listed = api.client.get("/api/v1/models", headers=api.read).json()
    assert [m["model_id"] for m in listed["models"]] == [scenario.MODEL_ID]
    with api.sessions() as session:
        record = catalog.get_model(session, scenario.MODEL_ID)
    assert record is not None and record.deleted_at is None
    runtime = sql_loader(api.sessions)(scenario.MODEL_ID)
    assert not isinstance(runtime, DeletedModel) and runtime is not None
