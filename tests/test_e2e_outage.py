"""`duban run` on PostgreSQL while the database server restarts in the middle of a burst.

The leader's lock connection dies with the server, the pool's connections too, and a contact
presses a nudge's button during the outage. Afterwards the same process is still running, has
led again, every unit has its nudge, and the contact's submission goes through.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.db import models as m
from bot.db.engine import Database
from sandbox.botapi import Faults, LocalBotAPI, parse_html
from tests.cli import clean_env, run_duban
from tests.delivery_world import add_unit_contacts
from tests.reliability import record
from tests.test_e2e_delivery import Bot, deadline_plan, eventually
from tests.test_e2e_failover import pg_url  # noqa: F401  (the fixture)
from tests.test_faults import restart_postgres

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.alone]  # restarts PostgreSQL

TOKEN = "880001:E2E-outage"
UNITS = 150


async def sent_rows(db: Database) -> int:
    """Return how many outbox rows are recorded as sent (0 while the database is away)."""
    try:
        async with db.read() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(m.Outbox).where(m.Outbox.status == "sent")
                )
                or 0
            )
    except Exception:
        return 0


async def test_run_survives_a_database_restart(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    faults = Faults(error_rate=0.05, drop_rate=0.03, seed=11)
    async with LocalBotAPI(token=TOKEN, faults=faults) as srv:
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=pg_url,
            DUBAN_SCHEDULER_TICK_SECONDS="1",
        )
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5, seconds=10)
        plan = tmp_path / "plan.toml"
        plan.write_text(deadline_plan(UNITS, due), encoding="utf-8")
        loaded = await asyncio.to_thread(
            run_duban, "plan", "load", str(plan), cwd=tmp_path, env=env
        )
        assert loaded.code == 0, loaded.err
        contacts = [srv.add_user(first_name=f"联络员{i}", started=True) for i in range(UNITS)]
        db = Database(pg_url)
        await add_unit_contacts(db, contacts)
        bot = Bot(tmp_path, env, "outage")
        await bot.start()
        try:
            await srv.wait_for(lambda s: len(s.sent) >= 40, timeout=60)
            # The first contact presses "submit" on the nudge while the server is down.
            contact = contacts[0]
            await srv.wait_for(lambda s: s.sent_to(contact), timeout=30)
            nudge = srv.sent_to(contact)[0]
            data = nudge["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
            restarting = asyncio.create_task(asyncio.to_thread(restart_postgres))
            await asyncio.sleep(0.3)
            srv.press_button(contact, nudge, data)
            down = await restarting
            await eventually(
                lambda: _at_least(db, UNITS), 90, "every nudge sent after the restart", bot
            )
            # The press was answered: with the prompt (the handler waited for the database)
            # or with "send again"; either way the contact can finish now.
            await srv.wait_for(lambda s: len(s.sent_to(contact)) >= 2, timeout=30)
            if "请发送" not in srv.sent_to(contact)[-1].get("text", ""):
                srv.press_button(contact, nudge, data)
                await srv.wait_for(lambda s: "请发送" in s.sent_to(contact)[-1]["text"], 30)
            srv.send_document(contact, file_name="报告.pdf", content=b"%PDF outage")
            ask = await srv.wait_for(
                lambda s: next((x for x in s.sent_to(contact) if "确认报送" in x["text"]), None),
                timeout=30,
            )
            srv.press_button(contact, ask, "sc:ok")
            await srv.wait_for(lambda _: "已报送" in ask["text"], timeout=30)
            alive = bot.proc is not None and bot.proc.returncode is None
            code = await bot.stop()
        finally:
            if bot.proc is not None and bot.proc.returncode is None:
                await bot.stop(signal.SIGKILL)
        async with db.read() as session:
            rows = list(await session.scalars(select(m.Outbox).where(m.Outbox.kind == "nudge")))
            stored = await session.scalar(select(func.count()).select_from(m.Submission))
        await db.dispose()

    assert alive, bot.log[-3000:]
    assert code == 0, bot.log[-3000:]
    assert stored == 1
    assert len(rows) == UNITS and all(r.status == "sent" for r in rows)
    expected = Counter((r.chat_id, parse_html(r.payload["text"]).text) for r in rows)
    delivered = Counter(
        (msg["chat"]["id"], msg["text"])
        for msg in srv.sent
        if (msg["chat"]["id"], msg.get("text")) in expected
    )
    assert set(delivered) == set(expected)
    repeats = sum(n - 1 for n in delivered.values())
    assert max(delivered.values()) <= 2
    log = bot.log
    assert "leadership lost" in log and log.count("this process is now the leader") >= 2, log[
        -3000:
    ]
    record(
        "faults",
        "PostgreSQL restarted under `duban run` mid-burst (with 5xx and drops)",
        1,
        f"down {down:.1f} s; the same process led again, {UNITS} nudges all sent "
        f"({repeats} repeated), the submission pressed during the outage stored",
    )
    print(f"\nPostgreSQL restart under duban run: down {down:.1f} s, {repeats} repeated")


async def _at_least(db: Database, n: int) -> bool:
    return await sent_rows(db) >= n
