"""Three `duban run` processes on one PostgreSQL database: the leader is killed mid-burst.

Exactly one process plans and sends; after a SIGKILL another takes over within a tick, every
nudge is delivered, and repeats are at most the messages that were in flight at the kill.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select

from bot.db import models as m
from bot.db.engine import Database
from sandbox.botapi import LocalBotAPI, parse_html
from tests.cli import clean_env, run_duban
from tests.conftest import IN_CI, PG_DSN, _pg_url
from tests.delivery_world import add_unit_contacts
from tests.test_e2e_delivery import Bot, deadline_plan, eventually, save_figures

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

TOKEN = "990001:E2E-failover"
UNITS = 200
TICK = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    name = f"duban_e2e_{uuid.uuid4().hex[:10]}"
    try:
        admin = await asyncpg.connect(PG_DSN, timeout=5)
    except Exception as exc:
        if IN_CI:
            raise
        pytest.skip(f"no PostgreSQL server at {PG_DSN}: {exc}")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield _pg_url(name)
    finally:
        admin = await asyncpg.connect(PG_DSN, timeout=5)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_three_processes_leader_killed_mid_burst(tmp_path: Path, pg_url: str) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        base = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=pg_url,
            DUBAN_SCHEDULER_TICK_SECONDS=str(TICK),
            DUBAN_TELEGRAM_MODE="webhook",
            DUBAN_TELEGRAM_WEBHOOK_SECRET_TOKEN="failover-secret",
            DUBAN_HTTP_LISTEN="127.0.0.1",
        )
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5, seconds=20)
        plan = tmp_path / "plan.toml"
        plan.write_text(deadline_plan(UNITS, due), encoding="utf-8")
        loaded = await asyncio.to_thread(
            run_duban, "plan", "load", str(plan), cwd=tmp_path, env=base
        )
        assert loaded.code == 0, loaded.err
        contacts = [srv.add_user(first_name=f"联络员{i}", started=True) for i in range(UNITS)]
        db = Database(pg_url)
        await add_unit_contacts(db, contacts)
        bots = []
        for i in range(3):
            port = free_port()
            env = {
                **base,
                "DUBAN_HTTP_PORT": str(port),
                "DUBAN_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
            }
            bots.append(Bot(tmp_path, env, f"p{i}"))
        try:
            for bot in bots:
                await bot.start()
            await srv.wait_for(lambda s: len(s.sent) >= 60, timeout=90)
            leaders = [b for b in bots if "now the leader" in b.log]
            assert len(leaders) == 1, [b.log[-500:] for b in bots]
            holder = leaders[0]
            killed_at = len(srv.sent)
            await holder.stop(signal.SIGKILL)
            kill_moment = asyncio.get_running_loop().time()
            await asyncio.sleep(0.5)  # requests already on the wire still reach the server
            accepted = len(srv.sent)
            async with db.read() as session:
                recorded = int(
                    await session.scalar(
                        select(func.count()).select_from(m.Outbox).where(m.Outbox.status == "sent")
                    )
                    or 0
                )
            in_flight = accepted - recorded

            async def taken_over() -> bool:
                return any("now the leader" in b.log for b in bots if b is not holder)

            await eventually(taken_over, 30, "another process leads")
            takeover = asyncio.get_running_loop().time() - kill_moment

            async def done() -> bool:
                async with db.read() as session:
                    sent = await session.scalar(
                        select(func.count()).select_from(m.Outbox).where(m.Outbox.status == "sent")
                    )
                return int(sent or 0) >= UNITS

            # Rows leased by the dead leader come back when their lease runs out (30 s).
            await eventually(done, 90, "every nudge sent after the takeover")
        finally:
            codes = []
            for bot in bots:
                if bot.proc is not None and bot.proc.returncode is None:
                    codes.append(await bot.stop())
        async with db.read() as session:
            rows = list(await session.scalars(select(m.Outbox)))
        await db.dispose()
        assert codes and all(code == 0 for code in codes), [b.log[-2000:] for b in bots]
        assert len(rows) == UNITS and all(r.status == "sent" for r in rows)
        expected = {(r.chat_id, parse_html(r.payload["text"]).text) for r in rows}
        delivered = Counter((msg["chat"]["id"], msg["text"]) for msg in srv.sent)
        assert set(delivered) == expected
        repeats = sum(n - 1 for n in delivered.values())
        figures = {
            "processes": 3,
            "units": UNITS,
            "tick_seconds": TICK,
            "sent_before_kill": killed_at,
            "in_flight_at_kill": in_flight,
            "repeated": repeats,
            "takeover_seconds": round(takeover, 2),
            "count_429": srv.count_429,
            "retry_after_violations": srv.retry_after_violations,
            "command": "pytest tests/test_e2e_failover.py -s",
        }
        print(f"\nthree-process failover: {figures}")
        save_figures("three_process_failover", figures)
        assert repeats <= in_flight
        assert srv.retry_after_violations == 0
