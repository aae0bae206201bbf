"""Outbox leases on retraining triggers: which relay publishes one, and until when.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

Two nullable columns, so existing rows need no value: a trigger nobody claimed yet.
Batch mode, because SQLite can only drop a column by copying its table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("retrain_triggers") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("retrain_triggers") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
