"""The demo finds the drift it injects, and nothing before it."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from driftline import demo
from driftline.cli import main
from tests.api.conftest import write_stream
from tests.integration.harness import register
from tests.stream_app import scenario


def test_demo_finds_exactly_the_injected_drift_and_decay() -> None:
    out = io.StringIO()
    rows = demo.run(out)
    assert len(rows) == demo.WINDOWS
    for row in rows:
        expected = set(demo.DRIFTED) if row["window"] >= demo.DRIFT_AT else set()
        assert set(row["drifted"]) == expected, row
    assert any("accuracy below" in a for a in rows[demo.DECAY_AT]["anomalies"])
    assert all(not row["anomalies"] for row in rows[: demo.DECAY_AT])
    assert all(row["accuracy"] < 0.6 for row in rows[demo.DECAY_AT :])
    assert "income=" in out.getvalue()


def test_cli_runs_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--offline", "--seed", "3"]) == 0
    assert "Driftline demo" in capsys.readouterr().out


def test_cli_names_its_commands_when_called_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    assert "demo" in capsys.readouterr().err


@pytest.mark.integration  # a real server process
def test_after_its_stream_the_demo_serves_the_dashboard_and_the_api_until_stopped(
    tmp_path: Path,
) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'demo.db'}"
    write_stream(register(url), windows=3)
    code = f"from driftline.demo_commands import _serve; _serve({url!r}, {scenario.MODEL_ID!r})"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        dashboard = lines[1].split("Dashboard: ", 1)[1].strip()
        key = lines[2].split("Bearer ", 1)[1].rstrip(")\n")
        api = lines[2].split()[1]
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(dashboard, timeout=2) as page:
                    assert page.status == 200 and scenario.MODEL_ID in page.read().decode()
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline, "the dashboard did not answer"
                time.sleep(0.2)
        request = urllib.request.Request(api, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["items"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
