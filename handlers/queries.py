"""/mine, /status, /unit, /task, /overdue, the details button, and free-text questions."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from bot.db import models as m
from bot.domain.assignments import DONE
from bot.errors import UnknownTask, UnknownUnit
from bot.i18n import t
from bot.messages import callbacks as cb
from bot.reports.figures import most_overdue
from bot.services.access import Caller, OtherUnit
from bot.services.catalog import (
    current_occurrences,
    pressed_assignment_unit,
    pressed_task,
    pressed_unit,
    series_tasks,
    submitted_versions,
    task_candidates,
    units_by_id,
)
from bot.services.export import files_of
from bot.services.lookup import live_tasks, live_units, rank_units, resolve_unit
from bot.services.matching import choose, rank
from bot.services.progress import assignment_views, campaign_progress
from bot.services.unit_reports import reports_of_unit
from handlers.common import Context, Ctx, button, command, pressed
from handlers.views import (
    campaign_view,
    mine_view,
    overdue_view,
    status_buttons,
    task_view,
    unit_reports_view,
    unit_view,
    versions_view,
)


async def show_unit(ctx: Ctx, caller: Caller, unit: m.Unit) -> None:
    """Answer with one unit's status, if the caller may see it."""
    if not caller.may_see_unit(unit.id):
        raise OtherUnit()
    views = await assignment_views(ctx.session, caller.campaign, ctx.now, unit_ids=[unit.id])
    buttons = None
    text = unit_view(unit, views, caller.campaign.timezone, ctx.now, ctx.lang)
    if caller.is_office:
        # The office can see any version again: one button per submitted task, and the
        # versions listed with their files and text (a caption is the version's text).
        subs = (await submitted_versions(ctx.session, unit.id))[-20:]
        buttons = [
            [
                (
                    t("chat.version_button", ctx.lang, task=title, version=sub.version),
                    cb.VERSION.data(sub.id),
                )
            ]
            for sub, title in subs
        ]
        if subs:
            files = await files_of(ctx.session, [sub.id for sub, _ in subs])
            text += "\n\n" + versions_view(subs, files, caller.campaign.timezone, ctx.lang)
    reports = await reports_of_unit(ctx.session, caller.campaign.id, unit.id)
    if reports:
        text = "\n".join([text, *unit_reports_view(reports, caller.campaign.timezone, ctx.lang)])
    ctx.say(text, buttons)


async def show_task(ctx: Ctx, caller: Caller, task: m.Task) -> None:
    """Answer with one task's status: everyone's for overseers, the own units' for contacts."""
    unit_ids = None if caller.sees_all else caller.unit_ids
    views = await assignment_views(
        ctx.session, caller.campaign, ctx.now, unit_ids=unit_ids, task_ids=[task.id]
    )
    text = task_view(task, views, caller.campaign.timezone, ctx.now, ctx.lang)
    if task.series is not None:
        text += "\n\n" + await _series_summary(ctx, caller, task, unit_ids)
    ctx.say(text)


async def _series_summary(
    ctx: Ctx, caller: Caller, task: m.Task, unit_ids: list[int] | None
) -> str:
    """Say which occurrence of a recurring task this is, and how the ones due so far stand."""
    assert task.series is not None
    siblings = await series_tasks(ctx.session, caller.campaign.id, task.series)
    views = await assignment_views(
        ctx.session,
        caller.campaign,
        ctx.now,
        unit_ids=unit_ids,
        task_ids=[x.id for x in siblings if x.due_at <= ctx.now],
    )
    index = next((i for i, x in enumerate(siblings, 1) if x.id == task.id), 1)
    return t(
        "recurring.occurrence",
        ctx.lang,
        title=task.series_title or task.title,
        index=index,
        count=len(siblings),
        submitted=sum(1 for v in views if v.status in DONE),
        total=len(views),
        overdue=sum(1 for v in views if v.overdue),
    )


async def mine(ctx: Ctx) -> None:
    """List what the caller's units owe."""
    caller = ctx.need_caller()
    caller.require_unit()
    units = await live_units(ctx.session, caller.campaign.id, only=caller.unit_ids)
    views = await assignment_views(ctx.session, caller.campaign, ctx.now, unit_ids=caller.unit_ids)
    grouped = [(u, [v for v in views if v.unit_key == u.key]) for u in units]
    ctx.say(mine_view(grouped, caller.campaign.timezone, ctx.now, ctx.lang))


async def status(ctx: Ctx) -> None:
    """Show the whole campaign to overseers, the own unit to contacts and heads."""
    caller = ctx.need_caller()
    if caller.is_office or caller.is_leader:
        progress = await campaign_progress(ctx.session, caller.campaign, ctx.now)
        laggards = await most_overdue(ctx.session, caller.campaign, ctx.now)
        ctx.say(campaign_view(progress, ctx.lang, laggards=laggards), status_buttons(ctx.lang))
        return
    caller.require_unit()
    await mine(ctx)


async def named_unit(ctx: Ctx, caller: Caller, text: str) -> m.Unit | None:
    """Resolve a unit name, offering buttons when it is ambiguous."""
    only = None if caller.sees_all else caller.unit_ids
    found, close = await resolve_unit(ctx.session, caller.campaign.id, text, only)
    if found is not None:
        return found
    if close:
        ctx.say(
            t("chat.which_unit", ctx.lang), [[(u.name, cb.PICK_UNIT.data(u.id))] for u in close]
        )
        return None
    if not caller.sees_all:
        raise OtherUnit()
    raise UnknownUnit(name=text)


async def unit(ctx: Ctx) -> None:
    """Show a unit named by name, alias or a close match."""
    caller = ctx.need_caller()
    text = " ".join(ctx.context.args or []).strip()
    if not text:
        if caller.unit_ids:
            units = await live_units(ctx.session, caller.campaign.id, only=caller.unit_ids)
            for own in units:
                await show_unit(ctx, caller, own)
            return
        ctx.say(t("chat.unit_usage", ctx.lang))
        return
    found = await named_unit(ctx, caller, text)
    if found is not None:
        await show_unit(ctx, caller, found)


async def task(ctx: Ctx) -> None:
    """Show a task named by title, key or a close match."""
    caller = ctx.need_caller()
    text = " ".join(ctx.context.args or []).strip()
    tasks = current_occurrences(await live_tasks(ctx.session, caller.campaign.id), ctx.now)
    if not text:
        ctx.say(
            t("chat.task_usage", ctx.lang),
            [[(x.title, cb.PICK_TASK.data(x.id))] for x in tasks[:20]],
        )
        return
    best, close = choose(rank(text, task_candidates(tasks)))
    if best is not None:
        await show_task(ctx, caller, next(x for x in tasks if x.id == best.id))
    elif close:
        by_id = {x.id: x for x in tasks}
        ctx.say(
            t("chat.which_task", ctx.lang),
            [[(by_id[c.id].title, cb.PICK_TASK.data(c.id))] for c in close],
        )
    else:
        raise UnknownTask(name=text)


async def overdue(ctx: Ctx) -> None:
    """List overdue assignments: every unit for overseers, the own units for contacts."""
    caller = ctx.need_caller()
    if caller.is_office or caller.is_leader:
        views = await assignment_views(ctx.session, caller.campaign, ctx.now)
    else:
        caller.require_unit()
        views = await assignment_views(
            ctx.session, caller.campaign, ctx.now, unit_ids=caller.unit_ids
        )
    ctx.say(overdue_view(views, ctx.now, ctx.lang))


async def pick(ctx: Ctx) -> None:
    """Answer a choice among ambiguous names (pick:u:<id> / pick:t:<id>)."""
    caller = ctx.need_caller()
    button = pressed(ctx, cb.PICK_UNIT, cb.PICK_TASK)
    row_id = button.id
    if button.kind == cb.PICK_UNIT:
        await show_unit(ctx, caller, await pressed_unit(ctx.session, caller, row_id))
    else:
        await show_task(ctx, caller, await pressed_task(ctx.session, caller, row_id))


async def details(ctx: Ctx) -> None:
    """Answer a nudge's details button (det:<assignment id>) with the unit's standing."""
    caller = ctx.need_caller()
    found_unit = await pressed_assignment_unit(ctx.session, caller, pressed(ctx, cb.DETAILS).id)
    await show_unit(ctx, caller, found_unit)


async def free_text(ctx: Ctx, text: str) -> bool:
    """Answer an overseer's question naming a unit or a task; return whether it was one."""
    caller = ctx.caller
    if caller is None or not (caller.is_office or caller.is_leader):
        return False
    tasks = current_occurrences(await live_tasks(ctx.session, caller.campaign.id), ctx.now)
    unit_matches = await rank_units(ctx.session, caller.campaign.id, text)
    task_matches = rank(text, task_candidates(tasks))
    unit_best = unit_matches[0].score if unit_matches else 0.0
    task_best = task_matches[0].score if task_matches else 0.0
    if not unit_matches and not task_matches:
        return False
    # A unit named in the question wins a tie: "甲县调研报告交了吗" is about 甲县.
    if unit_best >= task_best:
        best, close = choose(unit_matches)
        if best is not None:
            [found] = await units_by_id(ctx.session, [best.id])
            await show_unit(ctx, caller, found)
        else:
            chosen = await units_by_id(ctx.session, [c.id for c in close])
            ctx.say(
                t("chat.which_unit", ctx.lang),
                [[(u.name, cb.PICK_UNIT.data(u.id))] for u in chosen],
            )
        return True
    best, close = choose(task_matches)
    if best is not None:
        await show_task(ctx, caller, next(x for x in tasks if x.id == best.id))
    else:
        by_id_t = {x.id: x for x in tasks}
        ctx.say(
            t("chat.which_task", ctx.lang),
            [[(by_id_t[c.id].title, cb.PICK_TASK.data(c.id))] for c in close],
        )
    return True


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the query handlers."""
    return [
        command("mine", mine),
        command("status", status),
        command("unit", unit),
        command("task", task),
        command("overdue", overdue),
        button(pick, cb.PICK_UNIT, cb.PICK_TASK),
        button(details, cb.DETAILS),
    ]
