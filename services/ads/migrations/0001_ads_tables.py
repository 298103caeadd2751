"""ads: campaigns, the catalogue version, slots (SQL counters), interactions, outbox

Revision ID: ads_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ads_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("ads",)
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "ads_campaigns",
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("brand", sa.String(200), nullable=False),
        sa.Column("end_time", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_ads_campaigns")),
    )
    op.create_index("ix_ads_campaigns_created", "ads_campaigns", ["created_at", "campaign_id"])
    op.create_index("ix_ads_campaigns_brand", "ads_campaigns", ["brand", "created_at"])
    op.create_table(
        "ads_catalog",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ads_catalog")),
    )
    op.execute("INSERT INTO ads_catalog (id, version) VALUES (1, 0)")
    op.create_table(
        "ads_slots",
        sa.Column("slot_id", sa.String(32), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("settled_day", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("slot_id", name=op.f("pk_ads_slots")),
    )
    op.create_index("ix_ads_slots_campaign", "ads_slots", ["campaign_id", "settled_day"])
    op.create_index(
        "ix_ads_slots_customer", "ads_slots", ["campaign_id", "customer_id", "created_at"]
    )
    op.create_index("ix_ads_slots_expiry", "ads_slots", ["expires_at"])
    op.create_table(
        "ads_interactions",
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("campaign_id", sa.String(32), nullable=False),
        sa.Column("creative_id", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("placement", sa.String(128), nullable=False),
        sa.Column("channel", sa.Integer, nullable=False),
        sa.Column("occurred_at", sa.Float, nullable=False),
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("billable", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("token_id", "type", name=op.f("pk_ads_interactions")),
    )
    op.create_index(
        "ix_ads_interactions_campaign", "ads_interactions", ["campaign_id", "type", "day"]
    )
    op.create_index("ix_ads_interactions_customer", "ads_interactions", ["customer_id"])
    op.create_table(
        "ads_outbox",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ads_outbox")),
    )


def downgrade() -> None:
    for table in ("ads_outbox", "ads_interactions", "ads_slots", "ads_catalog", "ads_campaigns"):
        op.drop_table(table)
