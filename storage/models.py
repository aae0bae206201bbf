"""The tables, as SQLAlchemy Core :class:`~sqlalchemy.Table` objects on one :data:`metadata`.

Every result table is keyed by its natural key (model, window start, feature / metric /
series), so writing a window again rewrites the same rows instead of adding new ones.
Results hang off their window (``ON DELETE CASCADE``) and windows off their model, so a
deleted model takes its history with it.

Core tables rather than ORM classes: the repository upserts with ``INSERT … ON CONFLICT``,
which bypasses an ORM identity map, and ORM objects loaded earlier in the same session
would then show stale values. Reads return plain dataclasses (:mod:`storage.rows`).

``models.current_fingerprint`` has no foreign key to ``reference_profiles``: the two tables
would reference each other, and SQLite cannot add such a constraint after creating both.
:func:`storage.catalog.save_reference_profile` only ever points it at a stored profile.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from storage.types import PlainBool, PlainFloat, PlainInt, UTCDateTime

# Named constraints, so migrations can refer to them and both databases get the same names.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# JSONB on PostgreSQL (compact, comparable); JSON text elsewhere.
Json = JSON().with_variant(JSONB(), "postgresql")


def _window_key() -> list[Column[Any]]:
    return [
        Column("model_id", String, primary_key=True),
        Column("window_start", UTCDateTime, primary_key=True),
    ]


def _window_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["model_id", "window_start"],
        ["windows.model_id", "windows.window_start"],
        ondelete="CASCADE",
    )


models = Table(
    "models",
    metadata,
    Column("model_id", String, primary_key=True),
    Column("config", Json, nullable=False),
    Column("current_fingerprint", String, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Soft delete (storage.catalog.delete_model): set, the model is hidden from listings and
    # the worker treats it as unregistered; its results and references stay.
    Column("deleted_at", UTCDateTime, nullable=True),
)

reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", String, nullable=False),
    Column("fingerprint", String, nullable=False),
    # The profile's JSON text exactly as given: the fingerprint was computed over it.
    Column("profile", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("n_rows", PlainInt, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("model_id", "fingerprint"),
    ForeignKeyConstraint(["model_id"], ["models.model_id"], ondelete="CASCADE"),
)

windows = Table(
    "windows",
    metadata,
    *_window_key(),
    # NULL only while the window is a placeholder (late events or labels came first).
    Column("window_end", UTCDateTime, nullable=True),
    Column("n_rows", PlainInt, nullable=False),
    Column("n_late", PlainInt, nullable=False),
    Column("n_invalid", PlainInt, nullable=False),
    Column("n_drifted", PlainInt, nullable=False),
    Column("share_drifted", PlainFloat, nullable=True),
    Column("dataset_drift", PlainBool, nullable=True),
    Column("output_drift", PlainBool, nullable=True),
    Column("label_coverage", PlainFloat, nullable=True),
    Column("n_labeled", PlainInt, nullable=False),
    Column("quality_revision", PlainInt, nullable=False),
    Column("finalized_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    ForeignKeyConstraint(["model_id"], ["models.model_id"], ondelete="CASCADE"),
)

# What a drift-history point shows besides its key (model, feature, method, window start).
DRIFT_POINT_COLUMNS = ("score", "p_value", "threshold", "drifted", "status")

drift_results = Table(
    "drift_results",
    metadata,
    *_window_key(),
    Column("feature", String, primary_key=True),
    Column("method", String, primary_key=True),
    Column("score", PlainFloat, nullable=True),
    Column("p_value", PlainFloat, nullable=True),
    Column("adjusted_p_value", PlainFloat, nullable=True),
    Column("threshold", PlainFloat, nullable=True),
    Column("drifted", PlainBool, nullable=True),
    Column("status", String, nullable=False),
    Column("is_primary", PlainBool, nullable=False),
    Column("is_output", PlainBool, nullable=False),
    _window_fk(),
    # "History of model M, feature F (by one method) between T1 and T2". On PostgreSQL the
    # index also holds what a history page returns, so a page is an index-only scan.
    Index(
        None,
        "model_id",
        "feature",
        "method",
        "window_start",
        postgresql_include=list(DRIFT_POINT_COLUMNS),
    ),
)

data_quality_results = Table(
    "data_quality_results",
    metadata,
    *_window_key(),
    Column("feature", String, primary_key=True),
    Column("n_rows", PlainInt, nullable=False),
    Column("n_valid", PlainInt, nullable=False),
    Column("missing_rate", PlainFloat, nullable=True),
    Column("invalid_rate", PlainFloat, nullable=True),
    Column("out_of_range_rate", PlainFloat, nullable=True),
    Column("unseen_rate", PlainFloat, nullable=True),
    Column("mean", PlainFloat, nullable=True),
    _window_fk(),
    Index(None, "model_id", "feature", "window_start"),
)

quality_metrics = Table(
    "quality_metrics",
    metadata,
    *_window_key(),
    Column("metric", String, primary_key=True),
    Column("value", PlainFloat, nullable=True),
    Column("revision", PlainInt, nullable=False),
    Column("n_labeled", PlainInt, nullable=True),
    Column("label_coverage", PlainFloat, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    _window_fk(),
    Index(None, "model_id", "metric", "window_start"),
)

anomalies = Table(
    "anomalies",
    metadata,
    *_window_key(),
    Column("series", String, primary_key=True),
    Column("value", PlainFloat, nullable=True),
    Column("mean", PlainFloat, nullable=True),
    Column("std", PlainFloat, nullable=True),
    Column("lower", PlainFloat, nullable=True),
    Column("upper", PlainFloat, nullable=True),
    Column("n_history", PlainInt, nullable=False),
    Column("anomaly", PlainBool, nullable=True),
    Column("reason", String, nullable=False),
    _window_fk(),
    Index(None, "model_id", "series", "window_start"),
)

retrain_triggers = Table(
    "retrain_triggers",
    metadata,
    # Computed by the caller from what triggered it, so a replayed window yields the same id.
    Column("trigger_id", String, primary_key=True),
    Column("model_id", String, nullable=False),
    Column("model_version", String, nullable=True),
    Column("reason", Text, nullable=False),
    Column("evidence", Json, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=False),
    Column("data_start", UTCDateTime, nullable=True),
    Column("data_end", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    # The outbox lease (storage.outbox): which relay is publishing it, and until when no
    # other relay may take it over.
    Column("claimed_by", String, nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    ForeignKeyConstraint(["model_id"], ["models.model_id"], ondelete="CASCADE"),
    Index(None, "model_id", "created_at"),
)

# Alerts (see alerting/): no foreign keys to models, so alerts outlive what they were about.

# Each model's alert state machine (alerting.rules.AlertBook) as JSON, written in the same
# transaction as the window that advanced it.
alert_books = Table(
    "alert_books",
    metadata,
    Column("model_id", String, primary_key=True),
    Column("last_window", UTCDateTime, nullable=True),
    Column("book", Json, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The current state of every alert, one row per fingerprint (firing or resolved).
alerts = Table(
    "alerts",
    metadata,
    Column("fingerprint", String, primary_key=True),
    Column("model_id", String, nullable=False),
    Column("model_version", String, nullable=True),
    Column("rule", String, nullable=False),
    Column("subject", String, nullable=False),
    Column("severity", String, nullable=False),
    Column("status", String, nullable=False),
    Column("labels", Json, nullable=False),
    Column("summary", Text, nullable=False),
    Column("evidence", Json, nullable=False),
    # The window it was last seen in, the window it began firing in, the one it resolved in.
    Column("window_start", UTCDateTime, nullable=False),
    Column("window_end", UTCDateTime, nullable=True),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "status"),
    Index(None, "model_id", "updated_at"),
)

# Every firing and resolved change, for history (the API) and audits.
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String, nullable=False),
    Column("model_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "model_id", "created_at"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", String, primary_key=True),
    Column("matchers", Json, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("created_by", String, nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index(None, "ends_at"),
)

# What each group (receiver, route and group labels) was last told, and when.
alert_groups = Table(
    "alert_groups",
    metadata,
    Column("receiver", String, primary_key=True),
    Column("group_key", String, primary_key=True),
    Column("group_labels", Json, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_sent_at", UTCDateTime, nullable=True),
    Column("notified", Json, nullable=False),  # fingerprints of the firing alerts last sent
    Column("seq", PlainInt, nullable=False),  # notifications planned for the group so far
    Column("updated_at", UTCDateTime, nullable=False),
)

# The notifications outbox: one row per group notification and integration (a Slack
# webhook, an e-mail list), sent in ``seq`` order per (receiver, integration, group).
notifications = Table(
    "notifications",
    metadata,
    Column("id", String, primary_key=True),
    Column("receiver", String, nullable=False),
    Column("integration", String, nullable=False),
    Column("group_key", String, nullable=False),
    Column("seq", PlainInt, nullable=False),
    Column("status", String, nullable=False),
    Column("payload", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("failed_at", UTCDateTime, nullable=True),  # gave up: not retryable
    Column("attempts", PlainInt, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("claimed_by", String, nullable=True),
    Column("claimed_until", UTCDateTime, nullable=True),
    Index(None, "sent_at", "failed_at"),
    Index(None, "receiver", "integration", "group_key", "seq"),
)

notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", String, nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("ok", PlainBool, nullable=False),
    Column("retryable", PlainBool, nullable=True),
    Column("error", Text, nullable=True),
    Column("seconds", PlainFloat, nullable=False),
    Column("relay", String, nullable=False),
    Index(None, "notification_id"),
)

# One row per singleton job ("alert planner"): locked while a relay plans notifications,
# so two relays never plan the same group notification twice.
relay_locks = Table(
    "relay_locks",
    metadata,
    Column("name", String, primary_key=True),
    Column("locked_at", UTCDateTime, nullable=True),
)

# API keys (api/): only a SHA-256 of each key is stored; the key itself is shown once.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("scope", String, nullable=False),  # "read" or "admin"
    Column("key_hash", String, nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)
