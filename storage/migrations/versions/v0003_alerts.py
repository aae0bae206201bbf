"""Alerts: their state per model and per fingerprint, silences, groups and the notification outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

The ``alerts`` table of 0001 was reserved and never written; it is replaced by one row per
alert fingerprint. ``relay_locks`` gets the row the alert planner locks.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _string(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.String(), nullable=nullable)


def _text(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _int(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Integer(), nullable=False)


def _json(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False)


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def upgrade() -> None:
    op.drop_table("alerts")
    op.create_table(
        "alert_books",
        _string("model_id"),
        _timestamp("last_window", nullable=True),
        _json("book"),
        _timestamp("updated_at"),
        _pk("alert_books", "model_id"),
    )
    op.create_table(
        "alerts",
        _string("fingerprint"),
        _string("model_id"),
        _string("model_version", nullable=True),
        _string("rule"),
        _string("subject"),
        _string("severity"),
        _string("status"),
        _json("labels"),
        _text("summary"),
        _json("evidence"),
        _timestamp("window_start"),
        _timestamp("window_end", nullable=True),
        _timestamp("starts_at"),
        _timestamp("resolved_at", nullable=True),
        _timestamp("updated_at"),
        _pk("alerts", "fingerprint"),
    )
    _index("alerts", "status")
    _index("alerts", "model_id", "updated_at")
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _string("fingerprint"),
        _string("model_id"),
        _string("status"),
        _timestamp("window_start"),
        _text("summary"),
        _timestamp("created_at"),
        _pk("alert_events", "id"),
    )
    _index("alert_events", "model_id", "created_at")
    op.create_table(
        "silences",
        _string("id"),
        _json("matchers"),
        _timestamp("starts_at"),
        _timestamp("ends_at"),
        _string("created_by"),
        _text("comment"),
        _timestamp("created_at"),
        _pk("silences", "id"),
    )
    _index("silences", "ends_at")
    op.create_table(
        "alert_groups",
        _string("receiver"),
        _string("group_key"),
        _json("group_labels"),
        _timestamp("first_seen_at"),
        _timestamp("last_sent_at", nullable=True),
        _json("notified"),
        _int("seq"),
        _timestamp("updated_at"),
        _pk("alert_groups", "receiver", "group_key"),
    )
    op.create_table(
        "notifications",
        _string("id"),
        _string("receiver"),
        _string("integration"),
        _string("group_key"),
        _int("seq"),
        _string("status"),
        _json("payload"),
        _timestamp("created_at"),
        _timestamp("sent_at", nullable=True),
        _timestamp("failed_at", nullable=True),
        _int("attempts"),
        _timestamp("next_attempt_at"),
        _text("last_error", nullable=True),
        _string("claimed_by", nullable=True),
        _timestamp("claimed_until", nullable=True),
        _pk("notifications", "id"),
    )
    _index("notifications", "sent_at", "failed_at")
    _index("notifications", "receiver", "integration", "group_key", "seq")
    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _string("notification_id"),
        _timestamp("attempted_at"),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=True),
        _text("error", nullable=True),
        sa.Column("seconds", sa.Double(), nullable=False),
        _string("relay"),
        _pk("notification_attempts", "id"),
    )
    _index("notification_attempts", "notification_id")
    op.create_table(
        "relay_locks",
        _string("name"),
        _timestamp("locked_at", nullable=True),
        _pk("relay_locks", "name"),
    )
    op.execute("INSERT INTO relay_locks (name) VALUES ('alert planner')")


def downgrade() -> None:
    for table in (
        "relay_locks",
        "notification_attempts",
        "notifications",
        "alert_groups",
        "silences",
        "alert_events",
        "alerts",
        "alert_books",
    ):
        op.drop_table(table)
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _string("model_id"),
        _timestamp("window_start", nullable=True),
        _string("rule"),
        _string("severity"),
        _string("fingerprint"),
        _string("status"),
        _json("payload"),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    _index("alerts", "fingerprint")
    _index("alerts", "model_id", "created_at")
