"""recurring task occurrences

Revision ID: 0009
Revises: 0004
Create Date: 2026-11-29 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("series", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("series_title", sa.Text(), nullable=True))
        batch.add_column(sa.Column("occurrence", sa.Date(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":
        # SQLite does not enforce VARCHAR lengths; PostgreSQL needs the wider column.
        op.alter_column(
            "tasks", "key", type_=sa.String(length=80), existing_type=sa.String(length=64)
        )


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "tasks", "key", type_=sa.String(length=64), existing_type=sa.String(length=80)
        )
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("occurrence")
        batch.drop_column("series_title")
        batch.drop_column("series")
