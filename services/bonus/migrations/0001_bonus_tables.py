"""bonus: programs, accounts, the ledger, lots, outbox

Revision ID: bonus_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bonus_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("bonus",)
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "bonus_programs",
        sa.Column("program_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("program_id", name=op.f("pk_bonus_programs")),
    )
    op.create_table(
        "bonus_accounts",
        sa.Column("program_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("enrolled_at", sa.Float, nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("lifetime_points", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "customer_id", name=op.f("pk_bonus_accounts")),
    )
    op.create_table(
        "bonus_transactions",
        sa.Column("seq", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("transaction_id", sa.String(32), nullable=False),
        sa.Column("program_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("points", sa.BigInteger, nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("accrued_order_id", sa.String(128), nullable=True),
        sa.Column("reversed_transaction_id", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("available_at", sa.Float, nullable=True),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        sa.Column("pending_after", sa.BigInteger, nullable=False),
        sa.Column("earned", sa.BigInteger, nullable=False),
        sa.Column("reverses", sa.BigInteger, nullable=False),
        sa.Column("unrecovered", sa.BigInteger, nullable=False),
        sa.Column("value_micros", sa.BigInteger, nullable=False),
        sa.Column("description", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_bonus_transactions")),
        sa.UniqueConstraint("transaction_id", name=op.f("uq_bonus_transactions_transaction_id")),
        sa.UniqueConstraint("program_id", "idempotency_key", name="uq_bonus_transactions_key"),
        sa.UniqueConstraint("program_id", "accrued_order_id", name="uq_bonus_transactions_order"),
    )
    op.create_index(
        "ix_bonus_transactions_account",
        "bonus_transactions",
        ["program_id", "customer_id", "seq"],
    )
    op.create_index(
        "ix_bonus_transactions_reversed", "bonus_transactions", ["reversed_transaction_id"]
    )
    op.create_table(
        "bonus_lots",
        sa.Column("lot_id", sa.String(32), nullable=False),
        sa.Column("program_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("remaining", sa.BigInteger, nullable=False),
        sa.Column("available_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("lot_id", name=op.f("pk_bonus_lots")),
    )
    op.create_index("ix_bonus_lots_account", "bonus_lots", ["program_id", "customer_id"])
    op.create_table(
        "bonus_outbox",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bonus_outbox")),
    )


def downgrade() -> None:
    for table in (
        "bonus_outbox",
        "bonus_lots",
        "bonus_transactions",
        "bonus_accounts",
        "bonus_programs",
    ):
        op.drop_table(table)
