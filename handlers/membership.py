"""Blocked and unblocked chats, the bot removed from groups, and group -> supergroup moves.

The decisions live in `bot.services.reachability`, shared with the sender's 403 path.
"""

from __future__ import annotations

from telegram import ChatMember, Update
from telegram.constants import ChatType
from telegram.ext import BaseHandler, ChatMemberHandler, MessageHandler, filters

from bot.services import reachability
from handlers.common import Context, Ctx, Frame, run_feature

GONE = (ChatMember.BANNED, ChatMember.LEFT)


async def chat_member_changed(ctx: Ctx) -> None:
    """Mark a person (or group) unreachable when they block the bot, reachable when they return."""
    change = ctx.update.my_chat_member
    assert change is not None and ctx.person is not None
    private = change.chat.type == ChatType.PRIVATE
    status = change.new_chat_member.status
    if status in GONE:
        reason: reachability.Reason = "blocked" if private else "removed"
        result = await reachability.became_unreachable(
            ctx.session,
            ctx.person,
            reason,
            now=ctx.now,
            default_language=ctx.rt.default_language,
            detail=f"my_chat_member: {status}",
        )
    else:
        via: reachability.Via = "unblocked" if private else "added"
        result = await reachability.became_reachable(
            ctx.session, ctx.person, via, now=ctx.now, default_language=ctx.rt.default_language
        )
    ctx.pushed = result.notices > 0


async def chat_migrated(ctx: Ctx) -> None:
    """Follow a group that became a supergroup: its registration moves to the new chat id."""
    message = ctx.update.effective_message
    assert message is not None and message.migrate_to_chat_id is not None
    await reachability.chat_migrated(
        ctx.session, message.chat.id, message.migrate_to_chat_id, now=ctx.now
    )


# Updates about a chat, not from a person: the chat acts, and only a chat duban knows.
ABOUT_CHAT = Frame(acting_chat=True, known_only=True)


async def on_my_chat_member(update: Update, context: Context) -> None:
    """Run `chat_member_changed` in the frame."""
    if update.my_chat_member is not None:
        await run_feature(update, context, chat_member_changed, frame=ABOUT_CHAT)


async def on_migrate(update: Update, context: Context) -> None:
    """Run `chat_migrated` in the frame."""
    message = update.effective_message
    if message is not None and message.migrate_to_chat_id is not None:
        await run_feature(update, context, chat_migrated, frame=ABOUT_CHAT)


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the membership handlers."""
    return [
        ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.MIGRATE, on_migrate),
    ]
