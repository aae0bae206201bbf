"""From a finalized window's report to SQL rows and to the series the control charts watch.

A finalized window becomes one :class:`WindowOutcome` and a quality revision one
:class:`QualityRevision`: everything the window writes, triggers included, committed to SQL
in one transaction by :class:`stream_app.sql_writer.SqlResultWriter`.

Series names say what they measure: ``volume`` (events in the window),
``output_mean:<column>`` (mean model score), ``positive_rate`` (share of the positive class
among predictions, binary models), ``drift:<feature>`` (the primary method's score),
``missing_rate:<feature>`` and ``metric:<name>`` (quality metrics, revised as labels come).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any

from alerting.rules import WindowEvidence
from detectors import ClassificationMetrics, ControlLimitResult, RegressionMetrics, WindowReport
from detectors.profile import CategoricalProfile
from detectors.quality import (
    ClassificationState,
    RegressionState,
    classification_metrics,
    regression_metrics,
)
from detectors.window import CategoricalCounts, WindowState
from schemas.alert_rules import AlertRuleSpec
from schemas.model_config import ModelConfig
from schemas.outbound import RetrainTrigger
from storage.rows import AnomalyRow, DataQualityRow, DriftRow, MetricRow, TriggerRow, WindowRow
from stream_app.registry import ModelRuntime

Series = dict[str, float | None]

CLASSIFICATION_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc",
    "roc_auc_weighted",
    "log_loss",
)
REGRESSION_METRICS = ("mae", "rmse", "r2")


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def metric_values(quality: ClassificationMetrics | RegressionMetrics | None) -> Series:
    if quality is None:
        return {}
    names = (
        CLASSIFICATION_METRICS if isinstance(quality, ClassificationMetrics) else REGRESSION_METRICS
    )
    present = {f.name for f in fields(quality)}
    return {name: getattr(quality, name) for name in names if name in present}


def window_series(runtime: ModelRuntime, report: WindowReport, state: WindowState) -> Series:
    series: Series = {"volume": float(report.n_rows)}
    for quality in report.data_quality:
        if quality.feature in runtime.output_names and quality.mean is not None:
            series[f"output_mean:{quality.feature}"] = quality.mean
        if quality.feature in runtime.feature_names:
            series[f"missing_rate:{quality.feature}"] = quality.missing_rate
    rate = positive_rate(runtime, state)
    if rate is not None:
        series["positive_rate"] = rate
    for drift in report.features:
        series[f"drift:{drift.feature}"] = drift.primary.score
    series.update(quality_series(report))
    return series


def quality_series(report: WindowReport) -> Series:
    return {f"metric:{name}": value for name, value in metric_values(report.quality).items()}


def positive_rate(runtime: ModelRuntime, state: WindowState) -> float | None:
    """Share of predictions of the positive class, for binary models with a profile of it."""
    task = runtime.task
    if runtime.profile is None:
        return None
    column = runtime.profile.columns.get("prediction")
    counts = state.columns.get("prediction")
    if task is None or task.kind != "binary" or not isinstance(column, CategoricalProfile):
        return None
    if not isinstance(counts, CategoricalCounts) or counts.n == 0:
        return None
    index = column.index_of.get(str(task.positive_class))
    return None if index is None else int(counts.counts[index]) / counts.n


def window_row(
    model_id: str, start: float, end: float, report: WindowReport, state: WindowState, revision: int
) -> WindowRow:
    invalid = sum(counts.n_invalid for counts in state.columns.values())
    quality = report.quality
    return WindowRow(
        model_id=model_id,
        window_start=utc(start),
        window_end=utc(end),
        n_rows=report.n_rows,
        n_invalid=invalid,
        n_drifted=report.n_drifted,
        share_drifted=report.share_drifted,
        dataset_drift=report.dataset_drift,
        output_drift=report.output_drift,
        label_coverage=report.label_coverage,
        n_labeled=quality.n_labeled if quality is not None else 0,
        quality_revision=revision,
        finalized_at=datetime.now(tz=UTC),
    )


def drift_rows(report: WindowReport) -> list[DriftRow]:
    rows = []
    for drift in (*report.features, *report.outputs):
        for result, primary in [(drift.primary, True), *((r, False) for r in drift.others)]:
            rows.append(
                DriftRow(
                    feature=drift.feature,
                    method=result.method,
                    score=result.score,
                    p_value=result.p_value,
                    adjusted_p_value=result.adjusted_p_value,
                    threshold=result.threshold,
                    drifted=result.drifted,
                    status=drift.status if primary else _status(result.drifted),
                    is_primary=primary,
                    is_output=drift.is_output,
                )
            )
    return rows


def _status(drifted: bool | None) -> str:
    return "no data" if drifted is None else ("drift" if drifted else "ok")


def data_quality_rows(report: WindowReport) -> list[DataQualityRow]:
    return [
        DataQualityRow(
            feature=q.feature,
            n_rows=q.n_rows,
            n_valid=q.n_valid,
            missing_rate=q.missing_rate,
            invalid_rate=q.invalid_rate,
            out_of_range_rate=q.out_of_range_rate,
            unseen_rate=q.unseen_rate,
            mean=q.mean,
        )
        for q in report.data_quality
    ]


def metric_rows(report: WindowReport) -> list[MetricRow]:
    n_labeled = report.quality.n_labeled if report.quality is not None else None
    return [
        MetricRow(
            metric=name, value=value, n_labeled=n_labeled, label_coverage=report.label_coverage
        )
        for name, value in metric_values(report.quality).items()
    ]


def anomaly_rows(verdicts: Mapping[str, ControlLimitResult]) -> list[AnomalyRow]:
    return [
        AnomalyRow(
            series=name,
            value=v.value,
            mean=v.mean,
            std=v.std,
            lower=v.lower,
            upper=v.upper,
            n_history=v.n_history,
            anomaly=v.anomaly,
            reason=v.reason,
        )
        for name, v in verdicts.items()
    ]


@dataclass(frozen=True)
class ReportRows:
    """Every row one finalized (or revised) window writes."""

    window: WindowRow
    drift: list[DriftRow]
    data_quality: list[DataQualityRow]
    metrics: list[MetricRow]
    anomalies: list[AnomalyRow]
    n_late: int

    @classmethod
    def of(
        cls,
        model_id: str,
        record: Any,
        report: WindowReport,
        state: WindowState,
        verdicts: Mapping[str, ControlLimitResult],
    ) -> ReportRows:
        return cls(
            window=window_row(model_id, record.start, record.end, report, state, record.revision),
            drift=drift_rows(report),
            data_quality=data_quality_rows(report),
            metrics=metric_rows(report),
            anomalies=anomaly_rows(verdicts),
            n_late=record.late,
        )

    def with_row_count(self, n_rows: int) -> ReportRows:
        """The same rows with the window's exact event count (sampled windows)."""
        if n_rows == self.window.n_rows:
            return self
        labeled = self.window.n_labeled
        coverage = labeled / n_rows if n_rows and self.window.label_coverage is not None else None
        window = replace(self.window, n_rows=n_rows, label_coverage=coverage)
        metrics = [replace(m, label_coverage=coverage) for m in self.metrics]
        return replace(self, window=window, metrics=metrics)

    @classmethod
    def baseline(
        cls,
        model_id: str,
        record: Any,
        n_rows: int,
        quality: ClassificationState | RegressionState | None,
    ) -> ReportRows:
        """A baseline window: its volume and quality, no drift (it is the reference)."""
        metrics: ClassificationMetrics | RegressionMetrics | None = None
        if isinstance(quality, ClassificationState):
            metrics = classification_metrics(quality)
        elif isinstance(quality, RegressionState):
            metrics = regression_metrics(quality)
        n_labeled = metrics.n_labeled if metrics is not None else 0
        coverage = n_labeled / n_rows if n_rows and metrics is not None else None
        window = WindowRow(
            model_id=model_id,
            window_start=utc(record.start),
            window_end=utc(record.end),
            n_rows=n_rows,
            label_coverage=coverage,
            n_labeled=n_labeled,
            quality_revision=record.revision,
            finalized_at=datetime.now(tz=UTC),
        )
        metric_rows_ = [
            MetricRow(metric=name, value=value, n_labeled=n_labeled, label_coverage=coverage)
            for name, value in metric_values(metrics).items()
        ]
        return cls(window, [], [], metric_rows_, [], record.late)


def trigger_row(trigger: RetrainTrigger) -> TriggerRow:
    """The outbox row of a retraining trigger (published later by the relay)."""
    return TriggerRow(
        trigger_id=trigger.trigger_id,
        model_id=trigger.model_id,
        model_version=trigger.model_version,
        reason=trigger.reason,
        evidence=trigger.evidence,
        window_start=trigger.window_start,
        window_end=trigger.window_end,
        data_start=trigger.data_start,
        data_end=trigger.data_end,
        created_at=trigger.created_at,
    )


@dataclass(frozen=True)
class AlertInputs:
    """What alert evaluation needs besides the rows: the model's rules, labels, version."""

    rules: tuple[AlertRuleSpec, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    model_version: str | None = None

    @classmethod
    def of(cls, config: ModelConfig, version: str) -> AlertInputs:
        return cls(config.alerts.effective_rules(), dict(config.alerts.labels), version or None)


def _outbox(trigger: RetrainTrigger | None) -> tuple[TriggerRow, ...]:
    return () if trigger is None else (trigger_row(trigger),)


@dataclass(frozen=True)
class WindowOutcome:
    """Everything a finalized window writes, committed in one transaction.

    ``rows`` are the window's rows (window, drift, data quality, metrics, anomalies, late
    count); ``triggers`` the outbox rows of the retraining triggers it fired. Every write is
    an upsert by natural key and a trigger id is a hash of its evidence, so committing the
    same outcome twice (a replay) leaves the same rows and one trigger.
    """

    model_id: str
    start: float
    end: float
    rows: ReportRows
    triggers: tuple[TriggerRow, ...] = ()
    alerts: AlertInputs = field(default_factory=AlertInputs)
    write_results: bool = True  # False: a window without events, only alerts (empty())

    @classmethod
    def of(
        cls,
        model_id: str,
        record: Any,
        rows: ReportRows,
        trigger: RetrainTrigger | None = None,
        alerts: AlertInputs | None = None,
    ) -> WindowOutcome:
        return cls(
            model_id, record.start, record.end, rows, _outbox(trigger), alerts or AlertInputs()
        )

    @classmethod
    def empty(cls, model_id: str, start: float, end: float, alerts: AlertInputs) -> WindowOutcome:
        """A window without events: only its alerts are committed (``write_results`` False)."""
        window = WindowRow(
            model_id=model_id, window_start=utc(start), window_end=utc(end), n_rows=0
        )
        rows = ReportRows(window, [], [], [], [], 0)
        return cls(model_id, start, end, rows, (), alerts, write_results=False)

    def evidence(self) -> WindowEvidence:
        """The window as alert rules read it."""
        rows = self.rows
        return WindowEvidence(
            model_id=self.model_id,
            model_version=self.alerts.model_version,
            window=rows.window,
            drift=rows.drift,
            data_quality=rows.data_quality,
            metrics=rows.metrics,
            anomalies=rows.anomalies,
            triggers=self.triggers,
        )


@dataclass(frozen=True)
class QualityRevision:
    """A final window's quality metrics revised by late labels, committed in one transaction.

    ``rows`` carry the revised metrics, label count and coverage, and the 3-sigma verdicts
    (only the ``metric:`` ones are written); ``triggers`` the retraining triggers the
    revised metrics fired. A replayed revision with the same labels changes nothing.
    """

    model_id: str
    start: float
    end: float
    rows: ReportRows
    triggers: tuple[TriggerRow, ...] = ()
    alerts: AlertInputs = field(default_factory=AlertInputs)

    @classmethod
    def of(
        cls,
        model_id: str,
        record: Any,
        rows: ReportRows,
        trigger: RetrainTrigger | None = None,
        alerts: AlertInputs | None = None,
    ) -> QualityRevision:
        return cls(
            model_id, record.start, record.end, rows, _outbox(trigger), alerts or AlertInputs()
        )

    def evidence(self) -> WindowEvidence:
        """The revised quality as alert rules read it (metrics and their verdicts only)."""
        return WindowEvidence(
            model_id=self.model_id,
            model_version=self.alerts.model_version,
            window=self.rows.window,
            metrics=self.rows.metrics,
            anomalies=self.metric_anomalies,
            triggers=self.triggers,
        )

    @property
    def metric_anomalies(self) -> list[AnomalyRow]:
        return [a for a in self.rows.anomalies if a.series.startswith("metric:")]
