"""A running bot (the real Application, tick and sender) against the local Bot API server.

The server keeps Telegram's flood limits (30 a second, 1 a second into a chat, 20 a minute
into a group) and counts every request sent into an open retry_after. The crowd tests
(issue 14) send floods and crowds through it and measure how the bot serves everyone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from telegram import Update
from telegram.ext import Application

from bot.app import build_application
from bot.config import load_config
from bot.db import models as m
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.plan import parse_plan
from bot.services.invites import create_invite
from bot.services.plan_load import load_plan_into
from sandbox.botapi import FakeChat, FakeUser, LocalBotAPI
from scheduler.leader import SoleLeader
from scheduler.tick import Scheduler

TOKEN = "777014:CROWDS-test-token"
TASK = "快报"


def crowd_plan(units: int, due: datetime) -> str:
    """Return a plan of `units` units owing one task due at `due` (no nudge falls due soon)."""
    local = due.astimezone(ZoneInfo("Asia/Shanghai"))
    unit_lines = "".join(
        f'[[units]]\nkey = "u{i:04d}"\nname = "第{i:04d}单位"\nkind = "county"\n\n'
        for i in range(units)
    )
    # The phase starts after the deadline, so no announcement goes out during a test.
    start = local.date() + timedelta(days=1)
    return f"""
[campaign]
key = "crowds"
title = "人多的时候"
timezone = "Asia/Shanghai"

[calendar]
country = ""

[reminders]
before = ["1h"]
on_due = false
overdue_every = false
escalate = []
window = "00:00-24:00"
workdays_only = false

[digest]
daily = false
weekly = false

[[unit_kinds]]
key = "county"
name = "县级单位"

{unit_lines}
[[phases]]
key = "report"
name = "报送"
start = {start.isoformat()}
end = {(start + timedelta(days=2)).isoformat()}

  [[phases.tasks]]
  key = "quick-report"
  title = "{TASK}"
  due = {local.isoformat(timespec="seconds")}
  allow_outside_phase = true
  evidence = "any"
"""


@dataclass
class World:
    """The server, the database and the running bot."""

    srv: LocalBotAPI
    db: Database
    app: Application[Any, Any, Any, Any, Any, Any]
    scheduler: Scheduler
    campaign_id: int
    units: list[int]  # unit ids in key order

    async def register(
        self, user: FakeUser | FakeChat, role: str, unit: int | None = None, *, group: bool = False
    ) -> int:
        """Give a user (or a group) a role directly in the database; return the person id."""
        now = datetime.now(UTC)
        async with self.db.write() as session:
            name = getattr(user, "first_name", None) or getattr(user, "title", "") or ""
            person = m.Person(
                telegram_id=user.id, is_group=group, name=name, reachable=True, created_at=now
            )
            session.add(person)
            await session.flush()
            session.add(
                m.Role(
                    person_id=person.id,
                    campaign_id=self.campaign_id,
                    role=role,
                    unit_id=unit,
                    created_at=now,
                )
            )
            person.current_campaign_id = self.campaign_id
            return int(person.id)

    async def invites(self, count: int, role: str = "contact") -> list[str]:
        """Make `count` invite codes, one per unit (in key order) for a unit role."""
        codes: list[str] = []
        now = datetime.now(UTC)
        async with self.db.write() as session:
            campaign = await session.get_one(m.Campaign, self.campaign_id)
            for unit_id in self.units[:count]:
                unit = await session.get_one(m.Unit, unit_id)
                made = await create_invite(session, campaign, role, unit, now=now, actor="test")
                codes.append(made.code)
        return codes

    async def until(self, check: Callable[[], Any], limit: float, what: str) -> float:
        """Wait until `check()` is truthy; return the monotonic moment it became so."""
        deadline = time.monotonic() + limit
        while True:
            if check():
                return time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached; last requests:\n{self.srv.dump(30)}")
            await asyncio.sleep(0.01)


@asynccontextmanager
async def crowd(tmp_path: Path, units: int) -> AsyncIterator[World]:
    """Start the bot on a fresh SQLite database with a plan of `units` units."""
    async with LocalBotAPI(token=TOKEN) as srv:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'crowd.db'}")
        try:
            await upgrade(db)
            due = datetime.now(UTC) + timedelta(days=1)
            text = crowd_plan(units, due)
            await load_plan_into(db, parse_plan(text, "crowds.toml"), now=datetime.now(UTC))
            async with db.read() as session:
                campaign_id = int(await session.scalar(select(m.Campaign.id)) or 0)
                unit_ids = [
                    int(u) for u in await session.scalars(select(m.Unit.id).order_by(m.Unit.key))
                ]
            config = load_config(
                env={"DUBAN_TELEGRAM_TOKEN": TOKEN, "DUBAN_TELEGRAM_BASE_URL": srv.base_url}
            )
            app = build_application(config, db)
            runtime = app.bot_data["runtime"]
            async with app:
                await app.start()
                assert app.updater is not None
                await app.updater.start_polling(
                    allowed_updates=Update.ALL_TYPES, timeout=1, poll_interval=0
                )
                scheduler = Scheduler(runtime, app.bot, SoleLeader(), tick_seconds=1.0)
                await scheduler.start()
                try:
                    yield World(srv, db, app, scheduler, campaign_id, unit_ids)
                finally:
                    await scheduler.stop()
                    await app.updater.stop()
                    await app.stop()
        finally:
            await db.dispose()
