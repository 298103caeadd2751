"""bonus: a merged customer's guard row names the customer it lives on as; accounts keep
the tier last published; lots remember they were credited pending (ACTIVATION)

Revision ID: bonus_0004
Revises: bonus_0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bonus_0004"
down_revision: str | Sequence[str] | None = "bonus_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bonus_customers") as batch:
        batch.add_column(sa.Column("merged_into", sa.String(64), nullable=True))
        batch.create_index("ix_bonus_customers_merged_into", ["merged_into"])
    with op.batch_alter_table("bonus_accounts") as batch:
        batch.add_column(sa.Column("tier", sa.String(64), nullable=False, server_default=""))
    with op.batch_alter_table("bonus_lots") as batch:
        batch.add_column(
            sa.Column("pending", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("bonus_lots") as batch:
        batch.drop_column("pending")
    with op.batch_alter_table("bonus_accounts") as batch:
        batch.drop_column("tier")
    with op.batch_alter_table("bonus_customers") as batch:
        batch.drop_index("ix_bonus_customers_merged_into")
        batch.drop_column("merged_into")
