"""bonus: an accrual records the promotions whose uses it counted (Transaction.promotion_ids)

Revision ID: bonus_0006
Revises: bonus_0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bonus_0006"
down_revision: str | Sequence[str] | None = "bonus_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Comma-separated ids, "" for none: accruals before this counted theirs in the uses table
    # only (those still counted are filled from it; released ones are not known any more).
    op.add_column(
        "bonus_transactions",
        sa.Column("promotion_ids", sa.Text, nullable=False, server_default=""),
    )
    bind = op.get_bind()
    counted: dict[str, list[str]] = {}
    uses = sa.text(
        "SELECT transaction_id, promotion_id FROM bonus_promotion_uses"
        " ORDER BY transaction_id, promotion_id"
    )
    for transaction_id, promotion_id in bind.execute(uses):
        counted.setdefault(transaction_id, []).append(promotion_id)
    if counted:
        bind.execute(
            sa.text("UPDATE bonus_transactions SET promotion_ids = :ids WHERE transaction_id = :t"),
            [{"ids": ",".join(ids), "t": t} for t, ids in counted.items()],
        )


def downgrade() -> None:
    with op.batch_alter_table("bonus_transactions") as batch:
        batch.drop_column("promotion_ids")
