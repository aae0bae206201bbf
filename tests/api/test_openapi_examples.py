"""Every operation of the OpenAPI document shows an example answer, taken from a real one.

Run with ``DRIFTLINE_WRITE_OPENAPI_EXAMPLES=1`` to (re)write ``api/openapi_examples.json``
from the answers below; otherwise the test checks that every JSON operation has a stored
example and that each example still has the shape the API answers with today.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from api import openapi_examples
from tests.api.conftest import Api, write_stream
from tests.stream_app import scenario

MODEL = scenario.MODEL_ID
WRITE = os.environ.get("DRIFTLINE_WRITE_OPENAPI_EXAMPLES") == "1"


def shape(value: Any) -> Any:
    """Keys and types, not values: what must not drift between an example and an answer."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if value is not None else None


def answers(api: Api) -> dict[str, dict[str, Any]]:
    """One real answer per operation, mutations included (the model is deleted last)."""
    client, read, admin = api.client, api.read, api.admin
    found: dict[str, dict[str, Any]] = {}

    def call(method: str, template: str, path: str, **kwargs: Any) -> Any:
        response = client.request(method, path, **kwargs)
        assert response.status_code < 300, (method, path, response.text)
        if response.status_code != 204 and "json" in response.headers.get("content-type", ""):
            found[f"{method} {template}"] = {
                "status": response.status_code,
                "body": openapi_examples.shorten(response.json()),
            }
        return response

    windows = call(
        "GET",
        "/api/v1/models/{model_id}/drift",
        f"/api/v1/models/{MODEL}/drift",
        params={"feature": "income", "limit": 3},
        headers=read,
    ).json()["items"]
    start = windows[-1]["window_start"]
    for template in (
        "/healthz",
        "/readyz",
        "/api/v1/healthz",
        "/api/v1/readyz",
        "/api/v1/models",
        "/api/v1/models/{model_id}",
        "/api/v1/models/{model_id}/references",
        "/api/v1/models/{model_id}/anomalies",
        "/api/v1/models/{model_id}/triggers",
        "/api/v1/models/{model_id}/alerts",
        "/api/v1/notifications",
        "/api/v1/silences",
    ):
        call("GET", template, template.replace("{model_id}", MODEL), headers=read)
    call(
        "GET",
        "/api/v1/models/{model_id}/windows/{window_start}",
        f"/api/v1/models/{MODEL}/windows/{start}",
        headers=read,
    )
    call(
        "GET",
        "/api/v1/models/{model_id}/metrics/{metric}",
        f"/api/v1/models/{MODEL}/metrics/accuracy",
        headers=read,
    )
    silence = call(
        "POST",
        "/api/v1/silences",
        "/api/v1/silences",
        headers=admin,
        json={
            "matchers": [f'model="{MODEL}"', "rule=~.*drift"],
            "duration": "2h",
            "comment": "retraining until Friday",
            "created_by": "ops@example.com",
        },
    ).json()
    call(
        "POST",
        "/api/v1/silences/{silence_id}/expire",
        f"/api/v1/silences/{silence['id']}/expire",
        headers=admin,
    )
    config = client.get(f"/api/v1/models/{MODEL}", headers=read).json()["config"]
    call("PUT", "/api/v1/models/{model_id}", f"/api/v1/models/{MODEL}", headers=admin, json=config)
    reference = scenario.reference().head(200).to_csv(index=False).encode()
    call(
        "POST",
        "/api/v1/models/{model_id}/references",
        f"/api/v1/models/{MODEL}/references",
        headers={**admin, "Content-Type": "text/csv"},
        content=reference,
    )
    call("DELETE", "/api/v1/models/{model_id}", f"/api/v1/models/{MODEL}", headers=admin)
    return found


@pytest.mark.parametrize("api_database_url", ["sqlite"], indirect=True)
def test_every_operation_has_an_example_of_the_shape_it_answers(api: Api) -> None:
    write_stream(api.sessions, labels=True)
    live = answers(api)
    if WRITE:
        openapi_examples.EXAMPLES_FILE.write_text(json.dumps(live, indent=1, sort_keys=True) + "\n")
        pytest.fail("examples written: run the test again without the variable to check them")
    stored = openapi_examples.load()
    document = api.client.get("/api/v1/openapi.json").json()
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            key = f"{method.upper()} {path}"
            if key not in live:
                continue  # no JSON body (204, /metrics' text)
            if key not in stored:
                missing.append(key)
                continue
            status = str(stored[key]["status"])
            shown = operation["responses"][status]["content"]["application/json"]["example"]
            assert shape(shown) == shape(live[key]["body"]), f"{key}: the example has drifted"
    assert not missing, f"no example for {missing}: run with DRIFTLINE_WRITE_OPENAPI_EXAMPLES=1"
    assert re.search(r"\{model_id\}", " ".join(live))  # the templates, not filled-in paths
