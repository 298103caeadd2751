"""bonus: a guard row per customer, the tombstone of an erased one

Revision ID: bonus_0002
Revises: bonus_0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bonus_0002"
down_revision: str | Sequence[str] | None = "bonus_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bonus_customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_bonus_customers")),
    )


def downgrade() -> None:
    op.drop_table("bonus_customers")
