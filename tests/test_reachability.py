"""A person's reachability from both directions: Telegram's update and the sender's 403.

Issue 11 case 9: a contact blocks the bot; Telegram sends `my_chat_member` (kicked) at once,
before any nudge fails. Whichever of the update and a 403 arrives first, the office is told
exactly once; an unblock is noted once too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.db import models as m
from bot.db.engine import Database
from bot.services.delivery import Unreachable, claim, record_outcomes
from bot.services.outbox import enqueue, message
from tests.harness import BOT_ID, T0, Harness, User
from tests.reliability import message_kind


@pytest.fixture
async def h(db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(db, T0)
    yield harness
    await harness.close()


def _member(status: str) -> dict[str, Any]:
    bot = {"user": {"id": BOT_ID, "is_bot": True, "first_name": "duban"}, "status": status}
    return {**bot, "until_date": 0} if status == "kicked" else bot


async def _chat_member(h: Harness, user: User, old: str, new: str) -> None:
    await h._feed(
        {
            "my_chat_member": {
                "chat": {"id": user.id, "type": "private", "first_name": user.first_name},
                "from": user.as_dict(),
                "date": int(h.now.timestamp()),
                "old_chat_member": _member(old),
                "new_chat_member": _member(new),
            }
        }
    )


async def _nudge(h: Harness, user: User, key: str) -> None:
    async with h.db.write() as session:
        person = await session.scalar(select(m.Person).where(m.Person.telegram_id == user.id))
        assert person is not None
        await enqueue(
            session,
            key=key,
            chat_id=user.id,
            person_id=person.id,
            kind="nudge",
            payload=message(f"提醒 {key}"),
            now=h.now,
        )


async def _refused_by_telegram(h: Harness, user: User) -> int:
    """Let the sender claim the contact's rows and meet Telegram's 403 for each."""
    rows = [r for r in await claim(h.db, owner="s1", now=h.now, limit=50) if r.chat_id == user.id]
    outcome = Unreachable("blocked", "Forbidden: bot was blocked by the user")
    return await record_outcomes(
        h.db, [(r, outcome) for r in rows], owner="s1", now=h.now, default_language="zh"
    )


async def _notices(h: Harness, office: User) -> list[str]:
    return [
        str(row.payload["text"])
        for row in await h.outbox("notice")
        if row.chat_id == office.id and "联络员" in str(row.payload["text"])
    ]


async def test_blocked_update_first_then_403_tells_the_office_once(h: Harness) -> None:
    office = await h.register("office", name="主任")
    contact = await h.register("contact", "甲县", name="甲县联络员")
    await _nudge(h, contact, "n1")
    # The sender holds a row already (a nudge in flight) when the update arrives.
    in_flight = [r for r in await claim(h.db, owner="s1", now=h.now, limit=50)]
    await _chat_member(h, contact, "member", "kicked")
    [notice] = await _notices(h, office)
    assert "甲县联络员" in notice and "屏蔽" in notice and "甲县总工会" in notice
    # The nudge in flight then meets Telegram's 403: nothing new for the office.
    outcome = Unreachable("blocked", "Forbidden: bot was blocked by the user")
    queued = await record_outcomes(
        h.db,
        [(r, outcome) for r in in_flight if r.chat_id == contact.id],
        owner="s1",
        now=h.now,
        default_language="zh",
    )
    assert queued == 0
    # A second nudge round: the row is never sent (cancelled at claim), the office not told.
    await _nudge(h, contact, "n2")
    assert [
        r for r in await claim(h.db, owner="s1", now=h.now, limit=50) if r.chat_id == contact.id
    ] == []
    assert len(await _notices(h, office)) == 1
    message_kind(
        "my_chat_member (a contact blocks the bot)",
        "contact marked unreachable, queued rows cancelled, office told once (a later 403 adds "
        "nothing)",
    )


async def test_403_first_then_blocked_update_tells_the_office_once(h: Harness) -> None:
    office = await h.register("office", name="主任")
    contact = await h.register("contact", "甲县", name="甲县联络员")
    await _nudge(h, contact, "n1")
    assert await _refused_by_telegram(h, contact) == 1
    await _chat_member(h, contact, "member", "kicked")
    assert len(await _notices(h, office)) == 1
    async with h.db.read() as session:
        actions = list(
            await session.scalars(
                select(m.AuditLog.action).where(m.AuditLog.action.like("person.%reachable"))
            )
        )
    assert actions == ["person.unreachable"]


async def test_unblock_is_noted_once(h: Harness) -> None:
    office = await h.register("office", name="主任")
    contact = await h.register("contact", "甲县", name="甲县联络员")
    await _chat_member(h, contact, "member", "kicked")
    await _chat_member(h, contact, "kicked", "member")
    # Telegram may repeat the update, and the contact writes at once: still one note.
    await _chat_member(h, contact, "kicked", "member")
    [mine] = await h.send(contact, "/mine")
    assert "甲县" in mine
    texts = await _notices(h, office)
    assert len(texts) == 2
    assert "屏蔽" in texts[0] and "又可以接收消息" in texts[1] and "解除" in texts[1]
    async with h.db.read() as session:
        person = await session.scalar(select(m.Person).where(m.Person.telegram_id == contact.id))
        actions = list(
            await session.scalars(
                select(m.AuditLog.action).where(m.AuditLog.action.like("person.%reachable"))
            )
        )
    assert person is not None and person.reachable and person.unreachable_since is None
    assert actions == ["person.unreachable", "person.reachable"]
    message_kind(
        "my_chat_member (a contact unblocks the bot)",
        "contact reachable again, noted once in the audit log and to the office",
    )


async def test_writing_again_after_a_403_reopens_the_chat_once(h: Harness) -> None:
    office = await h.register("office", name="主任")
    contact = await h.register("contact", "甲县", name="甲县联络员")
    await _nudge(h, contact, "n1")
    assert await _refused_by_telegram(h, contact) == 1
    await h.send(contact, "/mine")
    await h.send(contact, "/mine")
    texts = await _notices(h, office)
    assert len(texts) == 2 and "重新向机器人发送了消息" in texts[1]
