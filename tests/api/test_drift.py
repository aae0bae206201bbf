"""Drift history and window reports over data the real pipeline wrote: the scenario's
stream through both stages (in memory) with stage 2's SQL writer, then the API reads it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.conftest import DRIFT_FROM, PER_WINDOW, WINDOWS, Api
from tests.stream_app import scenario

FEATURES = ["age", "income", "plan", "tenure"]


def at(window: int) -> str:
    moment = datetime.fromtimestamp(scenario.START + window * scenario.WINDOW, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def get(api: Api, path: str, **params: Any) -> Any:
    response = api.client.get(
        f"/api/v1/models/{scenario.MODEL_ID}{path}", params=params, headers=api.read
    )
    assert response.status_code == 200, response.text
    return response


def test_drift_history_pages_through_every_row_once(written: Api) -> None:
    everything = get(written, "/drift", method="psi").json()["items"]
    columns = {p["feature"] for p in everything}  # the features and the model's outputs
    assert columns >= set(FEATURES) and len(everything) == WINDOWS * len(columns)
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, Any] = {"method": "psi", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = get(written, "/drift", **params).json()
        seen += [(p["window_start"], p["feature"]) for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [(p["window_start"], p["feature"]) for p in everything]
    drifted = {(p["window_start"], p["feature"]) for p in everything if p["status"] == "drift"}
    expected = {
        (at(w).replace("Z", "+00:00"), f)
        for w in range(DRIFT_FROM, WINDOWS)
        for f in scenario.DRIFTED_FEATURES
    }
    assert {(w.replace("Z", "+00:00"), f) for w, f in drifted} == expected


def test_filters_and_csv(written: Api) -> None:
    only = get(written, "/drift", feature=["income"], status="drift", start=at(DRIFT_FROM)).json()
    assert only["items"] and {p["feature"] for p in only["items"]} == {"income"}
    assert all(p["status"] == "drift" for p in only["items"])
    text = get(written, "/drift", feature="plan", method="psi", format="csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == WINDOWS and rows[0]["feature"] == "plan"
    accepted = written.client.get(
        f"/api/v1/models/{scenario.MODEL_ID}/drift",
        params={"feature": "plan", "method": "psi"},
        headers={**written.read, "Accept": "text/csv"},
    )
    assert accepted.headers["content-type"].startswith("text/csv") and accepted.text == text


def test_a_window_report_has_every_section(written: Api) -> None:
    report = get(written, f"/windows/{at(DRIFT_FROM)}").json()
    assert report["window"]["n_rows"] == PER_WINDOW
    drifted = {d["feature"] for d in report["drift"] if d["is_primary"] and d["status"] == "drift"}
    assert drifted == set(scenario.DRIFTED_FEATURES)
    assert {q["feature"] for q in report["data_quality"]} >= set(FEATURES)
    assert report["anomalies"] and isinstance(report["alerts"], list)


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/drift", {"start": "2026-01-01T00:00:00"}, 400),  # no offset
        ("/drift", {"cursor": "garbage"}, 400),
        ("/drift", {"limit": 0}, 422),
        ("/drift", {"status": "bad"}, 422),
        ("/windows/not-a-time", {}, 422),
        ("/windows/2020-01-01T00:00:00Z", {}, 404),
    ],
)
def test_bad_input_is_a_4xx_with_the_error_body(
    written: Api, path: str, params: dict[str, Any], status: int
) -> None:
    response = written.client.get(
        f"/api/v1/models/{scenario.MODEL_ID}{path}", params=params, headers=written.read
    )
    assert response.status_code == status
    assert response.json()["error"]["status"] == status


def test_an_unknown_model_is_404(written: Api) -> None:
    response = written.client.get("/api/v1/models/ghost/drift", headers=written.read)
    assert response.status_code == 404
