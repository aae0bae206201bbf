"""One configuration file (examples/driftline.yaml): models with their thresholds, windows,
retraining policy and alert rules, and the alert routing, in YAML or JSON; registered by
``driftline models register``, its routing read by the relay; every bad key named with the
keys allowed there, every bad value with the values allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from alerting.routing import load_routing
from driftline.cli import main
from storage import catalog
from storage.db import make_engine, session_factory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "driftline.yaml"


def url(tmp_path: Path) -> str:
    return f"sqlite+pysqlite:///{tmp_path / 'd.db'}"


def register(
    capsys: pytest.CaptureFixture[str], path: Path, database: str, *extra: str
) -> tuple[int, str, str]:
    status = main(["models", "register", "--config", str(path), "--database-url", database, *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_example_registers_its_models_with_their_references(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = register(capsys, EXAMPLE, url(tmp_path))
    assert status == 0, err
    assert "registered model churn: reference profile" in out and "1,000 rows" in out
    with session_factory(make_engine(url(tmp_path)))() as session:
        record = catalog.get_model(session, "churn")
    assert record is not None and record.current_fingerprint is not None
    assert record.config["retrain"]["min_drifted_windows"] == 2
    assert record.config["alerts"]["labels"] == {"team": "risk"}


def test_the_examples_routing_is_what_the_relay_delivers_by(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/x")
    routing = load_routing(EXAMPLE)
    assert set(routing.receivers) == {"ml-team", "ml-oncall"}


def test_json_works_as_yaml_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["models"][0]["reference"] = str(ROOT / "examples" / "churn-reference.csv")
    path = tmp_path / "driftline.json"
    path.write_text(json.dumps(data))
    status, out, err = register(capsys, path, url(tmp_path))
    assert status == 0, err
    assert "registered model churn" in out


def test_one_model_alone_is_read_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = yaml.safe_load(EXAMPLE.read_text())["models"][0]
    del model["reference"]
    path = tmp_path / "churn.yaml"
    path.write_text(yaml.safe_dump(model))
    status, out, _ = register(capsys, path, url(tmp_path))
    assert status == 0 and "registered model churn: no reference yet" in out


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda d: d["models"][0]["retrain"].update(min_drifted=3),
            [
                "models[0].retrain.min_drifted: unknown field",
                "allowed here:",
                "min_drifted_windows",
            ],
        ),
        (
            lambda d: d["models"][0].update(task="binry"),
            ["models[0].task:", "'binary', 'multiclass' or 'regression'"],
        ),
        (
            lambda d: d.update(alerts={}),
            ["alerts: unknown field", "allowed here: models, alert_routing"],
        ),
        (
            lambda d: d["alert_routing"]["route"].update(group_wiat="1s"),
            ["alert_routing.route.group_wiat: unknown field", "group_wait"],
        ),
        (
            lambda d: d["models"].append(dict(d["models"][0])),
            ["model_id repeated: churn"],
        ),
    ],
    ids=["misspelt-key", "bad-value", "unknown-section", "routing-key", "repeated-model"],
)
def test_a_bad_file_exits_2_naming_the_key_and_what_is_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: object, says: list[str]
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    change(data)  # type: ignore[operator]
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump(data))
    status, out, err = register(capsys, path, url(tmp_path))
    assert status == 2
    assert out == "" and err.count("\n") == 1
    for text in says:
        assert text in err


def test_one_reference_for_many_models_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["models"].append({**data["models"][0], "model_id": "churn2"})
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data))
    reference = str(ROOT / "examples" / "churn-reference.csv")
    status, _, err = register(capsys, path, url(tmp_path), "--reference", reference)
    assert status == 2 and "has 2 models" in err
