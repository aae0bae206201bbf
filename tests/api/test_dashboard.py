"""The dashboard's pages over HTTP: access, paging on the server, the embedded data, the
assets served from the installed package (what the browser test draws is in
test_dashboard_browser.py)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from api.dashboard.views import severity
from storage.drift_grid import DriftCell
from tests.api.conftest import WINDOWS, Api
from tests.stream_app import scenario


def page_data(html: str) -> Any:
    found = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no embedded page data"
    return json.loads(found.group(1))


def basic(key_header: dict[str, str]) -> dict[str, str]:
    key = next(iter(key_header.values())).removeprefix("Bearer ")
    return {"Authorization": "Basic " + base64.b64encode(f"me:{key}".encode()).decode()}


def test_the_dashboard_asks_the_browser_for_a_key(written: Api) -> None:
    refused = written.client.get("/dashboard/")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Basic ")
    wrong = written.client.get("/dashboard/", headers={"Authorization": "Basic bWU6bm9wZQ=="})
    assert wrong.status_code == 401
    page = written.client.get("/dashboard/", headers=basic(written.read))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page_data(page.text)[0]["model_id"] == scenario.MODEL_ID
    assert written.client.get("/dashboard/", headers=written.admin).status_code == 200


def test_a_model_page_is_a_page_of_windows(written: Api) -> None:
    headers = basic(written.read)
    full = page_data(
        written.client.get(f"/dashboard/models/{scenario.MODEL_ID}", headers=headers).text
    )
    assert len(full["windows"]) == WINDOWS
    assert full["older"] is None and full["newer"] is None
    n_features = len(full["features"])
    assert n_features >= 4
    assert len(full["heatmap"]["z"]) == n_features
    assert all(len(row) == WINDOWS for row in full["heatmap"]["z"])
    drifted = [
        f
        for f, row in zip(full["features"], full["heatmap"]["z"], strict=True)
        if max(v or 0 for v in row) >= 1
    ]
    assert set(scenario.DRIFTED_FEATURES) <= set(drifted)

    latest = page_data(
        written.client.get(f"/dashboard/models/{scenario.MODEL_ID}?columns=2", headers=headers).text
    )
    assert latest["windows"] == full["windows"][-2:]
    assert latest["older"] == full["windows"][-2] and latest["newer"] is None
    older = page_data(
        written.client.get(
            f"/dashboard/models/{scenario.MODEL_ID}",
            params={"columns": 2, "before": latest["older"]},
            headers=headers,
        ).text
    )
    assert older["windows"] == full["windows"][-4:-2]
    assert older["newer"] == ""  # the next page towards now is the latest one


def test_unknown_models_and_windows_are_404(written: Api) -> None:
    headers = basic(written.read)
    assert written.client.get("/dashboard/models/ghost", headers=headers).status_code == 404
    missing = f"/dashboard/models/{scenario.MODEL_ID}/windows/2001-01-01T00:00:00Z"
    assert written.client.get(missing, headers=headers).status_code == 404
    bad = f"/dashboard/models/{scenario.MODEL_ID}/windows/yesterday"
    assert written.client.get(bad, headers=headers).status_code == 422


def test_a_window_page_lists_every_verdict(written: Api) -> None:
    headers = basic(written.read)
    model = page_data(
        written.client.get(f"/dashboard/models/{scenario.MODEL_ID}", headers=headers).text
    )
    last = model["windows"][-1]
    page = written.client.get(
        f"/dashboard/models/{scenario.MODEL_ID}/windows/{last}", headers=headers
    )
    assert page.status_code == 200
    data = page_data(page.text)
    assert data["window"]["window_start"] == last
    primary = {d["feature"]: d for d in data["drift"] if d["is_primary"] and not d["is_output"]}
    for feature in scenario.DRIFTED_FEATURES:
        assert primary[feature]["drifted"] and primary[feature]["severity"] >= 1


def test_assets_come_from_the_installed_packages(api: Api) -> None:
    bundle = api.client.get("/dashboard/static/plotly.min.js")
    assert bundle.status_code == 200 and "javascript" in bundle.headers["content-type"]
    assert len(bundle.content) > 1_000_000 and b"plotly" in bundle.content[:2000].lower()
    assert api.client.get("/dashboard/static/dashboard.js").status_code == 200
    assert api.client.get("/dashboard/static/..%2Fviews.py").status_code == 404
    assert api.client.get("/dashboard/static/nope.js").status_code == 404


def cell(method: str, score: float | None, p_value: float | None, threshold: float) -> DriftCell:
    return DriftCell(
        window_start=None,  # type: ignore[arg-type]
        feature="f",
        method=method,
        score=score,
        p_value=p_value,
        adjusted_p_value=None,
        threshold=threshold,
        drifted=None,
        status="",
        is_output=False,
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (cell("psi", 0.1, None, 0.2), 0.5),  # a score method: score / threshold
        (cell("psi", 0.2, None, 0.2), 1.0),  # at the threshold: drift
        (cell("psi", 5.0, None, 0.2), 3.0),  # capped
        (cell("ks", 0.3, 0.5, 0.05), 0.1),  # a p-value method: threshold / p
        (cell("ks", 0.3, 0.05, 0.05), 1.0),
        (cell("ks", 0.9, 0.0, 0.05), 3.0),
        (cell("ks", 0.3, None, 0.05), None),  # nothing to compare
    ],
)
def test_severity_is_one_at_the_threshold_on_the_drift_side(
    given: DriftCell, expected: float | None
) -> None:
    found = severity(given)
    assert found == pytest.approx(expected) if expected is not None else found is None
