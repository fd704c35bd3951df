"""Conversation state (an open submission, a pending reason) kept in the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m

# An unfinished exchange is forgotten after this long, so a stray text much later is not
# taken as a submission.
TTL = timedelta(hours=2)


async def current(
    session: AsyncSession, person_id: int, chat_id: int, now: datetime
) -> m.Conversation | None:
    """Return the person's open conversation in a chat, if it has not expired."""
    found = await session.scalar(
        select(m.Conversation).where(
            m.Conversation.person_id == person_id, m.Conversation.chat_id == chat_id
        )
    )
    if found is not None and found.expires_at <= now:
        await session.delete(found)
        return None
    return found


async def begin(
    session: AsyncSession,
    person_id: int,
    chat_id: int,
    kind: str,
    data: dict[str, Any],
    now: datetime,
) -> m.Conversation:
    """Open (or replace) the person's conversation in a chat."""
    found = await session.scalar(
        select(m.Conversation).where(
            m.Conversation.person_id == person_id, m.Conversation.chat_id == chat_id
        )
    )
    if found is None:
        found = m.Conversation(person_id=person_id, chat_id=chat_id)
        session.add(found)
    found.kind = kind
    found.data = dict(data)
    found.updated_at = now
    found.expires_at = now + TTL
    await session.flush()
    return found


async def end(session: AsyncSession, person_id: int, chat_id: int) -> None:
    """Close the person's conversation in a chat."""
    await session.execute(
        delete(m.Conversation).where(
            m.Conversation.person_id == person_id, m.Conversation.chat_id == chat_id
        )
    )


async def locked(session: AsyncSession, person_id: int, chat_id: int) -> m.Conversation | None:
    """Return the person's conversation in a chat under a row lock (PostgreSQL).

    For a draft that several messages of one album add to at once: SQLite serialises its
    writes already.
    """
    return await session.scalar(
        select(m.Conversation)
        .where(m.Conversation.person_id == person_id, m.Conversation.chat_id == chat_id)
        .with_for_update()
    )


def keep(found: m.Conversation, data: dict[str, Any], now: datetime) -> None:
    """Store a conversation's new data and keep it open for another TTL from `now`."""
    found.data = dict(data)
    found.updated_at = now
    found.expires_at = now + TTL
