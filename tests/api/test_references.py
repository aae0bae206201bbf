"""Uploading a reference: CSV or Parquet streamed to a file, size-limited, profiled against
the model's configuration, stored as the model's current reference (the one the worker
loads); listed with the model's other references."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pandas as pd
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from storage import catalog
from stream_app.model_loader import sql_loader
from stream_app.registry import ModelRuntime
from tests.api.conftest import Api
from tests.stream_app import scenario

REFERENCES = f"/api/v1/models/{scenario.MODEL_ID}/references"
CSV = {"Content-Type": "text/csv"}
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_a_csv_upload_becomes_the_reference_the_worker_loads(api: Api) -> None:
    body = _csv(scenario.reference(seed=9, n=400))
    response = api.client.post(REFERENCES, content=body, headers={**api.admin, **CSV})
    assert response.status_code == 201, response.text
    summary = response.json()
    assert summary["n_rows"] == 400 and summary["created"] and summary["is_current"]
    assert summary["source"] == f"upload (csv, {len(body):,} bytes, key ci)"
    kinds = {f["name"]: (f["kind"], f["is_output"]) for f in summary["features"]}
    assert kinds == {
        "age": ("numeric", False),
        "income": ("numeric", False),
        "plan": ("categorical", False),
        "tenure": ("numeric", False),
        "score": ("numeric", True),
        "prediction": ("categorical", True),
    }
    with api.sessions() as session:
        current = catalog.get_current_profile(session, scenario.MODEL_ID)
    assert current is not None and current.fingerprint == summary["fingerprint"]
    runtime = sql_loader(api.sessions)(scenario.MODEL_ID)
    assert isinstance(runtime, ModelRuntime) and runtime.profile is not None
    assert runtime.profile.fingerprint == summary["fingerprint"]

    listed = api.client.get(REFERENCES, headers=api.read).json()
    assert [(r["fingerprint"], r["is_current"]) for r in listed["references"]][1:] == [
        (summary["fingerprint"], True)
    ]
    assert len(listed["references"]) == 2  # the one registered by the fixture, then this one
    again = api.client.post(
        f"{REFERENCES}?source=again", content=body, headers={**api.admin, **CSV}
    )
    assert again.status_code == 200 and not again.json()["created"]
    assert again.json()["source"] == summary["source"]  # the first copy is kept


def test_a_parquet_upload_by_its_type_or_by_format(api: Api) -> None:
    body = _parquet(scenario.reference(seed=11, n=300))
    typed = api.client.post(REFERENCES, content=body, headers={**api.admin, **PARQUET})
    assert typed.status_code == 201, typed.text
    assert typed.json()["n_rows"] == 300
    generic = {**api.admin, "Content-Type": "application/octet-stream"}
    named = api.client.post(
        f"{REFERENCES}?format=parquet&source=nightly", content=body, headers=generic
    )
    assert named.status_code == 200 and named.json()["fingerprint"] == typed.json()["fingerprint"]
    assert api.client.post(REFERENCES, content=body, headers=generic).status_code == 400
    refused = api.client.post(
        REFERENCES, content=body, headers={**api.admin, "Content-Type": "application/json"}
    )
    assert refused.status_code == 415
    assert refused.json()["error"]["code"] == "unsupported_media_type"


def test_uploads_need_an_admin_key_and_a_known_model(api: Api) -> None:
    body = _csv(scenario.reference(n=50))
    assert api.client.post(REFERENCES, content=body, headers=CSV).status_code == 401
    assert api.client.post(REFERENCES, content=body, headers={**api.read, **CSV}).status_code == 403
    missing = api.client.post(
        "/api/v1/models/ghost/references", content=body, headers={**api.admin, **CSV}
    )
    assert missing.status_code == 404
    assert api.client.get("/api/v1/models/ghost/references", headers=api.read).status_code == 404


def test_a_file_the_model_cannot_use_is_422_with_the_reason(api: Api) -> None:
    def post(body: bytes, headers: dict[str, str] = CSV) -> tuple[int, str]:
        response = api.client.post(REFERENCES, content=body, headers={**api.admin, **headers})
        return response.status_code, response.json()["error"]["message"]

    status, message = post(b"age,plan\n1,a\n2,b,c,d\n")
    assert status == 422 and "is not readable CSV" in message
    status, message = post(b"not parquet", PARQUET)
    assert status == 422 and "is not readable Parquet" in message and "/tmp" not in message
    status, message = post(_csv(scenario.reference(n=50)[["age", "plan"]]))
    assert status == 422 and "features ['income', 'tenure'] are declared" in message
    status, message = post(b"")
    assert status == 422 and "the body is empty" in message
    with api.sessions() as session:
        assert len(catalog.list_reference_profiles(session, scenario.MODEL_ID)) == 1


def test_a_body_over_the_limit_is_413(api: Api) -> None:
    url = str(api.sessions.kw["bind"].url.render_as_string(hide_password=False))
    app = create_app(ApiSettings(database_url=url, api_max_upload_bytes=1000), api.sessions)
    body = _csv(scenario.reference(n=200))
    assert len(body) > 1000

    def streamed() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 256):
            yield body[start : start + 256]

    with TestClient(app) as client:
        declared = client.post(REFERENCES, content=body, headers={**api.admin, **CSV})
        chunked = client.post(REFERENCES, content=streamed(), headers={**api.admin, **CSV})
        small = client.post(REFERENCES, content=body[:900], headers={**api.admin, **CSV})
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"] == {
            "status": 413,
            "code": "too_large",
            "message": "the reference is larger than 1,000 bytes (DRIFTLINE_API_MAX_UPLOAD_BYTES)",
            "details": [],
        }
    assert small.status_code != 413  # under the limit: judged on its content
