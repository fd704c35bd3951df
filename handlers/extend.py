"""/extend and the nudge's extension button: task, new date, reason; the office decides."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from telegram import Update
from telegram.ext import BaseHandler

from bot.domain.dates import parse_day
from bot.errors import StaleButton
from bot.i18n import format_moment, t
from bot.messages import callbacks as cb
from bot.services.extensions import EXTENDABLE, decide, request
from bot.services.submissions import owed_by, owed_item
from handlers.common import Context, Ctx, Reply, button, command, pressed
from handlers.views import owed_buttons

KIND = "extend"


async def start_extend(ctx: Ctx) -> None:
    """Offer the caller's open assignments; the office is told how it decides instead."""
    caller = ctx.need_caller()
    if not caller.unit_ids and caller.is_office:
        ctx.say(t("extend.office_hint", ctx.lang))
        return
    caller.require_unit()
    owed = await owed_by(ctx.session, caller, statuses=EXTENDABLE)
    if not owed:
        ctx.say(t("extend.nothing", ctx.lang))
        return
    buttons = owed_buttons(owed, cb.EXTEND, caller.campaign.timezone, ctx.lang)
    ctx.say(t("extend.pick", ctx.lang), buttons)


async def pick(ctx: Ctx) -> None:
    """Ask for the new date for the chosen assignment (ext:<assignment id>)."""
    caller = ctx.need_caller()
    assert ctx.person is not None
    item = await owed_item(ctx.session, caller, pressed(ctx, cb.EXTEND).id)
    if item.assignment.status not in EXTENDABLE:
        raise StaleButton()
    await ctx.begin(KIND, {"assignment_id": item.assignment.id})
    ctx.say(
        t(
            "extend.ask_date",
            ctx.lang,
            task=item.task.title,
            due=format_moment(item.assignment.due_at, caller.campaign.timezone, ctx.lang),
        )
    )


async def take_text(ctx: Ctx, data: dict[str, object], text: str) -> None:
    """Take the new date, then the reason, and file the request."""
    caller = ctx.need_caller()
    assert ctx.person is not None
    assignment_id = data.get("assignment_id")
    if not isinstance(assignment_id, int):
        raise StaleButton()
    zone = ZoneInfo(caller.campaign.timezone)
    if "new_due" not in data:
        parsed = parse_day(text, ctx.now.astimezone(zone).date())
        if parsed is None:
            ctx.say(t("extend.bad_date", ctx.lang))
            return
        day, moment = parsed
        hour, minute = (int(x) for x in caller.campaign.due_time.split(":"))
        new_due = datetime.combine(day, moment or time(hour, minute), tzinfo=zone)
        item = await owed_item(ctx.session, caller, assignment_id)
        if new_due <= item.assignment.due_at or new_due <= ctx.now:
            ctx.say(t("extend.not_later", ctx.lang))
            return
        await ctx.begin(KIND, {"assignment_id": assignment_id, "new_due": new_due.isoformat()})
        ctx.say(
            t(
                "extend.ask_reason",
                ctx.lang,
                new=format_moment(new_due, caller.campaign.timezone, ctx.lang),
            )
        )
        return
    await ctx.end()
    new_due = datetime.fromisoformat(str(data["new_due"]))
    await request(
        ctx.session,
        caller,
        assignment_id,
        new_due,
        text.strip()[:1000],
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    ctx.say(t("extend.requested", ctx.lang))


async def on_decide(ctx: Ctx) -> None:
    """Approve (exa:<id>) or reject (exr:<id>) an extension request."""
    caller = ctx.need_caller()
    button = pressed(ctx, cb.EXTENSION_APPROVE, cb.EXTENSION_REJECT)
    approve = button.kind == cb.EXTENSION_APPROVE
    item = await decide(
        ctx.session,
        caller,
        button.id,
        approve,
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    key = "extend.approved_by" if approve else "extend.rejected_by"
    text = t(
        key,
        ctx.lang,
        unit=item.unit.name,
        task=item.task.title,
        new=format_moment(item.extension.new_due_at, caller.campaign.timezone, ctx.lang),
        who=caller.person.name,
    )
    ctx.replies.append(Reply(text, toast=text))


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the extension handlers."""
    return [
        command("extend", start_extend),
        button(pick, cb.EXTEND),
        button(on_decide, cb.EXTENSION_APPROVE, cb.EXTENSION_REJECT),
    ]
