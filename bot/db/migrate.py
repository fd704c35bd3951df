"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration shipped (tests/test_plan_load.py holds it equal to Alembic's head).
# `duban run` on a database already there reads one row and never imports Alembic and Mako
# (11 MB of the process's memory, issue 13).
HEAD = "0013"


def alembic_config(connection: Any = None) -> AlembicConfig:
    """Return an Alembic config pointing at the packaged migrations."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Any, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def _current(connection: Any) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def _stored_revision(db: Database) -> str | None:
    """Read alembic_version directly; None when the table is missing or holds no row."""
    try:
        async with db.engine.connect() as conn:
            rows = list(await conn.execute(text("SELECT version_num FROM alembic_version")))
    except DBAPIError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database to `revision`; return (before, after) revisions."""
    if revision in ("head", HEAD) and await _stored_revision(db) == HEAD:
        return HEAD, HEAD
    async with db.engine.begin() as conn:
        before = await conn.run_sync(_current)
        await conn.run_sync(_upgrade, revision)
        after = await conn.run_sync(_current)
    return before, after


def head_revision() -> str | None:
    """Return the newest revision shipped with this version."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(db: Database) -> str | None:
    """Return the revision the database is at (None before the first migration)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)
