"""attempt counters; feed tokens and invite hints stored as hashes only (issue 14)

Revision ID: 0008
Revises: 0010
Create Date: 2026-11-29 16:30:00.000000
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "attempt_counters",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_attempt_counters")),
    )
    with op.batch_alter_table("calendar_feeds") as batch:
        batch.add_column(sa.Column("salt", sa.String(length=32), nullable=True))
    bind = op.get_bind()
    # Links made so far keep working: their tokens are replaced by their hashes (no salt:
    # the bot makes a new link when asked again).
    feeds = bind.execute(sa.text("SELECT id, token FROM calendar_feeds")).all()
    for feed_id, token in feeds:
        bind.execute(
            sa.text("UPDATE calendar_feeds SET token = :hash WHERE id = :id"),
            {"hash": hashlib.sha256(token.encode()).hexdigest(), "id": feed_id},
        )
    # An invite's hint was the code's first characters: now the hash's.
    bind.execute(sa.text("UPDATE invites SET hint = substr(code_hash, 1, 6)"))


def downgrade() -> None:
    """Revert this revision (feed links made since stop working: only hashes are kept)."""
    with op.batch_alter_table("calendar_feeds") as batch:
        batch.drop_column("salt")
    op.drop_table("attempt_counters")
