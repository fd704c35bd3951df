"""/nudge TASK: after a confirm button that says how many units, nudge every non-submitter."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from bot.db import models as m
from bot.i18n import t
from bot.messages import callbacks as cb
from bot.services.catalog import pressed_task, task_candidates
from bot.services.lookup import live_tasks
from bot.services.matching import choose, rank
from bot.services.nudging import count_open, nudge_task
from handlers.common import Context, Ctx, Reply, button, command, pressed


async def ask(ctx: Ctx) -> None:
    """Show how many units would be nudged, with a confirm button."""
    caller = ctx.need_caller()
    caller.require_office()
    text = " ".join(ctx.context.args or []).strip()
    tasks = await live_tasks(ctx.session, caller.campaign.id)
    if not text:
        ctx.say(
            t("nudge.usage", ctx.lang), [[(x.title, cb.NUDGE_PICK.data(x.id))] for x in tasks[:20]]
        )
        return
    best, close = choose(rank(text, task_candidates(tasks)))
    if best is None:
        if close:
            by_id = {x.id: x for x in tasks}
            ctx.say(
                t("chat.which_task", ctx.lang),
                [[(by_id[c.id].title, cb.NUDGE_PICK.data(c.id))] for c in close],
            )
            return
        ctx.say(t("error.unknown_task", ctx.lang, name=text))
        return
    await _confirm(ctx, next(x for x in tasks if x.id == best.id))


async def _confirm(ctx: Ctx, task: m.Task) -> None:
    caller = ctx.need_caller()
    count = await count_open(ctx.session, caller, task)
    if count == 0:
        ctx.say(t("nudge.none", ctx.lang, task=task.title))
        return
    # The token makes the confirm button idempotent: pressing it twice nudges once.
    token = str(int(ctx.now.timestamp()))
    ctx.say(
        t("nudge.confirm", ctx.lang, task=task.title, count=count),
        [
            [
                (
                    t("nudge.confirm_button", ctx.lang, count=count),
                    cb.NUDGE_SEND.data(task.id, token),
                ),
                (t("submit.cancel_button", ctx.lang), cb.NUDGE_CANCEL.data("no")),
            ]
        ],
    )


async def on_pick(ctx: Ctx) -> None:
    """Confirm a nudge for a task picked from the list (nq:<task id>)."""
    caller = ctx.need_caller()
    caller.require_office()
    await _confirm(ctx, await pressed_task(ctx.session, caller, pressed(ctx, cb.NUDGE_PICK).id))


async def on_confirm(ctx: Ctx) -> None:
    """Send the nudges (nd:<task id>:<token>) or cancel (nd:no)."""
    caller = ctx.need_caller()
    caller.require_office()
    button = pressed(ctx, cb.NUDGE_SEND, cb.NUDGE_CANCEL)
    if button.kind == cb.NUDGE_CANCEL:
        ctx.replies.append(Reply(t("nudge.cancelled", ctx.lang), edit=True))
        return
    task = await pressed_task(ctx.session, caller, button.id)
    units, messages = await nudge_task(
        ctx.session,
        caller,
        task,
        token=button.word,
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    ctx.replies.append(
        Reply(t("nudge.sent", ctx.lang, task=task.title, units=units, messages=messages), edit=True)
    )


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the nudge handlers."""
    return [
        command("nudge", ask),
        button(on_pick, cb.NUDGE_PICK),
        button(on_confirm, cb.NUDGE_SEND, cb.NUDGE_CANCEL),
    ]
