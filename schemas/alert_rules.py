"""The ``alerts`` section of a model configuration: which conditions alert, how loudly.

A rule names one kind of condition checked on every finalized window (and again when late
labels revise its quality metrics); :mod:`alerting.rules` evaluates them. Only the fields
of a rule's ``kind`` may differ from their defaults, so a misplaced key is an error naming
it (``alerts.rules[1]: below: only a metric rule takes it``), not silently ignored.

Without ``rules`` a model gets the default rules: drift of a feature, of the dataset and of
the output, 3-sigma anomalies and retraining triggers. Where alerts go (Slack, e-mail,
grouping, silences) is not part of a model: that is the service's routing file
(``--alerts alerts.yaml``), which matches on the labels set here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Severity = Literal["warning", "critical"]
RuleKind = Literal[
    "feature_drift",
    "dataset_drift",
    "output_drift",
    "metric",
    "anomaly",
    "data_quality",
    "volume",
    "retraining",
]
RuleName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.-]+$")]
LabelName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
LabelValue = Annotated[str, StringConstraints(max_length=256)]
Rate = Annotated[float, Field(ge=0.0, le=1.0)]

# The fields only some kinds take; every kind takes the others.
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "features": ("feature_drift", "data_quality"),
    "share_above": ("dataset_drift",),
    "metric": ("metric",),
    "below": ("metric",),
    "above": ("metric",),
    "min_labeled": ("metric",),
    "series": ("anomaly",),
    "missing_above": ("data_quality",),
    "unseen_above": ("data_quality",),
    "out_of_range_above": ("data_quality",),
    "min_rows": ("volume",),
}
# Labels every alert carries already; a model's own labels may not replace them.
RESERVED_LABELS = frozenset({"model", "version", "rule", "kind", "subject", "severity"})


class AlertRuleSpec(BaseModel):
    """One alert rule (see :mod:`alerting.rules` for what each kind checks)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    name: RuleName
    kind: RuleKind
    severity: Severity = "warning"
    for_windows: int = Field(
        default=1, ge=1, le=1000, description="Fire only after this many windows in a row"
    )
    keep_firing_windows: int = Field(
        default=0, ge=0, le=1000, description="Keep firing this many quiet windows, then resolve"
    )
    features: list[str] = Field(default_factory=list, description="Only these (none: all)")
    share_above: Rate | None = Field(
        default=None, description="dataset_drift: share of drifted features (default: drift_share)"
    )
    metric: str | None = None
    below: float | None = Field(default=None, allow_inf_nan=False)
    above: float | None = Field(default=None, allow_inf_nan=False)
    min_labeled: int = Field(default=1, ge=1, description="metric: fewer labeled pairs: no verdict")
    series: list[str] = Field(default_factory=list, description="anomaly: only these series")
    missing_above: Rate | None = None
    unseen_above: Rate | None = None
    out_of_range_above: Rate | None = None
    min_rows: int = Field(default=1, ge=1, description="volume: fewer rows alert (1: no data)")

    @model_validator(mode="before")
    @classmethod
    def _fields_fit_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            return data
        kind = data["kind"]
        for key, kinds in _KIND_FIELDS.items():
            unset = cls.model_fields[key].get_default(call_default_factory=True)
            if key in data and data[key] != unset and kind not in kinds:
                raise ValueError(f"{key}: only a {' or '.join(kinds)} rule takes it, not {kind}")
        return data

    @model_validator(mode="after")
    def _complete(self) -> AlertRuleSpec:
        bounds = (self.below, self.above)
        if self.kind == "metric" and (self.metric is None or bounds == (None, None)):
            raise ValueError("a metric rule needs metric and below or above")
        limits = (self.missing_above, self.unseen_above, self.out_of_range_above)
        if self.kind == "data_quality" and limits == (None, None, None):
            raise ValueError(
                "a data_quality rule needs missing_above, unseen_above or out_of_range_above"
            )
        return self


DEFAULT_RULES: tuple[AlertRuleSpec, ...] = (
    AlertRuleSpec(name="feature-drift", kind="feature_drift"),
    AlertRuleSpec(name="dataset-drift", kind="dataset_drift", severity="critical"),
    AlertRuleSpec(name="output-drift", kind="output_drift"),
    AlertRuleSpec(name="anomaly", kind="anomaly"),
    AlertRuleSpec(name="retraining", kind="retraining"),
)


class AlertSettings(BaseModel):
    """A model's alert rules and the labels its alerts carry for routing."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="false: this model raises no alerts")
    rules: list[AlertRuleSpec] | None = Field(
        default=None, description="The rules; null: the defaults (drift, anomalies, retraining)"
    )
    labels: dict[LabelName, LabelValue] = Field(
        default_factory=dict,
        description="Added to every alert of the model (team, tier …), for routing",
    )

    @model_validator(mode="after")
    def _check(self) -> AlertSettings:
        names = [rule.name for rule in self.rules or ()]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"rules: rule names must be unique, repeated: {repeated}")
        reserved = sorted(RESERVED_LABELS & set(self.labels))
        if reserved:
            raise ValueError(f"labels: {reserved} are set by Driftline itself")
        return self

    def effective_rules(self) -> tuple[AlertRuleSpec, ...]:
        """The rules that apply: none when disabled, the defaults when none are given."""
        if not self.enabled:
            return ()
        return DEFAULT_RULES if self.rules is None else tuple(self.rules)
