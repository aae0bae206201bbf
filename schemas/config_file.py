"""One configuration file for a deployment: its models and where their alerts go.

A YAML or JSON file (YAML reads JSON too) with two sections, both optional::

    models:           # each a model configuration (ModelConfig: windows, thresholds, drift,
      - model_id: ...  # anomaly limits, the retraining policy, alert rules), plus an
        reference: ... # optional reference file, relative to this file
    alert_routing:    # the alert routing (AlertRouting: route tree, receivers, inhibition)
      route: ...

``driftline models register --config`` registers every model of it; the worker's and the
relay's ``--alerts`` take its ``alert_routing``. A file holding one model configuration alone
(``model_id`` at the top) is read as before. Errors name every bad key with the keys or
values allowed there (``models[0].retrain.min_drifted: unknown field …; allowed here: …``).
``examples/driftline.yaml`` is a commented example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from driftline.errors import ConfigurationError
from schemas.alert_routing import AlertRouting
from schemas.model_config import ModelConfig
from schemas.validation_messages import describe_validation_error

SECTIONS = ("models", "alert_routing")


class ConfiguredModel(ModelConfig):
    """A model of the file: its configuration and, optionally, its reference data."""

    reference: str | None = Field(
        default=None, description="Reference data (.csv or .parquet), relative to the file"
    )

    def model(self) -> ModelConfig:
        """The configuration as registered (without the file's reference path)."""
        return ModelConfig.model_validate(self.model_dump(exclude={"reference"}))


class DriftlineConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    models: list[ConfiguredModel] = Field(default_factory=list)
    alert_routing: AlertRouting | None = None


def read_mapping(path: Path, expected: str = "", what: str = "") -> dict[str, Any]:
    """The file's top-level mapping (YAML or JSON), or a ConfigurationError naming the file
    (as ``what``, when given) and, when it is not a mapping, what was ``expected`` in it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        named = f"{what} {path}" if what else str(path)
        raise ConfigurationError(f"cannot read {named}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{path} is not valid YAML or JSON: {error}") from None
    if not isinstance(data, dict):
        wanted = expected or (
            f"{' and/or '.join(SECTIONS)} (or one model configuration with model_id)"
        )
        raise ConfigurationError(f"{path}: expected a mapping with {wanted}")
    return data


def is_deployment_file(data: dict[str, Any]) -> bool:
    """Whether a mapping is the whole-deployment form (else: one model configuration)."""
    return "model_id" not in data


def parse_config(data: dict[str, Any], path: Path) -> DriftlineConfig:
    try:
        return DriftlineConfig.model_validate(data)
    except ValidationError as error:
        reason = describe_validation_error(error, limit=None, model=DriftlineConfig)
        raise ConfigurationError(f"{path}: {reason}") from None


def load_models(path: Path) -> list[tuple[ModelConfig, Path | None]]:
    """Every model of ``path`` (a deployment file or one model configuration), with its
    reference file resolved against the file's directory."""
    data = read_mapping(path)
    if not is_deployment_file(data):
        try:
            return [(ModelConfig.from_dict(data), None)]
        except ConfigurationError as error:
            raise ConfigurationError(f"{path}: {error}") from None
    config = parse_config(data, path)
    if not config.models:
        raise ConfigurationError(f"{path}: no models (the models section is empty or missing)")
    ids = [m.model_id for m in config.models]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ConfigurationError(f"{path}: models: model_id repeated: {', '.join(repeated)}")
    return [
        (m.model(), (path.parent / m.reference) if m.reference else None) for m in config.models
    ]
