"""The demo finds the drift it injects, and nothing before it."""

from __future__ import annotations

import io

import pytest

from driftline import demo
from driftline.cli import main


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
