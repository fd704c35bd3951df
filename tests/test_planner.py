"""The reminder planner end to end through the database (SQLite and PostgreSQL), clock set."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from bot.db import models as m
from bot.db.engine import Database
from bot.plan import parse_plan
from bot.services.plan_load import load_plan_into
from sandbox.botapi import parse_html, utf16_len
from scheduler.planner import PlanReport, plan_tick

ZONE = ZoneInfo("Asia/Shanghai")

PLAN = """
[campaign]
key = "t"
title = "专项<工作>"
timezone = "Asia/Shanghai"

[reminders]
before = ["3d", "1d"]
on_due = true
overdue_every = "1d"
escalate = [{ after = "1d", to = "head" }, { after = "3d", to = "leaders" }]
window = "09:00-18:00"
workdays_only = true

[digest]
daily = "09:00"
weekly = "mon 09:00"

[[unit_kinds]]
key = "county"
name = "县级工会"

[[units]]
key = "a"
name = "甲县<总>工会"
kind = "county"

[[units]]
key = "b"
name = "乙县总工会"
kind = "county"

[[phases]]
key = "p1"
name = "调查研究"
start = {start}
end = {end}

  [[phases.tasks]]
  key = "report"
  title = "调研报告 & 清单"
  due = {due}
"""


def local(*args: int) -> datetime:
    """Return a Shanghai wall-clock moment as UTC."""
    return datetime(*args, tzinfo=ZONE).astimezone(UTC)  # type: ignore[misc]


async def load(
    db: Database,
    now: datetime,
    *,
    start: str = "2017-04-10",
    end: str = "2017-05-31",
    due: str = "2017-05-10",
    text: str = PLAN,
    **replace: str,
) -> None:
    """Load the test plan (the phase dates and due date substituted)."""
    body = text.replace("{start}", start).replace("{end}", end).replace("{due}", due)
    for old, new in replace.items():
        body = body.replace(old, new)
    await load_plan_into(db, parse_plan(body, "t.toml"), now=now)


async def person(
    db: Database,
    telegram_id: int,
    name: str,
    *roles: tuple[str, str | None],
    language: str | None = None,
    group: bool = False,
) -> int:
    """Create a person (or group) holding roles; return its id."""
    async with db.write() as session:
        campaign = await session.scalar(select(m.Campaign))
        assert campaign is not None
        who = m.Person(
            telegram_id=telegram_id,
            name=name,
            language=language,
            is_group=group,
            reachable=True,
            created_at=campaign.created_at,
        )
        session.add(who)
        await session.flush()
        for role, unit_key in roles:
            unit_id = None
            if unit_key is not None:
                unit_id = await session.scalar(select(m.Unit.id).where(m.Unit.key == unit_key))
            session.add(
                m.Role(
                    person_id=who.id,
                    campaign_id=campaign.id,
                    role=role,
                    unit_id=unit_id,
                    created_at=campaign.created_at,
                )
            )
        return who.id


async def tick(db: Database, now: datetime) -> PlanReport:
    return await plan_tick(db, now, default_language="zh")


async def ticks(db: Database, moments: Iterable[datetime]) -> None:
    for moment in moments:
        await tick(db, moment)


def every(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out = []
    while start <= end:
        out.append(start)
        start += step
    return out


async def rows(db: Database, kind: str | None = None, **where: Any) -> list[m.Outbox]:
    async with db.read() as session:
        query = select(m.Outbox).order_by(m.Outbox.id)
        if kind:
            query = query.where(m.Outbox.kind == kind)
        for name, value in where.items():
            query = query.where(getattr(m.Outbox, name) == value)
        found = list(await session.scalars(query))
    for row in found:
        # Every message the planner writes is HTML that Telegram accepts.
        parse_html(row.payload.get("text") or row.payload["caption"])
    return found


def stage_of(row: m.Outbox) -> str:
    parts = row.key.split(":")
    return parts[2] if parts[2] == "due" else f"{parts[2]}:{parts[3]}"


async def assignment(db: Database, unit_key: str) -> m.Assignment:
    async with db.read() as session:
        found = await session.scalar(
            select(m.Assignment).join(m.Unit).where(m.Unit.key == unit_key)
        )
        assert found is not None
        return found


# -- nudges ---------------------------------------------------------------------------------


async def test_nudge_names_task_unit_due_and_days_left_with_buttons(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    contact = await person(db, 11, "联络员甲", ("contact", "a"))
    await tick(db, local(2017, 4, 1, 9))
    assert await rows(db, "nudge") == []
    # 3 days before Wednesday 5-10 18:00 is Sunday 5-7: it goes out Monday 09:00.
    await tick(db, local(2017, 5, 7, 18))
    assert await rows(db, "nudge") == []
    await tick(db, local(2017, 5, 8, 9))
    [row] = await rows(db, "nudge")
    a = await assignment(db, "a")
    assert row.key == f"nudge:{a.id}:before:3d:{int(a.due_at.timestamp())}:{contact}"
    assert row.person_id == contact and row.chat_id == 11
    assert row.assignment_id == a.id and row.planned_due_at == a.due_at
    text = row.payload["text"]
    assert "调研报告 &amp; 清单" in text and "甲县&lt;总&gt;工会" in text
    assert "5月10日 18:00（周三）" in text and "还剩 2 天" in text
    buttons = row.payload["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["提交", "申请延期", "详情"]
    assert [b["callback_data"] for b in buttons] == [f"sub:{a.id}", f"ext:{a.id}", f"det:{a.id}"]


async def test_each_person_reads_their_own_language(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    await person(db, 11, "zh", ("contact", "a"))
    await person(db, 12, "en", ("contact", "a"), language="en")
    await ticks(db, [local(2017, 4, 1, 9), local(2017, 5, 11, 18)])
    texts = {row.chat_id: row.payload["text"] for row in await rows(db, "nudge")}
    assert "已逾期 1 天" in texts[11]
    assert "1 day(s) late" in texts[12]


async def test_window_and_working_days_across_may_day_2017(db: Database) -> None:
    # Due Wednesday 5-3: "3d" falls on Sunday 4-30 inside the 4-29..5-1 holiday.
    await load(db, local(2017, 4, 1, 9), due="2017-05-03")
    await person(db, 11, "c", ("contact", "a"))
    await ticks(db, every(local(2017, 4, 1, 9), local(2017, 5, 2, 8, 59), timedelta(hours=1)))
    assert await rows(db, "nudge") == []
    await tick(db, local(2017, 5, 2, 9))
    assert [stage_of(r) for r in await rows(db, "nudge")] == ["before:3d"]
    # "1d" is Tuesday 18:00, inside the window (both ends count).
    await ticks(db, every(local(2017, 5, 2, 10), local(2017, 5, 4, 20), timedelta(minutes=30)))
    sent = await rows(db, "nudge")
    assert [stage_of(r) for r in sent] == ["before:3d", "before:1d", "due", "overdue:1"]
    moments = [r.created_at.astimezone(ZONE).replace(tzinfo=None) for r in sent]
    assert moments == [
        datetime(2017, 5, 2, 9),
        datetime(2017, 5, 2, 18),
        datetime(2017, 5, 3, 18),
        datetime(2017, 5, 4, 18),
    ]


async def test_overdue_counts_working_days_across_national_day_2026(db: Database) -> None:
    await load(db, local(2026, 9, 1, 9), start="2026-09-01", end="2026-10-31", due="2026-09-30")
    await person(db, 11, "c", ("contact", "a"))
    await ticks(db, every(local(2026, 9, 30, 17), local(2026, 10, 13, 19), timedelta(hours=1)))
    sent = [r for r in await rows(db, "nudge") if stage_of(r).startswith(("due", "overdue"))]
    days = [r.created_at.astimezone(ZONE).date().isoformat() for r in sent]
    # 10-1..10-7 off; Saturday 10-10 is a make-up working day; Sunday 10-11 is not.
    assert days == [
        "2026-09-30",
        "2026-10-08",
        "2026-10-09",
        "2026-10-10",
        "2026-10-12",
        "2026-10-13",
    ]
    assert [stage_of(r) for r in sent] == [
        "due",
        "overdue:1",
        "overdue:2",
        "overdue:3",
        "overdue:4",
        "overdue:5",
    ]


async def test_catch_up_after_a_three_day_outage(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    head = await person(db, 21, "head", ("head", "a"))
    await person(db, 11, "c", ("contact", "a"))
    await ticks(db, every(local(2017, 5, 9, 9), local(2017, 5, 9, 12), timedelta(hours=1)))
    # Down from 5-9 12:00 to 5-12 12:00: "1d" (5-9 18:00), "due" (5-10 18:00) and "overdue:1"
    # (5-11 18:00) were missed; only the latest goes out, and the head's escalation once.
    report = await tick(db, local(2017, 5, 12, 12))
    assert report.nudges == 1 and report.escalations == 1
    nudges = await rows(db, "nudge")
    assert [stage_of(r) for r in nudges] == ["before:3d", "overdue:1"]
    [escalation] = await rows(db, "escalation")
    assert escalation.person_id == head
    count = len(await rows(db))
    await tick(db, local(2017, 5, 12, 12, 1))
    assert len(await rows(db)) == count
    await tick(db, local(2017, 5, 12, 18))
    assert stage_of((await rows(db, "nudge"))[-1]) == "overdue:2"


async def test_caught_up_late_at_night_waits_for_the_next_opening(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    await person(db, 11, "c", ("contact", "a"))
    await tick(db, local(2017, 5, 11, 17))
    # Down from Thursday 17:00 to Friday 22:00: the latest missed nudge (Friday 18:00) waits
    # for the window to open on Monday, and counts the days late as of then.
    await tick(db, local(2017, 5, 12, 22))
    last = (await rows(db, "nudge"))[-1]
    assert stage_of(last) == "overdue:2"
    assert last.created_at == local(2017, 5, 12, 22)
    assert last.not_before == local(2017, 5, 15, 9)
    assert "已逾期 4 天" in last.payload["text"]
    # A tick just after a stage at the window's end sends it at once.
    await tick(db, local(2017, 5, 15, 18, 0, 40))
    last = (await rows(db, "nudge"))[-1]
    assert stage_of(last) == "overdue:3" and last.not_before == local(2017, 5, 15, 18, 0, 40)


async def test_stop_at_once_when_submitted(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    await person(db, 11, "c", ("contact", "a"))
    await tick(db, local(2017, 5, 8, 9))
    assert len(await rows(db, "nudge")) == 1
    a = await assignment(db, "a")
    async with db.write() as session:
        # As the submission service leaves it, but with a check still pending.
        await session.execute(
            update(m.Assignment)
            .where(m.Assignment.id == a.id)
            .values(status="submitted", next_check_at=local(2017, 5, 8, 10))
        )
    await ticks(db, every(local(2017, 5, 8, 10), local(2017, 5, 20, 18), timedelta(hours=6)))
    assert len(await rows(db, "nudge")) == 1
    assert await rows(db, "escalation") == []
    assert (await assignment(db, "a")).next_check_at is None
    # Returned: nudges resume from the return, without a burst of the missed ones.
    async with db.write() as session:
        await session.execute(
            update(m.Assignment)
            .where(m.Assignment.id == a.id)
            .values(status="returned", next_check_at=local(2017, 5, 22, 10))
        )
    await tick(db, local(2017, 5, 22, 10))
    assert len(await rows(db, "nudge")) == 1
    await tick(db, local(2017, 5, 22, 18))
    assert [stage_of(r) for r in await rows(db, "nudge")][-1] == "overdue:8"


async def test_changed_due_date_plans_afresh(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    await person(db, 11, "c", ("contact", "a"))
    await tick(db, local(2017, 5, 8, 9))
    a = await assignment(db, "a")
    old_due = a.due_at
    new_due = local(2017, 5, 19, 18)
    changed = local(2017, 5, 8, 12)
    # As an approved extension leaves it.
    async with db.write() as session:
        await session.execute(
            update(m.Assignment)
            .where(m.Assignment.id == a.id)
            .values(due_at=new_due, due_set_at=changed, next_check_at=changed)
        )
    await ticks(db, every(changed, local(2017, 5, 19, 18), timedelta(hours=1)))
    sent = await rows(db, "nudge")
    assert [stage_of(r) for r in sent] == ["before:3d", "before:3d", "before:1d", "due"]
    assert sent[0].planned_due_at == old_due
    assert all(r.planned_due_at == new_due for r in sent[1:])
    assert str(int(new_due.timestamp())) in sent[1].key
    # A plan reload to a date whose early stages already passed: those are skipped.
    await load(db, local(2017, 5, 20, 10), due="2017-05-23")
    await ticks(db, every(local(2017, 5, 20, 10), local(2017, 5, 23, 18), timedelta(hours=1)))
    later = [r for r in await rows(db, "nudge") if r.planned_due_at == local(2017, 5, 23, 18)]
    # 3d before Tuesday 5-23 is Saturday 5-20 18:00 -> Monday 09:00, but 5-22 18:00 is "1d".
    assert [stage_of(r) for r in later] == ["before:3d", "before:1d", "due"]


async def test_unit_without_contact_is_skipped_and_listed_in_the_digest(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    await person(db, 11, "c", ("contact", "a"))
    await person(db, 31, "office", ("office", None))
    report = await tick(db, local(2017, 5, 8, 9))
    b = await assignment(db, "b")
    assert b.unit_id in report.unreachable_units
    [digest] = await rows(db, "digest")
    assert "没有可联系联络员的单位</b>（1）：乙县总工会" in digest.payload["text"]


# -- escalations ------------------------------------------------------------------------------


async def test_escalation_order_head_first_then_leaders_and_office(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    head = await person(db, 21, "head a", ("head", "a"))
    office = await person(db, 31, "office", ("office", None))
    group = await person(db, -41, "办公室群", ("office", None), group=True)
    leader = await person(db, 51, "leader", ("leader", None), language="en")
    await ticks(db, every(local(2017, 5, 10, 17), local(2017, 5, 11, 18), timedelta(hours=1)))
    first = await rows(db, "escalation")
    # 1 working day late: unit a's head; unit b has no head, so the office is told.
    assert {r.person_id for r in first} == {head, office, group}
    to_head = next(r for r in first if r.person_id == head)
    assert "甲县&lt;总&gt;工会的「调研报告 &amp; 清单」已逾期 1 天" in to_head.payload["text"]
    assert to_head.assignment_id == (await assignment(db, "a")).id
    to_office = next(r for r in first if r.person_id == office)
    assert "乙县总工会" in to_office.payload["text"] and "甲县" not in to_office.payload["text"]
    # Three working days late (Monday 5-15): leaders and office, one message each for both.
    await ticks(db, every(local(2017, 5, 11, 19), local(2017, 5, 15, 18), timedelta(hours=1)))
    second = (await rows(db, "escalation"))[len(first) :]
    assert sorted(r.person_id for r in second) == sorted([office, group, leader])
    to_leader = next(r for r in second if r.person_id == leader)
    assert "2 unit(s) 5 day(s) late: 甲县&lt;总&gt;工会, 乙县总工会" in to_leader.payload["text"]
    assert to_leader.assignment_id is None


async def test_long_escalation_lists_are_split_under_telegram_limit(db: Database) -> None:
    units = "".join(
        f'\n[[units]]\nkey = "u{i}"\nname = "第{i}号单位&工会🏭{"甲" * 30}"\nkind = "county"\n'
        for i in range(300)
    )
    await load(db, local(2017, 4, 1, 9), **{"[[phases]]": units + "\n[[phases]]"})
    await person(db, 51, "leader", ("leader", None))
    await ticks(db, [local(2017, 4, 1, 9), local(2017, 5, 15, 18)])
    parts = await rows(db, "escalation", person_id=await _id(db, 51))
    assert len(parts) >= 4
    # Valid Telegram HTML, within the limit as Telegram counts (an emoji is two).
    assert all(utf16_len(parse_html(r.payload["text"]).text) <= 4096 for r in parts)
    assert all(utf16_len(r.payload["text"]) <= 4096 for r in parts)
    text = "".join(r.payload["text"] for r in parts)
    assert all(f"第{i}号单位" in text for i in range(300))
    # The digest names the first 30 (甲县, 乙县, then 第0-27号) and counts them all.
    [digest] = await rows(db, "digest")
    assert "第27号单位" in digest.payload["text"] and "第28号单位" not in digest.payload["text"]
    assert "等 302 个" in digest.payload["text"]


async def _id(db: Database, telegram_id: int) -> int:
    async with db.read() as session:
        found = await session.scalar(select(m.Person.id).where(m.Person.telegram_id == telegram_id))
        assert found is not None
        return found


# -- notices ------------------------------------------------------------------------------------


async def test_phase_start_is_announced_once_per_person(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    first = await person(db, 11, "c", ("contact", "a"))
    await tick(db, local(2017, 4, 10, 8))
    assert await rows(db, "announcement") == []
    await tick(db, local(2017, 4, 10, 9))
    [row] = await rows(db, "announcement")
    assert row.person_id == first
    assert "调查研究" in row.payload["text"] and "调研报告 &amp; 清单" in row.payload["text"]
    assert "5月10日 18:00（周三）" in row.payload["text"]
    await tick(db, local(2017, 4, 10, 10))
    assert len(await rows(db, "announcement")) == 1
    # A contact who joins during the phase hears of it at the next tick; nobody twice.
    later = await person(db, 12, "late", ("contact", "b"))
    await tick(db, local(2017, 4, 12, 10))
    assert [r.person_id for r in await rows(db, "announcement")] == [first, later]
    await tick(db, local(2017, 4, 13, 10))
    assert len(await rows(db, "announcement")) == 2


async def test_digest_once_per_working_day(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    office = await person(db, 31, "office", ("office", None))
    leader = await person(db, 51, "leader", ("leader", None))
    await ticks(db, every(local(2017, 5, 5, 8), local(2017, 5, 9, 12), timedelta(minutes=30)))
    digests = await rows(db, "digest")
    # Friday 5-5, Monday 5-8, Tuesday 5-9; not the weekend.
    assert sorted({r.key.split(":")[2] for r in digests}) == [
        "2017-05-05",
        "2017-05-08",
        "2017-05-09",
    ]
    assert len(digests) == 6
    assert {r.person_id for r in digests} == {office, leader}
    assert all(r.created_at.astimezone(ZONE).hour == 9 for r in digests)


async def test_digest_reports_due_today_overdue_and_new_submissions(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    await person(db, 11, "c", ("contact", "a"))
    await person(db, 12, "c", ("contact", "b"))
    await person(db, 31, "office", ("office", None))
    await tick(db, local(2017, 5, 10, 9))
    [today] = await rows(db, "digest")
    assert "调研报告 &amp; 清单（18:00）：未报 2/2" in today.payload["text"]
    a = await assignment(db, "a")
    async with db.write() as session:
        session.add(
            m.Submission(
                assignment_id=a.id,
                version=1,
                kind="text",
                text="x",
                submitted_at=local(2017, 5, 10, 20),
            )
        )
        await session.execute(
            update(m.Assignment).where(m.Assignment.id == a.id).values(status="submitted")
        )
    await tick(db, local(2017, 5, 11, 9))
    text = (await rows(db, "digest"))[-1].payload["text"]
    assert "· 调研报告 &amp; 清单：1 个单位 — 乙县总工会" in text
    assert "· 调研报告 &amp; 清单：甲县&lt;总&gt;工会" in text


async def test_weekly_bulletin_once_per_week(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    await person(db, 51, "leader", ("leader", None))
    await ticks(db, every(local(2017, 5, 14, 8), local(2017, 5, 23, 10), timedelta(hours=1)))
    every_row = await rows(db, "bulletin")
    bulletins = [r for r in every_row if r.payload["method"] == "sendMessage"]
    assert [r.key.split(":")[2] for r in bulletins] == ["2017-W20", "2017-W21"]
    assert [r.created_at.astimezone(ZONE).strftime("%a %H:%M") for r in bulletins] == [
        "Mon 09:00",
        "Mon 09:00",
    ]
    # Each bulletin is followed by its ranking chart, drawn by the sender when it goes out.
    pictures = [r for r in every_row if r.payload["method"] == "sendPhoto"]
    assert [r.key.split(":")[2] for r in pictures] == ["2017-W20", "2017-W21"]
    assert pictures[0].payload["render"]["kind"] == "bulletin"
    text = bulletins[0].payload["text"]
    assert "1. 甲县&lt;总&gt;工会：0/1（0%），逾期 1" in text


async def test_two_ticks_at_the_same_moment_insert_nothing_twice(db: Database) -> None:
    await load(db, local(2017, 4, 1, 9))
    await person(db, 11, "c", ("contact", "a"))
    await person(db, 21, "h", ("head", "a"))
    await person(db, 51, "leader", ("leader", None))
    await person(db, 31, "office", ("office", None))
    moment = local(2017, 5, 15, 18)
    first = await tick(db, local(2017, 4, 10, 9))
    assert first.messages > 0
    for moment in (local(2017, 5, 8, 9), local(2017, 5, 15, 18)):
        report = await tick(db, moment)
        assert report.messages > 0
        count = len(await rows(db))
        again = await tick(db, moment)
        assert again.messages == 0 and again.assignments == 0
        assert len(await rows(db)) == count
    # Even with the bookkeeping reset (a crash between two writes cannot cause that, but a
    # second planner could race), the outbox keys keep every message single.
    async with db.write() as session:
        await session.execute(update(m.Assignment).values(next_check_at=local(2017, 5, 15, 17)))
        await session.execute(m.Setting.__table__.delete())
    await tick(db, moment)
    async with db.read() as session:
        keys = list(await session.scalars(select(m.Outbox.key)))
        total = await session.scalar(select(func.count()).select_from(m.Outbox))
    assert len(set(keys)) == total


async def test_a_stopping_process_ends_its_tick_after_the_batch_in_hand(db: Database) -> None:
    # `duban run` stopping (SIGTERM) mid catch-up: the tick ends after its batch, each batch
    # its own transaction, and the rest waits for the next tick: nothing is lost or doubled.
    await load(db, local(2017, 4, 1, 9))
    await person(db, 11, "c", ("contact", "a"))
    moment = local(2017, 5, 9, 9)
    first = await plan_tick(db, moment, default_language="zh", batch_size=1, stopping=lambda: True)
    assert first.assignments == 1
    rest = await plan_tick(db, moment, default_language="zh")
    assert rest.assignments >= 1
    again = await plan_tick(db, moment, default_language="zh")
    assert again.assignments == 0
    keys = [row.key for row in await rows(db)]
    assert len(keys) == len(set(keys))
