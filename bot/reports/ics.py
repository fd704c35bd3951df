"""A unit's deadlines as iCalendar: one event per task at the due moment, with a reminder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.assignments import DONE
from bot.domain.text import printable
from bot.i18n import plain
from bot.services.progress import AssignmentView, assignment_views

# Calendars show a deadline as a short event starting at the due moment.
EVENT_LENGTH = timedelta(minutes=30)
# The calendar's own reminder, on top of the bot's nudges: the day before.
ALARM_BEFORE = timedelta(days=1)
# How often a subscribed calendar should fetch the feed again.
REFRESH = timedelta(hours=1)


def _one_line(text: str) -> str:
    """A title line: no control characters (RFC 5545 TEXT), not even a newline."""
    return printable(text, multiline=False)


def event_uid(campaign: m.Campaign, unit_key: str, task_key: str) -> str:
    """Return an event's stable id, so a re-import or a feed refresh updates, never doubles."""
    return f"{campaign.key}.{unit_key}.{task_key}@duban"


def build_calendar(
    campaign: m.Campaign, unit: m.Unit, views: list[AssignmentView], now: datetime, lang: str
) -> bytes:
    """Write one VEVENT per assignment; finished ones stay, marked done and without alarm."""
    # Imported when a calendar is asked for: `duban run` keeps 3 MB less otherwise (issue 13).
    from icalendar import Alarm, Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//duban//duban calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", _one_line(plain("reports.ics.calendar", lang, unit=unit.name)))
    cal.add("x-published-ttl", "PT1H")  # an X- property is text: write the duration out
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    for view in views:
        state = plain("state.overdue" if view.overdue else f"state.{view.status}", lang)
        done = view.status in DONE
        mark = plain("reports.ics.done_mark", lang, state=state) if done else ""
        due = view.due_at.astimezone(UTC)
        event = Event()
        event.add("uid", event_uid(campaign, view.unit_key, view.task_key))
        event.add("dtstamp", now.astimezone(UTC))
        event.add("dtstart", due)
        event.add("dtend", due + EVENT_LENGTH)
        event.add(
            "summary",
            _one_line(
                plain("reports.ics.summary", lang, mark=mark, task=view.task_title, unit=unit.name)
            ),
        )
        event.add(
            "description",
            printable(
                plain(
                    "reports.ics.description",
                    lang,
                    campaign=campaign.title,
                    phase=view.phase_name,
                    unit=unit.name,
                    state=state,
                )
            ),
        )
        event.add("categories", [_one_line(campaign.title)])
        event.add("transp", "TRANSPARENT")
        # A finished task needs no reminder; it stays in the calendar, marked done.
        event.add("status", "CONFIRMED")
        if not done:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add(
                "description",
                _one_line(plain("reports.ics.alarm", lang, task=view.task_title, unit=unit.name)),
            )
            alarm.add("trigger", -ALARM_BEFORE)
            event.add_component(alarm)
        cal.add_component(event)
    data: bytes = cal.to_ical()
    return data


async def unit_calendar(
    session: AsyncSession, campaign: m.Campaign, unit: m.Unit, now: datetime, lang: str
) -> tuple[bytes, int]:
    """Return a unit's deadlines as an .ics file and how many events it holds."""
    views = await assignment_views(session, campaign, now, unit_ids=[unit.id])
    return build_calendar(campaign, unit, views, now, lang), len(views)
