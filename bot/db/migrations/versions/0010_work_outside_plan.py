"""tasks added in chat, notices with receipts, reports

Revision ID: 0010
Revises: 0005
Create Date: 2026-11-29 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin", sa.String(length=8), server_default="plan", nullable=False)
        )
        batch_op.add_column(sa.Column("instructions_file_id", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("instructions_file_name", sa.Text(), nullable=True))
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("file_id", sa.Text(), nullable=True),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("file_kind", sa.String(length=16), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_notices_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["people.id"], name=op.f("fk_notices_created_by_people")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index("ix_notices_campaign", ["campaign_id", "created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notices_next_check_at"), ["next_check_at"], unique=False
        )
    op.create_table(
        "notice_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("received_by", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notices.id"], name=op.f("fk_notice_receipts_notice_id_notices")
        ),
        sa.ForeignKeyConstraint(
            ["received_by"], ["people.id"], name=op.f("fk_notice_receipts_received_by_people")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_notice_receipts_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_receipts")),
        sa.UniqueConstraint("notice_id", "unit_id", name=op.f("uq_notice_receipts_notice_id")),
    )
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notice_receipts_unit_id"), ["unit_id"], unique=False)
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_reports_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_reports_person_id_people")
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"], ["people.id"], name=op.f("fk_reports_reviewed_by_people")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_reports_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reports_campaign_unit", ["campaign_id", "unit_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reports_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_created_at"))
        batch_op.drop_index("ix_reports_campaign_unit")
    op.drop_table("reports")
    with op.batch_alter_table("notice_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_receipts_unit_id"))
    op.drop_table("notice_receipts")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_next_check_at"))
        batch_op.drop_index("ix_notices_campaign")
    op.drop_table("notices")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("instructions_file_name")
        batch_op.drop_column("instructions_file_id")
        batch_op.drop_column("origin")
