"""The office's review buttons (accept / return with a reason), /reopen, /received, versions."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from bot.db import models as m
from bot.errors import StaleButton
from bot.i18n import t
from bot.messages import callbacks as cb
from bot.services.catalog import live_assignment, pressed_submission
from bot.services.export import files_of
from bot.services.lookup import find_task
from bot.services.review import accept, pending_review, received, reopen, return_submission
from handlers.common import Context, Ctx, Reply, button, command, pressed
from handlers.queries import named_unit

KIND = "return_reason"


async def on_accept(ctx: Ctx) -> None:
    """Accept a submission (rev:ok:<submission id>)."""
    caller = ctx.need_caller()
    item = await accept(
        ctx.session,
        caller,
        pressed(ctx, cb.REVIEW_ACCEPT).id,
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    ctx.replies.append(
        Reply(
            t(
                "review.accepted_by",
                ctx.lang,
                unit=item.unit.name,
                task=item.task.title,
                who=caller.person.name,
            ),
            toast=t("review.accepted_toast", ctx.lang),
        )
    )


async def on_return(ctx: Ctx) -> None:
    """Ask for the reason of a return (rev:ret:<submission id>); the reply text completes it."""
    caller = ctx.need_caller()
    item = await pending_review(ctx.session, caller, pressed(ctx, cb.REVIEW_RETURN).id)
    assert ctx.person is not None
    # The reason comes as the presser's next message, in their private chat or the group.
    await ctx.begin(KIND, {"submission_id": item.submission.id})
    ctx.say(t("review.ask_reason", ctx.lang, unit=item.unit.name, task=item.task.title))


async def take_reason(ctx: Ctx, data: dict[str, object], reason: str) -> None:
    """Complete a return with the reason the office member typed."""
    caller = ctx.need_caller()
    assert ctx.person is not None
    await ctx.end()
    submission_id = data.get("submission_id")
    if not isinstance(submission_id, int):
        raise StaleButton()
    item = await return_submission(
        ctx.session,
        caller,
        submission_id,
        reason.strip()[:1000],
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    ctx.say(t("review.returned_by", ctx.lang, unit=item.unit.name, task=item.task.title))


async def _assignment_from_args(ctx: Ctx) -> m.Assignment | None:
    caller = ctx.need_caller()
    caller.require_office()
    args = ctx.context.args or []
    if len(args) < 2:
        ctx.say(t("review.unit_task_usage", ctx.lang))
        return None
    unit = await named_unit(ctx, caller, args[0])
    if unit is None:
        return None
    task = await find_task(ctx.session, caller.campaign.id, " ".join(args[1:]))
    assignment = await live_assignment(ctx.session, unit.id, task.id)
    if assignment is None:
        ctx.say(t("review.not_owed", ctx.lang, unit=unit.name, task=task.title))
    return assignment


async def on_reopen(ctx: Ctx) -> None:
    """Undo an accept: /reopen UNIT TASK."""
    assignment = await _assignment_from_args(ctx)
    if assignment is None:
        return
    await reopen(ctx.session, ctx.need_caller(), assignment, now=ctx.now)
    ctx.say(t("review.reopened", ctx.lang))


async def on_received(ctx: Ctx) -> None:
    """Mark a deliverable received outside the bot: /received UNIT TASK."""
    assignment = await _assignment_from_args(ctx)
    if assignment is None:
        return
    await received(ctx.session, ctx.need_caller(), assignment, now=ctx.now)
    ctx.say(t("review.received", ctx.lang))


async def on_version(ctx: Ctx) -> None:
    """Send a stored version's file again (ver:<submission id>), office only."""
    caller = ctx.need_caller()
    caller.require_office()
    submission = await pressed_submission(ctx.session, caller, pressed(ctx, cb.VERSION).id)
    caption = t("review.version_caption", ctx.lang, version=submission.version)
    files = (await files_of(ctx.session, [submission.id])).get(submission.id, [])
    for ref in files:
        # Every file of the version again (a document, photo, video, audio or voice).
        ctx.replies.append(Reply(caption, file=(ref.kind, ref.file_id)))
    if submission.text and files:
        ctx.say(t("kinds.notice_text", ctx.lang, text=submission.text[:3000]))
    elif not files:
        ctx.say(
            t(
                "review.version_text",
                ctx.lang,
                version=submission.version,
                text=submission.text or "—",
            )
        )


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the review handlers."""
    return [
        button(on_accept, cb.REVIEW_ACCEPT),
        button(on_return, cb.REVIEW_RETURN),
        button(on_version, cb.VERSION),
        command("reopen", on_reopen),
        command("received", on_received),
    ]
