"""an index for the ranking: assignments by (campaign, unit) with the columns it counts

The units' ranking (the bulletin, the dashboard) counts every assignment of a campaign per
unit; with this index the database reads the index alone, in unit order, and no table row.

Revision ID: 0013
Revises: 0008
Create Date: 2026-11-29 20:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Not in batch mode: SQLite must not copy the table (its count triggers would go).
    op.create_index(
        "ix_assignments_unit_counts",
        "assignments",
        ["campaign_id", "archived_at", "unit_id", "status", "due_at"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_assignments_unit_counts", table_name="assignments")
