"""Initial schema: models, reference profiles, windows and their results, triggers, alerts.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written with plain SQLAlchemy types (not storage.types): a migration must keep describing
the schema as it was, whatever the application's code becomes. The decorators in
storage.types only convert values; their database types are the ones used here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _float(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Double(), nullable=True)


def _int(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _bool(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.Boolean(), nullable=nullable)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False)


def _window_key() -> list[sa.Column[object]]:
    return [
        sa.Column("model_id", sa.String(), nullable=False),
        _timestamp("window_start"),
    ]


def _window_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id", "window_start"],
        ["windows.model_id", "windows.window_start"],
        name=op.f(f"fk_{table}_model_id_window_start_windows"),
        ondelete="CASCADE",
    )


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id"],
        ["models.model_id"],
        name=op.f(f"fk_{table}_model_id_models"),
        ondelete="CASCADE",
    )


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("model_id", sa.String(), nullable=False),
        _json("config"),
        sa.Column("current_fingerprint", sa.String(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_models")),
    )
    op.create_table(
        "reference_profiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        _int("n_rows"),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_profiles")),
        sa.UniqueConstraint(
            "model_id", "fingerprint", name=op.f("uq_reference_profiles_model_id_fingerprint")
        ),
        _model_fk("reference_profiles"),
    )
    op.create_table(
        "windows",
        *_window_key(),
        _timestamp("window_end", nullable=True),
        _int("n_rows"),
        _int("n_late"),
        _int("n_invalid"),
        _int("n_drifted"),
        _float("share_drifted"),
        _bool("dataset_drift"),
        _bool("output_drift"),
        _float("label_coverage"),
        _int("n_labeled"),
        _int("quality_revision"),
        _timestamp("finalized_at", nullable=True),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("model_id", "window_start", name=op.f("pk_windows")),
        _model_fk("windows"),
    )
    op.create_table(
        "drift_results",
        *_window_key(),
        sa.Column("feature", sa.String(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        _float("score"),
        _float("p_value"),
        _float("adjusted_p_value"),
        _float("threshold"),
        _bool("drifted"),
        sa.Column("status", sa.String(), nullable=False),
        _bool("is_primary", nullable=False),
        _bool("is_output", nullable=False),
        sa.PrimaryKeyConstraint(
            "model_id", "window_start", "feature", "method", name=op.f("pk_drift_results")
        ),
        _window_fk("drift_results"),
    )
    _index("drift_results", "model_id", "feature", "window_start")
    op.create_table(
        "data_quality_results",
        *_window_key(),
        sa.Column("feature", sa.String(), nullable=False),
        _int("n_rows"),
        _int("n_valid"),
        _float("missing_rate"),
        _float("invalid_rate"),
        _float("out_of_range_rate"),
        _float("unseen_rate"),
        _float("mean"),
        sa.PrimaryKeyConstraint(
            "model_id", "window_start", "feature", name=op.f("pk_data_quality_results")
        ),
        _window_fk("data_quality_results"),
    )
    _index("data_quality_results", "model_id", "feature", "window_start")
    op.create_table(
        "quality_metrics",
        *_window_key(),
        sa.Column("metric", sa.String(), nullable=False),
        _float("value"),
        _int("revision"),
        _int("n_labeled", nullable=True),
        _float("label_coverage"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint(
            "model_id", "window_start", "metric", name=op.f("pk_quality_metrics")
        ),
        _window_fk("quality_metrics"),
    )
    _index("quality_metrics", "model_id", "metric", "window_start")
    op.create_table(
        "anomalies",
        *_window_key(),
        sa.Column("series", sa.String(), nullable=False),
        _float("value"),
        _float("mean"),
        _float("std"),
        _float("lower"),
        _float("upper"),
        _int("n_history"),
        _bool("anomaly"),
        sa.Column("reason", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "window_start", "series", name=op.f("pk_anomalies")),
        _window_fk("anomalies"),
    )
    _index("anomalies", "model_id", "series", "window_start")
    op.create_table(
        "retrain_triggers",
        sa.Column("trigger_id", sa.String(), nullable=False),
        sa.Column("model_id", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        _json("evidence"),
        _timestamp("window_start"),
        _timestamp("window_end"),
        _timestamp("data_start", nullable=True),
        _timestamp("data_end", nullable=True),
        _timestamp("created_at"),
        _timestamp("published_at", nullable=True),
        sa.PrimaryKeyConstraint("trigger_id", name=op.f("pk_retrain_triggers")),
        _model_fk("retrain_triggers"),
    )
    _index("retrain_triggers", "model_id", "created_at")
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(), nullable=False),
        _timestamp("window_start", nullable=True),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        _json("payload"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    _index("alerts", "fingerprint")
    _index("alerts", "model_id", "created_at")


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in (
        "alerts",
        "retrain_triggers",
        "anomalies",
        "quality_metrics",
        "data_quality_results",
        "drift_results",
        "windows",
        "reference_profiles",
        "models",
    ):
        op.drop_table(table)
