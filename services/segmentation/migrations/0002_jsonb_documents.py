"""segmentation: documents as jsonb on PostgreSQL

Revision ID: segmentation_0002
Revises: segmentation_0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "segmentation_0002"
down_revision: str | Sequence[str] | None = "segmentation_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (("seg_profiles", "doc"), ("seg_events", "properties"))


def upgrade() -> None:
    # SQLite keeps JSON as text either way; PostgreSQL gets the parsed binary form.
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE JSONB USING {column}::jsonb")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE JSON USING {column}::json")
