"""bonus: returns taken before the accrual of the order they name wait for it

Revision ID: bonus_0005
Revises: bonus_0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bonus_0005"
down_revision: str | Sequence[str] | None = "bonus_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bonus_pending_returns",
        sa.Column("transaction_id", sa.String(32), primary_key=True),
        sa.Column("program_id", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("return_order_id", sa.String(128), nullable=False),
        sa.Column("value_micros", sa.BigInteger, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_bonus_pending_returns_order", "bonus_pending_returns", ["program_id", "order_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_bonus_pending_returns_order", table_name="bonus_pending_returns")
    op.drop_table("bonus_pending_returns")
