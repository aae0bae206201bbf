"""Row builders for the storage tests: one valid row with overridable fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from storage.rows import AnomalyRow, DataQualityRow, DriftRow, MetricRow, WindowRow

T0 = datetime(2025, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(hours: int) -> datetime:
    """The start of hourly window number ``hours`` after T0."""
    return T0 + hours * HOUR


def window(model_id: str, hours: int = 0, **changes: Any) -> WindowRow:
    values: dict[str, Any] = {
        "model_id": model_id,
        "window_start": at(hours),
        "window_end": at(hours + 1),
        "n_rows": 1000,
        "n_invalid": 3,
        "n_drifted": 1,
        "share_drifted": 0.5,
        "dataset_drift": True,
        "output_drift": False,
        "label_coverage": 0.1,
        "n_labeled": 100,
    }
    return WindowRow(**(values | changes))


def drift(feature: str = "age", method: str = "psi", **changes: Any) -> DriftRow:
    values: dict[str, Any] = {
        "feature": feature,
        "method": method,
        "score": 0.25,
        "p_value": None,
        "threshold": 0.2,
        "drifted": True,
        "status": "drift",
        "is_primary": method == "psi",
    }
    return DriftRow(**(values | changes))


def data_quality(feature: str = "age", **changes: Any) -> DataQualityRow:
    values: dict[str, Any] = {
        "feature": feature,
        "n_rows": 1000,
        "n_valid": 990,
        "missing_rate": 0.01,
        "invalid_rate": 0.0,
        "out_of_range_rate": 0.002,
        "mean": 41.5,
    }
    return DataQualityRow(**(values | changes))


def metric(name: str = "accuracy", value: float | None = 0.9, **changes: Any) -> MetricRow:
    return MetricRow(**({"metric": name, "value": value} | changes))


def anomaly(series: str = "volume", **changes: Any) -> AnomalyRow:
    values: dict[str, Any] = {
        "series": series,
        "value": 1000.0,
        "mean": 950.0,
        "std": 20.0,
        "lower": 890.0,
        "upper": 1010.0,
        "n_history": 12,
        "anomaly": False,
        "reason": "within limits",
    }
    return AnomalyRow(**(values | changes))


def count_rows(session: Session, table: Table) -> int:
    return session.execute(select(func.count()).select_from(table)).scalar_one()
