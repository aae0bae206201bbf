"""``driftline windows | drift | metrics | triggers | alerts`` on a database the pipeline wrote:
the same rows the HTTP API serves, filters that filter, tables for people and JSON or CSV for
scripts; an unknown model or an unreadable time is a usage error (exit status 2)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from driftline.cli import main
from storage.api_keys import create_key
from tests.api.conftest import write_stream
from tests.integration.harness import register
from tests.stream_app import scenario

# The pipeline runs into the database first (a few seconds): with the API tests.
pytestmark = pytest.mark.integration

WINDOWS = 5


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file with the scenario's stream (drift from window 3, labels) written by stage 2."""
    url = f"sqlite+pysqlite:///{tmp_path_factory.mktemp('results') / 'driftline.db'}"
    write_stream(register(url), windows=WINDOWS, labels=True)
    return url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def as_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    status, out, err = run(capsys, *argv, "--json")
    assert status == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def api_get(url: str, path: str) -> Any:
    sessions = register(url)
    with sessions.begin() as session:
        _, key = create_key(session, "cli-test", "read")
    app = create_app(ApiSettings(database_url=url), sessions)
    with TestClient(app) as client:
        response = client.get(path, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, response.text
        return response


def test_windows_lists_every_window_with_its_counts(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = as_json(capsys, "windows", scenario.MODEL_ID, "--database-url", database)
    assert len(rows) == WINDOWS
    assert all(row["final"] and row["n_rows"] > 0 for row in rows)
    assert [row["dataset_drift"] for row in rows] == [False, False, False, True, True]
    assert all(row["n_labeled"] == row["n_rows"] for row in rows)
    assert rows[0]["window_start"].endswith("Z")


def test_since_and_until_keep_the_windows_starting_between_them(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    everything = as_json(capsys, "windows", scenario.MODEL_ID, "--database-url", database)
    since, until = everything[1]["window_start"], everything[3]["window_start"]
    rows = as_json(
        capsys,
        "windows",
        scenario.MODEL_ID,
        "--since",
        since,
        "--until",
        until,
        "--database-url",
        database,
    )
    assert [row["window_start"] for row in rows] == [since, everything[2]["window_start"]]


def test_drift_as_csv_is_what_the_api_serves(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "drift", scenario.MODEL_ID, "--csv", "--database-url", database)
    assert status == 0, err
    served = api_get(database, f"/api/v1/models/{scenario.MODEL_ID}/drift?format=csv&limit=1000")
    assert "Next-Cursor" not in served.headers  # one page holds it all
    ours = list(csv.reader(io.StringIO(out)))
    theirs = list(csv.reader(io.StringIO(served.text)))
    # The API writes times with +00:00, the CLI with Z: the same instant.
    assert [[c.replace("+00:00", "Z") for c in row] for row in theirs] == ours
    assert len(ours) > WINDOWS


def test_drift_filters_by_feature_and_status(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    feature = scenario.DRIFTED_FEATURES[0]
    rows = as_json(
        capsys, "drift", scenario.MODEL_ID, "--feature", feature, "--database-url", database
    )
    assert rows and {row["feature"] for row in rows} == {feature}
    drifted = as_json(
        capsys, "drift", scenario.MODEL_ID, "--status", "drift", "--database-url", database
    )
    assert drifted and {row["status"] for row in drifted} == {"drift"}
    assert min(row["window_start"] for row in drifted) >= rows[3]["window_start"]


def test_metrics_carry_their_control_limits_as_the_api_does(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = as_json(
        capsys, "metrics", scenario.MODEL_ID, "--metric", "accuracy", "--database-url", database
    )
    served = api_get(database, f"/api/v1/models/{scenario.MODEL_ID}/metrics/accuracy").json()[
        "items"
    ]
    assert len(rows) == len(served) == WINDOWS
    for ours, theirs in zip(rows, served, strict=True):
        assert ours["value"] == theirs["value"]
        assert (ours["lower"], ours["upper"], ours["anomaly"]) == (
            theirs.get("lower"),
            theirs.get("upper"),
            theirs.get("anomaly"),
        )
    every = as_json(capsys, "metrics", scenario.MODEL_ID, "--database-url", database)
    assert {"accuracy", "f1"} <= {row["metric"] for row in every}


def test_triggers_and_alerts_list_what_stage_2_committed(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    triggers = as_json(capsys, "triggers", scenario.MODEL_ID, "--database-url", database)
    served = api_get(database, f"/api/v1/models/{scenario.MODEL_ID}/triggers").json()["items"]
    assert [t["trigger_id"] for t in triggers] == [t["trigger_id"] for t in served]
    assert triggers, "the drift from window 3 triggers a retraining"
    alerts = as_json(capsys, "alerts", "--model", scenario.MODEL_ID, "--database-url", database)
    firing = as_json(capsys, "alerts", "--status", "firing", "--database-url", database)
    assert {a["status"] for a in firing} <= {"firing"}
    assert len(firing) <= len(alerts)


def test_a_table_for_people(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "windows", scenario.MODEL_ID, "--database-url", database)
    assert status == 0
    assert f"windows of {scenario.MODEL_ID}" in out
    assert "window start" in out and "n rows" in out
    assert out.count("yes") >= WINDOWS  # every window final


def test_an_unknown_model_is_a_usage_error_naming_the_registered_ones(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "drift", "nope", "--database-url", database)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "no model 'nope'" in err and scenario.MODEL_ID in err


def test_an_unreadable_time_is_a_usage_error(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(
        capsys, "windows", scenario.MODEL_ID, "--since", "yesterday", "--database-url", database
    )
    assert status == 2
    assert "--since" in err and "yesterday" in err and "ISO 8601" in err


def test_no_results_in_the_range_says_so(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = run(
        capsys,
        "windows",
        scenario.MODEL_ID,
        "--since",
        "2099-01-01",
        "--json",
        "--database-url",
        database,
    )
    assert status == 0
    assert json.loads(out) == []
    assert "no windows of churn found" in err.replace(scenario.MODEL_ID, "churn")
