"""Measure the reminder planner: a tick with nothing due, and planning 10,000 due assignments.

    python -m bench.planner_bench                      # SQLite in a temporary folder
    python -m bench.planner_bench --db postgresql+asyncpg://postgres@127.0.0.1/bench
                                                       # a scratch database: its schema is dropped

The database gets a campaign of UNITS x TASKS assignments (default 10,000 x 50), one contact
per unit, an office and a leader; the figures are printed, nothing is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select, text, update

from bench.bigplan import big_plan
from bot.db import models as m
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.plan import parse_plan
from bot.services.plan_load import load_plan_into
from scheduler.planner import plan_tick

# The big plan starts on Monday 2026-01-05; this is a Tuesday afternoon in its first phase.
NOW = datetime(2026, 1, 20, 7, 0, tzinfo=UTC)  # 15:00 in Shanghai


async def prepare(db: Database, units: int, tasks: int) -> None:
    """Load the plan and give every unit a contact; the office and a leader too."""
    await upgrade(db)
    started = time.perf_counter()
    plan = parse_plan(big_plan(units, tasks), "bench.toml")
    await load_plan_into(db, plan, now=NOW - timedelta(days=30))
    print(f"loaded {units * tasks:,} assignments in {time.perf_counter() - started:.1f} s")
    async with db.write() as session:
        campaign = await session.scalar(select(m.Campaign.id))
        unit_ids = list(await session.scalars(select(m.Unit.id).order_by(m.Unit.id)))
        people = [
            {"telegram_id": 10_000_000 + i, "name": f"c{i}", "created_at": NOW}
            for i in range(len(unit_ids) + 2)
        ]
        await session.execute(insert(m.Person), people)
        person_ids = list(await session.scalars(select(m.Person.id).order_by(m.Person.id)))
        roles = [
            {"person_id": p, "campaign_id": campaign, "role": "contact", "unit_id": u}
            for p, u in zip(person_ids, unit_ids, strict=False)
        ]
        roles += [
            {"person_id": person_ids[-2], "campaign_id": campaign, "role": "office"},
            {"person_id": person_ids[-1], "campaign_id": campaign, "role": "leader"},
        ]
        await session.execute(insert(m.Role), [{**r, "created_at": NOW} for r in roles])


async def measure(db: Database, due: int) -> dict[str, float]:
    """Print and return the time of a tick with nothing due and of one with `due` due.

    Returns {"idle_ms", "idle_max_ms", "planning_s", "assignments"} (milliseconds, seconds).
    """
    # Steady state: nothing waits before tomorrow, and today's notices went out.
    async with db.write() as session:
        await session.execute(update(m.Assignment).values(next_check_at=NOW + timedelta(days=1)))
    report = await plan_tick(db, NOW, default_language="zh")
    print(f"notices of the day: {report.messages:,} outbox rows")
    times = []
    for minute in range(1, 21):
        started = time.perf_counter()
        report = await plan_tick(db, NOW + timedelta(minutes=minute), default_language="zh")
        times.append(time.perf_counter() - started)
        assert report.messages == 0
    print(
        f"tick with nothing due: median {statistics.median(times) * 1000:.1f} ms,"
        f" max {max(times) * 1000:.1f} ms"
    )

    moment = NOW + timedelta(minutes=30)
    async with db.write() as session:
        # Tasks overdue or due within three days, for as many units as it takes, last looked
        # at three weeks ago: each owes its latest nudge, and the late ones escalations.
        ids = list(
            await session.scalars(
                select(m.Assignment.id)
                .where(m.Assignment.due_at <= moment + timedelta(days=3))
                .order_by(m.Assignment.unit_id, m.Assignment.id)
                .limit(due)
            )
        )
        for i in range(0, len(ids), 5000):
            await session.execute(
                update(m.Assignment)
                .where(m.Assignment.id.in_(ids[i : i + 5000]))
                .values(next_check_at=moment - timedelta(days=21))
            )
    before = await _outbox(db)
    started = time.perf_counter()
    report = await plan_tick(db, moment, default_language="zh")
    elapsed = time.perf_counter() - started
    print(
        f"planning {report.assignments:,} due assignments: {elapsed:.2f} s"
        f" ({report.nudges:,} nudges, {report.escalations:,} escalations,"
        f" {await _outbox(db) - before:,} outbox rows)"
    )
    return {
        "idle_ms": statistics.median(times) * 1000,
        "idle_max_ms": max(times) * 1000,
        "planning_s": elapsed,
        "assignments": report.assignments,
    }


async def _outbox(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(m.Outbox)) or 0)


async def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--due", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        db = Database(url)
        try:
            if db.dialect == "postgresql":
                async with db.write() as session:
                    await session.execute(text("DROP SCHEMA public CASCADE"))
                    await session.execute(text("CREATE SCHEMA public"))
            await prepare(db, args.units, args.tasks)
            await measure(db, args.due)
        finally:
            await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
