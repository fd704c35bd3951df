"""Apply the Alembic migrations that ship inside the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Any = None) -> AlembicConfig:
    """Return an Alembic config pointing at the packaged migrations."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Any, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


def _current(connection: Any) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database to `revision`; return (before, after) revisions."""
    async with db.engine.begin() as conn:
        before = await conn.run_sync(_current)
        await conn.run_sync(_upgrade, revision)
        after = await conn.run_sync(_current)
    return before, after


def head_revision() -> str | None:
    """Return the newest revision shipped with this version."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(db: Database) -> str | None:
    """Return the revision the database is at (None before the first migration)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)
