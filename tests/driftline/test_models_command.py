"""``driftline models delete``: the model leaves the list (not the database), and
``driftline models register`` brings it back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driftline.cli import main
from tests.stream_app import scenario


def test_delete_list_and_register_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'd.db'}"
    config = tmp_path / "model.json"
    config.write_text(scenario.model_config().model_dump_json())
    register = ["models", "register", "--config", str(config), "--database-url", url]
    assert main(register) == 0
    assert main(["models", "delete", "churn", "--database-url", url]) == 0
    assert "deleted model churn" in capsys.readouterr().out
    assert main(["models", "list", "--database-url", url]) == 0
    assert capsys.readouterr().out == ""
    assert main(["models", "list", "--include-deleted", "--database-url", url]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["deleted_at"] is not None
    assert main(["models", "delete", "ghost", "--database-url", url]) == 2
    assert "no model 'ghost'" in capsys.readouterr().err
    assert main(register) == 0
    capsys.readouterr()
    assert main(["models", "list", "--database-url", url]) == 0
    assert json.loads(capsys.readouterr().out) == {"model_id": "churn", "reference": None}
