"""recommend: the counted baskets (what a full rebuild of the co-occurrence recounts), and the
rebuild's lease

Revision ID: recommend_0002
Revises: recommend_0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "recommend_0002"
down_revision: str | Sequence[str] | None = "recommend_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reco_baskets",
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_reco_baskets")),
    )
    op.create_index("ix_reco_baskets_customer", "reco_baskets", ["customer_id"])
    # Row 1: the scheduled training; row 2: the scheduled co-occurrence rebuild. A store that
    # already has counts has counted baskets this table never saw: a rebuild would drop all of
    # their pairs, so its lease is taken "forever" — no scheduled rebuild until an operator
    # frees it (UPDATE reco_training SET leased_until = 0 WHERE id = 2) once the history is
    # counted again from scratch (docs/recommend.md).
    op.execute(
        "INSERT INTO reco_training (id, leased_until) SELECT 2, CASE WHEN EXISTS "
        "(SELECT 1 FROM reco_item_counts) THEN 1e18 ELSE 0 END"
    )


def downgrade() -> None:
    op.execute("DELETE FROM reco_training WHERE id = 2")
    op.drop_index("ix_reco_baskets_customer", table_name="reco_baskets")
    op.drop_table("reco_baskets")
