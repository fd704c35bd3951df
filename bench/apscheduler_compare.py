"""Compare duban's design with the usual one: one APScheduler job per nudge in a job store.

    python -m bench.apscheduler_compare                 # 200 units x 50 tasks (10,000 assignments)
    python -m bench.apscheduler_compare --units 1000

Each design runs in its own process on the same plan, so that peak memory is its own:
- ours: load the plan into the database, then the first scheduler tick (ready to nudge);
- jobs: the same plan load, then one APScheduler `date` job per nudge (each `before` offset
  and the due moment) in APScheduler's SQLAlchemyJobStore on SQLite, then the scheduler start.
Both are timed again for a restart (a new process becoming ready on the existing data).
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

from bench.bigplan import big_plan
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.domain.policy import DEFAULT_POLICY_JSON, ReminderPolicy
from bot.plan import parse_plan
from bot.services.plan_load import load_plan_into

# The plan lies in the future, so that no job has been missed when the scheduler starts.
NOW = datetime(2036, 1, 7, 1, 0, tzinfo=UTC)
START = date(2036, 1, 7)


def peak_mb() -> float:
    """Return this process's peak resident memory in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def nudge(assignment: int, stage: str) -> None:
    """Stand in for the job's work (never run here: the jobs lie in the future)."""


async def ours(folder: Path, units: int, tasks: int, restart: bool) -> dict[str, float]:
    from scheduler.planner import plan_tick

    db = Database(f"sqlite+aiosqlite:///{folder / 'ours.db'}")
    started = time.perf_counter()
    await upgrade(db)
    if not restart:
        await load_plan_into(
            db, parse_plan(big_plan(units, tasks, start=START), "bench.toml"), now=NOW
        )
    await plan_tick(db, NOW, default_language="zh")
    seconds = time.perf_counter() - started
    await db.dispose()
    return {"seconds": seconds, "peak_mb": peak_mb()}


async def jobs(folder: Path, units: int, tasks: int, restart: bool) -> dict[str, float]:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from sqlalchemy import select

    from bot.db import models as m

    db = Database(f"sqlite+aiosqlite:///{folder / 'jobs-plan.db'}")
    started = time.perf_counter()
    await upgrade(db)
    scheduler = AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{folder / 'jobs.db'}")},
        timezone="UTC",
    )
    if not restart:
        await load_plan_into(
            db, parse_plan(big_plan(units, tasks, start=START), "bench.toml"), now=NOW
        )
        policy = ReminderPolicy.from_json(DEFAULT_POLICY_JSON)
        async with db.read() as session:
            rows = list(await session.execute(select(m.Assignment.id, m.Assignment.due_at)))
        scheduler.start(paused=True)
        for assignment, due in rows:
            moments = [(f"before:{d}", due - d.to_timedelta()) for d in policy.before]
            for stage, moment in [*moments, ("due", due)]:
                scheduler.add_job(
                    nudge,
                    "date",
                    run_date=max(moment, NOW + timedelta(minutes=1)),
                    args=[assignment, stage],
                    id=f"nudge:{assignment}:{stage}",
                    replace_existing=True,
                )
    else:
        scheduler.start(paused=True)
    scheduler.resume()
    seconds = time.perf_counter() - started
    count = len(scheduler.get_jobs()) if restart else 0
    scheduler.shutdown(wait=False)
    await db.dispose()
    return {"seconds": seconds, "peak_mb": peak_mb(), "jobs": count}


def child(design: str, folder: str, units: int, tasks: int, restart: bool) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.apscheduler_compare",
            "--child",
            design,
            "--folder",
            folder,
            "--units",
            str(units),
            "--tasks",
            str(tasks),
            *(["--restart"] if restart else []),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Run both designs and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--child", choices=("ours", "jobs"))
    parser.add_argument("--folder")
    parser.add_argument("--restart", action="store_true")
    args = parser.parse_args()
    if args.child:
        run = ours if args.child == "ours" else jobs
        figures = asyncio.run(run(Path(args.folder), args.units, args.tasks, args.restart))
        print(json.dumps(figures))
        return
    print(f"{args.units:,} units x {args.tasks} tasks = {args.units * args.tasks:,} assignments")
    with tempfile.TemporaryDirectory() as folder:
        results = {}
        for design in ("ours", "jobs"):
            for restart in (False, True):
                results[(design, restart)] = child(design, folder, args.units, args.tasks, restart)
    for restart, label in ((False, "first start (plan to ready)"), (True, "restart")):
        a, b = results[("ours", restart)], results[("jobs", restart)]
        print(
            f"{label}: ours {a['seconds']:.2f} s / {a['peak_mb']:.0f} MB; "
            f"one job per nudge {b['seconds']:.2f} s / {b['peak_mb']:.0f} MB; "
            f"ratio time {b['seconds'] / a['seconds']:.1f}x,"
            f" memory {b['peak_mb'] / a['peak_mb']:.2f}x"
        )
    jobs_count = results[("jobs", True)].get("jobs", 0)
    print(f"jobs in the job store: {jobs_count:,.0f}")


if __name__ == "__main__":
    main()
