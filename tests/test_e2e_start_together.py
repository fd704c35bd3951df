"""Several `duban run` processes starting at the same moment on a fresh PostgreSQL database.

Issue 14 case 7: after a deploy, a process manager starts every process at once; one died
with `IntegrityError: duplicate key value violates unique constraint "pk_settings"`. Nothing
in start-up may assume it is alone: every start-up write is an upsert or runs under the
start-up lock. Tried repeatedly, each time on a new database.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import remember_username
from bot.db import models as m
from bot.db.engine import Database
from bot.services.invites import BOT_USERNAME_SETTING
from bot.services.people import touch_person
from sandbox.botapi import LocalBotAPI
from tests.cli import clean_env
from tests.delivery_world import T0
from tests.reliability import record
from tests.test_e2e_delivery import Bot
from tests.test_e2e_failover import free_port, pg_url

TOKEN = "990014:E2E-startup"
PROCESSES = 4
ROUNDS = 3
_outcomes: list[int] = []

__all__ = ["pg_url"]  # the fixture, imported for pytest


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.parametrize("attempt", range(ROUNDS))
async def test_processes_starting_together_on_a_fresh_database(
    tmp_path: Path, pg_url: str, attempt: int
) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        base = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=pg_url,
            DUBAN_TELEGRAM_MODE="webhook",
            DUBAN_TELEGRAM_WEBHOOK_SECRET_TOKEN="startup-secret",
            DUBAN_HTTP_LISTEN="127.0.0.1",
        )
        bots = []
        for i in range(PROCESSES):
            port = free_port()
            env = {
                **base,
                "DUBAN_HTTP_PORT": str(port),
                "DUBAN_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
            }
            bots.append(Bot(tmp_path, env, f"p{attempt}-{i}"))
        await asyncio.gather(*(bot.start() for bot in bots))
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                exited = [b for b in bots if b.proc is not None and b.proc.returncode is not None]
                serving = [b for b in bots if "receiving updates by webhook" in b.log]
                if exited or len(serving) == PROCESSES:
                    break
                await asyncio.sleep(0.1)
            logs = {b.log_path.name: b.log[-1500:] for b in bots}
            assert not exited, logs
            assert len(serving) == PROCESSES, logs
            assert not any("Traceback" in text or "Error" in text for text in logs.values()), logs
        finally:
            codes = [await bot.stop() for bot in bots]
        assert codes == [0] * PROCESSES, logs
    _outcomes.append(PROCESSES)
    if attempt == ROUNDS - 1:
        record(
            "faults",
            f"{PROCESSES} `duban run` started at the same moment on a fresh PostgreSQL database, "
            f"{ROUNDS} times (issue 14 case 7)",
            sum(_outcomes),
            "every process migrated or waited, started and served; none died",
        )


# ------------------------------------------------------------- the same writes, interleaved


async def test_start_up_writes_from_many_processes_at_once(db: Database) -> None:
    # The processes' start-up writes, each on its own connection, all in flight together:
    # each reads "no row yet" before any commits (what the separate processes raced into).
    engines = [Database(db.url) for _ in range(PROCESSES)]
    try:
        clock = lambda: T0  # noqa: E731
        await asyncio.gather(*(remember_username(e, "duban_bot", clock) for e in engines))
        await asyncio.gather(*(remember_username(e, "duban_bot2", clock) for e in engines))
        users = await asyncio.gather(*(_touch(e, 424242) for e in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    async with db.read() as session:
        value = await session.scalar(
            select(m.Setting.value).where(m.Setting.key == BOT_USERNAME_SETTING)
        )
        people = await session.scalar(
            select(func.count()).select_from(m.Person).where(m.Person.telegram_id == 424242)
        )
    assert value == "duban_bot2" and people == 1 and len(set(users)) == 1


async def _touch(db: Database, telegram_id: int) -> int:
    async with db.write() as session:
        person = await touch_person(session, telegram_id, now=T0, name="同时")
        return int(person.id)
