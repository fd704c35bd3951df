"""Groups, blocking, supergroup moves, language, long answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.db import models as m
from bot.db.engine import Database
from bot.messages.limits import REPLY_LIMIT, split_text
from sandbox.botapi.htmlcheck import parse_html
from tests.harness import BOT_USERNAME, T0, Harness
from tests.reliability import record

GROUP: dict[str, Any] = {"id": -1001234, "type": "supergroup", "title": "办公室工作群"}


@pytest.fixture
async def h(sqlite_db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(sqlite_db, T0)
    yield harness
    await harness.close()


async def test_unregistered_group_gets_silence_then_registers(h: Harness) -> None:
    office = await h.register("office", name="主任")
    stranger = h.user("群友")
    tries = ["/status", "甲县交了吗", "/unit 甲县", "/export", "/nudge 书面调研报告", "/mine"]
    for text in tries:
        assert await h.send(office, text, chat=GROUP) == [], text
    async with h.db.read() as session:
        # Nothing of the group was stored: it is not a person until registered.
        assert (
            await session.scalar(select(m.Person).where(m.Person.telegram_id == GROUP["id"]))
            is None
        )
    record(
        "abuse",
        "commands and questions in a group that was never registered",
        len(tries),
        "silence; nothing read, nothing stored",
    )
    code = await h.invite("office")
    [registered] = await h.send(office, f"/start@{BOT_USERNAME} {code}", chat=GROUP)
    assert "本群已登记" in registered
    [status] = await h.send(office, "/status", chat=GROUP)
    assert "合计" in status
    # The presser's own role counts, not the group's.
    [refused] = await h.send(stranger, "/status", chat=GROUP)
    assert "还没有登记" in refused
    # Casual chat is ignored; a mention or a reply to the bot is answered.
    assert await h.send(office, "甲县交了吗", chat=GROUP) == []
    mention = f"@{BOT_USERNAME} 甲县交了吗"
    entities = [{"type": "mention", "offset": 0, "length": len(BOT_USERNAME) + 1}]
    [answer] = await h.send(office, mention, chat=GROUP, entities=entities)
    assert "甲县总工会" in answer


async def test_contact_invite_cannot_register_a_group(h: Harness) -> None:
    member = h.user("群友")
    code = await h.invite("contact", "甲县")
    [answer] = await h.send(member, f"/start@{BOT_USERNAME} {code}", chat=GROUP)
    assert "群组只能登记为办公室或领导小组群" in answer


async def test_supergroup_migration_keeps_the_registration(h: Harness) -> None:
    office = await h.register("office")
    old = {"id": -4242, "type": "group", "title": "旧群"}
    code = await h.invite("office")
    await h.send(office, f"/start@{BOT_USERNAME} {code}", chat=old)
    await h._feed({"message": h._message(office, old, migrate_to_chat_id=-1009999)})
    async with h.db.read() as session:
        group = await session.scalar(select(m.Person).where(m.Person.is_group.is_(True)))
    assert group is not None and group.telegram_id == -1009999
    new = {"id": -1009999, "type": "supergroup", "title": "新群"}
    [status] = await h.send(office, "/status", chat=new)
    assert "合计" in status


async def test_blocking_and_unblocking(h: Harness) -> None:
    contact = await h.register("contact", "甲县")

    def member(status: str) -> dict[str, Any]:
        bot = {"user": {"id": 555000, "is_bot": True, "first_name": "duban"}, "status": status}
        return {**bot, "until_date": 0} if status == "kicked" else bot

    def change(old: str, new: str) -> dict[str, Any]:
        return {
            "my_chat_member": {
                "chat": {"id": contact.id, "type": "private", "first_name": "x"},
                "from": contact.as_dict(),
                "date": 0,
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            }
        }

    await h._feed(change("member", "kicked"))
    async with h.db.read() as session:
        person = await session.scalar(select(m.Person).where(m.Person.telegram_id == contact.id))
    assert person is not None and not person.reachable and person.unreachable_since == h.now
    await h._feed(change("kicked", "member"))
    async with h.db.read() as session:
        person = await session.scalar(select(m.Person).where(m.Person.telegram_id == contact.id))
    assert person is not None and person.reachable
    async with h.db.read() as session:
        actions = list(
            await session.scalars(
                select(m.AuditLog.action).where(m.AuditLog.action.like("person.%reachable"))
            )
        )
    assert actions == ["person.unreachable", "person.reachable"]
    # Blocked or not, nothing was refused that should not have been: the contact still works.
    [mine] = await h.send(contact, "/mine")
    assert "甲县" in mine
    record(
        "abuse",
        "a contact blocks the bot, then unblocks it",
        2,
        "unreachable at once, reachable again after, both audited (office told once: see the "
        "delivery test)",
    )


async def test_language_choice(h: Harness) -> None:
    contact = await h.register("contact", "甲县")
    [set_en] = await h.send(contact, "/lang en")
    assert "English" in set_en
    [mine] = await h.send(contact, "/mine")
    assert "due Wed 10 May 18:00" in mine
    [usage] = await h.send(contact, "/lang fr")
    assert "/lang zh" in usage


def test_split_text_keeps_lines_and_limit() -> None:
    lines = [f"<b>单位{i}</b> · 逾期 {i} 天" for i in range(1000)]
    parts = split_text("\n".join(lines))
    assert len(parts) > 1
    assert all(len(p) <= REPLY_LIMIT for p in parts)
    assert "\n".join(parts).split("\n") == lines
    for part in parts:
        parse_html(part)  # every part is valid HTML on its own


async def test_a_long_answer_is_split(sqlite_db: Database) -> None:
    units = "\n".join(
        f'[[units]]\nkey = "u{i}"\nname = "第{i}号单位工会委员会"\nkind = "county"\n'
        for i in range(400)
    )
    text = (
        '[campaign]\nkey = "big"\ntitle = "大型专项"\n[[unit_kinds]]\nkey = "county"\nname = "县"\n'
        + units
        + '[[phases]]\nkey = "p"\nname = "阶段"\nstart = 2017-04-10\nend = 2017-05-10\n'
        + '  [[phases.tasks]]\n  key = "r"\n  title = "报告"\n  due = 2017-05-05\n'
    )
    harness = await Harness.create(sqlite_db, T0, plan_text=text)
    try:
        office = await harness.register("office")
        answers = await harness.send(office, "/overdue")
        assert len(answers) >= 2
        assert sum(a.count("第") for a in answers) == 400
    finally:
        await harness.close()
