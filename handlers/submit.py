"""/submit and the nudge's submit button: pick a task, send the file or text, confirm."""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import BaseHandler

from bot.errors import StaleButton
from bot.i18n import t
from bot.services import conversations
from bot.services.submissions import Content, WrongEvidence, accepts, owed_by, owed_item, submit
from handlers.common import Context, Ctx, Reply, button, button_id, command
from handlers.views import owed_buttons

KIND = "submit"


async def start_submit(ctx: Ctx) -> None:
    """Offer the caller's open assignments as buttons (or go straight on with only one)."""
    caller = ctx.need_caller()
    caller.require_unit()
    owed = await owed_by(ctx.session, caller)
    if not owed:
        ctx.say(t("submit.nothing", ctx.lang))
        return
    buttons = owed_buttons(owed, "sub", caller.campaign.timezone, ctx.lang)
    ctx.say(t("submit.pick", ctx.lang), buttons)


async def pick_task(ctx: Ctx) -> None:
    """Open a submission for the chosen assignment (sub:<assignment id>)."""
    caller = ctx.need_caller()
    item = await owed_item(ctx.session, caller, button_id(ctx, "sub:"))
    assert ctx.person is not None
    await conversations.begin(
        ctx.session,
        ctx.person.id,
        ctx.chat_id,
        KIND,
        {"assignment_id": item.assignment.id},
        ctx.now,
    )
    evidence = item.task.evidence
    if evidence == "none":
        await conversations.begin(
            ctx.session,
            ctx.person.id,
            ctx.chat_id,
            KIND,
            {"assignment_id": item.assignment.id, "content": Content("confirm").to_json()},
            ctx.now,
        )
        ctx.say(
            t("submit.confirm_none", ctx.lang, task=item.task.title, unit=item.unit.name),
            [
                [
                    (t("submit.confirm_button", ctx.lang), "sc:ok"),
                    (t("submit.cancel_button", ctx.lang), "sc:no"),
                ]
            ],
        )
        return
    ctx.say(t(f"submit.send_{evidence}", ctx.lang, task=item.task.title, unit=item.unit.name))


def content_of(message: Message) -> Content | None:
    """Read a document, photo or text from a message."""
    if message.document is not None:
        doc = message.document
        return Content(
            "document",
            text=message.caption,
            file_id=doc.file_id,
            file_unique_id=doc.file_unique_id,
            file_name=doc.file_name,
            file_size=doc.file_size,
            mime_type=doc.mime_type,
        )
    if message.photo:
        photo = message.photo[-1]  # the largest size
        return Content(
            "photo",
            text=message.caption,
            file_id=photo.file_id,
            file_unique_id=photo.file_unique_id,
            file_size=photo.file_size,
            mime_type="image/jpeg",
        )
    if message.text:
        return Content("text", text=message.text)
    return None


async def receive(ctx: Ctx, conversation_data: dict[str, object]) -> None:
    """Take the content of an open submission and ask for confirmation."""
    caller = ctx.need_caller()
    message = ctx.update.effective_message
    assert message is not None and ctx.person is not None
    content = content_of(message)
    raw_id = conversation_data.get("assignment_id")
    if content is None or not isinstance(raw_id, int):
        raise WrongEvidence()
    item = await owed_item(ctx.session, caller, raw_id)
    if not accepts(item.task.evidence, content.kind):
        ctx.say(
            t(
                f"submit.send_{item.task.evidence}",
                ctx.lang,
                task=item.task.title,
                unit=item.unit.name,
            )
        )
        return
    await conversations.begin(
        ctx.session,
        ctx.person.id,
        ctx.chat_id,
        KIND,
        {"assignment_id": raw_id, "content": content.to_json()},
        ctx.now,
    )
    what = content.file_name or t(f"submit.kind_{content.kind}", ctx.lang)
    ctx.say(
        t("submit.confirm", ctx.lang, task=item.task.title, unit=item.unit.name, what=what),
        [
            [
                (t("submit.confirm_button", ctx.lang), "sc:ok"),
                (t("submit.cancel_button", ctx.lang), "sc:no"),
            ]
        ],
    )


async def confirm(ctx: Ctx) -> None:
    """Store the submission (sc:ok) or drop it (sc:no)."""
    caller = ctx.need_caller()
    query = ctx.update.callback_query
    assert query is not None and ctx.person is not None
    conversation = await conversations.current(ctx.session, ctx.person.id, ctx.chat_id, ctx.now)
    if conversation is None or conversation.kind != KIND or "content" not in conversation.data:
        raise StaleButton()
    data = dict(conversation.data)
    await conversations.end(ctx.session, ctx.person.id, ctx.chat_id)
    if query.data != "sc:ok":
        ctx.replies.append(Reply(t("submit.cancelled", ctx.lang), edit=True))
        return
    submission = await submit(
        ctx.session,
        caller,
        int(data["assignment_id"]),
        Content.from_json(data["content"]),
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    key = "submit.done_late" if submission.late else "submit.done"
    ctx.replies.append(Reply(t(key, ctx.lang, version=submission.version), edit=True))


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the submission handlers (content arrives through the message router)."""
    return [
        command("submit", start_submit),
        button(r"^sub:", pick_task),
        button(r"^sc:", confirm),
    ]
