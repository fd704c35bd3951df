"""message kinds: files of a version, album parts, a group's topic

Revision ID: 0005
Revises: 0012
Create Date: 2026-11-29 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "submission_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("file_id", sa.Text(), nullable=False),
        sa.Column("file_unique_id", sa.String(length=128), nullable=True),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("mime_type", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_files_submission_id_submissions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_files")),
        sa.UniqueConstraint(
            "submission_id", "position", name=op.f("uq_submission_files_submission_id")
        ),
    )
    op.create_table(
        "album_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("media_group_id", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_album_parts")),
        sa.UniqueConstraint("chat_id", "message_id", name=op.f("uq_album_parts_chat_id")),
    )
    with op.batch_alter_table("album_parts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_album_parts_chat_group", ["chat_id", "media_group_id"], unique=False
        )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_id", sa.BigInteger(), nullable=True))
    # Every file stored so far becomes the first (only) file of its version.
    op.execute(
        "INSERT INTO submission_files"
        " (submission_id, position, kind, file_id, file_unique_id, file_name, file_size,"
        " mime_type)"
        " SELECT id, 1, kind, file_id, file_unique_id, file_name, file_size, mime_type"
        " FROM submissions WHERE file_id IS NOT NULL"
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("thread_id")
    with op.batch_alter_table("album_parts", schema=None) as batch_op:
        batch_op.drop_index("ix_album_parts_chat_group")
    op.drop_table("album_parts")
    op.drop_table("submission_files")
