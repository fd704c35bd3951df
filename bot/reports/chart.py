"""The progress chart (/chart): per task and per unit kind, the share accepted, awaiting review,
overdue and not yet due."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.i18n import format_moment, plain
from bot.reports.figures import ChartData, Split, chart_data
from bot.reports.plotting import COLOURS, MUTED, Page, Picture, render

# Beyond this many tasks the picture would pass Telegram's size limit; the rest are counted.
MAX_TASKS = 40
STATES = ("accepted", "submitted", "overdue", "pending")


def segments(split: Split) -> list[tuple[int, str]]:
    """Return a split's counts with their colours, in the order they are drawn."""
    return [
        (split.accepted, COLOURS["accepted"]),
        (split.submitted, COLOURS["submitted"]),
        (split.overdue, COLOURS["overdue"]),
        (split.pending, COLOURS["pending"]),
    ]


def figures(split: Split, lang: str) -> str:
    """Write a split's handed-in count and share (`5/13 · 38%`)."""
    percent = round(100 * split.done / split.total) if split.total else 0
    return plain("reports.chart.figures", lang, done=split.done, total=split.total, percent=percent)


def legend(page: Page, lang: str) -> None:
    """Explain the colours."""
    page.legend([(COLOURS[s], plain(f"reports.legend.{s}", lang)) for s in STATES])


def chart_page(data: ChartData, lang: str) -> Page:
    """Lay the chart out: title, legend, one bar per task, one bar per unit kind."""
    tz = data.timezone
    page = Page()
    page.text(plain("reports.chart.title", lang, campaign=data.title), 17)
    moment = format_moment(data.now, tz, lang, with_year=True)
    page.text(plain("reports.chart.as_of", lang, moment=moment), 11, colour=MUTED)
    legend(page, lang)
    page.rule()
    page.text(plain("reports.chart.by_task", lang), 14)
    if not data.tasks:
        page.text(plain("reports.chart.no_tasks", lang), 11, colour=MUTED)
    for task in data.tasks[:MAX_TASKS]:
        page.line(task.title, figures(task.split, lang), 12)
        due = format_moment(task.due_at, tz, lang)
        page.text(
            plain("reports.chart.task_due", lang, phase=task.phase, due=due), 9.5, colour=MUTED
        )
        page.bar(segments(task.split))
    if len(data.tasks) > MAX_TASKS:
        more = len(data.tasks) - MAX_TASKS
        page.text(plain("reports.chart.more_tasks", lang, count=more), 10, colour=MUTED)
    if data.kinds:
        page.rule()
        page.text(plain("reports.chart.by_kind", lang), 14)
        for kind in data.kinds:
            page.line(kind.name, figures(kind.split, lang), 12)
            page.bar(segments(kind.split))
    return page


def draw_chart(data: ChartData, lang: str) -> Picture:
    """Draw the progress chart."""
    return render(chart_page(data, lang))


async def render_chart(
    session: AsyncSession, campaign: m.Campaign, now: datetime, lang: str
) -> bytes:
    """Return the progress chart of a campaign at `now` as PNG bytes."""
    data = await chart_data(session, campaign, now)
    # Drawing takes a few hundred milliseconds: off the event loop, so replies keep flowing.
    picture = await asyncio.to_thread(draw_chart, data, lang)
    return picture.png
