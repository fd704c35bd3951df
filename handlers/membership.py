"""Blocked and unblocked chats, the bot removed from groups, and group -> supergroup moves.

The decisions live in `bot.services.reachability`, shared with the sender's 403 path.
"""

from __future__ import annotations

from telegram import ChatMember, Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler, ChatMemberHandler, MessageHandler, filters

from bot.services import reachability
from bot.services.people import find_person
from handlers.common import Context, runtime

GONE = (ChatMember.BANNED, ChatMember.LEFT)


async def on_my_chat_member(update: Update, context: Context) -> None:
    """Mark a person (or group) unreachable when they block the bot, reachable when they return."""
    change = update.my_chat_member
    if change is None:
        return
    rt = runtime(context)
    now = rt.clock()
    gone = change.new_chat_member.status in GONE
    private = change.chat.type == ChatType.PRIVATE
    async with rt.db.write() as session:
        person = await find_person(session, change.chat.id)
        if person is None:
            return
        if gone:
            result = await reachability.became_unreachable(
                session,
                person,
                "blocked" if private else "removed",
                now=now,
                default_language=rt.default_language,
                detail=f"my_chat_member: {change.new_chat_member.status}",
            )
        else:
            result = await reachability.became_reachable(
                session,
                person,
                "unblocked" if private else "added",
                now=now,
                default_language=rt.default_language,
            )
    if result.notices:
        rt.poke_sender()


async def on_migrate(update: Update, context: Context) -> None:
    """Follow a group that became a supergroup: its registration moves to the new chat id."""
    message = update.effective_message
    if message is None or message.migrate_to_chat_id is None:
        return
    rt = runtime(context)
    async with rt.db.write() as session:
        await reachability.chat_migrated(
            session, message.chat.id, message.migrate_to_chat_id, now=rt.clock()
        )


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the membership handlers."""
    return [
        ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.MIGRATE, on_migrate),
    ]
