"""Blocked and unblocked chats, the bot removed from groups, and group -> supergroup moves."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy import update as sql_update
from telegram import ChatMember, Update
from telegram.ext import BaseHandler, ChatMemberHandler, MessageHandler, filters

from bot.db import models as m
from bot.services.audit import record
from handlers.common import Context, runtime

log = logging.getLogger(__name__)

GONE = (ChatMember.BANNED, ChatMember.LEFT)


async def on_my_chat_member(update: Update, context: Context) -> None:
    """Mark a person (or group) unreachable when they block the bot, reachable when they return."""
    change = update.my_chat_member
    if change is None:
        return
    rt = runtime(context)
    now = rt.clock()
    reachable = change.new_chat_member.status not in GONE
    async with rt.db.write() as session:
        person = await session.scalar(
            select(m.Person).where(m.Person.telegram_id == change.chat.id)
        )
        if person is None or person.reachable == reachable:
            return
        person.reachable = reachable
        person.unreachable_since = None if reachable else now
        record(
            session,
            at=now,
            actor=f"person:{person.id}",
            action="person.reachable" if reachable else "person.unreachable",
            object_type="person",
            object_id=person.id,
            details={"status": change.new_chat_member.status},
        )


async def on_migrate(update: Update, context: Context) -> None:
    """Follow a group that became a supergroup: its registration moves to the new chat id."""
    message = update.effective_message
    if message is None or message.migrate_to_chat_id is None:
        return
    old, new = message.chat.id, message.migrate_to_chat_id
    rt = runtime(context)
    now = rt.clock()
    async with rt.db.write() as session:
        person = await session.scalar(select(m.Person).where(m.Person.telegram_id == old))
        if person is None:
            return
        clash = await session.scalar(select(m.Person).where(m.Person.telegram_id == new))
        if clash is not None:
            log.warning("supergroup %s already known; keeping the older registration", new)
            return
        person.telegram_id = new
        await session.execute(
            sql_update(m.Outbox)
            .where(m.Outbox.chat_id == old, m.Outbox.status == "pending")
            .values(chat_id=new)
        )
        record(
            session,
            at=now,
            actor="system",
            action="group.migrated",
            object_type="person",
            object_id=person.id,
            details={"from": old, "to": new},
        )


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the membership handlers."""
    return [
        ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.MIGRATE, on_migrate),
    ]
