"""Recurring tasks (SPEC §3 `repeat`): one assignment per occurrence, grouped in the views."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.db import models as m
from bot.db.engine import Database
from bot.domain.calendar import WorkCalendar
from bot.domain.recurrence import Repeat, RepeatError
from bot.plan import parse_plan
from bot.plan.model import PlanInvalid
from bot.reports.figures import chart_data
from bot.services.export import build_workbook
from bot.services.plan_load import load_plan_into
from bot.services.progress import campaign_progress
from handlers.views import campaign_detail_view

SH = ZoneInfo("Asia/Shanghai")

PLAN = """
[campaign]
key = "safety-2026"
title = "安全生产专项整治"
timezone = "Asia/Shanghai"

[calendar]
country = "CN"

[reminders]
workdays_only = {workdays}

[[unit_kinds]]
key = "town"
name = "乡镇"

[[units]]
key = "a"
name = "甲镇"
kind = "town"

[[units]]
key = "b"
name = "乙镇"
kind = "town"

[[phases]]
key = "check"
name = "排查整治"
start = 2026-03-02
end = 2026-03-31

  [[phases.tasks]]
  key = "weekly"
  title = "隐患排查周报"
  repeat = {{ every = "week", on = ["fri"], at = "17:00"{extra} }}

  [[phases.tasks]]
  key = "plan"
  title = "实施方案"
  due = 2026-03-10
"""


def plan(workdays: str = "false", extra: str = "") -> str:
    return PLAN.format(workdays=workdays, extra=extra)


def test_weekly_dates() -> None:
    rule = Repeat.parse("week", ["fri"])
    assert rule.dates(date(2026, 3, 2), date(2026, 3, 31)) == [
        date(2026, 3, 6),
        date(2026, 3, 13),
        date(2026, 3, 20),
        date(2026, 3, 27),
    ]


def test_monthly_31_falls_on_the_last_day() -> None:
    rule = Repeat.parse("month", [10, 31])
    assert rule.dates(date(2027, 1, 1), date(2027, 4, 30)) == [
        date(2027, 1, 10),
        date(2027, 1, 31),
        date(2027, 2, 10),
        date(2027, 2, 28),
        date(2027, 3, 10),
        date(2027, 3, 31),
        date(2027, 4, 10),
        date(2027, 4, 30),
    ]


def test_workdays_move_to_the_working_day_before() -> None:
    calendar = WorkCalendar(country=None, extra_holidays=frozenset({date(2026, 3, 13)}))
    rule = Repeat.parse("month", [14, 20])
    # 3-14 is a Saturday, 3-13 an extra holiday: the working day before is Thursday 3-12.
    # 2026-06-20 is a Saturday: Friday 6-19.
    assert rule.dates(date(2026, 3, 1), date(2026, 6, 30), calendar)[:2] == [
        date(2026, 3, 12),
        date(2026, 3, 20),
    ]
    assert date(2026, 6, 19) in rule.dates(date(2026, 6, 1), date(2026, 6, 30), calendar)


@pytest.mark.parametrize(
    ("every", "on", "message"),
    [
        ("fortnight", ["fri"], "every must be"),
        ("week", ["friday"], "not a weekday"),
        ("month", [32], "not a day of the month"),
        ("week", None, "needs"),
        ("day", ["mon"], 'no "on"'),
    ],
)
def test_bad_rules(every: str, on: object, message: str) -> None:
    with pytest.raises(RepeatError, match=message):
        Repeat.parse(every, on)


def test_plan_expands_occurrences() -> None:
    parsed = parse_plan(plan(), "p.toml")
    keys = [t.key for t in parsed.tasks]
    assert keys == [
        "weekly@2026-03-06",
        "weekly@2026-03-13",
        "weekly@2026-03-20",
        "weekly@2026-03-27",
        "plan",
    ]
    first = parsed.tasks[0]
    assert first.series == "weekly" and first.series_title == "隐患排查周报"
    assert first.title == "隐患排查周报 · 3/6"
    assert first.due == datetime(2026, 3, 6, 17, 0, tzinfo=SH).astimezone(UTC)
    from bot.plan.summary import summarize

    summary = summarize(parsed, "zh")
    assert "周期任务「隐患排查周报」：4 期（3/6, 3/13, 3/20, 3/27），每期单独计算" in summary


def test_plan_workdays_only_moves_a_holiday_occurrence() -> None:
    # 2026-10-02 (Friday) is in the National Day holiday: the occurrence moves before it.
    text = plan("true").replace("2026-03-02", "2026-09-21").replace("2026-03-31", "2026-10-16")
    text = text.replace("2026-03-10", "2026-09-30")
    parsed = parse_plan(text, "p.toml")
    days = [t.occurrence for t in parsed.tasks if t.series]
    assert date(2026, 10, 2) not in days
    # 2026-09-25 is the Mid-Autumn Festival: Thursday 9-24.
    assert days[0] == date(2026, 9, 24)
    assert days[1] < date(2026, 10, 1)
    calendar = WorkCalendar()
    assert all(calendar.is_working_day(d) for d in days if d is not None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("repeat = {", "due = 2026-03-10\n  repeat = {"), "either due or repeat"),
        (('"fri"', '"friday"'), "repeat.on"),
        ((', at = "17:00"', ', at = "25:00"'), "repeat.at"),
        ((', at = "17:00"', ', at = "17:00", until = 2026-04-30'), "outside its phase"),
        ((', at = "17:00"', ', at = "17:00", from = 2026-03-20, until = 2026-03-10'), "before"),
        ((', at = "17:00"', ', at = "17:00", color = 1'), "unknown key"),
    ],
)
def test_plan_check_rejects_bad_repeat(change: tuple[str, str], message: str) -> None:
    text = plan().replace(*change)
    with pytest.raises(PlanInvalid) as info:
        parse_plan(text, "p.toml")
    assert message in str(info.value)
    assert "p.toml:" in str(info.value)


def test_a_task_without_due_or_repeat_is_refused() -> None:
    text = plan().replace("  due = 2026-03-10\n", "")
    with pytest.raises(PlanInvalid, match="missing key"):
        parse_plan(text, "p.toml")


async def test_load_reload_and_group(db: Database) -> None:
    now = datetime(2026, 3, 16, 1, 0, tzinfo=UTC)  # Monday: two Fridays have passed
    await load_plan_into(db, parse_plan(plan(), "p.toml"), now=now)
    async with db.read() as session:
        rows = list(
            await session.execute(
                select(m.Assignment.id, m.Task.key, m.Assignment.due_at)
                .join(m.Task, m.Task.id == m.Assignment.task_id)
                .where(m.Task.series == "weekly")
                .order_by(m.Assignment.id)
            )
        )
    # One assignment per occurrence and unit, each with its own due moment.
    assert len(rows) == 8
    assert {r.due_at for r in rows} == {
        datetime(2026, 3, d, 17, 0, tzinfo=SH).astimezone(UTC) for d in (6, 13, 20, 27)
    }
    before = {r.id for r in rows}

    # Mark one occurrence submitted for one unit.
    async with db.write() as session:
        first = await session.scalar(
            select(m.Assignment)
            .join(m.Task, m.Task.id == m.Assignment.task_id)
            .where(m.Task.key == "weekly@2026-03-06")
            .order_by(m.Assignment.id)
            .limit(1)
        )
        assert first is not None
        first.status = "submitted"

    # A reload that shortens the rule keeps the occurrences that still exist.
    shorter = plan(extra=", until = 2026-03-20")
    report = await load_plan_into(db, parse_plan(shorter, "p.toml"), now=now)
    assert report.archived["tasks"] == 1
    assert report.created["assignments"] == 0
    async with db.read() as session:
        live = list(
            await session.execute(
                select(m.Assignment.id, m.Task.key, m.Assignment.status)
                .join(m.Task, m.Task.id == m.Assignment.task_id)
                .where(m.Task.series == "weekly", m.Assignment.archived_at.is_(None))
                .order_by(m.Assignment.id)
            )
        )
        assert len(live) == 6
        assert {r.id for r in live} <= before
        assert sum(r.status == "submitted" for r in live) == 1

        campaign = await session.scalar(select(m.Campaign))
        assert campaign is not None
        progress = await campaign_progress(session, campaign, now)
        tasks = progress.phases[0].tasks
        assert [x.key for x in tasks] == ["weekly", "plan"]
        weekly = tasks[0]
        assert weekly.title == "隐患排查周报"
        assert len(weekly.occurrences) == 3
        assert (weekly.due_so_far, weekly.total, weekly.submitted, weekly.overdue) == (2, 4, 1, 3)
        assert weekly.next_due == datetime(2026, 3, 20, 17, 0, tzinfo=SH).astimezone(UTC)
        text = campaign_detail_view(progress, "zh")
        assert "共 3 期，已到期 2 期" in text
        assert "3月20日 17:00" in text

        chart = await chart_data(session, campaign, now)
        bars = {x.key: x for x in chart.tasks}
        assert set(bars) == {"weekly", "plan"}
        assert bars["weekly"].split.total == 4 and bars["weekly"].split.done == 1

        book = await build_workbook(session, campaign, now, "zh")
    summary = book.sheets[0]
    titles = [row[1].value for row in summary.rows]
    assert titles[:4] == [
        "隐患排查周报",
        "隐患排查周报 · 3/6",
        "隐患排查周报 · 3/13",
        "隐患排查周报 · 3/20",
    ]


async def test_status_task_and_calendar_in_the_chat(db: Database) -> None:
    from bot.reports.ics import unit_calendar
    from tests.harness import Harness

    now = datetime(2026, 3, 16, 2, 0, tzinfo=UTC)  # Monday 10:00: two Fridays have passed
    h = await Harness.create(db, now, plan_text=plan())
    try:
        office = await h.register("office")
        contact = await h.register("contact", "甲镇")
        status = "\n".join(await h.send(office, "/status"))
        assert "隐患排查周报" in status and "共 4 期，已到期 2 期" in status
        assert "隐患排查周报 · 3/6" not in status  # folded under the task
        task = "\n".join(await h.send(office, "/task 隐患排查周报"))
        # The current occurrence (due 3-20), then the occurrences due so far: 0 of 4 handed in.
        assert "隐患排查周报 · 3/20" in task
        assert "第 3/4 期" in task and "已报 0/4" in task and "逾期 4" in task
        # The contact sees each occurrence as its own deadline.
        mine = "\n".join(await h.send(contact, "/mine"))
        assert mine.count("隐患排查周报") == 4
        async with db.read() as session:
            campaign = await session.scalar(select(m.Campaign))
            unit = await session.scalar(select(m.Unit).where(m.Unit.key == "a"))
            assert campaign is not None and unit is not None
            data, events = await unit_calendar(session, campaign, unit, now, "zh")
        # One event per occurrence (and one for the task with one deadline).
        assert events == 5 and data.decode().count("BEGIN:VEVENT") == 5
        assert "隐患排查周报 · 3/27" in data.decode().replace("\r\n ", "")
    finally:
        await h.close()
