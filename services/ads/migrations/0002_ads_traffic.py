"""ads: hourly SelectAds traffic, what pacing learns from

Revision ID: ads_0002
Revises: ads_0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ads_0002"
down_revision: str | Sequence[str] | None = "ads_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ads_traffic",
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("hour", sa.Integer, nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("day", "hour", name=op.f("pk_ads_traffic")),
    )


def downgrade() -> None:
    op.drop_table("ads_traffic")
