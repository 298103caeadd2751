"""segmentation: tombstones of erased and merged customers; the catalogue version

Revision ID: segmentation_0003
Revises: segmentation_0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "segmentation_0003"
down_revision: str | Sequence[str] | None = "segmentation_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seg_tombstones",
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("deleted_at", sa.Float(), nullable=False),
        sa.Column("merged_into", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_seg_tombstones")),
    )
    with op.batch_alter_table("seg_tombstones", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_seg_tombstones_merged_into"), ["merged_into"], unique=False
        )
    catalog = op.create_table(
        "seg_catalog",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seg_catalog")),
    )
    op.bulk_insert(catalog, [{"id": 1, "version": 1}])


def downgrade() -> None:
    op.drop_table("seg_catalog")
    with op.batch_alter_table("seg_tombstones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seg_tombstones_merged_into"))
    op.drop_table("seg_tombstones")
