"""Work not in the plan (SPEC §4.6) through the real Application: /assign, /notice, /report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.db import models as m
from bot.db.engine import Database
from bot.plan import parse_plan
from bot.reports.ics import unit_calendar
from bot.services.export import build_workbook
from bot.services.plan_load import load_plan_into
from bot.services.progress import campaign_progress
from scheduler.planner import plan_tick
from tests.conftest import EXAMPLE
from tests.harness import T0, Harness, User, texts
from tests.reliability import record


@pytest.fixture
async def h(db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(db, T0)
    yield harness
    await harness.close()


def data_of(h: Harness, user: User, label: str) -> str:
    """Return the callback data of the last message's button whose label contains `label`."""
    for text, data in h.last_buttons(user):
        if label in text:
            return data
    raise AssertionError(f"no button {label!r} in {h.last_buttons(user)}")


async def kind_id(h: Harness, key: str) -> int:
    async with h.db.read() as session:
        found = await session.scalar(select(m.UnitKind.id).where(m.UnitKind.key == key))
    assert found is not None
    return int(found)


async def unit_id(h: Harness, key: str) -> int:
    async with h.db.read() as session:
        found = await session.scalar(select(m.Unit.id).where(m.Unit.key == key))
    assert found is not None
    return int(found)


async def assign(
    h: Harness, office: User, title: str, deadline: str, evidence: str, target: str
) -> list[str]:
    """Walk /assign to the end; `target` is the callback data of the units choice."""
    await h.send(office, "/assign")
    await h.send(office, title)
    await h.send(office, deadline)
    await h.press(office, f"we:{evidence}")
    await h.press(office, target)
    await h.press(office, "wi:skip")
    return texts(await h.press(office, "wc:ok"))


async def test_assign_adds_a_task_that_behaves_like_a_plan_task(h: Harness) -> None:
    office = await h.register("office")
    contact = await h.register("contact", "乙县")
    industry = await h.register("contact", "市教育工会")
    [ask] = await h.send(office, "/assign")
    assert "任务名称" in ask
    [when] = await h.send(office, "检查情况一页纸小结")
    assert "截止时间" in when
    # A deadline that cannot be read, in the past, or after the campaign: one line each.
    [bad] = await h.send(office, "下周吧")
    assert "没看懂截止时间" in bad
    [past] = await h.send(office, "5月1日 17:00")  # no year: the next 5月1日, 2018 — outside
    assert "专项工作期间" in past
    [past2] = await h.send(office, "2017-05-01 17:00")
    assert "已经过去" in past2
    [evidence] = await h.send(office, "3个工作日内")
    assert "需要报送什么" in evidence
    await h.press(office, "we:file")
    assert any("县（市、区）工会" in label for label, _ in h.last_buttons(office))
    county = await kind_id(h, "county")
    said = texts(await h.press(office, f"wu:k:{county}"))
    assert any("任务说明" in s for s in said)
    [summary] = await h.send(office, "一页纸，写清问题和措施。")
    assert "5 个" in summary and "5月11日 18:00" in summary and "调查研究" in summary
    done = texts(await h.press(office, "wc:ok"))
    assert any("已新增任务" in s and "5 个单位" in s for s in done)

    async with h.db.read() as session:
        task = await session.scalar(select(m.Task).where(m.Task.origin == "chat"))
        assert task is not None and task.title == "检查情况一页纸小结"
        assert task.description == "一页纸，写清问题和措施。"
        # 3 working days from Monday 5月8日: Thursday 5月11日 at the campaign's 18:00.
        assert task.due_at == datetime(2017, 5, 11, 10, 0, tzinfo=UTC)
        owed = await session.scalar(
            select(func.count()).select_from(m.Assignment).where(m.Assignment.task_id == task.id)
        )
        assert owed == 5
        audit = await session.scalar(select(m.AuditLog).where(m.AuditLog.action == "task.add"))
        assert audit is not None and audit.details["units"] == 5
    # The county contact was told at once; the industry contact was not.
    announced = await h.outbox("announcement")
    chats = {row.chat_id for row in announced if row.key.startswith("task-added:")}
    assert contact.id in chats and industry.id not in chats
    # /status, /task, /mine and the submit list show it like any task.
    assert any("检查情况一页纸小结" in s for s in await h.send(office, "/status"))
    assert any("乙县总工会" in s for s in await h.send(office, "/task 检查情况一页纸小结"))
    assert any("检查情况一页纸小结" in s for s in await h.send(contact, "/mine"))
    # The unit's calendar and the chart's figures hold it too.
    async with h.db.read() as session:
        campaign = await session.scalar(select(m.Campaign))
        unit = await session.scalar(select(m.Unit).where(m.Unit.key == "county-b"))
        assert campaign is not None and unit is not None
        ics, _ = await unit_calendar(session, campaign, unit, h.now, "zh")
        progress = await campaign_progress(session, campaign, h.now)
    assert "检查情况一页纸小结" in ics.decode()
    assert any(x.title == "检查情况一页纸小结" and x.total == 5 for x in progress.tasks)
    # A plan reload neither archives nor changes it.
    await load_plan_into(
        h.db, parse_plan(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE)), now=h.now
    )
    async with h.db.read() as session:
        again = await session.get(m.Task, task.id)
        assert again is not None and again.archived_at is None
        live = await session.scalar(
            select(func.count())
            .select_from(m.Assignment)
            .where(m.Assignment.task_id == task.id, m.Assignment.archived_at.is_(None))
        )
        assert live == 5
    record("abuse", "/assign: unreadable, past and outside deadlines", 3, "one clear line each")


async def test_assign_with_units_chosen_one_by_one(h: Harness) -> None:
    office = await h.register("office")
    await h.send(office, "/assign 专项小结")
    await h.send(office, "24小时内")
    await h.press(office, "we:any")
    await h.press(office, "wu:pick")
    a, b = await unit_id(h, "county-a"), await unit_id(h, "ent-steel")
    await h.press(office, f"wu:t:{a}")
    await h.press(office, f"wu:t:{b}")
    await h.press(office, f"wu:t:{b}")  # off again
    assert any("完成（1）" in label for label, _ in h.last_buttons(office))
    # A unit of no campaign cannot be ticked.
    assert texts(await h.press(office, "wu:t:999999")) != []
    await h.press(office, "wu:done")
    await h.send_document(office, "说明.pdf")
    said = texts(await h.press(office, "wc:ok"))
    assert any("1 个单位" in s for s in said)
    async with h.db.read() as session:
        task = await session.scalar(select(m.Task).where(m.Task.origin == "chat"))
        assert task is not None and task.instructions_file_name == "说明.pdf"
        assert task.due_at == T0 + timedelta(hours=24)


async def test_a_contact_cannot_assign_or_send_notices(h: Harness) -> None:
    contact = await h.register("contact", "甲县")
    leader = await h.register("leader")
    assert "只供办公室使用" in (await h.send(contact, "/assign 标题"))[0]
    assert "只供办公室和领导小组" in (await h.send(contact, "/notice"))[0]
    assert "只供办公室使用" in (await h.send(leader, "/notice 内容"))[0]
    assert "只供办公室使用" in (await h.send(leader, "/assign"))[0]
    assert "还没有发过通知" in (await h.send(leader, "/notice"))[0]


async def test_notice_receipts_and_remind_again(h: Harness) -> None:
    office = await h.register("office")
    a = await h.register("contact", "甲县")
    b = await h.register("contact", "乙县")
    c = await h.register("contact", "丙市")
    await h.send(office, "/notice 请于周五前完成自查。\n附件见后。")
    county = await kind_id(h, "county")
    await h.press(office, f"wu:k:{county}")
    await h.press(office, "wd:none")
    said = texts(await h.press(office, "wc:ok"))
    assert any("5 个单位" in s for s in said)
    rows = await h.outbox("notice")
    assert {r.chat_id for r in rows} == {a.id, b.id, c.id}
    notice_data = {
        r.chat_id: r.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"] for r in rows
    }
    # 甲县 presses 收到; a second press keeps the first receipt.
    said = texts(await h.press(a, notice_data[a.id]))
    assert any("已确认收到" in s for s in said)
    h.now += timedelta(minutes=1)
    said = texts(await h.press(a, notice_data[a.id]))
    assert any("已于" in s for s in said)
    # 乙县's contact presses 甲县's button (forged): nothing is recorded for either.
    said = texts(await h.press(b, notice_data[a.id]))
    assert not any("已确认收到" in s for s in said)
    async with h.db.read() as session:
        receipts = list(await session.scalars(select(m.NoticeReceipt)))
    got = [r for r in receipts if r.received_at is not None]
    assert len(receipts) == 5 and len(got) == 1
    assert got[0].received_at == T0  # the first press, not the second
    # The office sees who has and who has not.
    listing = await h.send(office, "/notice")
    assert "已收到 1/5" in listing[0]
    nid = got[0].notice_id
    view = "\n".join(texts(await h.press(office, f"nv:{nid}")))
    assert "甲县总工会" in view and "未收到（4）" in view
    before = len(await h.outbox("notice"))
    said = texts(await h.press(office, f"nrm:{nid}"))
    assert any("4 个未收到的单位" in s for s in said)
    reminded = (await h.outbox("notice"))[before:]
    assert {r.chat_id for r in reminded} == {b.id, c.id}  # 丁区 and 戊区 have no contact
    h.now += timedelta(minutes=4)
    said = texts(await h.press(office, f"nrm:{nid}"))
    assert any("分钟后再试" in s for s in said)
    assert len(await h.outbox("notice")) == before + 2
    h.now += timedelta(minutes=2)
    said = texts(await h.press(office, f"nrm:{nid}"))
    assert any("4 个未收到的单位" in s for s in said)
    # A leader sees the receipts but cannot remind.
    leader = await h.register("leader")
    assert "甲县总工会" in "\n".join(texts(await h.press(leader, f"nv:{nid}")))
    assert "只供办公室使用" in "\n".join(texts(await h.press(leader, f"nrm:{nid}")))
    async with h.db.read() as session:
        campaign = await session.scalar(select(m.Campaign))
        assert campaign is not None
        book = await build_workbook(session, campaign, h.now, "zh")
    [sheet] = [s for s in book.sheets if s.title == "通知回执"]
    assert sorted(str(row[4].value) for row in sheet.rows) == ["否"] * 4 + ["是"]
    record("abuse", "a forged 收到 button for another unit", 1, "nothing recorded")
    record("abuse", "remind again within 5 minutes", 1, "refused; nothing sent")


async def test_notice_with_a_file_and_a_deadline(h: Harness) -> None:
    office = await h.register("office")
    a = await h.register("contact", "甲县")
    await h.send(office, "/notice")
    await h.press(office, "wn:new")
    await h.send_document(office, "通知.pdf")
    await h.press(office, "wu:pick")
    assert any("没有选中任何单位" in s for s in texts(await h.press(office, "wu:done")))
    await h.press(office, f"wu:t:{await unit_id(h, 'county-a')}")
    await h.press(office, "wu:done")
    [summary] = await h.send(office, "24小时内")
    assert "1 个" in summary and "通知.pdf" in summary
    await h.press(office, "wc:ok")
    [row] = await h.outbox("notice")
    assert row.chat_id == a.id and row.payload["method"] == "sendDocument"
    async with h.db.read() as session:
        notice = await session.scalar(select(m.Notice))
    assert notice is not None and notice.deadline_at == T0 + timedelta(hours=24)


async def test_report_with_files_accept_and_return(h: Harness) -> None:
    office = await h.register("office")
    contact = await h.register("contact", "甲县")
    assert "请发送情况报告" in (await h.send(contact, "/report"))[0]
    await h.send(contact, "本周发现两起欠薪苗头，已化解。")
    await h.send_photo(contact)
    [got] = await h.send_document(contact, "附件.pdf")
    assert "2 个文件" in got
    said = texts(await h.press(contact, "rs:ok"))
    assert any("已发送给办公室" in s for s in said)
    rows = await h.outbox("review")
    assert [r.payload["method"] for r in rows] == ["sendPhoto", "sendDocument", "sendMessage"]
    assert all(r.chat_id == office.id for r in rows)
    ok = rows[-1].payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    # A contact cannot accept; the office can, once.
    assert "只供办公室使用" in "\n".join(texts(await h.press(contact, ok)))
    assert any("已通过" in s for s in texts(await h.press(office, ok)))
    assert any("已经处理过" in s for s in texts(await h.press(office, ok)))
    # A second report, returned with a reason.
    await h.send(contact, "/report")
    await h.send(contact, "补充说明。")
    await h.press(contact, "rs:ok")
    async with h.db.read() as session:
        second = await session.scalar(select(m.Report).order_by(m.Report.id.desc()).limit(1))
    assert second is not None
    await h.press(office, f"rp:ret:{second.id}")
    await h.send(office, "请附上台账。")
    async with h.db.read() as session:
        reports = list(await session.scalars(select(m.Report).order_by(m.Report.id)))
    assert [r.status for r in reports] == ["accepted", "returned"]
    assert reports[1].reason == "请附上台账。"
    told = [r for r in await h.outbox("review_result") if r.chat_id == contact.id]
    assert any("请附上台账" in r.payload["text"] for r in told)
    # /unit lists the unit's reports.
    view = "\n".join(await h.send(office, "/unit 甲县"))
    assert "情况报告（2）" in view
    # The export has a sheet of reports.
    async with h.db.read() as session:
        campaign = await session.scalar(select(m.Campaign))
        assert campaign is not None
        book = await build_workbook(session, campaign, h.now, "zh")
    [sheet] = [s for s in book.sheets if s.title == "情况报告"]
    assert [(row[0].value, row[5].value) for row in sheet.rows] == [
        ("甲县总工会", "已通过"),
        ("甲县总工会", "已退回"),
    ]
    # Office cannot /report; an empty draft cannot be sent.
    assert "只供各单位" in (await h.send(office, "/report"))[0]
    await h.send(contact, "/report")
    assert any("还没有内容" in s for s in texts(await h.press(contact, "rs:ok")))


async def test_notice_deadline_nudges_units_not_received(h: Harness) -> None:
    office = await h.register("office")
    a = await h.register("contact", "甲县")
    b = await h.register("contact", "乙县")
    await h.send(office, "/notice 请确认收到")
    await h.press(office, "wu:pick")
    for key in ("county-a", "county-b"):
        await h.press(office, f"wu:t:{await unit_id(h, key)}")
    await h.press(office, "wu:done")
    await h.send(office, "5月9日 12:00")  # Tuesday noon
    await h.press(office, "wc:ok")
    [row] = [r for r in await h.outbox("notice") if r.chat_id == a.id]
    await h.press(a, row.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"])

    async def nudged(at: datetime) -> list[int]:
        await plan_tick(h.db, at, default_language="zh")
        return sorted(r.chat_id for r in await h.outbox("nudge") if r.key.startswith("notice-due"))

    due = datetime(2017, 5, 9, 4, 0, tzinfo=UTC)
    assert await nudged(due - timedelta(minutes=1)) == []
    assert await nudged(due) == [b.id]  # 甲县 has received it
    assert await nudged(due + timedelta(minutes=5)) == [b.id]  # once per stage
    # The next working day at noon: the first overdue nudge.
    assert await nudged(due + timedelta(days=1)) == [b.id, b.id]
    texts_b = [r.payload["text"] for r in await h.outbox("nudge") if r.key.startswith("notice-due")]
    assert all("逾期未确认" in x for x in texts_b)
    # Once 乙县 confirms, nothing more is planned.
    row_b = next(r for r in await h.outbox("notice") if r.chat_id == b.id)
    await h.press(b, row_b.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    assert await nudged(due + timedelta(days=2)) == [b.id, b.id]
    async with h.db.read() as session:
        notice = await session.scalar(select(m.Notice))
    assert notice is not None and notice.next_check_at is None


async def test_cancel_at_any_step_keeps_nothing(h: Harness) -> None:
    office = await h.register("office")
    await h.send(office, "/assign 要取消的任务")
    await h.send(office, "3天内")
    await h.press(office, "we:text")
    await h.press(office, "wu:all")
    await h.press(office, "wi:skip")
    said = texts(await h.press(office, "wc:no"))
    assert any("已取消" in s for s in said)
    # The confirm button of the cancelled exchange is stale now.
    assert not any("已新增任务" in s for s in texts(await h.press(office, "wc:ok")))
    async with h.db.read() as session:
        assert await session.scalar(select(m.Task).where(m.Task.origin == "chat")) is None
        assert await session.scalar(select(m.Conversation)) is None
        # Every step was audited, and the cancel.
        actions = list(
            await session.scalars(
                select(m.AuditLog.action)
                .where(m.AuditLog.action.like("assign.%"))
                .order_by(m.AuditLog.id)
            )
        )
        steps = list(
            await session.scalars(
                select(m.AuditLog.details)
                .where(m.AuditLog.action == "assign.step")
                .order_by(m.AuditLog.id)
            )
        )
    assert actions[-1] == "assign.cancel"
    assert [d["step"] for d in steps] == [
        "deadline",
        "evidence",
        "units",
        "instructions",
        "confirm",
    ]
    assert steps[-1]["title"] == "要取消的任务" and steps[-1]["target"] == "all"


async def test_the_digest_counts_new_reports_and_open_notices(h: Harness) -> None:
    office = await h.register("office")
    contact = await h.register("contact", "甲县")
    await h.send(contact, "/report")
    await h.send(contact, "情况一切正常。")
    await h.press(contact, "rs:ok")
    await h.send(office, "/notice 请确认收到")
    await h.press(office, "wu:all")
    await h.press(office, "wd:none")
    await h.press(office, "wc:ok")
    # Tuesday 09:00 in Shanghai: the daily digest.
    await plan_tick(h.db, datetime(2017, 5, 9, 1, 0, tzinfo=UTC), default_language="zh")
    digest = "\n".join(
        r.payload["text"] for r in await h.outbox("digest") if r.chat_id == office.id
    )
    assert "新情况报告：1 份" in digest
    assert "未全部收到的通知" in digest and "请确认收到：已收到 0/13" in digest
