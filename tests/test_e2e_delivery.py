"""Acceptance: `duban run` delivers the outbox against a server enforcing Telegram's limits.

(a) 1,000 nudges to 1,000 contacts: all delivered, none twice, no retry_after ignored; the rate
    is printed and written to figures/delivery.json (tests/outputs.py).
(b) 200 units whose deadline is minutes away: the run is SIGKILLed mid-burst and started again;
    every unit gets its nudge, and repeats are at most the messages in flight at the kill.
(c) A contact who blocked the bot: the office is told once, everyone else is unaffected.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.db import models as m
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.services.outbox import enqueue, message
from sandbox.botapi import LocalBotAPI, parse_html
from tests import outputs
from tests.cli import clean_env, duban_command, run_duban
from tests.conftest import EXAMPLE
from tests.delivery_world import add_unit_contacts

pytestmark = pytest.mark.e2e

TOKEN = "424243:E2E-delivery-token"
FIGURES = "figures/delivery.json"
LIMIT = 30  # telegram.max_messages_per_second, and the fake server's global limit


def save_figures(section: str, figures: dict[str, Any]) -> None:
    """Merge one test's figures into figures/delivery.json (build folder; docs/ if publishing)."""
    earlier = outputs.read(FIGURES)
    data = json.loads(earlier) if earlier is not None else {}
    data[section] = figures
    outputs.write(FIGURES, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


class Bot:
    """One `duban run` subprocess with its log in a file."""

    def __init__(self, tmp_path: Path, env: dict[str, str], name: str) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.log_path = tmp_path / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, *args: str) -> None:
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *duban_command(),
                "run",
                *args,
                cwd=self.tmp_path,
                env=self.env,
                stdout=log,
                stderr=log,
            )

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), 30)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def environment(srv: LocalBotAPI, db_path: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a `duban run` against the fake server."""
    return clean_env(
        DUBAN_TELEGRAM_TOKEN=TOKEN,
        DUBAN_TELEGRAM_BASE_URL=srv.base_url,
        DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{db_path}",
        DUBAN_TELEGRAM_MAX_MESSAGES_PER_SECOND=str(LIMIT),
        **extra,
    )


async def count_rows(db: Database, *where: Any) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(select(func.count()).select_from(m.Outbox).where(*where)) or 0
        )


async def eventually(check: Any, limit: float, what: str, bot: Bot | None = None) -> None:
    """Poll an async predicate; on timeout fail with the bot's log."""
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            tail = bot.log[-3000:] if bot is not None else ""
            raise AssertionError(f"{what} not reached within {limit} s\n{tail}")
        await asyncio.sleep(0.1)


def send_rate(srv: LocalBotAPI) -> tuple[int, float, float]:
    """Return (accepted sends, seconds from first to last, sends per second)."""
    stamps = [r.at for r in srv.requests if r.method.lower() == "sendmessage" and r.ok]
    if len(stamps) < 2:
        return len(stamps), 0.0, 0.0
    seconds = stamps[-1] - stamps[0]
    return len(stamps), seconds, (len(stamps) - 1) / seconds


async def test_a_thousand_nudges_to_a_thousand_contacts(tmp_path: Path) -> None:
    db_path = tmp_path / "duban.db"
    async with LocalBotAPI(token=TOKEN) as srv:
        users = [srv.add_user(first_name=f"联络员{i}", started=True) for i in range(1000)]
        db = Database(f"sqlite+aiosqlite:///{db_path}")
        await upgrade(db)
        now = datetime.now(UTC)
        async with db.write() as session:
            for i, user in enumerate(users):
                session.add(m.Person(telegram_id=user.id, name=user.first_name, created_at=now))
                await enqueue(
                    session,
                    key=f"bench:{i}",
                    chat_id=user.id,
                    kind="nudge",
                    payload=message(f"<b>提醒</b>：第 {i} 号任务今天 18:00 截止。"),
                    now=now,
                )
        bot = Bot(tmp_path, environment(srv, db_path), "run")
        await bot.start()
        try:
            await eventually(lambda: _all_sent(db, 1000), 120, "1,000 messages marked sent", bot)
        finally:
            code = await bot.stop()
            await db.dispose()
        assert code == 0, bot.log[-3000:]
        sent, seconds, rate = send_rate(srv)
        received = Counter(msg["chat"]["id"] for msg in srv.sent)
        figures = {
            "messages": 1000,
            "contacts": 1000,
            "limit_per_second": LIMIT,
            "seconds_first_to_last": round(seconds, 2),
            "rate_per_second": round(rate, 2),
            "share_of_limit": round(rate / LIMIT, 3),
            "count_429": srv.count_429,
            "retry_after_violations": srv.retry_after_violations,
            "lost": 1000 - len(received),
            "duplicates": sum(n - 1 for n in received.values()),
            "command": "pytest tests/test_e2e_delivery.py -k thousand -s",
        }
        print(
            f"\ndelivery: {sent} messages in {seconds:.1f} s = {rate:.2f}/s "
            f"({rate / LIMIT:.1%} of {LIMIT}/s); 429s: {srv.count_429}; "
            f"retry_after violations: {srv.retry_after_violations}"
        )
        save_figures("thousand_contacts", figures)
        assert set(received) == {u.id for u in users}  # nothing lost
        assert all(n == 1 for n in received.values())  # nothing twice
        assert srv.retry_after_violations == 0
        assert TOKEN not in bot.log


async def _all_sent(db: Database, n: int) -> bool:
    return await count_rows(db, m.Outbox.status == "sent") >= n


async def test_a_contact_who_blocked_the_bot(tmp_path: Path) -> None:
    db_path = tmp_path / "duban.db"
    async with LocalBotAPI(token=TOKEN) as srv:
        env = environment(srv, db_path)
        loaded = await asyncio.to_thread(
            run_duban, "plan", "load", str(EXAMPLE), cwd=tmp_path, env=env
        )
        assert loaded.code == 0, loaded.err
        contacts = [srv.add_user(first_name=f"联络员{i}", started=True) for i in range(8)]
        office = srv.add_user(first_name="办公室主任", started=True)
        blocked = contacts[3]
        srv.block(blocked)
        db = Database(f"sqlite+aiosqlite:///{db_path}")
        now = datetime.now(UTC)
        async with db.write() as session:
            campaign = await session.scalar(select(m.Campaign.id))
            units = list(await session.scalars(select(m.Unit.id).order_by(m.Unit.position)))
            people = {}
            for user in [*contacts, office]:
                person = m.Person(telegram_id=user.id, name=user.first_name, created_at=now)
                session.add(person)
                await session.flush()
                people[user.id] = person.id
            for i, user in enumerate(contacts):
                session.add(
                    m.Role(
                        person_id=people[user.id],
                        campaign_id=campaign,
                        role="contact",
                        unit_id=units[i],
                        created_at=now,
                    )
                )
                for n in range(2):  # two messages each: the blocked one's second is not tried
                    await enqueue(
                        session,
                        key=f"nudge:{i}:{n}",
                        chat_id=user.id,
                        person_id=people[user.id],
                        campaign_id=campaign,
                        kind="nudge",
                        payload=message(f"提醒 {n}"),
                        now=now,
                    )
            session.add(
                m.Role(
                    person_id=people[office.id],
                    campaign_id=campaign,
                    role="office",
                    created_at=now,
                )
            )
        bot = Bot(tmp_path, env, "run")
        await bot.start()
        try:

            async def settled() -> bool:
                return await count_rows(db, m.Outbox.status == "pending") == 0 and bool(
                    srv.texts_to(office)
                )

            await eventually(settled, 60, "all delivered and the office told", bot)
            await asyncio.sleep(1.5)  # time enough for a second notice, if one were coming
        finally:
            code = await bot.stop()
        async with db.read() as session:
            person = await session.get(m.Person, people[blocked.id])
            assert person is not None and not person.reachable
        await db.dispose()
        assert code == 0, bot.log[-3000:]
        notices = srv.texts_to(office)
        assert len(notices) == 1
        assert "联络员3" in notices[0] and "屏蔽" in notices[0]
        for user in contacts:
            expected = [] if user is blocked else ["提醒 0", "提醒 1"]
            assert srv.texts_to(user) == expected
        assert len([r for r in srv.rejected if r.response_status == 403]) == 1
        assert srv.retry_after_violations == 0


def deadline_plan(units: int, due: datetime) -> str:
    """Return a plan of `units` units owing one task due at `due`, nudged five minutes before."""
    tz = ZoneInfo("Asia/Shanghai")
    local = due.astimezone(tz)
    tomorrow = local.date() + timedelta(days=1)
    unit_lines = "".join(
        f'[[units]]\nkey = "u{i:03d}"\nname = "第{i:03d}单位"\nkind = "county"\n\n'
        for i in range(units)
    )
    return f"""
[campaign]
key = "deadline-soon"
title = "限时报送"
timezone = "Asia/Shanghai"

[calendar]
country = ""

[reminders]
before = ["5m"]
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
# The phase starts tomorrow, so no announcement joins the burst of nudges.
start = {tomorrow.isoformat()}
end = {(tomorrow + timedelta(days=2)).isoformat()}

  [[phases.tasks]]
  key = "quick-report"
  title = "快报"
  due = {local.isoformat(timespec="seconds")}
  allow_outside_phase = true
  evidence = "any"
"""


async def test_killed_mid_burst_and_restarted(tmp_path: Path) -> None:
    db_path = tmp_path / "duban.db"
    units = 200
    async with LocalBotAPI(token=TOKEN) as srv:
        env = environment(srv, db_path, DUBAN_SCHEDULER_TICK_SECONDS="1")
        # The five-minute nudge falls due a few seconds after the plan is loaded.
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5, seconds=15)
        plan = tmp_path / "plan.toml"
        plan.write_text(deadline_plan(units, due), encoding="utf-8")
        loaded = await asyncio.to_thread(
            run_duban, "plan", "load", str(plan), cwd=tmp_path, env=env
        )
        assert loaded.code == 0, loaded.err
        contacts = [srv.add_user(first_name=f"联络员{i}", started=True) for i in range(units)]
        db = Database(f"sqlite+aiosqlite:///{db_path}")
        await add_unit_contacts(db, contacts)
        first = Bot(tmp_path, env, "first")
        await first.start()
        second = Bot(tmp_path, env, "second")
        try:
            await srv.wait_for(lambda s: len(s.sent) >= 60, timeout=60)
            killed_at = len(srv.sent)
            await first.stop(signal.SIGKILL)
            await asyncio.sleep(0.5)  # requests already on the wire still reach the server
            accepted = len(srv.sent)
            recorded = await count_rows(db, m.Outbox.status == "sent")
            in_flight = accepted - recorded
            planned = await count_rows(db, m.Outbox.kind == "nudge")
            await second.start()

            async def done() -> bool:
                return await count_rows(db, m.Outbox.status == "sent") >= units

            await eventually(done, 60, "every nudge sent after the restart", second)
            code = await second.stop()
        finally:
            for bot in (first, second):
                if bot.proc is not None and bot.proc.returncode is None:
                    await bot.stop(signal.SIGKILL)
        async with db.read() as session:
            rows = list(await session.scalars(select(m.Outbox)))
        await db.dispose()
        assert code == 0, second.log[-3000:]
        assert planned == units and len(rows) == units  # one nudge per unit, planned once
        assert all(r.status == "sent" and r.kind == "nudge" for r in rows)
        # Pair each delivered message with its row by chat and plain text.
        expected = Counter((r.chat_id, parse_html(r.payload["text"]).text) for r in rows)
        delivered = Counter((msg["chat"]["id"], msg["text"]) for msg in srv.sent)
        assert set(delivered) == set(expected)  # every unit has its nudge, nothing else came
        repeats = sum(n - 1 for n in delivered.values())
        assert max(delivered.values()) <= 2
        figures = {
            "units": units,
            "sent_before_kill": killed_at,
            "in_flight_at_kill": in_flight,
            "repeated_after_restart": repeats,
            "count_429": srv.count_429,
            "retry_after_violations": srv.retry_after_violations,
            "command": "pytest tests/test_e2e_delivery.py -k killed -s",
        }
        print(
            f"\nkill -9 mid-burst: {killed_at} sent before the kill, {in_flight} in flight, "
            f"{repeats} repeated after the restart; 429s: {srv.count_429}; "
            f"retry_after violations: {srv.retry_after_violations}"
        )
        save_figures("kill_mid_burst", figures)
        assert repeats <= in_flight
        assert srv.retry_after_violations == 0
