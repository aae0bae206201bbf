"""The sections of a model configuration: drift, anomaly limits and the retraining policy.

Field names and defaults mirror the statistical core so a section maps onto it one to one
(``DriftConfig(**drift.model_dump())``, ``ControlLimits(n_sigma, window, min_history,
min_std[series])``); ``tests/schemas`` checks that they stay in step. Method names are
checked here only for shape: whether ``"psi"`` exists is the method registry's call, made
when the model is registered against its reference profile.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

TaskName = Literal["binary", "multiclass", "regression"]

METHOD_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
MethodName = Annotated[str, Field(min_length=1, max_length=64, pattern=METHOD_NAME_PATTERN)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]

_SECTION_CONFIG = ConfigDict(strict=True, extra="forbid", frozen=True)

HIGHER_IS_BETTER = "higher"
LOWER_IS_BETTER = "lower"
_CLASSIFICATION: frozenset[TaskName] = frozenset({"binary", "multiclass"})
_REGRESSION: frozenset[TaskName] = frozenset({"regression"})
QUALITY_METRICS: dict[str, tuple[frozenset[TaskName], str]] = {
    "accuracy": (_CLASSIFICATION, HIGHER_IS_BETTER),
    "precision": (_CLASSIFICATION, HIGHER_IS_BETTER),
    "recall": (_CLASSIFICATION, HIGHER_IS_BETTER),
    "f1": (_CLASSIFICATION, HIGHER_IS_BETTER),
    "precision_weighted": (_CLASSIFICATION, HIGHER_IS_BETTER),
    "recall_weighted": (_CLASSIFICATION, HIGHER_IS_BETTER),
    "f1_weighted": (_CLASSIFICATION, HIGHER_IS_BETTER),
    "roc_auc": (_CLASSIFICATION, HIGHER_IS_BETTER),
    "roc_auc_weighted": (_CLASSIFICATION, HIGHER_IS_BETTER),
    "log_loss": (_CLASSIFICATION, LOWER_IS_BETTER),
    "mae": (_REGRESSION, LOWER_IS_BETTER),
    "rmse": (_REGRESSION, LOWER_IS_BETTER),
    "r2": (_REGRESSION, HIGHER_IS_BETTER),
}
"""Quality metrics a retraining policy may watch: the tasks they exist for and which way is
good (the metric names of ``detectors.ClassificationMetrics`` / ``RegressionMetrics``)."""


class DriftSettings(BaseModel):
    """Which drift methods judge which columns, at what thresholds."""

    model_config = _SECTION_CONFIG

    numeric_method: MethodName = Field(
        default="psi", description="Primary method of numeric columns"
    )
    categorical_method: MethodName = Field(
        default="psi", description="Primary method of categorical columns"
    )
    feature_methods: dict[str, MethodName] = Field(
        default_factory=dict, description="Primary method of single columns, by column name"
    )
    also_report: list[MethodName] = Field(
        default_factory=lambda: ["ks"],
        description="Methods reported beside the primary one where they fit the column kind",
    )
    thresholds: dict[MethodName, FiniteFloat] = Field(
        default_factory=dict, description="Drift threshold per method; the method's default else"
    )
    warning_thresholds: dict[MethodName, FiniteFloat] = Field(
        default_factory=lambda: {"psi": 0.1}, description="Warning level per score method"
    )
    drift_share: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Share of drifted input features at which the whole window drifted",
    )
    verdicts: Literal["fixed", "calibrated"] = Field(
        default="calibrated",
        description="fixed: a score drifts at its threshold; calibrated: PSI and "
        "Jensen-Shannon judged against their spread under no drift at the window's size",
    )
    alpha: float = Field(
        default=0.01,
        gt=0.0,
        lt=1.0,
        description="Calibrated verdicts: false-alarm level across a window's features",
    )
    effect_floors: dict[MethodName, NonNegativeFloat] = Field(
        default_factory=lambda: {"psi": 0.05, "jensenshannon": 0.1},
        description="Calibrated verdicts: smallest score that counts as drift, per method",
    )
    value_bins_max: int = Field(
        default=20,
        ge=0,
        description="A numeric feature with at most this many distinct reference values gets "
        "one PSI bin per value (0: quantile bins always); declaring it categorical also works",
    )
    false_alarms_per_day: float | None = Field(
        default=None,
        gt=0.0,
        allow_inf_nan=False,
        description="Calibrated verdicts: budget of expected false drift alarms per model per "
        "day; lowers alpha to budget * window_seconds / 86400 when that is smaller",
    )


class AnomalySettings(BaseModel):
    """Three-sigma control limits on every windowed series of the model, and optionally a
    Page-Hinkley chart on the quality metrics (``detectors.change``).

    ``min_std`` floors sigma per series name, so a series that barely moves does not alert
    on noise; a series not named gets the pipeline's default floor. Reasonable floors: 0.005
    to 0.01 for rates and rate-like metrics (missing rate, positive rate, label coverage,
    accuracy, F1), since a rate that sits at 0 and then ticks is not news; about 0.02 for
    PSI scores; a few percent of the usual count for event volume.
    """

    model_config = _SECTION_CONFIG

    n_sigma: float = Field(
        default=3.0, gt=0.0, allow_inf_nan=False, description="Half-width in sigmas"
    )
    window: int = Field(
        default=30, ge=2, description="Trailing windows the limits are computed from"
    )
    min_history: int = Field(
        default=5,
        ge=2,
        description="Fewer usable past windows than this give no verdict (<= window)",
    )
    min_std: dict[str, NonNegativeFloat] = Field(
        default_factory=dict, description="Floor on sigma per series name"
    )
    quality_detector: Literal["3sigma", "page_hinkley", "both"] = Field(
        default="3sigma",
        description=(
            "How the quality metric series (metric:*) are judged: 3-sigma limits, a "
            "Page-Hinkley chart (catches a slow decay the limits follow), or both (either fires)"
        ),
    )
    page_hinkley_delta: float = Field(
        default=0.5,
        ge=0.0,
        allow_inf_nan=False,
        description="Page-Hinkley slack in sigmas: drifts smaller than this accumulate nothing",
    )
    page_hinkley_threshold: float = Field(
        default=6.0, gt=0.0, allow_inf_nan=False, description="Page-Hinkley alarm level in sigmas"
    )

    @field_validator("min_history")
    @classmethod
    def _history_fits_window(cls, min_history: int, info: ValidationInfo) -> int:
        window = info.data.get("window")
        if window is not None and min_history > window:
            raise ValueError(f"must be <= window ({window}), got {min_history}")
        return min_history


class RetrainPolicy(BaseModel):
    """When to publish a retraining trigger.

    Drift: at least ``min_drifted_windows`` of the last ``of_last_windows`` windows drifted
    (any of ``features``, or the output if ``include_output_drift``). Quality: ``metric``
    crossed ``metric_below`` (for metrics where higher is better) or ``metric_above`` (error
    metrics such as ``mae``, ``rmse``, ``log_loss``), or, with ``on_metric_anomaly``, left its
    three-sigma limits. After a trigger, none fires for ``cooldown_seconds``.
    """

    model_config = _SECTION_CONFIG

    enabled: bool = True
    features: list[str] = Field(
        default_factory=list, description="Features whose drift counts; empty means any"
    )
    min_drifted_windows: int = Field(default=3, ge=1, description="K: drifted windows needed")
    of_last_windows: int = Field(
        default=5, ge=1, description="M: among the last M windows (M >= K)"
    )
    include_output_drift: bool = Field(default=True, description="Whether output drift counts too")
    metric: str | None = Field(
        default=None, description="Quality metric watched, e.g. accuracy, rmse"
    )
    metric_below: FiniteFloat | None = Field(default=None, description="Trigger when metric < this")
    metric_above: FiniteFloat | None = Field(default=None, description="Trigger when metric > this")
    on_metric_anomaly: bool = Field(
        default=False, description="Trigger when metric is a 3σ anomaly"
    )
    cooldown_seconds: int = Field(default=86_400, ge=0, description="Quiet time after a trigger")

    @field_validator("of_last_windows")
    @classmethod
    def _m_at_least_k(cls, m: int, info: ValidationInfo) -> int:
        k = info.data.get("min_drifted_windows")
        if k is not None and m < k:
            raise ValueError(f"must be >= min_drifted_windows ({k}), got {m}")
        return m

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str | None) -> str | None:
        if metric is not None and metric not in QUALITY_METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(QUALITY_METRICS)}")
        return metric

    @model_validator(mode="after")
    def _metric_rule_is_whole(self) -> RetrainPolicy:
        rules = [
            name
            for name in ("metric_below", "metric_above", "on_metric_anomaly")
            if getattr(self, name) not in (None, False)
        ]
        if self.metric is None:
            if rules:
                raise ValueError(f"{', '.join(rules)} needs metric to be set")
            return self
        if not rules:
            raise ValueError("metric needs a rule: metric_below, metric_above or on_metric_anomaly")
        if self.metric_below is not None and self.metric_above is not None:
            raise ValueError("set metric_below or metric_above, not both")
        good = QUALITY_METRICS[self.metric][1]
        if self.metric_below is not None and good == LOWER_IS_BETTER:
            raise ValueError(
                f"{self.metric} is an error metric (lower is better): use metric_above, "
                "metric_below would fire when the model gets better"
            )
        if self.metric_above is not None and good == HIGHER_IS_BETTER:
            raise ValueError(
                f"higher {self.metric} is better: use metric_below, "
                "metric_above would fire when the model gets better"
            )
        return self
