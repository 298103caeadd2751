"""profile: the latest RFM recomputation applied, so a late earlier run is dropped

Revision ID: profile_0003
Revises: profile_0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "profile_0003"
down_revision: str | Sequence[str] | None = "profile_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    runs = op.create_table(
        "profile_rfm_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_rfm_run")),
    )
    op.bulk_insert(runs, [{"id": 1, "run": 0}])


def downgrade() -> None:
    op.drop_table("profile_rfm_run")
