"""Measure every figure of SPEC §7 on SQLite and PostgreSQL, and print them.

    python -m bench.suite                      # both databases, 10,000 units x 50 tasks
    python -m bench.suite --only sqlite --units 1000

PostgreSQL runs in a throwaway database on the server of DUBAN_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/test), dropped afterwards. Sending is measured by the
end-to-end test (tests/test_e2e_delivery.py); its last figures are printed from
build/docs/figures/delivery.json (else docs/figures/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from bench.planner_bench import NOW, measure, prepare
from bot.db import models as m
from bot.db.engine import Database
from bot.services.campaigns import pick_campaign
from bot.services.lookup import resolve_unit
from bot.services.progress import assignment_views, campaign_progress
from handlers.views import campaign_view, unit_view

ROOT = Path(__file__).parent.parent
PG_DSN = os.environ.get("DUBAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def median_ms(run: Callable[[], Awaitable[object]], times: int) -> float:
    """Return the median wall time of `run` in milliseconds (after one warm-up)."""
    await run()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


async def queries(db: Database) -> None:
    """Print /status for the whole campaign and /unit for one unit, as the handlers do them."""
    async with db.read() as session:
        campaign = await pick_campaign(session)
        unit_names = list(await session.scalars(select(m.Unit.name).limit(5000)))
    name = unit_names[len(unit_names) // 2]

    async def status() -> None:
        async with db.read() as session:
            progress = await campaign_progress(session, campaign, NOW)
            campaign_view(progress, "zh")

    async def unit() -> None:
        async with db.read() as session:
            found, _ = await resolve_unit(session, campaign.id, name)
            assert found is not None
            views = await assignment_views(session, campaign, NOW, unit_ids=[found.id])
            unit_view(found, views, campaign.timezone, NOW, "zh")

    print(f"/status, whole campaign: median {await median_ms(status, 10):.0f} ms (target 300)")
    print(f"/unit, one unit by name: median {await median_ms(unit, 20):.1f} ms (target 20)")


def memory_of_run(url: str) -> None:
    """Start `duban run` on the database against the local Bot API server; print its peak RSS."""
    script = ROOT / "bench" / "run_memory.py"
    out = subprocess.run(
        [sys.executable, str(script), url], capture_output=True, text=True, timeout=300
    )
    print(out.stdout.strip() or out.stderr.strip()[-2000:])


async def one(url: str, units: int, tasks: int, due: int) -> None:
    """Run every measurement on one database."""
    db = Database(url)
    try:
        started = time.perf_counter()
        await prepare(db, units, tasks)
        print(f"plan load + contacts: {time.perf_counter() - started:.1f} s (target 60 on SQLite)")
        await queries(db)
        await measure(db, due)
    finally:
        await db.dispose()
    memory_of_run(url)


async def main() -> None:
    """Run the suite."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--due", type=int, default=10_000)
    args = parser.parse_args()
    print(f"{args.units:,} units x {args.tasks} tasks = {args.units * args.tasks:,} assignments")
    if args.only in (None, "sqlite"):
        print("\n== SQLite")
        with tempfile.TemporaryDirectory() as folder:
            await one(
                f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}", args.units, args.tasks, args.due
            )
    if args.only in (None, "postgres"):
        import asyncpg

        print("\n== PostgreSQL")
        name = f"duban_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(PG_DSN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        try:
            await one(f"{base}/{name}", args.units, args.tasks, args.due)
        finally:
            admin = await asyncpg.connect(PG_DSN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    found = [
        path
        for path in (ROOT / "build/docs/figures/delivery.json", ROOT / "docs/figures/delivery.json")
        if path.exists()
    ]
    if found:
        data = json.loads(found[0].read_text(encoding="utf-8")).get("thousand_contacts", {})
        print(
            f"\nsending (from {data.get('command')}): {data.get('rate_per_second')}/s"
            f" of {data.get('limit_per_second')}/s, 429s {data.get('count_429')},"
            f" lost {data.get('lost')}"
        )


if __name__ == "__main__":
    asyncio.run(main())
