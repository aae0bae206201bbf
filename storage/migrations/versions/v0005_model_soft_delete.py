"""Soft delete of models: the time a model was deleted, NULL while it is live.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

One nullable column, so existing rows need no value: every model stays live.
Batch mode, because SQLite can only drop a column by copying its table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("deleted_at")
