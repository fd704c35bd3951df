"""/chart, /export and /calendar: pictures and files people keep."""

from __future__ import annotations

import asyncio
from zoneinfo import ZoneInfo

from telegram import Update
from telegram.ext import BaseHandler

from bot.db import models as m
from bot.errors import StaleButton, UnknownUnit
from bot.i18n import format_moment, plain, t
from bot.messages import callbacks as cb
from bot.reports.chart import render_chart
from bot.reports.ics import unit_calendar
from bot.services.access import Caller, OtherUnit
from bot.services.catalog import pressed_unit, units_by_id
from bot.services.export import build_workbook, xlsx_bytes
from bot.services.feeds import feed_token, feed_url, renew_feed
from bot.services.lookup import resolve_unit
from bot.services.progress import campaign_progress
from handlers.common import Context, Ctx, Reply, button, command, is_group, pressed
from handlers.heavy import heavy_command
from handlers.queries import overdue
from handlers.views import campaign_detail_view


async def chart(ctx: Ctx) -> None:
    """Send overseers the progress chart as a photo."""
    caller = ctx.need_caller()
    caller.require_overseer()
    campaign = caller.campaign
    png = await render_chart(ctx.session, campaign, ctx.now, ctx.lang)
    moment = format_moment(ctx.now, campaign.timezone, ctx.lang)
    caption = t("reports.chart.caption", ctx.lang, campaign=campaign.title, moment=moment)
    ctx.replies.append(Reply(caption, photo=png, filename=f"{campaign.key}-chart.png"))


async def export(ctx: Ctx) -> None:
    """Send overseers the Excel workbook as a document."""
    caller = ctx.need_caller()
    caller.require_overseer()
    campaign = caller.campaign
    book = await build_workbook(ctx.session, campaign, ctx.now, ctx.lang)
    # Writing a big workbook takes a while: off the event loop, so other replies keep flowing.
    data = await asyncio.to_thread(xlsx_bytes, book)
    local = ctx.now.astimezone(ZoneInfo(campaign.timezone))
    name = f"{plain('reports.export.file', ctx.lang)}-{campaign.key}-{local:%Y%m%d-%H%M}.xlsx"
    moment = format_moment(ctx.now, campaign.timezone, ctx.lang)
    caption = t("reports.export.caption", ctx.lang, campaign=campaign.title, moment=moment)
    ctx.replies.append(Reply(caption, document=data, filename=name))


def _public_url(ctx: Ctx) -> str | None:
    http = ctx.rt.config.http
    return http.public_url if http is not None and http.public_url else None


async def send_calendar(ctx: Ctx, caller: Caller, unit: m.Unit) -> None:
    """Send a unit's .ics file and, in a private chat, the caller's subscription link."""
    if not caller.may_see_unit(unit.id):
        raise OtherUnit()
    data, count = await unit_calendar(ctx.session, caller.campaign, unit, ctx.now, ctx.lang)
    caption = t("reports.calendar.caption", ctx.lang, unit=unit.name, count=count)
    ctx.replies.append(Reply(caption, document=data, filename=f"{unit.key}.ics"))
    public_url = _public_url(ctx)
    # A link in a group would be everyone's: there, only the file.
    if public_url and not is_group(ctx.update):
        token = await feed_token(
            ctx.session, caller, unit, ctx.now, secret=ctx.rt.config.require_token()
        )
        _say_link(ctx, unit, feed_url(public_url, token))


def _say_link(ctx: Ctx, unit: m.Unit, link: str, *, edit: bool = False) -> None:
    text = t("reports.calendar.feed", ctx.lang, link=link)
    buttons = [
        [(str(t("reports.calendar.renew_button", ctx.lang)), cb.CALENDAR_RENEW.data(unit.id))]
    ]
    ctx.replies.append(Reply(text, buttons, edit=edit))


async def calendar(ctx: Ctx) -> None:
    """Send the deadlines of the caller's units, or of the unit named, as an .ics file."""
    caller = ctx.need_caller()
    name = " ".join(ctx.context.args or []).strip()
    if not name:
        if not caller.unit_ids:
            ctx.say(t("reports.calendar.usage", ctx.lang))
            return
        for unit in await units_by_id(ctx.session, caller.unit_ids):
            if unit.archived_at is None:
                await send_calendar(ctx, caller, unit)
        return
    only = None if caller.sees_all else caller.unit_ids
    found, close = await resolve_unit(ctx.session, caller.campaign.id, name, only)
    if found is not None:
        await send_calendar(ctx, caller, found)
    elif close:
        ctx.say(
            t("chat.which_unit", ctx.lang), [[(u.name, cb.CALENDAR_UNIT.data(u.id))] for u in close]
        )
    elif not caller.sees_all:
        raise OtherUnit()
    else:
        raise UnknownUnit(name=name)


async def _pressed_unit(ctx: Ctx, caller: Caller, kind: cb.Kind) -> m.Unit:
    unit = await pressed_unit(ctx.session, caller, pressed(ctx, kind).id)
    if not caller.may_see_unit(unit.id):
        raise OtherUnit()
    return unit


async def calendar_pick(ctx: Ctx) -> None:
    """Answer a choice among ambiguous unit names (cal:u:<unit id>)."""
    caller = ctx.need_caller()
    await send_calendar(ctx, caller, await _pressed_unit(ctx, caller, cb.CALENDAR_UNIT))


async def calendar_renew(ctx: Ctx) -> None:
    """Replace the caller's subscription link for a unit (cal:new:<unit id>); the old one stops."""
    caller = ctx.need_caller()
    unit = await _pressed_unit(ctx, caller, cb.CALENDAR_RENEW)
    public_url = _public_url(ctx)
    if public_url is None or is_group(ctx.update):
        raise StaleButton()
    token = await renew_feed(
        ctx.session, caller, unit, ctx.now, secret=ctx.rt.config.require_token()
    )
    _say_link(ctx, unit, feed_url(public_url, token), edit=True)
    ctx.replies[-1].toast = str(t("reports.calendar.renewed", ctx.lang))


async def status_more(ctx: Ctx) -> None:
    """Answer the buttons under the short /status: full details, the overdue list, the chart."""
    caller = ctx.need_caller()
    caller.require_overseer()
    wanted = pressed(ctx, cb.STATUS_MORE).word
    if wanted == "full":
        progress = await campaign_progress(ctx.session, caller.campaign, ctx.now)
        ctx.say(campaign_detail_view(progress, ctx.lang))
    elif wanted == "overdue":
        await overdue(ctx)
    elif wanted == "chart":
        await chart(ctx)
    else:
        raise StaleButton()


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the report handlers."""
    return [
        # Read-only: drawing or writing a file must not hold SQLite's write lock.
        # Heavy: one per person at a time, a few overall (issue 14 case 6).
        heavy_command("chart", chart),
        heavy_command("export", export),
        # A subscription link is made (written) on first use.
        command("calendar", calendar),
        button(calendar_pick, cb.CALENDAR_UNIT),
        button(calendar_renew, cb.CALENDAR_RENEW),
        button(status_more, cb.STATUS_MORE, write=False),
    ]
