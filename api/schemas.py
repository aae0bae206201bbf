"""Response models of the API, apart from the storage records they are built from."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field

M = TypeVar("M", bound=BaseModel)


def rows_as(model: type[M], records: Iterable[Any]) -> list[M]:
    """Response models read from storage records' attributes (extra ones are left out)."""
    return [model.model_validate(record, from_attributes=True) for record in records]


class ModelSummary(BaseModel):
    model_id: str
    config: dict[str, Any]
    current_fingerprint: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(
        description="Set once the model was deleted: the worker no longer monitors it, its "
        "history stays readable; PUT restores it",
    )


class ModelList(BaseModel):
    models: list[ModelSummary]


class DriftPoint(BaseModel):
    window_start: datetime
    feature: str
    method: str
    score: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool | None
    status: str


class DriftPage(BaseModel):
    model_id: str
    items: list[DriftPoint]
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= for the next page; null: the last page"
    )


class WindowSummary(BaseModel):
    window_start: datetime
    window_end: datetime | None
    n_rows: int
    n_late: int
    n_drifted: int
    share_drifted: float | None
    dataset_drift: bool | None
    output_drift: bool | None
    label_coverage: float | None
    n_labeled: int
    quality_revision: int
    finalized_at: datetime | None


class FeatureDrift(DriftPoint):
    adjusted_p_value: float | None
    is_primary: bool
    is_output: bool


class DataQuality(BaseModel):
    feature: str
    n_rows: int
    n_valid: int
    missing_rate: float | None
    invalid_rate: float | None
    out_of_range_rate: float | None
    unseen_rate: float | None
    mean: float | None


class Metric(BaseModel):
    metric: str
    value: float | None
    revision: int
    n_labeled: int | None
    label_coverage: float | None


class Anomaly(BaseModel):
    series: str
    value: float | None
    mean: float | None
    lower: float | None
    upper: float | None
    n_history: int
    anomaly: bool | None
    reason: str


class Alert(BaseModel):
    fingerprint: str
    rule: str
    subject: str
    severity: str
    status: str
    summary: str
    labels: dict[str, str]
    evidence: dict[str, Any]
    starts_at: datetime
    resolved_at: datetime | None


class WindowReport(BaseModel):
    model_id: str
    window: WindowSummary
    drift: list[FeatureDrift]
    data_quality: list[DataQuality]
    metrics: list[Metric]
    anomalies: list[Anomaly]
    alerts: list[Alert]

    @classmethod
    def of(cls, details: Any, alerts: list[Any]) -> WindowReport:
        return cls(
            model_id=details.window.model_id,
            window=WindowSummary.model_validate(details.window, from_attributes=True),
            drift=rows_as(FeatureDrift, details.drift),
            data_quality=rows_as(DataQuality, details.data_quality),
            metrics=rows_as(Metric, details.metrics),
            anomalies=rows_as(Anomaly, details.anomalies),
            alerts=rows_as(Alert, alerts),
        )


class ReferenceInfo(BaseModel):
    """A stored reference profile of a model (without its body)."""

    fingerprint: str = Field(description="Identifies the profile's content")
    n_rows: int = Field(description="Rows of reference data it summarizes")
    source: str = Field(description="Where it came from, for people")
    created_at: datetime = Field(description="When it was first stored")
    is_current: bool = Field(description="The model's windows are judged against it")


class ReferenceList(BaseModel):
    model_id: str
    references: list[ReferenceInfo] = Field(description="Oldest first")


class ReferenceFeature(BaseModel):
    name: str
    kind: str = Field(description="numeric or categorical")
    is_output: bool = Field(description="One of the model's outputs (prediction, score)")


class ReferenceSummary(ReferenceInfo):
    """An uploaded reference's profile: what the worker will compare windows against."""

    model_id: str
    created: bool = Field(description="False: the same content was stored before (made current)")
    features: list[ReferenceFeature] = Field(description="Every profiled column, in file order")
