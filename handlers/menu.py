"""The command menu in both languages (setMyCommands), set when the bot starts."""

from __future__ import annotations

from typing import Any

from telegram import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats
from telegram.ext import Application

from bot.i18n import LANGUAGES, t

PRIVATE = (
    "mine",
    "submit",
    "extend",
    "status",
    "unit",
    "task",
    "overdue",
    "nudge",
    "chart",
    "export",
    "calendar",
    "dashboard",
    "invite",
    "people",
    "revoke",
    "reopen",
    "received",
    "assign",
    "notice",
    "report",
    "campaign",
    "lang",
    "help",
)
GROUP = ("status", "unit", "task", "overdue", "notice", "chart", "dashboard", "help")


async def set_commands(
    app: Application[Any, Any, Any, Any, Any, Any], default_language: str
) -> None:
    """Describe the commands in Chinese and English; the default language has no code."""
    for lang in LANGUAGES:
        code = None if lang == default_language else lang
        for scope, names in (
            (BotCommandScopeAllPrivateChats(), PRIVATE),
            (BotCommandScopeAllGroupChats(), GROUP),
        ):
            await app.bot.set_my_commands(
                [BotCommand(name, str(t(f"menu.{name}", lang))) for name in names],
                scope=scope,
                language_code=code,
            )
