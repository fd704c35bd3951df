"""What every handler needs at hand: config, database and the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import Config
from bot.db.engine import Database

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Return the real current moment in UTC."""
    return datetime.now(UTC)


class MovableClock:
    """The product's own clock: the system time plus an offset that only grows.

    The sandbox (`duban run --sandbox`) hands one to the Application, the scheduler, the
    sender and the web server, then moves it forward ("+1 hour", "to the deadline"); every
    part reads the same moved time, so reminders fall due as they would over weeks. Between
    moves it runs at the speed of real time. It never goes back: the outbox's once-only keys
    and the reminders' "next check" would not expect it to.
    """

    def __init__(self, start: datetime | None = None, base: Clock = system_clock) -> None:
        self._base = base
        self._offset = timedelta(0) if start is None else start - base()

    def __call__(self) -> datetime:
        """Return the moved current moment (aware, UTC)."""
        return self._base() + self._offset

    @property
    def offset(self) -> timedelta:
        """Return how far ahead of the base clock this clock runs."""
        return self._offset

    def advance(self, span: timedelta) -> datetime:
        """Move forward by `span` (>= 0) and return the new moment; ValueError if negative."""
        if span < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._offset += span
        return self()

    def move_to(self, moment: datetime) -> datetime:
        """Move forward to an aware `moment` (not earlier than now) and return the new moment."""
        if moment.tzinfo is None:
            raise ValueError("a naive moment: give it a time zone")
        return self.advance(max(timedelta(0), moment - self()))


@dataclass
class Runtime:
    """The running bot's shared parts, kept in `application.bot_data["runtime"]`."""

    config: Config
    db: Database
    clock: Clock = system_clock
    extras: dict[str, Any] = field(default_factory=dict)
    # Set when a handler has written outbox rows, so the sender need not wait for its poll.
    outbox_ready: asyncio.Event = field(default_factory=asyncio.Event)

    def poke_sender(self) -> None:
        """Tell the sender that new outbox rows are waiting."""
        self.outbox_ready.set()

    @property
    def default_language(self) -> str:
        """Return the language of people who have not chosen one."""
        return self.config.ui.default_language
