"""The records' fields are their tables' columns, so rows map onto records one to one."""

from __future__ import annotations

from dataclasses import fields

import pytest
from sqlalchemy import Table

from storage import models
from storage.repository import (
    AnomalyRecord,
    DataQualityRecord,
    DriftRecord,
    MetricRecord,
    ModelRecord,
    TriggerRecord,
    TriggerRow,
    WindowRecord,
    WindowRow,
)


@pytest.mark.parametrize(
    ("record", "table"),
    [
        (WindowRecord, models.windows),
        (DriftRecord, models.drift_results),
        (DataQualityRecord, models.data_quality_results),
        (MetricRecord, models.quality_metrics),
        (AnomalyRecord, models.anomalies),
        (TriggerRecord, models.retrain_triggers),
        (ModelRecord, models.models),
    ],
)
def test_record_fields_are_the_table_columns_in_order(record: type, table: Table) -> None:
    assert [item.name for item in fields(record)] == [column.name for column in table.columns]


@pytest.mark.parametrize(
    ("row", "table", "added_by_storage"),
    [
        (WindowRow, models.windows, {"n_late", "updated_at"}),
        (TriggerRow, models.retrain_triggers, {"published_at", "claimed_by", "claimed_until"}),
    ],
)
def test_rows_leave_out_only_what_storage_fills_in(
    row: type, table: Table, added_by_storage: set[str]
) -> None:
    names = {item.name for item in fields(row)}
    assert names | added_by_storage == set(table.columns.keys())
    assert not names & added_by_storage
