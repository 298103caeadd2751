"""segmentation: the RFM run number, so consumers apply recomputations in order

Revision ID: segmentation_0004
Revises: segmentation_0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "segmentation_0004"
down_revision: str | Sequence[str] | None = "segmentation_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    runs = op.create_table(
        "seg_rfm_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seg_rfm_run")),
    )
    op.bulk_insert(runs, [{"id": 1, "run": 0}])


def downgrade() -> None:
    op.drop_table("seg_rfm_run")
