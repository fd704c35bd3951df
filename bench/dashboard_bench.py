"""Measure the dashboard's overview: server time and the bytes of a first load.

    python -m bench.dashboard_bench                       # SQLite, 10,000 units x 50 tasks
    python -m bench.dashboard_bench --units 1000 --tasks 20
    python -m bench.dashboard_bench --db postgresql+asyncpg://postgres@127.0.0.1/scratch

The database gets the big plan (bench/bigplan.py) with a contact per unit, an office and a
leader; a third of the assignments are handed in and some accepted. duban's web server runs
with the dashboard on 127.0.0.1; a leader signs in with initData signed for the bench's
token, then the overview is asked for repeatedly. Server time is the server's own
`Server-Timing` figure (the median of the runs); the first load is every byte a browser
with an empty cache fetches for the page (HTML, the ranking it loads, CSS, script,
timeline), as sent (gzip).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy import func, select, update

from bench.planner_bench import NOW, prepare
from bot.config import load_config
from bot.db import models as m
from bot.db.engine import Database
from bot.http import start_http
from dashboard import Dashboard, mount
from tests.webapp import sign_init_data

TOKEN = "424242:BENCH-DASHBOARD"
TARGET_MS = 300
TARGET_KB = 300


async def hand_in(db: Database) -> None:
    """Mark a third of the assignments submitted and a ninth accepted."""
    async with db.write() as session:
        await session.execute(
            update(m.Assignment).where(m.Assignment.id % 3 == 0).values(status="submitted")
        )
        await session.execute(
            update(m.Assignment).where(m.Assignment.id % 9 == 0).values(status="accepted")
        )


async def leader_id(db: Database) -> int:
    """Return the Telegram id of the leader `prepare` made."""
    async with db.read() as session:
        found = await session.scalar(
            select(m.Person.telegram_id)
            .join(m.Role, m.Role.person_id == m.Person.id)
            .where(m.Role.role == "leader")
        )
    assert found is not None
    return int(found)


def _timing(response: aiohttp.ClientResponse) -> float:
    found = re.search(r"dur=([0-9.]+)", response.headers.get("Server-Timing", ""))
    return float(found.group(1)) if found else float("nan")


@dataclass
class Figures:
    """What one measurement found."""

    assignments: int
    server_ms: list[float]
    wall_ms: list[float]
    ranking_ms: list[float]
    html_bytes: int
    asset_bytes: int
    font_bytes: int

    @property
    def first_load_kb(self) -> float:
        """Return the bytes of a first load (page, ranking, CSS, script, timeline) in KB."""
        return (self.html_bytes + self.asset_bytes) / 1024


async def measure(db: Database, runs: int) -> Figures:
    """Start the server with the dashboard, sign a leader in, and time the overview."""
    async with db.read() as session:
        count = await session.scalar(select(func.count()).select_from(m.Assignment))
    config = load_config(env={"DUBAN_HTTP_LISTEN": "127.0.0.1", "DUBAN_HTTP_PORT": "0"})
    board = Dashboard(db=db, token=TOKEN, public_url="http://127.0.0.1", clock=lambda: NOW)
    server = await start_http(config, db, lambda: NOW, mounts=[mount(board)])
    assert server is not None
    base = f"http://127.0.0.1:{server.port}"
    user = {"id": await leader_id(db), "first_name": "leader"}
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar, auto_decompress=False) as client:
            init = sign_init_data(TOKEN, user, NOW)
            async with client.post(f"{base}/dash/auth/webapp", data={"init_data": init}) as r:
                assert r.status == 200, await r.text()
            headers = {"Accept-Encoding": "gzip"}
            server_ms: list[float] = []
            wall_ms: list[float] = []
            html_bytes = 0
            for _ in range(runs + 1):
                started = time.perf_counter()
                async with client.get(f"{base}/dash/", headers=headers) as response:
                    body = await response.read()
                    assert response.status == 200, response.status
                    server_ms.append(_timing(response))
                wall_ms.append((time.perf_counter() - started) * 1000)
                html_bytes = len(body)
            # The first request warms caches (and imports); the median is of the rest.
            server_ms, wall_ms = server_ms[1:], wall_ms[1:]
            ranking_ms: list[float] = []
            part = {**headers, "X-Duban-Fragment": "part"}
            for _ in range(runs + 1):
                async with client.get(f"{base}/dash/ranking", headers=part) as response:
                    ranking_bytes = len(await response.read())
                    ranking_ms.append(_timing(response))
            ranking_ms = ranking_ms[1:]
            assets = ranking_bytes
            for path in ("/dash/static/app.css", "/dash/static/app.js", "/dash/timeline.svg"):
                async with client.get(f"{base}{path}", headers=headers) as response:
                    assets += len(await response.read())
            async with client.get(f"{base}/dash/static/font.otf") as response:
                font = len(await response.read())
    finally:
        await server.stop()
    return Figures(int(count or 0), server_ms, wall_ms, ranking_ms, html_bytes, assets, font)


def report(figures: Figures) -> None:
    """Print the figures."""
    server_ms, wall_ms, ranking_ms = figures.server_ms, figures.wall_ms, figures.ranking_ms
    runs, html_bytes, assets, font = (
        len(server_ms),
        figures.html_bytes,
        figures.asset_bytes,
        figures.font_bytes,
    )
    total_kb = figures.first_load_kb
    print(f"assignments: {figures.assignments:,}")
    print(
        f"overview server time: median {statistics.median(server_ms):.0f} ms, "
        f"max {max(server_ms):.0f} ms over {runs} runs (target ≤ {TARGET_MS} ms); "
        f"wall {statistics.median(wall_ms):.0f} ms"
    )
    print(
        f"first load: {total_kb:.1f} KB as sent (HTML {html_bytes / 1024:.1f} KB, "
        f"ranking, CSS, script, timeline {assets / 1024:.1f} KB) (target ≤ {TARGET_KB} KB)"
    )
    print(
        f"ranking (loaded into the overview after it shows): median "
        f"{statistics.median(ranking_ms):.0f} ms, max {max(ranking_ms):.0f} ms"
    )
    print(
        f"only without a Chinese font of its own, a browser also fetches the packaged font "
        f"once: {font / 1024 / 1024:.1f} MB, cached a week"
    )


async def main() -> None:
    """Build the campaign and measure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--db", help="a scratch database URL (default: SQLite in a temp folder)")
    args = parser.parse_args()
    print(f"{args.units:,} units x {args.tasks} tasks = {args.units * args.tasks:,} assignments")
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        db = Database(url)
        try:
            await prepare(db, args.units, args.tasks)
            await hand_in(db)
            report(await measure(db, args.runs))
        finally:
            await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
