"""The weekly bulletin (通报) as a picture: units ranked by completion, with overdue counts.

The reminder planner attaches it to the weekly bulletin::

    from bot.reports.bulletin import render_bulletin
    png = await render_bulletin(session, campaign, now, lang)   # PNG bytes, ~1080 px wide

It only reads (call it inside the planner's transaction) and draws off the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.i18n import format_moment, plain
from bot.reports.figures import Skipped, UnitStanding, named_ranks, unit_ranking
from bot.reports.plotting import COLOURS, MUTED, Page, Picture, render

# A long ranking is drawn at its best and worst this many, like the text (figures.named_ranks).
BULLETIN_ENDS = 12


@dataclass
class BulletinData:
    """What the bulletin shows, read at one moment."""

    title: str
    timezone: str
    now: datetime
    ranking: list[UnitStanding]


async def bulletin_data(session: AsyncSession, campaign: m.Campaign, now: datetime) -> BulletinData:
    """Read the ranking of a campaign's units at `now`."""
    ranking = await unit_ranking(session, campaign.id, now)
    return BulletinData(campaign.title, campaign.timezone, now, ranking)


def _figures(standing: UnitStanding, lang: str) -> str:
    marks = ""
    if standing.overdue:
        marks += plain("reports.bulletin.mark_overdue", lang, count=standing.overdue)
    if standing.late:
        marks += plain("reports.bulletin.mark_late", lang, count=standing.late)
    return plain(
        "reports.bulletin.figures",
        lang,
        done=standing.done,
        total=standing.total,
        percent=round(100 * standing.rate),
        marks=marks,
    )


def bulletin_page(data: BulletinData, lang: str) -> Page:
    """Lay the bulletin out: title, week, totals, then one bar per unit, the best first."""
    local = data.now.astimezone(ZoneInfo(data.timezone))
    year, week, _ = local.isocalendar()
    page = Page()
    page.text(plain("reports.bulletin.title", lang, campaign=data.title), 17)
    moment = format_moment(data.now, data.timezone, lang)
    page.text(
        plain("reports.bulletin.week", lang, year=year, week=week, moment=moment), 11, colour=MUTED
    )
    ranking = data.ranking
    page.text(
        plain(
            "reports.bulletin.summary",
            lang,
            due=sum(s.due_so_far for s in ranking),
            submitted=sum(s.done for s in ranking if s.due_so_far),
            accepted=sum(s.accepted for s in ranking),
            overdue=sum(s.overdue for s in ranking),
        ),
        12,
    )
    page.legend(
        [
            (COLOURS["accepted"], plain("reports.legend.done", lang)),
            (COLOURS["overdue"], plain("reports.legend.overdue", lang)),
            (COLOURS["pending"], plain("reports.legend.pending", lang)),
        ]
    )
    page.rule()
    if not ranking:
        page.text(plain("reports.bulletin.no_units", lang), 11, colour=MUTED)
    for item in named_ranks(ranking, BULLETIN_ENDS):
        if isinstance(item, Skipped):
            page.text(plain("reports.bulletin.skipped", lang, count=item.count), 10, colour=MUTED)
            continue
        rank, standing = item
        page.line(
            plain("reports.bulletin.unit", lang, rank=rank, unit=standing.name),
            _figures(standing, lang),
            12,
            right_colour=COLOURS["overdue"] if standing.overdue else "#1f2328",
        )
        rest = max(0, standing.total - standing.done - standing.overdue)
        page.bar(
            [
                (standing.done, COLOURS["accepted"]),
                (standing.overdue, COLOURS["overdue"]),
                (rest, COLOURS["pending"]),
            ],
            height=0.2,
        )
    return page


def draw_bulletin(data: BulletinData, lang: str) -> Picture:
    """Draw the bulletin."""
    return render(bulletin_page(data, lang))


async def render_bulletin(
    session: AsyncSession, campaign: m.Campaign, now: datetime, lang: str
) -> bytes:
    """Return the weekly bulletin of a campaign at `now` as PNG bytes (1080 px wide)."""
    data = await bulletin_data(session, campaign, now)
    # Drawing takes a few hundred milliseconds: off the event loop, so the sender keeps going.
    picture = await asyncio.to_thread(draw_bulletin, data, lang)
    return picture.png
