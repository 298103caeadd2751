"""ads: a guard row per customer, so an erasure wins over interactions recorded meanwhile

Revision ID: ads_0003
Revises: ads_0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ads_0003"
down_revision: str | Sequence[str] | None = "ads_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ads_customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_ads_customers")),
    )


def downgrade() -> None:
    op.drop_table("ads_customers")
