"""Which process plans and sends: a PostgreSQL advisory lock, or a file lock beside SQLite.

PostgreSQL: the lock is session-level, held on a dedicated asyncpg connection outside the
pool (a pooled or transaction-mode connection could hand it to someone else). It is checked
every tick; a closed connection means the lock is gone, and the process stops sending at
once. A standby tries to take the lock every tick, so it takes over within one tick.

SQLite: only one `duban run` may use a database file, so an exclusive `flock` on
`<file>.lock` taken at start-up makes the process the leader for its whole life; a second
run is refused.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from bot.errors import DubanError

log = logging.getLogger("duban.leader")

# Advisory lock keys: any 64-bit numbers that other applications on the database won't use.
LEADER_KEY = 0x64756261_6E4C4452  # "dubanLDR"
SETUP_KEY = 0x64756261_6E535550  # "dubanSUP"
CHECK_TIMEOUT = 5.0
_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
    "AND pid = pg_backend_pid() AND granted"
)


class AlreadyRunning(DubanError):
    """Another `duban run` holds the database's lock file."""

    key = "delivery.already_running"


class Leadership(Protocol):
    """Tells whether this process is the one that plans and sends."""

    # True when holding leadership proves no other sender exists (leases of a dead run are
    # then void and may be taken back at once).
    exclusive: bool

    @property
    def is_leader(self) -> bool:
        """Return True while this process leads (cheap; no database round trip)."""
        ...

    async def check(self) -> bool:
        """Re-check a held lock, or try to take a free one; return whether we lead."""
        ...

    async def release(self) -> None:
        """Give leadership up."""
        ...


class SoleLeader:
    """Leadership for a database no other process can open (in-memory SQLite)."""

    exclusive = True

    @property
    def is_leader(self) -> bool:
        """Return True: nobody else can compete."""
        return True

    async def check(self) -> bool:
        """Return True."""
        return True

    async def release(self) -> None:
        """Nothing to release."""


class FileLeader:
    """An exclusive lock on `<database file>.lock`, held for the life of the process."""

    exclusive = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now, or raise AlreadyRunning if another process has it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(path=str(self.path.with_suffix(""))) from None
        # For the operator who wonders who holds it; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    @property
    def is_leader(self) -> bool:
        """Return True once the lock is held."""
        return self._fd is not None

    async def check(self) -> bool:
        """Return whether the lock is held (it cannot be lost while the process lives)."""
        return self.is_leader

    async def release(self) -> None:
        """Unlock and close the lock file (the file itself stays)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def asyncpg_dsn(url: str) -> str:
    """Turn a SQLAlchemy `postgresql+asyncpg://` URL into a DSN asyncpg understands."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


class PgLeader:
    """A session-level PostgreSQL advisory lock on a dedicated connection."""

    exclusive = False

    def __init__(self, url: str, *, key: int = LEADER_KEY, name: str = "duban-leader") -> None:
        self._dsn = asyncpg_dsn(url)
        self._key = key
        self._name = name
        self._conn: Any = None
        self._held = False

    @property
    def is_leader(self) -> bool:
        """Return True while the lock is held on a live connection."""
        return self._held and self._conn is not None and not self._conn.is_closed()

    @property
    def backend_pid(self) -> int | None:
        """Return the PostgreSQL backend pid of the lock connection (for operators, tests)."""
        if self._conn is None or self._conn.is_closed():
            return None
        return int(self._conn.get_server_pid())

    async def check(self) -> bool:
        """Verify the lock if held, else connect if needed and try to take it."""
        if self._conn is None or self._conn.is_closed():
            self._lost("the lock connection closed")
            if not await self._connect():
                return False
        if self._held:
            try:
                still = await self._conn.fetchval(_HELD, timeout=CHECK_TIMEOUT)
            except Exception as exc:
                still = 0
                log.warning("leader check failed: %s", exc)
            if not still:
                self._lost("the lock is no longer held")
                await self._drop_connection()
            return self._held
        try:
            got = await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1)", self._key, timeout=CHECK_TIMEOUT
            )
        except Exception as exc:
            log.warning("could not try the leader lock: %s", exc)
            await self._drop_connection()
            return False
        if got:
            self._held = True
            log.info("this process is now the leader: it plans and sends")
        return self._held

    async def release(self) -> None:
        """Close the lock connection, which releases the lock."""
        self._held = False
        await self._drop_connection(graceful=True)

    async def _connect(self) -> bool:
        try:
            conn = await asyncpg.connect(
                self._dsn,
                timeout=CHECK_TIMEOUT,
                server_settings={"application_name": self._name},
            )
        except Exception as exc:
            log.warning("could not open the leader connection: %s", exc)
            return False
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        return True

    def _on_terminated(self, _conn: Any) -> None:
        # Called by asyncpg as soon as the connection is gone: stop sending at once.
        self._lost("the lock connection was closed")

    def _lost(self, why: str) -> None:
        if self._held:
            log.warning("leadership lost: %s", why)
        self._held = False

    async def _drop_connection(self, *, graceful: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            if graceful:
                await conn.close(timeout=CHECK_TIMEOUT)
            else:
                conn.terminate()
        except Exception:
            conn.terminate()


def make_leader(url: str) -> Leadership:
    """Return this database's kind of leadership; for a SQLite file, take its lock now."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return PgLeader(url)
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return SoleLeader()
    leader = FileLeader(Path(database).resolve().with_name(Path(database).name + ".lock"))
    leader.acquire()
    return leader


@asynccontextmanager
async def setup_lock(url: str) -> AsyncIterator[None]:
    """Hold PostgreSQL's start-up lock: migrations and plan loads run one process at a time.

    A separate key from the leader's: a process that starts while another leads must still
    migrate and load before it serves, not wait for the leader to die. SQLite needs nothing:
    the file lock is already held.
    """
    if make_url(url).get_backend_name() != "postgresql":
        yield
        return
    conn = await asyncpg.connect(
        asyncpg_dsn(url), timeout=30, server_settings={"application_name": "duban-setup"}
    )
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", SETUP_KEY):
            log.info("another process is migrating or loading the plan; waiting for it")
            await conn.execute("SELECT pg_advisory_lock($1)", SETUP_KEY)
        yield
    finally:
        # Closing the session releases the lock, also if the block failed.
        await conn.close()
