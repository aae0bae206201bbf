"""The configuration a user registers for each monitored model.

Read user input with :meth:`ModelConfig.from_dict` or :meth:`ModelConfig.from_json`: they
raise :class:`~driftline.errors.ConfigurationError` listing every problem with its field
path (``"retrain.of_last_windows: must be >= min_drifted_windows (3), got 2"``). The
constructor, for code, raises pydantic's ``ValidationError`` (also a ``ValueError``), which
is what FastAPI turns into a 422 when the model is a request body.

Checks that need the reference profile (do the feature names exist, is ``"psi"`` a registered
method) belong to registration, where the profile is at hand, not here.

How the unknown-model case is handled (auto-registering a model seen on the stream) is a
service setting, not part of a model's configuration.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from driftline.errors import ConfigurationError
from schemas.alert_rules import AlertSettings
from schemas.model_settings import (
    QUALITY_METRICS,
    AnomalySettings,
    DriftSettings,
    RetrainPolicy,
    TaskName,
)
from schemas.validation_messages import describe_validation_error
from schemas.values import FeatureName, ModelId

__all__ = ["AnomalySettings", "DriftSettings", "ModelConfig", "RetrainPolicy"]

ClassLabel = Annotated[str, StringConstraints(min_length=1, max_length=256)]
FeatureKindName = Literal["numeric", "categorical"]

SEVEN_DAYS = 7 * 24 * 3600


class ModelConfig(BaseModel):
    """How one model is monitored: its task, features, windows, drift, anomalies, retraining.

    Examples
    --------
    >>> config = ModelConfig.from_json('''{
    ...     "model_id": "churn", "task": "binary", "classes": ["stay", "churn"],
    ...     "features": {"age": "numeric", "plan": "categorical"},
    ...     "retrain": {"metric": "roc_auc", "metric_below": 0.7}
    ... }''')
    >>> config.positive_class, config.window_seconds, config.drift.numeric_method
    ('churn', 3600, 'psi')
    >>> ModelConfig.from_json(config.to_json()) == config
    True
    >>> ModelConfig.from_dict({"model_id": "churn", "task": "binary", "classes": ["a"]})
    Traceback (most recent call last):
    ...
    driftline.errors.ConfigurationError: classes: a binary task needs exactly 2 classes, got 1
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    model_id: ModelId
    description: str | None = Field(
        default=None, max_length=2000, description="Free text for people"
    )
    task: TaskName | None = Field(
        default=None, description="What the model predicts; null: no quality metrics are computed"
    )
    classes: list[ClassLabel] = Field(
        default_factory=list,
        validate_default=True,  # a binary task without classes must fail too
        description=(
            "Class labels as strings, the way labels are compared (0 and 0.0 are '0', "
            "true is 'true'); binary: exactly 2, multiclass: at least 2, else none. "
            "Per-class score lists follow this order."
        ),
    )
    positive_class: ClassLabel | None = Field(
        default=None, description="Binary only: the class a score is the probability of; classes[1]"
    )
    features: dict[FeatureName, FeatureKindName] = Field(
        default_factory=dict,
        description="Declared kind per feature; features not declared are inferred",
    )
    window_seconds: int = Field(default=3600, ge=1, description="Length of an event-time window")
    allowed_lateness_seconds: int = Field(
        default=300, ge=0, description="How long after its end a window still accepts events"
    )
    label_horizon_seconds: int = Field(
        default=SEVEN_DAYS, ge=1, description="How long a prediction waits for its label"
    )
    baseline_windows: int = Field(
        default=3, ge=1, description="Without a reference, the first N windows become the baseline"
    )
    drift: DriftSettings = Field(default_factory=lambda: DriftSettings())
    anomaly: AnomalySettings = Field(default_factory=lambda: AnomalySettings())
    retrain: RetrainPolicy = Field(default_factory=lambda: RetrainPolicy())
    alerts: AlertSettings = Field(
        default_factory=lambda: AlertSettings(),
        description="Alert rules and the labels alerts carry (routing is the service's file)",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_positive_class(cls, data: Any) -> Any:
        # Resolved before validation so the stored config says which class is positive.
        if isinstance(data, dict) and data.get("task") == "binary":
            classes = data.get("classes")
            unset = data.get("positive_class") is None
            if unset and isinstance(classes, list) and len(classes) == 2:
                return {**data, "positive_class": classes[1]}
        return data

    @field_validator("classes")
    @classmethod
    def _classes_fit_task(cls, classes: list[str], info: ValidationInfo) -> list[str]:
        task = info.data.get("task")
        duplicates = sorted({label for label in classes if classes.count(label) > 1})
        if duplicates:
            raise ValueError(f"duplicate class labels {duplicates}")
        if task == "binary" and len(classes) != 2:
            raise ValueError(f"a binary task needs exactly 2 classes, got {len(classes)}")
        if task == "multiclass" and len(classes) < 2:
            raise ValueError(f"a multiclass task needs at least 2 classes, got {len(classes)}")
        if task not in ("binary", "multiclass") and classes:
            raise ValueError(f"only binary and multiclass tasks take classes (task is {task})")
        return classes

    @field_validator("positive_class")
    @classmethod
    def _positive_is_a_class(cls, positive: str | None, info: ValidationInfo) -> str | None:
        if positive is None:
            return None
        if info.data.get("task") != "binary":
            raise ValueError("only a binary task takes a positive_class")
        classes = info.data.get("classes")
        if classes is not None and positive not in classes:
            raise ValueError(f"must be one of the classes {classes}, got {positive!r}")
        return positive

    @field_validator("retrain")
    @classmethod
    def _metric_fits_task(cls, retrain: RetrainPolicy, info: ValidationInfo) -> RetrainPolicy:
        if retrain.metric is None or "task" not in info.data:
            return retrain
        task = info.data["task"]
        tasks = QUALITY_METRICS[retrain.metric][0]
        if task not in tasks:
            raise ValueError(
                f"metric {retrain.metric!r} needs a {' or '.join(sorted(tasks))} task, "
                f"but task is {task}"
            )
        return retrain

    @field_validator("alerts")
    @classmethod
    def _alert_metrics_fit_task(cls, alerts: AlertSettings, info: ValidationInfo) -> AlertSettings:
        task = info.data.get("task")
        for index, rule in enumerate(alerts.rules or ()):
            if rule.kind != "metric" or rule.metric is None:
                continue
            if rule.metric not in QUALITY_METRICS:
                raise ValueError(
                    f"rules[{index}].metric: unknown metric {rule.metric!r}; "
                    f"one of {sorted(QUALITY_METRICS)}"
                )
            if task not in QUALITY_METRICS[rule.metric][0]:
                raise ValueError(
                    f"rules[{index}].metric: {rule.metric!r} is not computed for task {task}"
                )
        return alerts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Validate a parsed configuration; :class:`ConfigurationError` lists every problem."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigurationError(describe_validation_error(exc, limit=None, model=cls)) from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelConfig:
        """Validate a configuration written as JSON; :class:`ConfigurationError` on problems."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigurationError(describe_validation_error(exc, limit=None, model=cls)) from exc

    def to_json(self, *, indent: int | None = 2) -> str:
        """Serialize; :meth:`from_json` reads it back to an equal configuration."""
        return self.model_dump_json(indent=indent)
