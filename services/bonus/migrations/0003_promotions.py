"""bonus: promotions, their uses, the configuration version, holdout exposures and conversions

Revision ID: bonus_0003
Revises: bonus_0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bonus_0003"
down_revision: str | Sequence[str] | None = "bonus_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bonus_promotions",
        sa.Column("promotion_id", sa.String(32), nullable=False),
        sa.Column("program_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("coupon_key", sa.String(128), nullable=True),
        sa.Column("ends_at", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("uses", sa.BigInteger, nullable=False),
        sa.Column("discount_given", sa.BigInteger, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("promotion_id", name=op.f("pk_bonus_promotions")),
    )
    op.create_index(
        "ix_bonus_promotions_listing",
        "bonus_promotions",
        ["program_id", "priority", "created_at", "promotion_id"],
    )
    op.create_index("ix_bonus_promotions_coupon", "bonus_promotions", ["program_id", "coupon_key"])
    op.create_index("ix_bonus_promotions_ends", "bonus_promotions", ["status", "ends_at"])
    op.create_table(
        "bonus_promotion_uses",
        sa.Column("promotion_id", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("program_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("transaction_id", sa.String(32), nullable=False),
        sa.Column("discount", sa.BigInteger, nullable=False),
        sa.Column("bonus_points", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("promotion_id", "order_id", name=op.f("pk_bonus_promotion_uses")),
    )
    op.create_index(
        "ix_bonus_promotion_uses_customer",
        "bonus_promotion_uses",
        ["program_id", "customer_id", "promotion_id"],
    )
    op.create_index(
        "ix_bonus_promotion_uses_transaction", "bonus_promotion_uses", ["transaction_id"]
    )
    op.create_table(
        "bonus_config",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bonus_config")),
    )
    op.execute("INSERT INTO bonus_config (id, version) VALUES (1, 0)")
    op.create_table(
        "bonus_exposures",
        sa.Column("promotion_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("program_id", sa.String(32), nullable=False),
        sa.Column("held_out", sa.Boolean, nullable=False),
        sa.Column("first_seen_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("promotion_id", "customer_id", name=op.f("pk_bonus_exposures")),
    )
    op.create_index("ix_bonus_exposures_customer", "bonus_exposures", ["program_id", "customer_id"])
    op.create_table(
        "bonus_conversions",
        sa.Column("program_id", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "order_id", name=op.f("pk_bonus_conversions")),
    )
    op.create_index(
        "ix_bonus_conversions_customer", "bonus_conversions", ["program_id", "customer_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_bonus_conversions_customer", "bonus_conversions")
    op.drop_table("bonus_conversions")
    op.drop_index("ix_bonus_exposures_customer", "bonus_exposures")
    op.drop_table("bonus_exposures")
    op.drop_table("bonus_config")
    op.drop_index("ix_bonus_promotion_uses_transaction", "bonus_promotion_uses")
    op.drop_index("ix_bonus_promotion_uses_customer", "bonus_promotion_uses")
    op.drop_table("bonus_promotion_uses")
    op.drop_index("ix_bonus_promotions_ends", "bonus_promotions")
    op.drop_index("ix_bonus_promotions_coupon", "bonus_promotions")
    op.drop_index("ix_bonus_promotions_listing", "bonus_promotions")
    op.drop_table("bonus_promotions")
