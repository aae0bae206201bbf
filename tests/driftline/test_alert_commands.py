"""``driftline silence`` and ``driftline alerts``: what an operator types, against a real
SQLite file; a bad routing file stops the relay and the worker at start, naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from driftline.cli import main
from storage.alerts import list_silences
from storage.db import make_engine, session_factory
from storage.types import utcnow

BAD_ROUTING = """\
route:
  receiver: team
  group_wiat: 30s
receivers:
  - name: team
"""


def test_silences_are_added_listed_and_expired(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'd.db'}"
    args = ["--database-url", url]
    assert (
        main(
            [
                "silence",
                "add",
                "model=churn",
                'rule=~".*drift"',
                "--duration",
                "2h",
                "--comment",
                "pipeline change",
                "--author",
                "ana",
                *args,
            ]
        )
        == 0
    )
    added = capsys.readouterr().out
    silence_id = added.split()[1].rstrip(":")
    assert 'model="churn" rule=~".*drift"' in added
    with session_factory(make_engine(url))() as session:
        [stored] = list_silences(session, active_at=utcnow())
    assert stored.id == silence_id and stored.created_by == "ana"
    assert 1.99 * 3600 < (stored.ends_at - stored.starts_at).total_seconds() <= 2 * 3600
    assert main(["silence", "list", *args]) == 0
    assert silence_id in capsys.readouterr().out
    assert main(["silence", "expire", silence_id, *args]) == 0
    assert main(["silence", "list", *args]) == 0
    assert "no silences in force" in capsys.readouterr().out
    assert main(["silence", "expire", silence_id, *args]) == 2  # a usage error
    assert "no silence" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["silence", "add", "model", "--comment", "x"], "is not a matcher"),
        (["silence", "add", "model=a", "--duration", "soon", "--comment", "x"], "--duration"),
    ],
)
def test_bad_silences_are_refused_with_what_to_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'd.db'}"
    assert main([*argv, "--database-url", url]) == 2
    assert message in capsys.readouterr().err


def test_the_relay_checks_a_file_and_its_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'd.db'}"
    good = tmp_path / "alerts.yaml"
    good.write_text(
        "route: {receiver: team}\n"
        "receivers: [{name: team, slack: [{webhook_url_env: TEAM_HOOK}]}]\n"
    )
    assert main(["relay", "--alerts", str(good), "--check", "--database-url", url]) == 2
    assert "TEAM_HOOK is not set" in capsys.readouterr().err
    monkeypatch.setenv("TEAM_HOOK", "https://hooks.slack.com/services/T/B/secret-part")
    assert main(["relay", "--alerts", str(good), "--check", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "team (slack[0])" in out and "secret-part" not in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_ROUTING)
    assert main(["relay", "--alerts", str(bad), "--check", "--database-url", url]) == 2
    assert "route.group_wiat" in capsys.readouterr().err


@pytest.mark.integration  # a worker process: seconds to import and start
@pytest.mark.parametrize("given_by", ["environment", "--alerts"])
def test_a_worker_with_a_bad_routing_file_stops_at_start_naming_the_key(
    tmp_path: Path, given_by: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_ROUTING)
    env = {
        **os.environ,
        "DRIFTLINE_DATABASE_URL": f"sqlite+pysqlite:///{tmp_path / 'd.db'}",
        "DRIFTLINE_BROKER": "kafka://127.0.0.1:9",  # never reached
    }
    flag = ["--alerts", str(bad)] if given_by == "--alerts" else []
    if not flag:
        env["DRIFTLINE_ALERTS_FILE"] = str(bad)
    done = subprocess.run(
        [sys.executable, "-m", "driftline", "worker", *flag],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2  # a configuration error
    assert "route.group_wiat" in done.stderr and "unknown field" in done.stderr
