"""recommend: catalogue, showcases, co-occurrence, popularity, history, guards, models, outbox

Revision ID: recommend_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "recommend_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("recommend",)
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
SKU = 200


def upgrade() -> None:
    op.create_table(
        "reco_items",
        sa.Column("sku", sa.String(SKU), nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("available", sa.Boolean, nullable=False),
        sa.Column("released_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_reco_items")),
    )
    op.create_index("ix_reco_items_category", "reco_items", ["category", "sku"])
    op.create_table(
        "reco_catalog",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reco_catalog")),
    )
    op.execute("INSERT INTO reco_catalog (id, version) VALUES (1, 0)")
    op.create_table(
        "reco_showcases",
        sa.Column("showcase_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("showcase_id", name=op.f("pk_reco_showcases")),
    )
    op.create_index("ix_reco_showcases_created", "reco_showcases", ["created_at", "showcase_id"])
    op.create_table(
        "reco_item_counts",
        sa.Column("sku", sa.String(SKU), nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_reco_item_counts")),
    )
    op.create_table(
        "reco_pairs",
        sa.Column("sku", sa.String(SKU), nullable=False),
        sa.Column("other", sa.String(SKU), nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("sku", "other", name=op.f("pk_reco_pairs")),
    )
    op.create_table(
        "reco_popularity",
        sa.Column("segment_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("sku", sa.String(SKU), nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "day", "sku", name=op.f("pk_reco_popularity")),
    )
    op.create_table(
        "reco_history",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(SKU), nullable=False),
        sa.Column("purchased", sa.Float, nullable=False),
        sa.Column("viewed", sa.Float, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "sku", name=op.f("pk_reco_history")),
    )
    op.create_table(
        "reco_customers",
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.Float, nullable=True),
        sa.Column("merged_into", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_reco_customers")),
    )
    op.create_table(
        "reco_events",
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("counted_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_reco_events")),
    )
    op.create_table(
        "reco_models",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("trained_at", sa.Float, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_reco_models")),
    )
    op.create_table(
        "reco_training",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("leased_until", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reco_training")),
    )
    op.execute("INSERT INTO reco_training (id, leased_until) VALUES (1, 0)")
    op.create_table(
        "reco_outbox",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reco_outbox")),
    )


def downgrade() -> None:
    for table in (
        "reco_outbox",
        "reco_training",
        "reco_models",
        "reco_events",
        "reco_customers",
        "reco_history",
        "reco_popularity",
        "reco_pairs",
        "reco_item_counts",
        "reco_showcases",
        "reco_catalog",
        "reco_items",
    ):
        op.drop_table(table)
