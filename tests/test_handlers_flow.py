"""The conversations through the real Application: onboarding, queries, submit, review, extend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.db import models as m
from bot.db.engine import Database
from tests.harness import T0, Harness, texts
from tests.reliability import record


@pytest.fixture
async def h(db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(db, T0)
    yield harness
    await harness.close()


async def assignment(h: Harness, unit_key: str, task_key: str) -> m.Assignment:
    async with h.db.read() as session:
        found = await session.scalar(
            select(m.Assignment)
            .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
            .join(m.Task, m.Task.id == m.Assignment.task_id)
            .where(m.Unit.key == unit_key, m.Task.key == task_key)
        )
    assert found is not None
    return found


async def test_stranger_learns_only_how_to_get_invited(h: Harness) -> None:
    stranger = h.user("路人")
    [answer] = await h.send(stranger, "/start")
    assert "邀请码" in answer and "甲县" not in answer
    for command in ("/mine", "/status", "/unit 甲县", "/nudge 书面调研报告", "/submit"):
        [refusal] = await h.send(stranger, command)
        assert "还没有登记" in refusal, command
    [hint] = await h.send(stranger, "甲县交了吗")
    assert "邀请码" in hint
    [unknown] = await h.send(stranger, "/frobnicate")
    assert "邀请码" in unknown


async def test_invite_codes_refuse_distinctly(h: Harness) -> None:
    code = await h.invite("contact", "甲县")
    first, second = h.user(), h.user()
    assert "登记成功" in (await h.send(first, f"/start {code}"))[0]
    assert "已被使用" in (await h.send(second, f"/start {code}"))[0]
    assert "无效" in (await h.send(second, "/start not-a-real-code"))[0]
    h.now += timedelta(days=8)
    late = await h.invite("contact", "甲县")
    h.now += timedelta(days=8)
    assert "已过期" in (await h.send(second, f"/start {late}"))[0]


async def test_wrong_codes_are_slowed_down(h: Harness) -> None:
    guesser = h.user()
    for _ in range(5):
        assert "无效" in (await h.send(guesser, "/start guess"))[0]
    real = await h.invite("contact", "甲县")
    assert "过多" in (await h.send(guesser, f"/start {real}"))[0]
    h.now += timedelta(hours=1, minutes=1)
    assert "登记成功" in (await h.send(guesser, f"/start {real}"))[0]
    async with h.db.read() as session:
        failed = list(
            await session.scalars(select(m.AuditLog).where(m.AuditLog.action == "invite.failed"))
        )
    assert len(failed) == 5
    record(
        "abuse",
        "invite-code guessing from one account",
        6,
        "refused after 5 wrong codes an hour, each audited; a real code works an hour later",
    )


async def test_submit_review_and_status(h: Harness) -> None:
    contact = await h.register("contact", "甲县", name="甲县联络员")
    office = await h.register("office", name="办公室主任")
    leader = await h.register("leader", name="组长")

    [mine] = await h.send(contact, "/mine")
    assert "甲县总工会" in mine and "书面调研报告" in mine and "5月10日 18:00（周三）" in mine
    assert "剩 2 天" in mine

    [pick] = await h.send(contact, "/submit")
    assert "请选择" in pick
    target = await assignment(h, "county-a", "research-report")
    assert (
        "书面调研报告 · 甲县总工会 · 5月10日 18:00（周三）",
        f"sub:{target.id}",
    ) in h.last_buttons(contact)
    asked = texts(await h.press(contact, f"sub:{target.id}"))
    assert any("请发送《书面调研报告》的文件" in x for x in asked)
    # A text where a file is required is not taken.
    assert "文件" in (await h.send(contact, "这是正文"))[0]
    [confirm] = await h.send_document(contact, "甲县调研报告.pdf")
    assert "甲县调研报告.pdf" in confirm
    done = texts(await h.press(contact, "sc:ok"))
    assert any("已报送（第1版）" in x for x in done)

    [notice] = await h.outbox("review")
    async with h.db.read() as session:
        office_person = await session.scalar(
            select(m.Person).where(m.Person.telegram_id == office.id)
        )
    assert notice.chat_id == office.id and notice.person_id == office_person.id
    assert notice.payload["method"] == "sendDocument"
    assert notice.payload["document"].startswith("FILE-")
    buttons = notice.payload["reply_markup"]["inline_keyboard"][0]
    accept = buttons[0]["callback_data"]
    assert accept.startswith("rev:ok:")

    # Only the office may accept: a forged press by the contact is refused.
    refused = texts(await h.press(contact, accept))
    assert any("只供办公室" in x for x in refused)
    accepted = texts(await h.press(office, accept))
    assert any("已通过" in x for x in accepted)
    assert (await assignment(h, "county-a", "research-report")).status == "accepted"
    # A second press is stale, not a second review.
    assert any("已经处理过" in x for x in texts(await h.press(office, accept)))

    [status] = await h.send(leader, "/status")
    assert "书面调研报告" in status and "已报 1/13" in status
    [free] = await h.send(leader, "甲县")
    assert "甲县总工会" in free and "已通过" in free
    [task] = await h.send(leader, "调研报告谁没交")
    assert "未报送（12）" in task and "乙县总工会" in task


async def test_return_with_reason_and_resubmit(h: Harness) -> None:
    contact = await h.register("contact", "乙县")
    office = await h.register("office")
    target = await assignment(h, "county-b", "research-report")
    await h.press(contact, f"sub:{target.id}")
    await h.send_document(contact, "v1.pdf")
    await h.press(contact, "sc:ok")
    [notice] = await h.outbox("review")
    ret = notice.payload["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    asked = texts(await h.press(office, ret))
    assert any("原因" in x for x in asked)
    [ack] = await h.send(office, "数据不全 <请补充>")
    assert "已退回" in ack
    returned = await assignment(h, "county-b", "research-report")
    assert returned.status == "returned" and returned.next_check_at == h.now
    [told] = await h.outbox("review_result")
    assert told.chat_id == contact.id
    assert "数据不全 &lt;请补充&gt;" in told.payload["text"]
    # Resubmission keeps every version.
    await h.press(contact, f"sub:{target.id}")
    await h.send_document(contact, "v2.pdf")
    done = texts(await h.press(contact, "sc:ok"))
    assert any("第2版" in x for x in done)
    async with h.db.read() as session:
        versions = list(
            await session.scalars(
                select(m.Submission.file_name).where(m.Submission.assignment_id == target.id)
            )
        )
    assert versions == ["v1.pdf", "v2.pdf"]


async def test_extension_request_and_approval(h: Harness) -> None:
    contact = await h.register("contact", "丙市")
    office = await h.register("office")
    target = await assignment(h, "county-c", "research-report")
    await h.press(contact, f"ext:{target.id}")
    assert "看懂" in (await h.send(contact, "下周"))[0]
    [ask_reason] = await h.send(contact, "５月２０日")
    assert "5月20日 18:00（周六）" in ask_reason
    [filed] = await h.send(contact, "基层走访未完成")
    assert "已提交" in filed
    [notice] = await h.outbox("extension")
    approve = notice.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert approve.startswith("exa:")
    assert any("已批准" in x for x in texts(await h.press(office, approve)))
    moved = await assignment(h, "county-c", "research-report")
    assert moved.due_at.astimezone().isoformat() and moved.due_set_at == h.now
    assert moved.next_check_at == h.now
    assert any("已经处理过" in x for x in texts(await h.press(office, approve)))


async def test_nudge_confirm_writes_outbox_once(h: Harness) -> None:
    office = await h.register("office")
    a = await h.register("contact", "甲县")
    b = await h.register("contact", "乙县")
    [confirm] = await h.send(office, "/nudge 书面调研报告")
    assert "13 个单位" in confirm
    data = next(d for _, d in h.last_buttons(office) if d.startswith("nd:") and d != "nd:no")
    await h.press(office, data)
    await h.press(office, data)  # pressed twice: nothing twice
    nudges = await h.outbox("nudge")
    assert sorted(n.chat_id for n in nudges) == sorted([a.id, b.id])  # units with a contact
    assert all(n.assignment_id and n.planned_due_at for n in nudges)
    buttons = [b["callback_data"] for b in nudges[0].payload["reply_markup"]["inline_keyboard"][0]]
    assert [x.split(":")[0] for x in buttons] == ["sub", "ext", "det"]


async def test_every_string_is_escaped(h: Harness) -> None:
    office = await h.register("office", name="<b>主任</b> & co")
    [answer] = await h.send(office, "/people")
    assert "&lt;b&gt;主任&lt;/b&gt; &amp; co" in answer
