"""ads: what became of an interaction's bonus reward (the ad-loyalty reward)

Revision ID: ads_0004
Revises: ads_0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ads_0004"
down_revision: str | Sequence[str] | None = "ads_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ads_interactions") as batch:
        batch.add_column(sa.Column("reward", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ads_interactions") as batch:
        batch.drop_column("reward")
