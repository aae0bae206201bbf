"""Creating and updating a model's configuration: admin keys only, refused configurations
name every bad field."""

from __future__ import annotations

import re

from tests.api.conftest import Api

CONFIG = {"task": "binary", "classes": ["0", "1"], "window_seconds": 600}


def test_an_admin_key_creates_then_updates_a_model(api: Api) -> None:
    created = api.client.put("/api/v1/models/fraud", json=CONFIG, headers=api.admin)
    assert created.status_code == 201 and created.json()["config"]["window_seconds"] == 600
    updated = api.client.put(
        "/api/v1/models/fraud", json={**CONFIG, "window_seconds": 1200}, headers=api.admin
    )
    assert updated.status_code == 200 and updated.json()["config"]["window_seconds"] == 1200
    read = api.client.get("/api/v1/models/fraud", headers=api.read).json()
    assert read["config"]["positive_class"] == "1"


def test_mutations_refuse_read_keys_and_missing_keys(api: Api) -> None:
    assert api.client.put("/api/v1/models/fraud", json=CONFIG, headers=api.read).status_code == 403
    assert api.client.put("/api/v1/models/fraud", json=CONFIG).status_code == 401
    assert api.client.get("/api/v1/models/fraud", headers=api.read).status_code == 404


def test_a_bad_configuration_is_422_naming_every_field(api: Api) -> None:
    bad = {"task": "binary", "classes": ["0"], "window_seconds": 0}
    response = api.client.put("/api/v1/models/fraud", json=bad, headers=api.admin)
    assert response.status_code == 422
    error = response.json()["error"]
    assert {d["field"] for d in error["details"]} == {"classes", "window_seconds"}
    mismatch = api.client.put(
        "/api/v1/models/fraud", json={**CONFIG, "model_id": "other"}, headers=api.admin
    )
    assert mismatch.status_code == 400
    not_json = api.client.put(
        "/api/v1/models/fraud",
        content=b"{nope",
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422


def test_every_mutating_route_refuses_read_keys_and_missing_keys(api: Api) -> None:
    """Enumerated from the app's OpenAPI document, so a route added later is covered too."""
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    mutating = [
        (method.upper(), template)
        for template, operations in paths.items()
        for method in operations
        if method in {"post", "put", "patch", "delete"}
    ]
    assert len(mutating) >= 5, mutating  # models PUT/DELETE, references, silences
    for method, template in mutating:
        path = re.sub(r"\{[^}]+\}", "churn", template)
        missing = api.client.request(method, path, json={})
        assert missing.status_code == 401, (method, path, missing.text)
        read = api.client.request(method, path, json={}, headers=api.read)
        assert read.status_code == 403, (method, path, read.text)
