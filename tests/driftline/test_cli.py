"""The CLI is one piece: every command and subcommand has ``--help``, and every mistake on the
command line or in a configuration is exit status 2 with one line naming it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def command_paths(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every command and subcommand, as the words that name it (the top one: ())."""
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*path, name))


COMMANDS = list(command_paths(build_parser()))


def test_the_commands_a_new_user_needs_are_there() -> None:
    names = {path[0] for path in COMMANDS if path}
    assert {
        "demo", "local", "worker", "models", "flush", "relay", "silence", "api", "api-keys",
        "windows", "drift", "metrics", "triggers", "alerts", "replay", "topics", "db",
    } <= names  # fmt: skip
    assert ("models", "register") in COMMANDS and ("local", "kafka") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "driftline")
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {' '.join(('driftline', *path))}")
    assert "-h, --help" in out


def test_every_leaf_command_has_a_handler() -> None:
    parser = build_parser()
    leaves = [p for p in COMMANDS if p and not any(q[: len(p)] == p and q != p for q in COMMANDS)]
    for path in leaves:
        required = {
            ("models", "register"): ["--config", "x"],
            ("models", "delete"): ["m"],
            ("silence", "add"): ["a=b", "--comment", "c"],
            ("silence", "expire"): ["x"],
            ("api-keys", "create"): ["--name", "n"],
            ("api-keys", "revoke"): ["x"],
            ("relay",): ["--alerts", "a.yaml"],
            ("replay",): ["m", "predictions.csv"],
            ("local", "kafka"): ["status"],
            ("local", "postgres"): ["status"],
        }
        argv = [*path, *required.get(path, ["m"] if path[0] in MODEL_COMMANDS else [])]
        args = parser.parse_args(argv)
        assert callable(args.handler), path


MODEL_COMMANDS = {"windows", "drift", "metrics", "triggers"}


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["nope"], "invalid choice: 'nope'"),
        (["models"], "the following arguments are required"),
        (["windows"], "MODEL"),
        (["drift", "churn", "--status", "bad"], "--status"),
        (["windows", "churn", "--json", "--csv"], "not allowed with argument"),
        (["windows", "churn", "--since", "soon"], "--since"),
        (["demo", "--seed", "x"], "--seed"),
    ],
)
def test_usage_errors_exit_2_naming_the_problem(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert names in err
    assert "Traceback" not in err


def test_a_bad_configuration_file_exits_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "model.json"
    config.write_text('{"model_id": "churn", "window_seconds": -5}')
    url = f"sqlite+pysqlite:///{tmp_path / 'd.db'}"
    status = main(["models", "register", "--config", str(config), "--database-url", url])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("driftline models: error: ") and err.count("\n") == 1
    assert "window_seconds" in err


def test_the_installed_command_exits_with_the_same_codes() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "driftline", "windows"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert ran.returncode == 2
    assert "MODEL" in ran.stderr and "Traceback" not in ran.stderr
