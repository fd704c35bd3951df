"""Where the sandbox's clock buttons move the product's clock to (pure, given the campaign).

Each move names a target moment from the current one, in the campaign's time zone and with
its working-day calendar (weekends, public holidays, 调休 make-up days):

- ``hour``: one hour later;
- ``workday``: the next working day (after today) at 09:00;
- ``workdays3``: three working days later, at the same time of day;
- ``deadline``: the next deadline still owed by some unit (or None when none is left).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.db import models as m
from bot.db.assignment_states import is_open
from bot.db.engine import Database
from bot.domain.calendar import WorkCalendar
from scheduler.context import load_contexts

MOVES = ("hour", "workday", "workdays3", "deadline")
MORNING = time(9, 0)


def next_workday_morning(now: datetime, tz: str, calendar: WorkCalendar) -> datetime:
    """Return 09:00 local on the first working day after `now`'s local date."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    day = calendar.next_working_day(today + timedelta(days=1))
    return datetime.combine(day, MORNING, tzinfo=zone).astimezone(UTC)


def working_days_later(now: datetime, tz: str, calendar: WorkCalendar, count: int) -> datetime:
    """Return the same local time of day `count` working days after `now`'s local date."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    day = calendar.add_working_days(local.date(), count)
    return datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone).astimezone(UTC)


async def next_deadline(db: Database, now: datetime) -> datetime | None:
    """Return the earliest deadline after `now` that some unit still owes, if any."""
    a = m.Assignment
    async with db.read() as session:
        due = await session.scalar(
            select(func.min(a.due_at)).where(a.due_at > now, a.archived_at.is_(None), is_open())
        )
    return due


async def next_deadline_titles(db: Database, now: datetime) -> tuple[datetime, list[str]] | None:
    """Return the next deadline still owed (as `next_deadline`) and the titles of its tasks."""
    due = await next_deadline(db, now)
    if due is None:
        return None
    a = m.Assignment
    async with db.read() as session:
        titles = await session.scalars(
            select(m.Task.title)
            .join(a, a.task_id == m.Task.id)
            .where(a.due_at == due, a.archived_at.is_(None), is_open())
            .group_by(m.Task.id, m.Task.title, m.Task.position)
            .order_by(m.Task.position)
        )
        return due, list(titles)


async def target(db: Database, move: str, now: datetime) -> datetime | None:
    """Return where `move` takes the clock from `now`; None when there is nowhere to go.

    Raises ValueError for a move not in MOVES. The campaign is the live one (the first, if
    the database holds several); without one, the working-day moves use the calendar of
    no country (weekends only) in UTC.
    """
    if move not in MOVES:
        raise ValueError(f"unknown move {move!r}")
    if move == "hour":
        return now + timedelta(hours=1)
    if move == "deadline":
        return await next_deadline(db, now)
    async with db.read() as session:
        contexts = await load_contexts(session)
    if contexts:
        ctx = contexts[min(contexts)]
        tz, calendar = ctx.timezone, ctx.calendar
    else:
        tz, calendar = "UTC", WorkCalendar(None)
    if move == "workday":
        return next_workday_morning(now, tz, calendar)
    return working_days_later(now, tz, calendar, 3)
