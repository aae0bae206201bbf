"""The shipped JSON Schemas: up to date, versioned, and agreeing with the models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas import DeadLetter, ModelConfig, RetrainTrigger
from schemas.generate import JSON_DIR, SCHEMA_FILES, main, render, stale_schemas
from tests.schemas import jsonschema_subset
from tests.schemas.examples import MISSING, batch, event, label, record, routing

SPECS = {spec.filename: spec for spec in SCHEMA_FILES}


def load(filename: str) -> dict[str, Any]:
    text = resources.files("schemas").joinpath("json", filename).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def test_committed_files_equal_generated_ones() -> None:
    assert stale_schemas() == [], "run: python -m schemas.generate"
    assert sorted(path.name for path in JSON_DIR.glob("*.json")) == sorted(SPECS)


@pytest.mark.parametrize("filename", sorted(SPECS))
def test_schema_is_versioned_and_self_describing(filename: str) -> None:
    schema = load(filename)
    stem = filename.removesuffix(".schema.json")
    assert stem.endswith(".v1")
    assert schema["$id"] == f"urn:driftline:schema:{stem}"
    assert schema["title"].endswith(" v1")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["description"] and "\n" not in schema["description"]
    assert schema["additionalProperties"] is False


def test_generate_check_and_write(tmp_path: Path) -> None:
    assert main(["--check"]) == 0
    assert main(["--check", "--directory", str(tmp_path)]) == 1
    assert main(["--directory", str(tmp_path)]) == 0
    assert main(["--check", "--directory", str(tmp_path)]) == 0
    label_file = tmp_path / "label.v1.schema.json"
    label_file.write_text(render(SPECS["label.v1.schema.json"]).replace("v1", "v0"))
    assert stale_schemas(tmp_path) == ["label.v1.schema.json"]


AT = datetime(2024, 5, 1, tzinfo=UTC)
TRIGGER = RetrainTrigger(
    trigger_id="t1",
    model_id="churn",
    model_version="7",
    reason="drift",
    evidence={"psi": 0.3},
    window_start=AT.replace(hour=0),
    window_end=AT.replace(hour=1),
    created_at=AT.replace(hour=2),
)
LETTER = DeadLetter.from_message(
    "score: must be a probability", topic="p", partition=0, offset=1, value=b"\xff", received_at=AT
)
CONFIG = ModelConfig.from_dict(
    {"model_id": "churn", "task": "binary", "classes": ["0", "1"], "features": {"a": "numeric"}}
)

# (schema file, document, valid?) - the JSON Schema and the model must give the same verdict.
EXAMPLES: list[tuple[str, Any, bool]] = [
    ("prediction.v1.schema.json", event(), True),
    ("prediction.v1.schema.json", event(timestamp=1714564800.5), True),
    ("prediction.v1.schema.json", event(timestamp="2024-05-01T12:00:00+02:00"), True),
    ("prediction.v1.schema.json", event(score=[0.2, 0.8], model_version=MISSING), True),
    ("prediction.v1.schema.json", event(score=None, features={}), True),
    ("prediction.v1.schema.json", event(model_id=MISSING), False),
    ("prediction.v1.schema.json", event(model_id="a b"), False),
    ("prediction.v1.schema.json", event(prediction_id=""), False),
    ("prediction.v1.schema.json", event(features={"a": {"b": 1}}), False),
    ("prediction.v1.schema.json", event(features={"a": [1]}), False),
    ("prediction.v1.schema.json", event(score=1.5), False),
    ("prediction.v1.schema.json", event(score=[0.5, -1]), False),
    ("prediction.v1.schema.json", event(prediction=None), False),
    ("prediction.v1.schema.json", event(timestamp=True), False),
    ("prediction.v1.schema.json", event(timestamp=-5), False),
    ("prediction.v1.schema.json", event(timestamp=7258118400), False),
    ("prediction.v1.schema.json", event(extra=1), False),
    ("prediction.v1.schema.json", batch(), False),
    ("prediction-batch.v1.schema.json", batch(), True),
    ("prediction-batch.v1.schema.json", batch(model_version=MISSING), True),
    ("prediction-batch.v1.schema.json", batch(records=[]), False),
    ("prediction-batch.v1.schema.json", batch(records=[record(score=2)]), False),
    ("prediction-batch.v1.schema.json", batch(records=[event()]), False),
    ("prediction-batch.v1.schema.json", event(), False),
    ("label.v1.schema.json", label(), True),
    ("label.v1.schema.json", label(label="churned", timestamp="2024-05-03T08:30:00Z"), True),
    ("label.v1.schema.json", label(label=None), False),
    ("label.v1.schema.json", label(prediction_id=MISSING), False),
    ("retrain-trigger.v1.schema.json", json.loads(TRIGGER.to_json_bytes()), True),
    ("retrain-trigger.v1.schema.json", {**json.loads(TRIGGER.to_json_bytes()), "x": 1}, False),
    ("dead-letter.v1.schema.json", json.loads(LETTER.to_json_bytes()), True),
    ("dead-letter.v1.schema.json", {**json.loads(LETTER.to_json_bytes()), "offset": -1}, False),
    ("model-config.v1.schema.json", json.loads(CONFIG.to_json()), True),
    ("model-config.v1.schema.json", {"model_id": "m"}, True),
    ("model-config.v1.schema.json", {"model_id": "m", "window_seconds": 0}, False),
    ("model-config.v1.schema.json", {"model_id": "m", "drift": {"drift_share": 0}}, False),
    ("model-config.v1.schema.json", {"model_id": "m", "features": {"a": "text"}}, False),
    ("model-config.v1.schema.json", {"model_id": "m", "retrain": {"enabled": "yes"}}, False),
    ("alert-routing.v1.schema.json", routing(), True),
    ("alert-routing.v1.schema.json", routing(inhibit_rules=None, top_n=MISSING), True),
    ("alert-routing.v1.schema.json", routing(route={"receiver": "ml-team"}), True),
    (
        "alert-routing.v1.schema.json",
        routing(route={"receiver": "ml-team", "group_wait": "soon"}),
        False,
    ),
    (
        "alert-routing.v1.schema.json",
        routing(route={"receiver": "ml-team", "group_wait": -1}),
        False,
    ),
    (
        "alert-routing.v1.schema.json",
        routing(route={"receiver": "ml-team", "group_wiat": 1}),
        False,
    ),
    ("alert-routing.v1.schema.json", routing(receivers=[]), False),
    (
        "alert-routing.v1.schema.json",
        routing(receivers=[{"name": "x", "slack": [{"webhook_url": "u"}]}]),
        False,
    ),
    ("alert-routing.v1.schema.json", routing(top_n=0), False),
]


@pytest.mark.parametrize(("filename", "document", "valid"), EXAMPLES)
def test_schema_and_model_agree(filename: str, document: Any, valid: bool) -> None:
    problems = jsonschema_subset.errors(document, load(filename))
    assert (problems == []) is valid, problems
    model: type[BaseModel] = SPECS[filename].model
    if valid:
        model.model_validate_json(json.dumps(document))
    else:
        with pytest.raises(ValidationError):
            model.model_validate_json(json.dumps(document))


def test_the_subset_validator_refuses_unknown_keywords() -> None:
    with pytest.raises(NotImplementedError, match="oneOf"):
        jsonschema_subset.errors(1, {"oneOf": [{"type": "integer"}]})
    assert jsonschema_subset.errors({"a": 1}, {"type": "object", "required": ["b"]}) == [
        "$.b: required"
    ]
