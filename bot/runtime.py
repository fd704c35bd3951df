"""What every handler needs at hand: config, database and the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.config import Config
from bot.db.engine import Database

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Return the real current moment in UTC."""
    return datetime.now(UTC)


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
