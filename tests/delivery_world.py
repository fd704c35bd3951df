"""Shared set-up for the delivery tests: a campaign, people with roles, outbox rows, a clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from telegram.ext import ExtBot

from bot.db import models as m
from bot.db.engine import Database
from bot.plan import parse_plan
from bot.services.outbox import enqueue, message
from bot.services.plan_load import load_plan_into
from sandbox.botapi import LocalBotAPI
from scheduler.limits import RateLimits, TelegramLimiter
from scheduler.sender import Sender
from tests.conftest import EXAMPLE

TOKEN = "777001:DELIVERY-test-token"
T0 = datetime(2017, 5, 8, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, two days before a deadline


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def load_campaign(db: Database) -> int:
    """Load the example campaign; return its id."""
    text = EXAMPLE.read_text(encoding="utf-8")
    await load_plan_into(
        db, parse_plan(text, str(EXAMPLE)), now=T0 - timedelta(days=60), plan_text=text
    )
    async with db.read() as session:
        return int(await session.scalar(select(m.Campaign.id)) or 0)


async def unit_id(db: Database, key: str) -> int:
    """Return the id of the unit with this key."""
    async with db.read() as session:
        return int(await session.scalar(select(m.Unit.id).where(m.Unit.key == key)) or 0)


async def add_person(
    db: Database,
    telegram_id: int,
    *,
    name: str = "",
    is_group: bool = False,
    role: str | None = None,
    campaign_id: int | None = None,
    unit: int | None = None,
) -> int:
    """Create a person (or group), optionally with one role; return its id."""
    async with db.write() as session:
        person = m.Person(
            telegram_id=telegram_id, is_group=is_group, name=name, reachable=True, created_at=T0
        )
        session.add(person)
        await session.flush()
        if role is not None:
            assert campaign_id is not None
            session.add(
                m.Role(
                    person_id=person.id,
                    campaign_id=campaign_id,
                    role=role,
                    unit_id=unit,
                    created_at=T0,
                )
            )
        return int(person.id)


async def add_rows(
    db: Database,
    chats: list[int],
    *,
    prefix: str = "row",
    now: datetime = T0,
    text: Callable[[int], str] = lambda i: f"<b>提醒</b> #{i}",
    **extra: Any,
) -> None:
    """Queue one sendMessage row per entry of `chats` (a chat may appear several times)."""
    async with db.write() as session:
        for i, chat in enumerate(chats):
            await enqueue(
                session,
                key=f"{prefix}:{i}",
                chat_id=chat,
                kind="nudge",
                payload=message(text(i)),
                now=now,
                **extra,
            )


async def statuses(db: Database) -> dict[str, int]:
    """Return how many outbox rows are in each status."""
    async with db.read() as session:
        rows = await session.execute(
            select(m.Outbox.status, func.count()).group_by(m.Outbox.status)
        )
        return {status: int(n) for status, n in rows}


async def outbox(db: Database) -> list[m.Outbox]:
    """Return every outbox row in id order."""
    async with db.read() as session:
        return list(await session.scalars(select(m.Outbox).order_by(m.Outbox.id)))


async def eventually(
    check: Callable[[], Awaitable[bool]], limit: float = 30, what: str = "condition"
) -> None:
    """Poll an async predicate until true, or fail after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {limit} s")
        await asyncio.sleep(0.05)


@dataclass
class Rig:
    """A sender wired to the fake server and a database."""

    sender: Sender
    bot: ExtBot[None]
    limits: RateLimits
    clock: FakeClock


@asynccontextmanager
async def rig(
    srv: LocalBotAPI,
    db: Database,
    *,
    limits: RateLimits | None = None,
    clock: FakeClock | None = None,
    owner: str | None = None,
    exclusive: bool = False,
    run: bool = True,
    poll_seconds: float = 1.0,
    is_leader: Callable[[], bool] = lambda: True,
) -> AsyncIterator[Rig]:
    """Start a sender (in the background unless `run=False`) and stop it afterwards."""
    limits = limits or RateLimits(30)
    clock = clock or FakeClock()
    bot: ExtBot[None] = ExtBot(
        srv.token,
        base_url=srv.base_url,
        base_file_url=srv.base_file_url,
        rate_limiter=TelegramLimiter(limits),
    )
    async with bot:
        sender = Sender(
            bot,
            db,
            limits,
            clock=clock,
            default_language="zh",
            owner=owner,
            exclusive=exclusive,
            poll_seconds=poll_seconds,
            is_leader=is_leader,
        )
        task = asyncio.create_task(sender.run()) if run else None
        try:
            yield Rig(sender, bot, limits, clock)
        finally:
            sender.stop()
            if task is not None:
                await asyncio.wait_for(task, 30)


async def drained(db: Database, sender: Sender) -> bool:
    """Return True once no row is pending and the sender holds nothing."""
    return (await statuses(db)).get("pending", 0) == 0 and sender.idle


async def add_unit_contacts(db: Database, users: list[Any]) -> None:
    """Make each fake user the contact of one unit (units in key order)."""
    now = datetime.now(UTC)
    async with db.write() as session:
        campaign = await session.scalar(select(m.Campaign.id))
        unit_ids = list(await session.scalars(select(m.Unit.id).order_by(m.Unit.key)))
        for user, unit in zip(users, unit_ids, strict=True):
            person = m.Person(telegram_id=user.id, name=user.first_name, created_at=now)
            session.add(person)
            await session.flush()
            session.add(
                m.Role(
                    person_id=person.id,
                    campaign_id=campaign,
                    role="contact",
                    unit_id=unit,
                    created_at=now,
                )
            )
