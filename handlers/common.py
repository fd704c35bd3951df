"""Helpers shared by the handlers: the runtime, the caller, the reply language."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.constants import ChatType, ParseMode
from telegram.ext import ContextTypes

from bot.db import models as m
from bot.runtime import Runtime

Context = ContextTypes.DEFAULT_TYPE


def runtime(context: Context) -> Runtime:
    """Return the running bot's config, database and clock."""
    value: Any = context.application.bot_data["runtime"]
    assert isinstance(value, Runtime)
    return value


def is_group(update: Update) -> bool:
    """Return whether the update comes from a group or supergroup."""
    chat = update.effective_chat
    return chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


def language(rt: Runtime, person: m.Person | None) -> str:
    """Return the language to answer a person in (their choice, else the default)."""
    if person is not None and person.language and not person.is_group:
        return person.language
    return rt.default_language


async def reply(update: Update, text: str) -> None:
    """Answer in the chat the update came from, as HTML."""
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, parse_mode=ParseMode.HTML, disable_web_page_preview=True)
