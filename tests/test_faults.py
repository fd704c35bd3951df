"""A campaign week under random network faults and a database restart: nothing lost.

The real Application polls the local Bot API server, the real scheduler ticks and the real
sender drains the outbox; the test sets the clock, an hour a step through each day (08:00 to
20:00), from Monday morning to the next Monday. The server answers 500/502, drops
connections, answers late (after the client gave up, so the message arrives all the same)
and answers 429 at random; on PostgreSQL the database server is restarted in the middle of a
burst while contacts submit. Contacts behave like people: they press the nudge's button, send
a file, confirm, and start again when an answer does not come. A fault-free run of the same
week without submissions is the oracle of which nudges were due.

One chat may take four messages a second here instead of Telegram's one, on both sides, so
that a week fits in CI's budget; the real per-chat limit is held in test_sender.py and the
end-to-end delivery tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from telegram import Update

from bot.app import build_application
from bot.config import load_config
from bot.db import models as m
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.plan import parse_plan
from bot.services.plan_load import load_plan_into
from sandbox.botapi import FakeUser, Faults, Limits, LocalBotAPI, parse_html
from scheduler import sender as sender_module
from scheduler import tick as tick_module
from scheduler.leader import SoleLeader
from scheduler.limits import RateLimits
from scheduler.planner import PlanReport, plan_tick
from scheduler.tick import Scheduler
from tests.delivery_world import FakeClock, add_person
from tests.reliability import record

TOKEN = "616161:FAULTS-week-token"
START = datetime(2025, 3, 10, 0, 0, tzinfo=UTC)  # Monday 08:00 in Shanghai
# The clock moves an hour a step from 08:00 to 20:00 (Shanghai), then to the next morning:
# nothing is due at night (the window is 08:30-20:00). A week and the next Monday morning.
MOMENTS = [START + timedelta(days=day, hours=hour) for day in range(7) for hour in range(13)] + [
    START + timedelta(days=7, hours=hour) for hour in range(4)
]
UNITS = 12
HEADS = 4  # units with a head, who receives the first escalation
RESTART_AT = START + timedelta(days=1, hours=1)  # Tuesday 09:00: the digest and nudges

WEEK_PLAN = """
[campaign]
key = "week-under-faults"
title = "一周督办"
timezone = "Asia/Shanghai"

[calendar]
country = "CN"

[reminders]
before = ["1d", "2h"]
on_due = true
overdue_every = "1d"
escalate = [{ after = "1d", to = "head" }, { after = "2d", to = "office" }]
window = "08:30-20:00"
workdays_only = true

[digest]
daily = "09:00"
weekly = "mon 09:00"

[[unit_kinds]]
key = "county"
name = "县级工会"

UNITS

[[phases]]
key = "survey"
name = "调研摸底"
start = 2025-03-10
end = 2025-03-31

  [[phases.tasks]]
  key = "weekly"
  title = "周报<第1期>"
  due = 2025-03-11T18:00:00
  evidence = "any"

  [[phases.tasks]]
  key = "research"
  title = "调研报告"
  due = 2025-03-13T18:00:00
  evidence = "any"

  [[phases.tasks]]
  key = "ledger"
  title = "排查台账"
  due = 2025-03-14T12:00:00
  evidence = "any"
"""

PER_CHAT = 4  # messages a second into one chat (Telegram: 1)


class BriskLimits(RateLimits):
    """The bot's flood limits with PER_CHAT messages a second into one chat."""

    def __init__(self, per_second: float = 30, **kwargs: Any) -> None:
        super().__init__(per_second, **{**kwargs, "chat_interval": 1 / PER_CHAT})


def server(faults: Faults | None = None) -> LocalBotAPI:
    """Return a fake server whose per-chat limit matches BriskLimits."""
    return LocalBotAPI(token=TOKEN, faults=faults, limits=Limits(per_chat_per_second=PER_CHAT))


FAULTS = {
    "error_rate": 0.06,  # 500 or 502
    "drop_rate": 0.03,  # the connection is cut before an answer
    "timeout_rate": 0.03,  # delivered, but the answer comes after the client gave up
    "flood_rate": 0.03,  # 429 with retry_after = 1
}


def week_plan() -> str:
    """Return the plan of the week: UNITS units owing three tasks."""
    units = "\n".join(
        f'[[units]]\nkey = "u{i:02d}"\nname = "第{i:02d}县总工会"\nkind = "county"\n'
        for i in range(UNITS)
    )
    return WEEK_PLAN.replace("UNITS", units)


@dataclass
class People:
    """The fake accounts of the campaign's people."""

    contacts: dict[str, FakeUser] = field(default_factory=dict)  # unit key -> contact
    others: list[FakeUser] = field(default_factory=list)  # heads, office, leaders


async def populate(db: Database, srv: LocalBotAPI) -> People:
    """Load the plan and give every unit a contact; some units a head; an office; leaders."""
    text = week_plan()
    await load_plan_into(db, parse_plan(text, "week.toml"), now=START - timedelta(days=1))
    people = People()
    async with db.read() as session:
        campaign = int(await session.scalar(select(m.Campaign.id)) or 0)
        units = list(await session.execute(select(m.Unit.id, m.Unit.key).order_by(m.Unit.key)))

    async def person(user: FakeUser, role: str, unit: int | None) -> None:
        await add_person(
            db, user.id, name=user.first_name, role=role, campaign_id=campaign, unit=unit
        )

    for i, (unit, key) in enumerate(units):
        contact = srv.add_user(first_name=f"联络员{i:02d}", started=True)
        people.contacts[key] = contact
        await person(contact, "contact", unit)
        if i < HEADS:
            head = srv.add_user(first_name=f"负责人{i:02d}", started=True)
            people.others.append(head)
            await person(head, "head", unit)
    for role, count in (("office", 1), ("leader", 2)):
        for i in range(count):
            user = srv.add_user(first_name=f"{role}{i}", started=True)
            people.others.append(user)
            await person(user, role, None)
    return people


async def assignment_ids(db: Database) -> dict[tuple[str, str], int]:
    """Return the assignment id of each (unit key, task key)."""
    async with db.read() as session:
        rows = await session.execute(
            select(m.Unit.key, m.Task.key, m.Assignment.id)
            .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
            .join(m.Task, m.Task.id == m.Assignment.task_id)
        )
        return {(unit, task): int(aid) for unit, task, aid in rows}


def restart_postgres() -> float:
    """Restart the local PostgreSQL server; return how long it took."""
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    started = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return time.monotonic() - started


@dataclass
class Flow:
    """One contact's submission of one task, as a person would do it."""

    unit: str
    task: str
    assignment: int
    after_nudges: int  # submit once this many nudges of the task have arrived
    attempts: int = 0
    confirmed_file: str | None = None  # file_unique_id of the document the bot confirmed
    at: datetime | None = None


@dataclass
class Week:
    """One simulated week against the fake server."""

    db: Database
    srv: LocalBotAPI
    clock: FakeClock
    people: People
    flows: list[Flow]
    restart: bool = False
    planned: list[datetime] = field(default_factory=list)
    restart_seconds: float | None = None
    outage: tuple[float, float] | None = None  # time.time() around the restart
    ticks_failed: int = 0
    timing: Counter[str] = field(default_factory=Counter)

    async def run(self) -> None:
        """Run the week: set the clock, let the tick plan and the sender send, submit."""
        config = load_config(
            env={"DUBAN_TELEGRAM_TOKEN": TOKEN, "DUBAN_TELEGRAM_BASE_URL": self.srv.base_url}
        )
        saved = tick_module.RateLimits
        tick_module.RateLimits = BriskLimits  # type: ignore[misc]
        try:
            app = build_application(config, self.db, clock=self.clock)
        finally:
            tick_module.RateLimits = saved  # type: ignore[misc]
        runtime = app.bot_data["runtime"]

        async def planner(db: Database, now: datetime, **kwargs: Any) -> PlanReport:
            report = await plan_tick(db, now, **kwargs)
            self.planned.append(now)
            return report

        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=Update.ALL_TYPES, timeout=1)
            scheduler = Scheduler(
                runtime, app.bot, SoleLeader(), planner=planner, tick_seconds=0.02
            )
            assert app.job_queue is not None
            await scheduler.start(app.job_queue)
            try:
                for moment in MOMENTS[1:]:
                    self.clock.now = moment
                    await self.step(scheduler)
            finally:
                await scheduler.stop()
                await app.updater.stop()
                await app.stop()

    async def step(self, scheduler: Scheduler) -> None:
        """Let time pass to the next moment: plan, send, let contacts act on what arrived."""
        now = self.clock.now
        restarting: asyncio.Task[float] | None = None
        if self.restart and now == RESTART_AT:
            # In the middle of the morning's burst, and while contacts submit.
            await self.until(lambda: self.planned_at(now), "the tick at the restart")
            began = time.time()
            restarting = asyncio.create_task(asyncio.to_thread(restart_postgres))
            await asyncio.gather(self.act(), self.until(lambda: self.drained(scheduler), "drain"))
            self.restart_seconds = await restarting
            self.outage = (began, time.time())
        t0 = time.monotonic()
        await self.until(lambda: self.planned_at(now), f"the tick at {now}")
        t1 = time.monotonic()
        await self.until(lambda: self.drained(scheduler), f"the outbox drained at {now}")
        t2 = time.monotonic()
        await self.act()
        t3 = time.monotonic()
        self.timing["tick"] += t1 - t0
        self.timing["drain"] += t2 - t1
        self.timing["act"] += t3 - t2

    async def planned_at(self, now: datetime) -> bool:
        return bool(self.planned) and self.planned[-1] >= now

    async def drained(self, scheduler: Scheduler) -> bool:
        """Return True once nothing is due to send now and the sender holds nothing."""
        try:
            async with self.db.read() as session:
                due = await session.scalar(
                    select(func.count())
                    .select_from(m.Outbox)
                    .where(m.Outbox.status == "pending", m.Outbox.not_before <= self.clock.now)
                )
        except Exception:  # the database is restarting: not drained yet
            return False
        return due == 0 and scheduler.sender.idle

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        deadline = time.monotonic() + 120
        while not await check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached; last requests:\n{self.srv.dump(40)}")
            await asyncio.sleep(0.01)

    def nudges_of(self, flow: Flow) -> list[dict[str, Any]]:
        """Return the messages to the flow's contact that carry its task's submit button."""
        contact = self.people.contacts[flow.unit]
        wanted = f"sub:{flow.assignment}"
        return [
            msg
            for msg in self.srv.sent_to(contact)
            if any(
                button.get("callback_data") == wanted
                for row in (msg.get("reply_markup") or {}).get("inline_keyboard", [])
                for button in row
            )
        ]

    async def act(self) -> None:
        """Let every contact whose moment has come submit (all at once, like people)."""
        ready = [
            flow
            for flow in self.flows
            if flow.confirmed_file is None and len(self.nudges_of(flow)) >= flow.after_nudges
        ]
        await asyncio.gather(*(self.submit(flow) for flow in ready))

    async def reply_after(
        self, user: FakeUser, seen: int, test: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """Wait a few seconds for a new message to `user` passing `test`; None if none came."""
        try:
            found: dict[str, Any] = await self.srv.wait_for(
                lambda s: next((x for x in s.sent_to(user)[seen:] if test(x)), None), timeout=3
            )
        except TimeoutError:
            return None
        return found

    async def submit(self, flow: Flow) -> None:
        """Press the nudge's button, send the file, confirm; start again if an answer is lost."""
        contact = self.people.contacts[flow.unit]
        srv = self.srv
        for _ in range(10):
            flow.attempts += 1
            nudge = self.nudges_of(flow)[-1]
            seen = len(srv.sent_to(contact))
            srv.press_button(contact, nudge, f"sub:{flow.assignment}")
            prompt = await self.reply_after(contact, seen, lambda x: "请发送" in x.get("text", ""))
            if prompt is None:
                continue
            seen = len(srv.sent_to(contact))
            update = srv.send_document(
                contact,
                file_name=f"{flow.unit}-{flow.task}-{flow.attempts}.pdf",
                content=f"{flow.unit} {flow.task} {flow.attempts}".encode(),
            )
            ask = await self.reply_after(contact, seen, lambda x: _has_button(x, "sc:ok"))
            if ask is None:
                continue
            srv.press_button(contact, ask, "sc:ok")
            with contextlib.suppress(TimeoutError):
                # The answer edits the question; a lost edit leaves the person unsure.
                await srv.wait_for(lambda _, ask=ask: "已报送" in ask["text"], timeout=3)
            if "已报送" in ask["text"]:
                flow.confirmed_file = update["message"]["document"]["file_unique_id"]
                flow.at = self.clock.now
                return
        raise AssertionError(f"{flow.unit}/{flow.task}: no confirmation after 10 tries")


def _has_button(message: dict[str, Any], data: str) -> bool:
    return any(
        button.get("callback_data") == data
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
        for button in row
    )


def plan_flows(ids: dict[tuple[str, str], int], seed: int) -> list[Flow]:
    """Decide who submits what after how many nudges (one in eight never does)."""
    rng = random.Random(seed)
    flows = []
    for (unit, task), aid in sorted(ids.items()):
        after = rng.choice([0, 1, 1, 2, 2, 3, 3, 4])
        if after:
            flows.append(Flow(unit, task, aid, after))
    return flows


async def nudge_keys(db: Database) -> dict[tuple[str, str, str, int], datetime]:
    """Return each planned nudge as (unit, task, stage, chat) -> the moment it was planned."""
    async with db.read() as session:
        units = {
            aid: (unit, task)
            for aid, unit, task in await session.execute(
                select(m.Assignment.id, m.Unit.key, m.Task.key)
                .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
                .join(m.Task, m.Task.id == m.Assignment.task_id)
            )
        }
        rows = await session.execute(
            select(m.Outbox.key, m.Outbox.chat_id, m.Outbox.created_at).where(
                m.Outbox.kind == "nudge"
            )
        )
        keys = {}
        for key, chat, created in rows:
            # nudge:<assignment>:<stage, e.g. before:1d>:<due epoch>:<person>
            parts = key.split(":")
            unit, task = units[int(parts[1])]
            stage = ":".join(parts[2:-2])
            keys[(unit, task, f"{stage}@{parts[-2]}", int(chat))] = _utc(created)
        return keys


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextlib.contextmanager
def short_send_timeouts() -> Iterator[None]:
    """Give up on a Telegram answer after one second (five in production), to keep it quick."""
    saved = dict(sender_module.TIMEOUTS)
    sender_module.TIMEOUTS.update(read_timeout=1.0, write_timeout=1.0, connect_timeout=1.0)
    try:
        yield
    finally:
        sender_module.TIMEOUTS.clear()
        sender_module.TIMEOUTS.update(saved)


_ORACLE: dict[tuple[str, str, str, int], datetime] = {}


async def fault_free_week(tmp_path: Path) -> dict[tuple[str, str, str, int], datetime]:
    """Run the week on SQLite without faults or submissions; return the nudges it planned."""
    if _ORACLE:  # the same for both databases: run it once
        return _ORACLE
    started = time.monotonic()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'oracle.db'}")
    await upgrade(db)
    try:
        async with server() as srv:
            people = await populate(db, srv)
            week = Week(db, srv, FakeClock(START), people, flows=[])
            await week.run()
        _ORACLE.update(await nudge_keys(db))
        print(f"\nfault-free week: {len(_ORACLE)} nudges, {time.monotonic() - started:.1f} s")
        return _ORACLE
    finally:
        await db.dispose()


@pytest.mark.alone
async def test_a_week_of_faults_loses_nothing(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    dialect = db.dialect
    oracle = await fault_free_week(tmp_path)
    faults = Faults(statuses=(500, 502), timeout_delay=1.5, retry_after=1, seed=20250310, **FAULTS)
    with short_send_timeouts():
        async with server(faults) as srv:
            people = await populate(db, srv)
            flows = plan_flows(await assignment_ids(db), seed=7)
            week = Week(db, srv, FakeClock(START), people, flows, restart=dialect == "postgresql")
            started = time.monotonic()
            await week.run()
            seconds = time.monotonic() - started
            planned = await nudge_keys(db)
            async with db.read() as session:
                rows = list(await session.scalars(select(m.Outbox)))
                submissions = list(await session.scalars(select(m.Submission)))

    # Every flow ended with the bot's confirmation, and what it confirmed is stored.
    latest: dict[int, m.Submission] = {}
    for sub in submissions:
        if sub.assignment_id not in latest or sub.version > latest[sub.assignment_id].version:
            latest[sub.assignment_id] = sub
    # (A contact waiting for more nudges than came never submitted.)
    flows = [f for f in flows if f.attempts]
    lost = [f for f in flows if latest.get(f.assignment) is None]
    assert not lost
    assert all(latest[f.assignment].file_unique_id == f.confirmed_file for f in flows)
    assert len(latest) == len(flows)

    # Every nudge the fault-free week planned was planned here too, unless the unit had
    # submitted by then; and nothing else.
    submitted_at = {(f.unit, f.task): f.at for f in flows}
    expected = {
        key
        for key, created in oracle.items()
        if (at := submitted_at.get(key[:2])) is None or created <= at
    }
    assert set(planned) == expected

    # Every outbox row ended sent, or cancelled because its unit had submitted since.
    by_status = Counter(row.status for row in rows)
    assert set(by_status) <= {"sent", "cancelled"}, by_status
    assignments = {f.assignment for f in flows}
    for row in rows:
        if row.status == "cancelled":
            assert row.kind == "nudge" and int(row.key.split(":")[1]) in assignments, row.key

    # Each sent text arrived; repeats only for answers that came after the sender gave up.
    expected_texts = Counter(
        (row.chat_id, parse_html(row.payload["text"]).text)
        for row in rows
        if row.status == "sent" and row.payload.get("method") == "sendMessage"
    )
    delivered = Counter((msg["chat"]["id"], msg.get("text")) for msg in srv.sent)
    missing = sum((expected_texts - delivered).values())
    repeats = sum(max(0, delivered[k] - n) for k, n in expected_texts.items())
    photos = sum(1 for row in rows if row.status == "sent" and row.payload["method"] == "sendPhoto")
    assert missing == 0
    assert photos == sum(1 for msg in srv.sent if "photo" in msg and msg["chat"]["id"] > 0)
    injected = Counter(r.fault for r in srv.requests if r.fault)
    late_sends = sum(
        1 for r in srv.requests if r.fault == "timeout" and r.method.lower() == "sendmessage"
    )
    assert repeats <= late_sends
    assert srv.retry_after_violations == 0
    # Errors are logged only while the database was away (a tick that could not run).
    errors = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        and not (week.outage and week.outage[0] <= r.created <= week.outage[1] + 5)
    ]
    assert not errors, [r.getMessage() for r in errors]

    record(
        "faults",
        f"a campaign week under random 500/502, drops, late answers and 429s ({dialect})",
        sum(injected.values()),
        f"{len(rows)} messages over {len(MOMENTS) - 1} steps: all delivered, {repeats} repeated "
        f"(≤ {late_sends} answered late), {len(flows)} submissions all stored",
    )
    if week.restart_seconds is not None:
        record(
            "faults",
            "PostgreSQL restarted during a burst while contacts submit",
            1,
            f"down {week.restart_seconds:.1f} s; ticks, sending and submissions resumed",
        )
    print(
        f"\nweek on {dialect}: {len(rows)} messages, faults {dict(injected)}, "
        f"{repeats} repeated, {len(flows)} submissions in "
        f"{sum(f.attempts for f in flows)} attempts, {seconds:.1f} s {dict(week.timing)}"
        + (f", PostgreSQL down {week.restart_seconds:.1f} s" if week.restart_seconds else "")
    )
