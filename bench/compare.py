"""duban's design against one scheduler job per nudge (what most reminder bots do).

    python -m bench.compare                          # 10,000 / 100,000 / 500,000 assignments
    python -m bench.compare --sizes 2000,10000       # smaller

Three designs, each in its own process on the same plan (so peak memory is its own):
- ours: load the plan into the database, then the first scheduler tick (ready to nudge);
  a restart is a new process's migration check and first tick;
- jobqueue: the same plan load, then one python-telegram-bot `JobQueue.run_once` job per
  nudge (each `before` offset and the due moment) in memory (APScheduler's MemoryJobStore);
  a restart must read the assignments and add every job again;
- jobstore: one APScheduler `date` job per nudge in APScheduler's SQLAlchemyJobStore
  (SQLite); a restart is the scheduler starting on the stored jobs.

One job per nudge costs a job (and, in the job store, a pickled row and a transaction) per
nudge: beyond the sizes given by --measure-jobqueue / --measure-jobstore the figures are
extrapolated linearly from the two largest sizes measured, and marked so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.bigplan import big_plan
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.domain.policy import DEFAULT_POLICY_JSON, ReminderPolicy
from bot.plan import parse_plan
from bot.services.plan_load import load_plan_into

# The plan lies in the future, so that no job has been missed when the scheduler starts.
NOW = datetime(2036, 1, 7, 1, 0, tzinfo=UTC)
START = date(2036, 1, 7)
TASKS = 50


def peak_mb() -> float:
    """Return this process's peak resident memory in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def nudge(*_: Any) -> None:
    """Stand in for the job's work (never run here: the jobs lie in the future)."""


async def _load(folder: Path, assignments: int) -> Database:
    db = Database(f"sqlite+aiosqlite:///{folder / 'plan.db'}")
    await upgrade(db)
    plan = parse_plan(big_plan(assignments // TASKS, TASKS, start=START), "bench.toml")
    await load_plan_into(db, plan, now=NOW)
    return db


async def _moments(db: Database) -> list[tuple[int, str, datetime]]:
    """Return every (assignment, stage, moment) a job-per-nudge design schedules."""
    from sqlalchemy import select

    from bot.db import models as m

    policy = ReminderPolicy.from_json(DEFAULT_POLICY_JSON)
    async with db.read() as session:
        rows = list(await session.execute(select(m.Assignment.id, m.Assignment.due_at)))
    out = []
    floor = NOW + timedelta(minutes=1)
    for assignment, due in rows:
        for offset in policy.before:
            out.append((assignment, f"before:{offset}", max(due - offset.to_timedelta(), floor)))
        out.append((assignment, "due", max(due, floor)))
    return out


async def ours(folder: Path, assignments: int, restart: bool) -> dict[str, float]:
    from scheduler.planner import plan_tick

    started = time.perf_counter()
    if restart:
        db = Database(f"sqlite+aiosqlite:///{folder / 'plan.db'}")
        await upgrade(db)
    else:
        db = await _load(folder, assignments)
    await plan_tick(db, NOW, default_language="zh")
    seconds = time.perf_counter() - started
    await db.dispose()
    return {"seconds": seconds, "peak_mb": peak_mb()}


async def jobqueue(folder: Path, assignments: int, restart: bool) -> dict[str, float]:
    from telegram.ext import ApplicationBuilder

    started = time.perf_counter()
    if restart:
        db = Database(f"sqlite+aiosqlite:///{folder / 'plan.db'}")
    else:
        db = await _load(folder, assignments)
    app = ApplicationBuilder().token("1:BENCH").build()
    queue = app.job_queue
    assert queue is not None
    for assignment, stage, moment in await _moments(db):
        queue.run_once(nudge, moment, data=assignment, name=f"nudge:{assignment}:{stage}")
    await queue.start()
    seconds = time.perf_counter() - started
    jobs = len(queue.jobs())
    await queue.stop(wait=False)
    await db.dispose()
    return {"seconds": seconds, "peak_mb": peak_mb(), "jobs": jobs}


async def jobstore(folder: Path, assignments: int, restart: bool) -> dict[str, float]:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    started = time.perf_counter()
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{folder / 'jobs.db'}")},
        timezone="UTC",
    )
    scheduler.start(paused=True)
    if not restart:
        db = await _load(folder, assignments)
        for assignment, stage, moment in await _moments(db):
            scheduler.add_job(
                nudge,
                "date",
                run_date=moment,
                args=[assignment],
                id=f"nudge:{assignment}:{stage}",
                replace_existing=True,
            )
        await db.dispose()
    scheduler.resume()
    seconds = time.perf_counter() - started
    jobs = len(scheduler.get_jobs())
    scheduler.shutdown(wait=False)
    return {"seconds": seconds, "peak_mb": peak_mb(), "jobs": jobs}


DESIGNS = {"ours": ours, "jobqueue": jobqueue, "jobstore": jobstore}


def child(design: str, folder: str, assignments: int, restart: bool) -> dict[str, float]:
    """Run one design in a fresh process and return its figures."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.compare",
            "--child",
            design,
            "--folder",
            folder,
            "--sizes",
            str(assignments),
            *(["--restart"] if restart else []),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def extrapolate(points: dict[int, float], size: int) -> float:
    """Return the value at `size` on the line through the two largest measured points."""
    (x1, y1), (x2, y2) = sorted(points.items())[-2:]
    slope = max(0.0, (y2 - y1) / (x2 - x1))
    return y2 + slope * (size - x2)


def _ratio(value: float) -> str:
    return f"{value:.0f}×" if value >= 10 else f"{value:.2f}×"


def run(sizes: list[int], measure: dict[str, int]) -> dict[str, dict[str, str]]:
    """Measure or extrapolate every design at every size; return the table's rows."""
    figures: dict[tuple[str, bool], dict[int, dict[str, float]]] = {}
    for design in DESIGNS:
        limit = measure.get(design, max(sizes))
        measured = [s for s in sizes if s <= limit]
        if design != "ours" and len(measured) < 2:
            # Two points at least for the curve: add smaller sizes.
            measured = sorted({limit // 4, limit, *measured})
        for size in measured:
            with tempfile.TemporaryDirectory() as folder:
                for restart in (False, True):
                    result = child(design, folder, size, restart)
                    figures.setdefault((design, restart), {})[size] = result
                    print(f"{design} {size:,} restart={restart}: {result}", flush=True)
    rows: dict[str, dict[str, str]] = {}
    for size in sizes:
        for design, label in (
            ("jobqueue", "python-telegram-bot JobQueue in memory"),
            ("jobstore", "APScheduler SQLAlchemyJobStore"),
        ):
            parts = []
            marked = False
            for restart, what in ((False, "start-up"), (True, "restart")):
                mine = figures[("ours", restart)][size]
                theirs = figures[(design, restart)]
                if size in theirs:
                    seconds, memory = theirs[size]["seconds"], theirs[size]["peak_mb"]
                else:
                    marked = True
                    seconds = extrapolate({k: v["seconds"] for k, v in theirs.items()}, size)
                    memory = extrapolate({k: v["peak_mb"] for k, v in theirs.items()}, size)
                parts.append(
                    f"{what} {seconds:.2f} s vs {mine['seconds']:.2f} s"
                    f" = {_ratio(seconds / mine['seconds'])}"
                )
                if not restart:
                    parts.append(
                        f"memory {memory:.0f} MB vs {mine['peak_mb']:.0f} MB"
                        f" = {_ratio(memory / mine['peak_mb'])}"
                    )
            note = " (extrapolated from the sizes measured)" if marked else ""
            rows[f"{design}:{size}"] = {
                "figure": f"one job per nudge — {label}, {size:,} assignments",
                "target": "a ratio (theirs / ours)",
                "value": "; ".join(parts) + note,
            }
    return rows


def main() -> None:
    """Run the comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,500000")
    parser.add_argument("--measure-jobqueue", type=int, default=100_000)
    # Each job is its own transaction (an fsync on SQLite): 2,000 assignments are 10,000 jobs.
    parser.add_argument("--measure-jobstore", type=int, default=2_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=tuple(DESIGNS))
    parser.add_argument("--folder")
    parser.add_argument("--restart", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        result = asyncio.run(DESIGNS[args.child](Path(args.folder), sizes[0], args.restart))
        print(json.dumps(result))
        return
    rows = run(sizes, {"jobqueue": args.measure_jobqueue, "jobstore": args.measure_jobstore})
    for row in rows.values():
        print(f"{row['figure']}: {row['value']}")
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))


if __name__ == "__main__":
    main()
