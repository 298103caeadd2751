"""profile: identities, events and purchases reference their customer

Revision ID: profile_0002
Revises: profile_0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "profile_0002"
down_revision: str | Sequence[str] | None = "profile_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHILDREN = ("profile_identities", "profile_events", "profile_purchases")


def _name(table: str) -> str:
    return f"fk_{table}_customer_id_profile_customers"


def upgrade() -> None:
    # Rows naming a customer that no longer exists were left by erasures that raced a write
    # before this revision: they are an erased person's data, so they go, then can never recur.
    for table in CHILDREN:
        op.execute(
            f"DELETE FROM {table} "  # noqa: S608 - table names are the constants above
            "WHERE customer_id NOT IN (SELECT customer_id FROM profile_customers)"
        )
    for table in CHILDREN:
        # batch: SQLite adds a constraint by copying the table (render_as_batch in env.py)
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                _name(table), "profile_customers", ["customer_id"], ["customer_id"]
            )


def downgrade() -> None:
    for table in CHILDREN:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(_name(table), type_="foreignkey")
