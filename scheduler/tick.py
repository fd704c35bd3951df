"""The repeating tick and the sender of one process, both working only while it leads.

The tick is one repeating job on the Application's JobQueue (APScheduler underneath):
coalesced, one instance at a time, and it checks leadership itself each time it runs. It is
the only job: nothing here is one scheduler job per nudge, and no job is persisted. The tick
reads the database (the planner writes outbox rows); the sender is a long-running task that
drains the outbox (it must react within a second and hold its leases, which a job would not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from telegram import Bot
from telegram.ext import Job, JobQueue

from bot.db.engine import Database
from bot.runtime import Runtime
from scheduler.leader import Leadership
from scheduler.limits import RateLimits
from scheduler.planner import plan_tick
from scheduler.sender import Sender

log = logging.getLogger("duban.scheduler")

PlanTick = Callable[..., Awaitable[Any]]
LIMITS_KEY = "rate_limits"
TICK_JOB = "duban-tick"
# APScheduler's options for the tick: runs missed while one was still going (or while the
# loop was busy) collapse into one; never two at once; a late run still runs (no grace cut).
TICK_JOB_KWARGS: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


def limits_of(runtime: Runtime) -> RateLimits:
    """Return the process's shared flood limits, creating them on first use."""
    limits = runtime.extras.get(LIMITS_KEY)
    if not isinstance(limits, RateLimits):
        limits = RateLimits(runtime.config.telegram.max_messages_per_second)
        runtime.extras[LIMITS_KEY] = limits
    return limits


class Scheduler:
    """Tick every `scheduler.tick_seconds` and keep the sender running, while leading."""

    def __init__(
        self,
        runtime: Runtime,
        bot: Bot,
        leader: Leadership,
        *,
        planner: PlanTick | None = None,
        tick_seconds: float | None = None,
    ) -> None:
        self.runtime = runtime
        self.leader = leader
        self.planner: PlanTick = planner if planner is not None else plan_tick
        self.tick_seconds = tick_seconds or runtime.config.scheduler.tick_seconds
        self.sender = Sender(
            bot,
            runtime.db,
            limits_of(runtime),
            clock=runtime.clock,
            default_language=runtime.default_language,
            ready=runtime.outbox_ready,
            is_leader=lambda: leader.is_leader,
            exclusive=leader.exclusive,
        )
        self.job: Job[Any] | None = None
        self._queue: JobQueue[Any] | None = None
        self._stopping = False
        # Held while a tick runs, so that stop() waits for the one in flight.
        self._ticking = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self.ticks = 0

    @property
    def db(self) -> Database:
        """Return the database the scheduler works on."""
        return self.runtime.db

    async def start(self, job_queue: JobQueue[Any]) -> None:
        """Schedule the tick on a started JobQueue (first run at once) and start the sender."""
        self._stopping = False
        self._queue = job_queue
        self.job = job_queue.run_repeating(
            self._run_tick,
            interval=self.tick_seconds,
            first=0,
            name=TICK_JOB,
            job_kwargs=TICK_JOB_KWARGS,
        )
        self._tasks = [asyncio.create_task(self.sender.run(), name="duban-sender")]

    async def stop(self) -> None:
        """Stop ticking (the tick in flight ends first); let the sender finish; give up leading."""
        self._stopping = True
        if self.job is not None and self._queue is not None:
            # A queue already shut down (the Application stopping first) holds no jobs.
            if self.job in self._queue.jobs():
                self.job.schedule_removal()
            self.job = None
        async with self._ticking:
            pass
        self.sender.stop()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.leader.release()

    async def tick(self) -> bool:
        """Check leadership and, when leading, plan what is due; return whether we lead."""
        self.ticks += 1
        if not await self.leader.check():
            return False
        now: datetime = self.runtime.clock()
        result = await self.planner(
            self.db,
            now,
            default_language=self.runtime.default_language,
            stopping=lambda: self._stopping,
        )
        log.debug("tick at %s planned %s", now.isoformat(), result)
        # New rows may be waiting; the sender need not wait for its next look.
        self.runtime.poke_sender()
        return True

    async def _run_tick(self, _context: object) -> None:
        """The job's callback: one tick; a failure is logged and the next run tries again."""
        if self._stopping:
            return
        async with self._ticking:
            try:
                await self.tick()
            except Exception:
                log.exception("tick failed")
