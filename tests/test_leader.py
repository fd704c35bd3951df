"""Leadership: one process plans and sends; another takes over within one tick."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from telegram import Bot
from telegram.ext import ApplicationBuilder, JobQueue

from bot.config import Config
from bot.db.engine import Database
from bot.i18n import plain
from bot.runtime import Runtime
from sandbox.botapi import LocalBotAPI
from scheduler.leader import (
    AlreadyRunning,
    FileLeader,
    PgLeader,
    SoleLeader,
    asyncpg_dsn,
    make_leader,
    setup_lock,
)
from scheduler.tick import TICK_JOB, Scheduler
from tests.cli import clean_env, duban_command
from tests.conftest import PG_DSN
from tests.delivery_world import TOKEN, FakeClock


def postgres_only(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's")


async def terminate(pid: int | None) -> None:
    """Kill one backend, as a crashed host or a network cut would."""
    assert pid is not None
    admin = await asyncpg.connect(PG_DSN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def until(predicate: Any, limit: float) -> float:
    """Wait until `predicate()` is true; return how long it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > limit:
            raise AssertionError(f"not within {limit} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


# ---------------------------------------------------------------------- SQLite


def test_a_second_run_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}"
    first = make_leader(url)
    assert isinstance(first, FileLeader) and first.is_leader and first.exclusive
    with pytest.raises(AlreadyRunning) as refused:
        make_leader(url)
    line = plain(refused.value.key, "en", **refused.value.params)
    assert str(tmp_path / "duban.db") in line and "\n" not in line
    asyncio.run(first.release())
    second = make_leader(url)  # free again once the first run is gone
    asyncio.run(second.release())
    assert (tmp_path / "duban.db.lock").exists()


def test_in_memory_sqlite_leads_alone() -> None:
    assert isinstance(make_leader("sqlite+aiosqlite://"), SoleLeader)
    assert isinstance(make_leader("sqlite+aiosqlite:///:memory:"), SoleLeader)


def test_dsn_for_asyncpg_keeps_the_password() -> None:
    url = "postgresql+asyncpg://duban:s3cret@db.example:5433/duban"
    assert asyncpg_dsn(url) == "postgresql://duban:s3cret@db.example:5433/duban"


# ---------------------------------------------------------------------- PostgreSQL


@pytest.mark.postgres
async def test_only_one_holds_the_lock_and_a_standby_takes_over(db: Database) -> None:
    postgres_only(db)
    a, b = PgLeader(db.url), PgLeader(db.url)
    try:
        assert await a.check() is True
        assert await b.check() is False
        assert await a.check() is True  # re-checked every tick, still held
        assert a.is_leader and not b.is_leader
        # The holder's connection dies: it knows at once, without waiting for its next tick.
        await terminate(a.backend_pid)
        await until(lambda: not a.is_leader, 2.0)
        assert await b.check() is True
        assert await a.check() is False  # it reconnects as a standby
        await b.release()
        assert await a.check() is True
    finally:
        await a.release()
        await b.release()


@pytest.mark.postgres
async def test_a_lock_lost_without_notice_is_found_at_the_next_check(db: Database) -> None:
    postgres_only(db)
    a = PgLeader(db.url)
    try:
        assert await a.check()
        # Someone released the lock behind our back (an operator, a pooler): the check sees it.
        await a._conn.execute("SELECT pg_advisory_unlock_all()")
        assert a.is_leader  # nothing told us yet
        assert await a.check() is False
        assert not a.is_leader
        assert await a.check() is True  # free, so the next tick takes it again
    finally:
        await a.release()


@pytest.mark.postgres
async def test_setup_lock_lets_one_process_migrate_at_a_time(db: Database) -> None:
    postgres_only(db)
    order: list[str] = []

    async def setup(name: str) -> None:
        async with setup_lock(db.url):
            order.append(f"{name} in")
            await asyncio.sleep(0.3)
            order.append(f"{name} out")

    await asyncio.gather(setup("a"), setup("b"))
    assert order in (
        ["a in", "a out", "b in", "b out"],
        ["b in", "b out", "a in", "a out"],
    )


def make_scheduler(db: Database, leader: Any, planned: list[datetime], tick: float) -> Scheduler:
    config = Config.model_validate({"database": {"url": db.url}})
    runtime = Runtime(config=config, db=db, clock=FakeClock())

    async def planner(_db: Database, now: datetime, **_: Any) -> int:
        planned.append(now)
        return 0

    return Scheduler(runtime, Bot(TOKEN), leader, planner=planner, tick_seconds=tick)


# The Applications whose queues are in use: a JobQueue holds its Application weakly.
_APPS: list[Any] = []


async def job_queue() -> JobQueue[Any]:
    """Return a started JobQueue of an Application that never touches the network."""
    app = ApplicationBuilder().token(TOKEN).updater(None).build()
    _APPS.append(app)
    assert app.job_queue is not None
    await app.job_queue.start()
    return app.job_queue


@pytest.mark.postgres
async def test_another_process_takes_over_within_one_tick(db: Database) -> None:
    postgres_only(db)
    tick = 0.5
    plans: dict[str, list[datetime]] = {"a": [], "b": []}
    leaders = {"a": PgLeader(db.url), "b": PgLeader(db.url)}
    schedulers = {name: make_scheduler(db, leaders[name], plans[name], tick) for name in ("a", "b")}
    queues = {name: await job_queue() for name in ("a", "b")}
    await schedulers["a"].start(queues["a"])
    await until(lambda: plans["a"], 5)
    await schedulers["b"].start(queues["b"])
    try:
        await asyncio.sleep(3 * tick)
        assert plans["b"] == []  # only the leader plans
        assert len(plans["a"]) >= 3
        assert schedulers["a"].sender._is_leader() and not schedulers["b"].sender._is_leader()
        # The leader dies: its tick and sender stop and its session goes with it.
        await queues["a"].stop(wait=False)
        for task in schedulers["a"]._tasks:
            task.cancel()
        await terminate(leaders["a"].backend_pid)
        took = await until(lambda: plans["b"], 5)
        assert took <= tick + 0.3, f"takeover took {took:.2f} s with a {tick} s tick"
        assert schedulers["b"].sender._is_leader()
        assert not schedulers["a"].sender._is_leader()
    finally:
        for scheduler in schedulers.values():
            await scheduler.stop()
        for queue in queues.values():
            await queue.stop()


async def test_the_tick_plans_only_while_leading(db: Database) -> None:
    class Follower(SoleLeader):
        exclusive = False
        leading = False

        @property
        def is_leader(self) -> bool:
            return self.leading

        async def check(self) -> bool:
            return self.leading

    leader = Follower()
    planned: list[datetime] = []
    scheduler = make_scheduler(db, leader, planned, 60)
    assert await scheduler.tick() is False and planned == []
    leader.leading = True
    scheduler.runtime.outbox_ready.clear()
    assert await scheduler.tick() is True and len(planned) == 1
    assert scheduler.runtime.outbox_ready.is_set()  # the sender looks at once


async def test_the_tick_is_one_coalesced_repeating_job_that_never_overlaps(db: Database) -> None:
    """The tick runs on the JobQueue; a tick slower than the interval is never run twice at once."""
    running, most, planned = 0, 0, []

    async def slow_planner(_db: Database, now: datetime, **_: Any) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        planned.append(now)
        await asyncio.sleep(0.15)  # three intervals: the runs missed meanwhile collapse
        running -= 1
        return 0

    scheduler = make_scheduler(db, SoleLeader(), [], 0.05)
    scheduler.planner = slow_planner
    queue = await job_queue()
    try:
        await scheduler.start(queue)
        [job] = queue.jobs()
        assert job.name == TICK_JOB and job.job.coalesce and job.job.max_instances == 1
        await until(lambda: len(planned) >= 3, 10)
        await scheduler.stop()
        assert queue.jobs() == ()  # stopped: no tick left scheduled
        ticks = len(planned)
        await asyncio.sleep(0.2)
        assert len(planned) == ticks and running == 0
        assert most == 1
    finally:
        await queue.stop()


# ---------------------------------------------------------------------- the command


@pytest.mark.e2e
async def test_second_duban_run_on_the_same_sqlite_database_exits_with_one_line(
    tmp_path: Path,
) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}",
        )
        log = (tmp_path / "first.log").open("wb")
        first = await asyncio.create_subprocess_exec(
            *duban_command(), "run", cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        try:
            await srv.wait_for(lambda s: s.calls("getUpdates"), timeout=60)
            second = await asyncio.create_subprocess_exec(
                *duban_command(),
                "run",
                cwd=tmp_path,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _out, err = await asyncio.wait_for(second.communicate(), 60)
            assert second.returncode == 1
            lines = err.decode().strip().splitlines()
            assert len(lines) == 1, lines
            assert "duban.db" in lines[0] and "duban run" in lines[0]
            assert first.returncode is None  # the first one is untouched
        finally:
            first.send_signal(signal.SIGTERM)
            await asyncio.wait_for(first.wait(), 30)
            log.close()
        assert first.returncode == 0, (tmp_path / "first.log").read_text()
