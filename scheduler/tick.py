"""The repeating tick and the sender of one process, both working only while it leads.

Nothing here is one scheduler job per nudge: the tick reads the database (the planner
writes outbox rows), and the sender drains the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from telegram import Bot

from bot.db.engine import Database
from bot.runtime import Runtime
from scheduler.leader import Leadership
from scheduler.limits import RateLimits
from scheduler.planner import plan_tick
from scheduler.sender import Sender

log = logging.getLogger("duban.scheduler")

PlanTick = Callable[..., Awaitable[Any]]
LIMITS_KEY = "rate_limits"


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
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.ticks = 0

    @property
    def db(self) -> Database:
        """Return the database the scheduler works on."""
        return self.runtime.db

    async def start(self) -> None:
        """Start the tick loop and the sender."""
        self._tasks = [
            asyncio.create_task(self._tick_loop(), name="duban-tick"),
            asyncio.create_task(self.sender.run(), name="duban-sender"),
        ]

    async def stop(self) -> None:
        """Stop ticking; let the sender finish what is in flight; give leadership up."""
        self._stop.set()
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
        result = await self.planner(self.db, now, default_language=self.runtime.default_language)
        log.debug("tick at %s planned %s", now.isoformat(), result)
        # New rows may be waiting; the sender need not wait for its next look.
        self.runtime.poke_sender()
        return True

    async def _tick_loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:
                log.exception("tick failed")
            remaining = self.tick_seconds - (time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, remaining))
