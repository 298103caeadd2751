"""profile: customers, identities, events, purchases, merges, outbox

Revision ID: profile_0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "profile_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("profile",)
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "profile_customers",
        sa.Column("customer_id", sa.String(32), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_profile_customers"),
    )
    op.create_table(
        "profile_identities",
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("type", "value", name="pk_profile_identities"),
    )
    op.create_index("ix_profile_identities_customer_id", "profile_identities", ["customer_id"])
    op.create_table(
        "profile_events",
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_profile_events"),
    )
    op.create_index(
        "ix_profile_events_customer_time", "profile_events", ["customer_id", "occurred_at"]
    )
    op.create_table(
        "profile_purchases",
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("placed_at", TS, nullable=False),
        sa.Column("is_return", sa.Boolean, nullable=False),
        sa.Column("counted", sa.Boolean, nullable=False),
        sa.Column("total_micros", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_profile_purchases"),
    )
    op.create_index("ix_profile_purchases_order_id", "profile_purchases", ["order_id"])
    op.create_index(
        "ix_profile_purchases_customer_time",
        "profile_purchases",
        ["customer_id", "placed_at", "event_id"],
    )
    op.create_table(
        "profile_merges",
        sa.Column("source_customer_id", sa.String(32), nullable=False),
        sa.Column("target_customer_id", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("merged_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("source_customer_id", name="pk_profile_merges"),
    )
    op.create_index(
        "ix_profile_merges_target_customer_id", "profile_merges", ["target_customer_id"]
    )
    op.create_table(
        "profile_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_profile_outbox"),
    )


def downgrade() -> None:
    for table in (
        "profile_outbox",
        "profile_merges",
        "profile_purchases",
        "profile_events",
        "profile_identities",
        "profile_customers",
    ):
        op.drop_table(table)
