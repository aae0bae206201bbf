"""Plain values going into and coming out of the repository.

``…Row`` classes are what a caller writes; ``…Record`` classes are what queries return: the
row plus its key and what the database adds (revision, timestamps). The per-window rows
(:class:`DriftRow`, :class:`DataQualityRow`, :class:`MetricRow`, :class:`AnomalyRow`) carry
no model or window: :func:`storage.results.write_window_results` takes those once, from the
:class:`WindowRow`. Their field names follow the detectors' results, so
``DataQualityRow(**asdict(result))`` works.

Every timestamp must be timezone-aware; every record's timestamps come back in UTC.
Floats are ``None`` where there is no value (NaN is stored as ``None`` too).
A record's fields are exactly its table's columns, in the table's order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

from storage.types import require_aware


def _check_timestamps(row: WindowRow | TriggerRow) -> None:
    for item in fields(row):
        value = getattr(row, item.name)
        if isinstance(value, datetime):
            require_aware(f"{type(row).__name__}.{item.name}", value)


@dataclass(frozen=True, kw_only=True)
class WindowKey:
    """Which window a result belongs to."""

    model_id: str
    window_start: datetime


@dataclass(frozen=True, kw_only=True)
class WindowRow:
    """The summary of one finalized window.

    ``finalized_at`` defaults to the time of writing. ``quality_revision`` is 0 for the
    first evaluation; later label revisions go through
    :func:`storage.revisions.write_quality_revision`.
    """

    model_id: str
    window_start: datetime
    window_end: datetime
    n_rows: int
    n_invalid: int = 0
    n_drifted: int = 0
    share_drifted: float | None = None
    dataset_drift: bool | None = None
    output_drift: bool | None = None
    label_coverage: float | None = None
    n_labeled: int = 0
    quality_revision: int = 0
    finalized_at: datetime | None = None

    def __post_init__(self) -> None:
        _check_timestamps(self)


@dataclass(frozen=True, kw_only=True)
class WindowRecord:
    """A stored window. ``finalized_at is None`` marks a placeholder: late events or labels
    were recorded for it before (or without) its results; ``window_end`` may then be None."""

    model_id: str
    window_start: datetime
    window_end: datetime | None
    n_rows: int
    n_late: int
    n_invalid: int
    n_drifted: int
    share_drifted: float | None
    dataset_drift: bool | None
    output_drift: bool | None
    label_coverage: float | None
    n_labeled: int
    quality_revision: int
    finalized_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class DriftRow:
    """One drift method's result on one feature (or model output) in a window.

    ``status`` is the feature's verdict from its primary method: ``"ok"``, ``"warning"``,
    ``"drift"`` or ``"no data"``.
    """

    feature: str
    method: str
    score: float | None
    p_value: float | None = None
    adjusted_p_value: float | None = None
    threshold: float | None = None
    drifted: bool | None = None
    status: str
    is_primary: bool
    is_output: bool = False


# Base order (WindowKey, DriftRow) puts the key fields first, as in the table.
@dataclass(frozen=True, kw_only=True)
class DriftRecord(DriftRow, WindowKey):
    """A stored :class:`DriftRow`."""


@dataclass(frozen=True, kw_only=True)
class DataQualityRow:
    """Data-quality signals of one feature in a window; rates are fractions in [0, 1]."""

    feature: str
    n_rows: int
    n_valid: int
    missing_rate: float | None
    invalid_rate: float | None
    out_of_range_rate: float | None = None
    unseen_rate: float | None = None
    mean: float | None = None


@dataclass(frozen=True, kw_only=True)
class DataQualityRecord(DataQualityRow, WindowKey):
    """A stored :class:`DataQualityRow`."""


@dataclass(frozen=True, kw_only=True)
class MetricRow:
    """One windowed metric (a quality metric such as ``"f1"``, or a series such as
    ``"prediction_mean"``); ``n_labeled`` and ``label_coverage`` for label-based ones."""

    metric: str
    value: float | None
    n_labeled: int | None = None
    label_coverage: float | None = None


@dataclass(frozen=True, kw_only=True)
class MetricRecord(WindowKey):
    """A stored metric; ``revision`` counts the label revisions that rewrote it (0: none)."""

    metric: str
    value: float | None
    revision: int
    n_labeled: int | None
    label_coverage: float | None
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class AnomalyRow:
    """The 3-sigma verdict on one series in a window (``anomaly`` None: no verdict)."""

    series: str
    value: float | None
    mean: float | None = None
    std: float | None = None
    lower: float | None = None
    upper: float | None = None
    n_history: int = 0
    anomaly: bool | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class AnomalyRecord(AnomalyRow, WindowKey):
    """A stored :class:`AnomalyRow`."""


@dataclass(frozen=True, kw_only=True)
class TriggerRow:
    """A retraining trigger. ``trigger_id`` is computed by the caller from what triggered
    it, so evaluating the same window again yields the same id and no second trigger.
    ``data_start``/``data_end`` bound the data the trainer should use, when known."""

    trigger_id: str
    model_id: str
    model_version: str | None
    reason: str
    evidence: dict[str, Any]
    window_start: datetime
    window_end: datetime
    data_start: datetime | None = None
    data_end: datetime | None = None
    created_at: datetime

    def __post_init__(self) -> None:
        _check_timestamps(self)


@dataclass(frozen=True, kw_only=True)
class TriggerRecord(TriggerRow):
    """A stored trigger; ``published_at`` is None until it was published to Kafka.

    ``claimed_by``/``claimed_until``: the relay that last took it for publishing and the end
    of its lease (see :mod:`storage.outbox`); None before any relay took it.
    """

    published_at: datetime | None
    claimed_by: str | None = None
    claimed_until: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ModelRecord:
    """A monitored model and its configuration; ``deleted_at`` is set once it was deleted
    (:func:`storage.catalog.delete_model`)."""

    model_id: str
    config: dict[str, Any]
    current_fingerprint: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class ReferenceProfileInfo:
    """A stored reference profile without its (large) JSON body."""

    model_id: str
    fingerprint: str
    source: str
    n_rows: int
    created_at: datetime
    is_current: bool


class CurrentProfile(NamedTuple):
    """The reference profile a model is compared against now."""

    fingerprint: str
    profile_json: str


@dataclass(frozen=True, kw_only=True)
class WindowDetails:
    """Everything stored for one window."""

    window: WindowRecord
    drift: list[DriftRecord]
    data_quality: list[DataQualityRecord]
    metrics: list[MetricRecord]
    anomalies: list[AnomalyRecord]
