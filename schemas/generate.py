"""Write the JSON Schemas of the contracts to ``schemas/json/``.

Run ``python -m schemas.generate`` after changing a model; ``--check`` only reports stale
files (exit status 1), for CI. The files are committed and shipped with the package so
producers in any language can validate against them; a test keeps them equal to what the
models generate.

Inbound contracts (what producers send, what users configure) are written in pydantic's
*validation* mode, which describes every accepted form (a timestamp as a string or a
number); outbound ones (what Driftline publishes) in *serialization* mode, which describes
exactly what we write (a timestamp as an ISO 8601 string).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from schemas.alert_routing import AlertRouting
from schemas.events import LabelBatch, LabelEvent, PredictionBatch, PredictionEvent
from schemas.model_config import ModelConfig
from schemas.outbound import DeadLetter, RetrainTrigger

JSON_DIR = Path(__file__).parent / "json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class SchemaFile:
    """One shipped schema: its file name (which carries the version), model and title."""

    filename: str
    model: type[BaseModel]
    title: str
    mode: JsonSchemaMode

    @property
    def schema_id(self) -> str:
        # A URN, not a URL: the schemas are shipped files, not served from a domain.
        return "urn:driftline:schema:" + self.filename.removesuffix(".schema.json")


SCHEMA_FILES = (
    SchemaFile(
        "prediction.v1.schema.json", PredictionEvent, "Driftline prediction event v1", "validation"
    ),
    SchemaFile(
        "prediction-batch.v1.schema.json",
        PredictionBatch,
        "Driftline prediction batch v1",
        "validation",
    ),
    SchemaFile("label.v1.schema.json", LabelEvent, "Driftline label event v1", "validation"),
    SchemaFile("label-batch.v1.schema.json", LabelBatch, "Driftline label batch v1", "validation"),
    SchemaFile(
        "retrain-trigger.v1.schema.json",
        RetrainTrigger,
        "Driftline retraining trigger v1",
        "serialization",
    ),
    SchemaFile(
        "dead-letter.v1.schema.json", DeadLetter, "Driftline dead letter v1", "serialization"
    ),
    SchemaFile(
        "model-config.v1.schema.json", ModelConfig, "Driftline model configuration v1", "validation"
    ),
    SchemaFile(
        "alert-routing.v1.schema.json", AlertRouting, "Driftline alert routing v1", "validation"
    ),
)


def _summary(model: type[BaseModel]) -> str:
    # The first paragraph of the docstring; the rest (examples, notes) is for Python readers.
    first = inspect.cleandoc(model.__doc__ or "").split("\n\n")[0]
    return " ".join(first.split())


def build_schema(spec: SchemaFile) -> dict[str, Any]:
    """Return the JSON Schema of ``spec`` with its ``$id``, title and a one-paragraph summary."""
    body = spec.model.model_json_schema(mode=spec.mode)
    for name, definition in body.get("$defs", {}).items():
        model = _nested_models(spec.model).get(name)
        if model is not None:
            definition["description"] = _summary(model)
    body.pop("title", None)
    body["description"] = _summary(spec.model)
    return {"$schema": DRAFT, "$id": spec.schema_id, "title": spec.title, **body}


def _nested_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    # Every model reachable from ``model``'s fields, however deep (``list[X] | None``,
    # a model inside a model), so each ``$defs`` entry gets its one-paragraph summary.
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if is_model and annotation.__name__ not in found:
            found[annotation.__name__] = annotation
            for field in annotation.model_fields.values():
                visit(field.annotation)
        for arg in get_args(annotation):
            visit(arg)

    for field in model.model_fields.values():
        visit(field.annotation)
    return found


def render(spec: SchemaFile) -> str:
    """Return the file content of ``spec``: indented JSON with a final newline."""
    return json.dumps(build_schema(spec), indent=2, ensure_ascii=False) + "\n"


def stale_schemas(directory: Path = JSON_DIR) -> list[str]:
    """Return the names of the files in ``directory`` that are missing or out of date."""
    stale = []
    for spec in SCHEMA_FILES:
        path = directory / spec.filename
        if not path.is_file() or path.read_text(encoding="utf-8") != render(spec):
            stale.append(spec.filename)
    return stale


def write_schemas(directory: Path = JSON_DIR) -> list[Path]:
    """(Re)write every schema file in ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in SCHEMA_FILES:
        path = directory / spec.filename
        path.write_text(render(spec), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.generate", description="Write the contracts' JSON Schemas."
    )
    parser.add_argument("--directory", type=Path, default=JSON_DIR, help="output directory")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_schemas(args.directory)
        for name in stale:
            sys.stderr.write(f"stale: {args.directory / name} (run python -m schemas.generate)\n")
        return 1 if stale else 0
    for path in write_schemas(args.directory):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
