"""Heavy answers (the Excel export, the chart): one per person at a time, a few overall.

Issue 14 case 6: six exports at once made everyone else wait seconds. A heavy answer is
admitted before any work: a person who already has one running is told to wait for it,
and at most HEAVY_AT_ONCE run at the same time (the others queue for a slot, holding no
database connection). The drawing and the file writing run in threads; the slots bound
how much of the two cores they can take from the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Update
from telegram.ext import CommandHandler

from bot.i18n import t
from handlers.common import READING, Context, Feature, reply, run_feature, runtime

# Heavy answers computed at the same moment by one process.
HEAVY_AT_ONCE = 2
HEAVY_KEY = "heavy"


class HeavyGate:
    """Who has a heavy answer running, and the slots for them."""

    def __init__(self, at_once: int = HEAVY_AT_ONCE) -> None:
        self.slots = asyncio.Semaphore(at_once)
        self.running: set[int] = set()
        self.refused = 0

    def claim(self, user_id: int) -> bool:
        """Return False if the person already has a heavy answer running; else mark it."""
        if user_id in self.running:
            self.refused += 1
            return False
        self.running.add(user_id)
        return True

    def release(self, user_id: int) -> None:
        """The person's heavy answer is done."""
        self.running.discard(user_id)


def heavy_of(bot_data: dict[str, Any]) -> HeavyGate:
    """Return the application's gate, creating it on first use."""
    found = bot_data.get(HEAVY_KEY)
    if not isinstance(found, HeavyGate):
        found = bot_data[HEAVY_KEY] = HeavyGate()
    return found


def heavy_command(name: str, feature: Feature) -> CommandHandler[Context, None]:
    """Return a read-only command whose answer is heavy: admitted through the gate first."""

    async def callback(update: Update, context: Context) -> None:
        user = update.effective_user
        if user is None:
            return
        gate = heavy_of(context.application.bot_data)
        if not gate.claim(user.id):
            await reply(update, t("heavy.busy", runtime(context).default_language))
            return
        try:
            async with gate.slots:
                await run_feature(update, context, feature, frame=READING)
        finally:
            gate.release(user.id)

    return CommandHandler(name, callback)
