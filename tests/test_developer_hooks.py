"""The pre-commit configuration is valid and runs the tools ``make lint typecheck`` runs, from
the project's virtualenv (so a commit is checked as CI checks it, with nothing downloaded)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from pre_commit.clientlib import load_config

ROOT = Path(__file__).resolve().parents[1]


def hooks() -> dict[str, list[str]]:
    config = load_config(str(ROOT / ".pre-commit-config.yaml"))
    return {
        hook["id"]: shlex.split(hook["entry"]) for repo in config["repos"] for hook in repo["hooks"]
    }


def test_the_hooks_are_ruff_ruff_format_mypy_and_the_import_contracts() -> None:
    assert set(hooks()) == {"ruff", "ruff-format", "mypy", "import-linter"}


def test_each_hook_runs_a_tool_of_the_virtualenv_that_make_lint_runs_too() -> None:
    makefile = (ROOT / "Makefile").read_text()
    bin_dir = Path(sys.executable).parent  # the virtualenv the tests run in
    for hook_id, entry in hooks().items():
        program = Path(entry[0])
        assert program.parts[:2] == (".venv", "bin"), (hook_id, entry)
        assert (bin_dir / program.name).exists(), f"{hook_id}: {program.name} is not installed"
        assert f"$(VENV)/bin/{program.name}" in makefile, f"{hook_id}: make lint/typecheck lacks it"
