"""The repository: every function the rest of Driftline uses to read and write results.

Functions take a :class:`~sqlalchemy.orm.Session` and never commit: the caller decides what
one transaction holds (for the stream, one window's results). They take and return plain
values (:mod:`storage.rows`), never ORM objects. The code lives in small modules by topic;
this module gathers them so callers have one import.
"""

from storage.catalog import (
    UnknownModelError,
    delete_model,
    get_current_profile,
    get_model,
    get_reference_profile,
    list_models,
    list_reference_profiles,
    save_reference_profile,
    upsert_model,
)
from storage.history import (
    anomaly_history,
    data_quality_history,
    drift_history,
    metric_history,
    recent_windows,
    window_details,
    window_history,
)
from storage.late_events import add_late_events, set_late_events
from storage.results import write_anomalies, write_window_results
from storage.revisions import write_quality_revision
from storage.rows import (
    AnomalyRecord,
    AnomalyRow,
    CurrentProfile,
    DataQualityRecord,
    DataQualityRow,
    DriftRecord,
    DriftRow,
    MetricRecord,
    MetricRow,
    ModelRecord,
    ReferenceProfileInfo,
    TriggerRecord,
    TriggerRow,
    WindowDetails,
    WindowRecord,
    WindowRow,
)
from storage.triggers import (
    get_trigger,
    insert_trigger,
    last_trigger,
    mark_trigger_published,
    triggers,
    unpublished_triggers,
)
from storage.upsert import upsert

__all__ = [
    "AnomalyRecord",
    "AnomalyRow",
    "CurrentProfile",
    "DataQualityRecord",
    "DataQualityRow",
    "DriftRecord",
    "DriftRow",
    "MetricRecord",
    "MetricRow",
    "ModelRecord",
    "ReferenceProfileInfo",
    "TriggerRecord",
    "TriggerRow",
    "UnknownModelError",
    "WindowDetails",
    "WindowRecord",
    "WindowRow",
    "add_late_events",
    "anomaly_history",
    "data_quality_history",
    "delete_model",
    "drift_history",
    "get_current_profile",
    "get_model",
    "get_reference_profile",
    "get_trigger",
    "insert_trigger",
    "last_trigger",
    "list_models",
    "list_reference_profiles",
    "mark_trigger_published",
    "metric_history",
    "recent_windows",
    "save_reference_profile",
    "set_late_events",
    "triggers",
    "unpublished_triggers",
    "upsert",
    "upsert_model",
    "window_details",
    "window_history",
    "write_anomalies",
    "write_quality_revision",
    "write_window_results",
]
