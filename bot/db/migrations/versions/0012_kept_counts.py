"""kept counts: assignments per (task, status, due moment); a stamp of each campaign's units;
the pinyin a person may type for each unit (computed by the plan load)

The database keeps both in the same transaction as every change (triggers), so no use case
can forget them and `/status` reads a few hundred rows instead of every assignment.

Revision ID: 0012
Revises: 0009
Create Date: 2026-11-29 16:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Assignment columns whose change moves an assignment from one count to another.
COUNTED = "task_id, status, due_at, archived_at"

SQLITE_TRIGGERS = [
    # SQLite has row triggers only; `UPDATE OF` keeps the planner's bulk updates of
    # next_check_at from firing them.
    """
    CREATE TRIGGER trg_assignment_counts_insert AFTER INSERT ON assignments
    WHEN NEW.archived_at IS NULL
    BEGIN
        INSERT INTO assignment_counts (campaign_id, task_id, status, due_at, n)
        VALUES (NEW.campaign_id, NEW.task_id, NEW.status, NEW.due_at, 1)
        ON CONFLICT (task_id, status, due_at) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER trg_assignment_counts_delete AFTER DELETE ON assignments
    WHEN OLD.archived_at IS NULL
    BEGIN
        UPDATE assignment_counts SET n = n - 1
        WHERE task_id = OLD.task_id AND status = OLD.status AND due_at = OLD.due_at;
    END
    """,
    f"""
    CREATE TRIGGER trg_assignment_counts_update AFTER UPDATE OF {COUNTED} ON assignments
    BEGIN
        UPDATE assignment_counts SET n = n - 1
        WHERE OLD.archived_at IS NULL
          AND task_id = OLD.task_id AND status = OLD.status AND due_at = OLD.due_at;
        INSERT INTO assignment_counts (campaign_id, task_id, status, due_at, n)
        SELECT NEW.campaign_id, NEW.task_id, NEW.status, NEW.due_at, 1
        WHERE NEW.archived_at IS NULL
        ON CONFLICT (task_id, status, due_at) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER trg_units_stamp_insert AFTER INSERT ON units
    BEGIN
        UPDATE campaigns SET units_version = units_version + 1 WHERE id = NEW.campaign_id;
    END
    """,
    """
    CREATE TRIGGER trg_units_stamp_update AFTER UPDATE ON units
    BEGIN
        UPDATE campaigns SET units_version = units_version + 1
        WHERE id IN (OLD.campaign_id, NEW.campaign_id);
    END
    """,
    """
    CREATE TRIGGER trg_units_stamp_delete AFTER DELETE ON units
    BEGIN
        UPDATE campaigns SET units_version = units_version + 1 WHERE id = OLD.campaign_id;
    END
    """,
]

# PostgreSQL: statement triggers with transition tables for inserts and deletes, so a plan
# load's batched INSERT of thousands of rows updates the counts once per statement.
PG_FUNCTIONS = [
    """
    CREATE FUNCTION assignment_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO assignment_counts AS c (campaign_id, task_id, status, due_at, n)
        SELECT campaign_id, task_id, status, due_at, count(*) FROM new_rows
        WHERE archived_at IS NULL GROUP BY campaign_id, task_id, status, due_at
        ORDER BY task_id, status, due_at
        ON CONFLICT (task_id, status, due_at) DO UPDATE SET n = c.n + EXCLUDED.n;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION assignment_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE assignment_counts AS c SET n = c.n - o.k
        FROM (SELECT task_id, status, due_at, count(*) AS k FROM old_rows
              WHERE archived_at IS NULL GROUP BY task_id, status, due_at) AS o
        WHERE c.task_id = o.task_id AND c.status = o.status AND c.due_at = o.due_at;
        RETURN NULL;
    END $$
    """,
    # Updates are rare and row by row (a submission, a review, an extension), and a trigger
    # with transition tables cannot name columns: a row trigger `UPDATE OF` the counted
    # columns leaves the planner's bulk updates of next_check_at alone.
    """
    CREATE FUNCTION assignment_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.archived_at IS NULL THEN
            UPDATE assignment_counts SET n = n - 1
            WHERE task_id = OLD.task_id AND status = OLD.status AND due_at = OLD.due_at;
        END IF;
        IF NEW.archived_at IS NULL THEN
            INSERT INTO assignment_counts AS c (campaign_id, task_id, status, due_at, n)
            VALUES (NEW.campaign_id, NEW.task_id, NEW.status, NEW.due_at, 1)
            ON CONFLICT (task_id, status, due_at) DO UPDATE SET n = c.n + 1;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION units_stamp_new() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE campaigns SET units_version = units_version + 1
        WHERE id IN (SELECT DISTINCT campaign_id FROM new_rows);
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION units_stamp_old() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE campaigns SET units_version = units_version + 1
        WHERE id IN (SELECT DISTINCT campaign_id FROM old_rows);
        RETURN NULL;
    END $$
    """,
]

PG_TRIGGERS = [
    "CREATE TRIGGER trg_assignment_counts_insert AFTER INSERT ON assignments"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION assignment_counts_add()",
    "CREATE TRIGGER trg_assignment_counts_delete AFTER DELETE ON assignments"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION assignment_counts_remove()",
    f"CREATE TRIGGER trg_assignment_counts_update AFTER UPDATE OF {COUNTED} ON assignments"
    " FOR EACH ROW WHEN (OLD.task_id IS DISTINCT FROM NEW.task_id"
    " OR OLD.status IS DISTINCT FROM NEW.status OR OLD.due_at IS DISTINCT FROM NEW.due_at"
    " OR OLD.archived_at IS DISTINCT FROM NEW.archived_at)"
    " EXECUTE FUNCTION assignment_counts_move()",
    "CREATE TRIGGER trg_units_stamp_insert AFTER INSERT ON units"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION units_stamp_new()",
    "CREATE TRIGGER trg_units_stamp_update AFTER UPDATE ON units"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION units_stamp_new()",
    "CREATE TRIGGER trg_units_stamp_delete AFTER DELETE ON units"
    " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION units_stamp_old()",
]

# Counts for what the database already holds.
BACKFILL = """
    INSERT INTO assignment_counts (campaign_id, task_id, status, due_at, n)
    SELECT campaign_id, task_id, status, due_at, count(*) FROM assignments
    WHERE archived_at IS NULL GROUP BY campaign_id, task_id, status, due_at
"""


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "assignment_counts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "status", "due_at", name=op.f("pk_assignment_counts")),
    )
    with op.batch_alter_table("assignment_counts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assignment_counts_campaign_id"), ["campaign_id"], unique=False
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("units_version", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spellings", sa.JSON(), nullable=True))
    op.execute(BACKFILL)
    if op.get_bind().dialect.name == "postgresql":
        for statement in (*PG_FUNCTIONS, *PG_TRIGGERS):
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    """Revert this revision."""
    names = [
        "trg_assignment_counts_insert",
        "trg_assignment_counts_delete",
        "trg_assignment_counts_update",
        "trg_units_stamp_insert",
        "trg_units_stamp_update",
        "trg_units_stamp_delete",
    ]
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in names:
        table = "units" if "units" in name else "assignments"
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
    if postgres:
        for function in (
            "assignment_counts_add",
            "assignment_counts_remove",
            "assignment_counts_move",
            "units_stamp_new",
            "units_stamp_old",
        ):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_column("spellings")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("units_version")
    op.drop_table("assignment_counts")
