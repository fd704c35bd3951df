"""Edited messages: an edit never repeats an action (SPEC §4.4).

Telegram sends an `edited_message` when someone edits a message they sent. PTB's command
and message handlers would run again on it (a second invite code, a second submission), so
one guard in front of every handler stops edits. A registered person who edits in a private
chat is told, once per edit, that the edit was not acted on; groups hear nothing.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ApplicationHandlerStop, BaseHandler, MessageHandler, filters

from bot.i18n import t
from handlers.common import READING, Context, Ctx, is_group, run_feature


async def _not_acted_on(ctx: Ctx) -> None:
    if ctx.caller is not None:
        ctx.say(t("kinds.edit_ignored", ctx.lang))


async def on_edit(update: Update, context: Context) -> None:
    """Answer an edit in a private chat with one line; never run any other handler on it."""
    if not is_group(update):
        await run_feature(update, context, _not_acted_on, frame=READING)
    raise ApplicationHandlerStop


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the guard that stops every edited message (registered in a group of its own)."""
    return [MessageHandler(filters.UpdateType.EDITED, on_edit)]
