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
from bot.services.outbox import Outgoing, enqueue_many, message
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
                assert app.job_queue is not None
                await scheduler.start(app.job_queue)
                try:
                    yield World(srv, db, app, scheduler, campaign_id, unit_ids)
                finally:
                    await scheduler.stop()
                    await app.updater.stop()
                    await app.stop()
        finally:
            await db.dispose()


@dataclass
class Burst:
    """What an interactive-first run measured (seconds; counts)."""

    nudges: int
    delivered: int
    drain_seconds: float
    reply: list[float]
    notice: list[float]
    count_429: int
    violations: int

    @property
    def lost(self) -> int:
        """Return how many nudges of the burst never arrived."""
        return self.nudges - self.delivered


def percentile(values: list[float], share: float) -> float:
    """Return the `share` percentile (0..1) of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


async def interactive_burst(world: World, nudges: int, *, every: float = 0.5) -> Burst:
    """Queue `nudges` nudges to as many contacts, and while they drain keep asking.

    Every `every` seconds one of 20 registered people sends /help (the reply's latency is
    measured) and, alternately, an office notice (kind "review", what a new submission
    writes) is queued for one of 5 office people and the sender poked (its latency from the
    commit to its arrival is measured). Returns when every nudge has arrived.
    """
    srv = world.srv
    people = [srv.add_user(first_name=f"询问者{i}", started=True) for i in range(20)]
    for person in people:
        await world.register(person, "leader")
    offices = [srv.add_user(first_name=f"办公室{i}", started=True) for i in range(5)]
    for office in offices:
        await world.register(office, "office")
    contacts = [srv.add_user(first_name=f"联络员{i}", started=True) for i in range(nudges)]
    now = datetime.now(UTC)
    async with world.db.write() as session:
        await enqueue_many(
            session,
            [
                Outgoing(f"burst:{i}", c.id, "nudge", message(f"<b>催报</b> 第{i}条"))
                for i, c in enumerate(contacts)
            ],
            now=now,
        )
    runtime = world.app.bot_data["runtime"]
    runtime.poke_sender()
    started = time.monotonic()
    ids = {c.id for c in contacts}
    reply: list[float] = []
    notice: list[float] = []
    waiting: list[asyncio.Task[None]] = []

    async def ask(person: FakeUser) -> None:
        before = len(srv.texts_to(person))
        asked = time.monotonic()
        srv.send_text(person, "/help")
        done = await world.until(lambda: len(srv.texts_to(person)) > before, 60, "a reply")
        reply.append(done - asked)

    async def tell(office: FakeUser, n: int) -> None:
        before = len(srv.texts_to(office))
        async with world.db.write() as session:
            await enqueue_many(
                session,
                [Outgoing(f"notice:{n}", office.id, "review", message(f"新报送 {n}"))],
                now=datetime.now(UTC),
            )
        queued = time.monotonic()
        runtime.poke_sender()
        done = await world.until(lambda: len(srv.texts_to(office)) > before, 60, "a notice")
        notice.append(done - queued)

    def delivered() -> int:
        return len({sent["chat"]["id"] for sent in srv.sent} & ids)

    n = 0
    while delivered() < nudges:
        if time.monotonic() - started > 30 + nudges / 10:
            raise AssertionError(f"the burst did not drain: {delivered()} of {nudges}")
        if n % 2 == 0:
            waiting.append(asyncio.create_task(ask(people[(n // 2) % len(people)])))
        else:
            waiting.append(asyncio.create_task(tell(offices[(n // 2) % len(offices)], n)))
        n += 1
        await asyncio.sleep(every)
    drain = time.monotonic() - started
    await asyncio.gather(*waiting)
    return Burst(
        nudges, delivered(), drain, reply, notice, srv.count_429, srv.retry_after_violations
    )
