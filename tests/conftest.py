"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, and a fixed clock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.db.engine import Database
from bot.db.migrate import upgrade

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "campaign.toml"
PG_DSN = os.environ.get("DUBAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _pg_url(dbname: str) -> str:
    base = PG_DSN.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + dbname


async def _pg_admin() -> object:
    import asyncpg

    return await asyncpg.connect(PG_DSN, timeout=5)


# Under pytest-xdist (`pytest -n 2`), workers share this machine's PostgreSQL server. A test
# marked `alone` (one that restarts the server, or measures how long something takes) runs
# with no other test beside it: it takes the lock exclusively, every other test shares it.
# A gate taken first keeps a waiting `alone` test from being passed over forever.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


@contextlib.contextmanager
def _machine(tmp_path_factory: pytest.TempPathFactory, *, alone: bool) -> Iterator[None]:
    if _WORKER is None:  # one process: nothing runs beside a test anyway
        yield
        return
    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's
    with (shared / "gate.lock").open("a") as gate, (shared / "machine.lock").open("a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            if alone:
                fcntl.flock(gate, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _share_the_machine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Run a test marked `alone` with nothing beside it (see `_machine`)."""
    with _machine(tmp_path_factory, alone=request.node.get_closest_marker("alone") is not None):
        yield


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate one SQLite file once; each test gets a copy."""
    import asyncio

    path = tmp_path_factory.mktemp("tpl") / "template.db"

    async def build() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db)
        await db.dispose()

    asyncio.run(build())
    return path


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """Migrate one PostgreSQL template database; each test clones it."""
    import asyncio

    name = f"duban_tpl_{uuid.uuid4().hex[:8]}"

    async def build() -> str | None:
        try:
            admin = await _pg_admin()
        except Exception as exc:
            if IN_CI:
                raise RuntimeError(f"PostgreSQL is required in CI: {exc}") from exc
            return None
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        db = Database(_pg_url(name))
        await upgrade(db)
        await db.dispose()
        return name

    async def drop() -> None:
        admin = await _pg_admin()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()

    with _machine(tmp_path_factory, alone=False):  # not while the server restarts
        built = asyncio.run(build())
    yield built
    if built:
        with _machine(tmp_path_factory, alone=False):
            asyncio.run(drop())


@pytest.fixture
async def sqlite_db(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Database]:
    """A freshly migrated SQLite database only (for tests about logic, not storage)."""
    path = tmp_path / "duban.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite+aiosqlite:///{path}")
    yield database
    await database.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, pg_template: str | None
) -> AsyncIterator[Database]:
    """A freshly migrated database of each kind, dropped afterwards."""
    if request.param == "sqlite":
        path = tmp_path / "duban.db"
        shutil.copy(sqlite_template, path)
        database = Database(f"sqlite+aiosqlite:///{path}")
        yield database
        await database.dispose()
        return
    if pg_template is None:
        pytest.skip(f"no PostgreSQL server at {PG_DSN} (set DUBAN_TEST_PG)")
    name = f"duban_t_{uuid.uuid4().hex[:10]}"
    admin = await _pg_admin()
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    await admin.close()
    database = Database(_pg_url(name))
    try:
        yield database
    finally:
        await database.dispose()
        admin = await _pg_admin()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--publish-docs`: refresh docs/ (reliability, delivery figures, transcript) too."""
    parser.addoption(
        "--publish-docs",
        action="store_true",
        help="write test outputs into docs/ as well as build/docs/ (tests/outputs.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    from tests import outputs

    outputs.publish(bool(config.getoption("--publish-docs")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the reliability table (build/docs/, docs/ too with --publish-docs).

    Under pytest-xdist each worker hands its rows to the controller, which writes them all.
    """
    from tests import reliability

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability"] = reliability.dump()
        return
    if exitstatus == 0:
        option = session.config.option
        whole = (not session.config.args or session.config.args == ["tests"]) and not (
            option.keyword or option.markexpr or option.deselect or getattr(option, "lf", False)
        )
        reliability.write(whole_suite=whole)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Take a pytest-xdist worker's reliability rows as it finishes (see pytest_sessionfinish)."""
    from tests import reliability

    dumped = getattr(node, "workeroutput", {}).get("reliability")
    if dumped:
        reliability.absorb(dumped)
