"""/submit and the nudge's submit button: pick a task, send the files or text, confirm."""

from __future__ import annotations

from typing import Any

from telegram import Message, Update
from telegram.ext import BaseHandler

from bot.errors import StaleButton
from bot.i18n import Markup, t
from bot.messages import callbacks as cb
from bot.services import albums
from bot.services.outbox import message as message_payload
from bot.services.submissions import (
    Content,
    FileRef,
    Owed,
    WrongEvidence,
    accepts,
    file_names,
    owed_by,
    owed_item,
    submit,
)
from handlers.common import Context, Ctx, Reply, button, command, pressed
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
    buttons = owed_buttons(owed, cb.SUBMIT, caller.campaign.timezone, ctx.lang)
    ctx.say(t("submit.pick", ctx.lang), buttons)


async def pick_task(ctx: Ctx) -> None:
    """Open a submission for the chosen assignment (sub:<assignment id>)."""
    caller = ctx.need_caller()
    item = await owed_item(ctx.session, caller, pressed(ctx, cb.SUBMIT).id)
    assert ctx.person is not None
    await ctx.begin(KIND, {"assignment_id": item.assignment.id})
    evidence = item.task.evidence
    if evidence == "none":
        await ctx.begin(
            KIND, {"assignment_id": item.assignment.id, "content": Content("confirm").to_json()}
        )
        ctx.say(
            t("submit.confirm_none", ctx.lang, task=item.task.title, unit=item.unit.name),
            [
                [
                    (t("submit.confirm_button", ctx.lang), cb.SUBMIT_CONFIRM.data("ok")),
                    (t("submit.cancel_button", ctx.lang), cb.SUBMIT_CONFIRM.data("no")),
                ]
            ],
        )
        return
    ctx.say(t(f"submit.send_{evidence}", ctx.lang, task=item.task.title, unit=item.unit.name))


def file_of(message: Message) -> FileRef | None:
    """Return the file a message carries: a document, photo, video, audio or voice."""
    if message.photo:
        photo = message.photo[-1]  # the largest size
        return FileRef(
            "photo",
            photo.file_id,
            photo.file_unique_id,
            None,
            photo.file_size,
            "image/jpeg",
        )
    for kind in ("document", "video", "audio", "voice"):
        item = getattr(message, kind)
        if item is not None:
            return FileRef(
                kind,
                item.file_id,
                item.file_unique_id,
                getattr(item, "file_name", None),
                item.file_size,
                item.mime_type,
            )
    return None


def content_of(message: Message) -> Content | None:
    """Read a file (with its caption) or a text from a message; None for anything else."""
    ref = file_of(message)
    if ref is not None:
        return Content.of_files([ref], message.caption)
    if message.text:
        return Content("text", text=message.text)
    return None


def _confirm_buttons(lang: str) -> list[list[tuple[str, str]]]:
    return [
        [
            (t("submit.confirm_button", lang), cb.SUBMIT_CONFIRM.data("ok")),
            (t("submit.cancel_button", lang), cb.SUBMIT_CONFIRM.data("no")),
        ]
    ]


def _confirm_text(item: Owed, content: Content, lang: str) -> str:
    """The one confirm prompt: every file by name, and the caption or text."""
    if len(content.files) > 1:
        text = t(
            "kinds.confirm_album",
            lang,
            task=item.task.title,
            unit=item.unit.name,
            count=len(content.files),
            names=file_names(content.files),
        )
    else:
        first = content.first
        what = (first.file_name if first else None) or t(f"submit.kind_{content.kind}", lang)
        text = t("submit.confirm", lang, task=item.task.title, unit=item.unit.name, what=what)
    if content.text and content.files:
        text = Markup(text + "\n" + t("kinds.confirm_caption", lang, text=content.text[:500]))
    return text


async def receive(ctx: Ctx, conversation_data: dict[str, object]) -> None:
    """Take the content of an open submission and ask for confirmation."""
    caller = ctx.need_caller()
    message = ctx.update.effective_message
    assert message is not None and ctx.person is not None
    content = content_of(message)
    raw_id = conversation_data.get("assignment_id")
    if not isinstance(raw_id, int):
        raise WrongEvidence()
    item = await owed_item(ctx.session, caller, raw_id)
    if content is None:
        # A sticker, a location, a contact, a poll: one line saying what is expected.
        ctx.say(t(f"kinds.expected_{item.task.evidence}", ctx.lang, task=item.task.title))
        return
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
    group = message.media_group_id
    earlier = conversation_data.get("album")
    if isinstance(earlier, str) and earlier != group:
        # A new album or file replaces an album not confirmed yet: its parts are dropped.
        await albums.forget(ctx.session, ctx.chat_id, earlier)
    if group is not None and content.first is not None:
        await _album_part(ctx, item, raw_id, group, content)
        return
    await ctx.begin(KIND, {"assignment_id": raw_id, "content": content.to_json()})
    ctx.say(_confirm_text(item, content, ctx.lang), _confirm_buttons(ctx.lang))


async def _album_part(
    ctx: Ctx, item: Owed, assignment_id: int, group: str, content: Content
) -> None:
    """Store one part of an album; the one confirm prompt goes out after the last part."""
    message = ctx.update.effective_message
    assert message is not None and ctx.person is not None and content.first is not None
    await albums.add_part(
        ctx.session,
        chat_id=ctx.chat_id,
        media_group_id=group,
        message_id=message.message_id,
        file=content.first,
        caption=content.text,
        now=ctx.now,
    )
    await ctx.begin(KIND, {"assignment_id": assignment_id, "album": group})
    lang = ctx.lang

    def build(gathered: Content) -> dict[str, Any]:
        buttons = [
            [{"text": label, "callback_data": data} for label, data in row]
            for row in _confirm_buttons(lang)
        ]
        return message_payload(_confirm_text(item, gathered, lang), buttons)

    await albums.prompt(
        ctx.session,
        person_id=ctx.person.id,
        chat_id=ctx.chat_id,
        media_group_id=group,
        build=build,
        now=ctx.now,
    )
    ctx.pushed = True


async def confirm(ctx: Ctx) -> None:
    """Store the submission (sc:ok) or drop it (sc:no)."""
    caller = ctx.need_caller()
    choice = pressed(ctx, cb.SUBMIT_CONFIRM).word
    assert ctx.person is not None
    conversation = await ctx.conversation_of(KIND)
    data = dict(conversation.data)
    album = data.get("album")
    content: Content | None = None
    if isinstance(album, str):
        # Every part stored by now, whichever process took it, is this one version.
        content = await albums.gathered(ctx.session, ctx.chat_id, album)
        await albums.forget(ctx.session, ctx.chat_id, album)
    elif "content" in data:
        content = Content.from_json(data["content"])
    if content is None:
        raise StaleButton()
    await ctx.end()
    if choice != "ok":
        ctx.replies.append(Reply(t("submit.cancelled", ctx.lang), edit=True))
        return
    submission = await submit(
        ctx.session,
        caller,
        int(data["assignment_id"]),
        content,
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
        button(pick_task, cb.SUBMIT),
        button(confirm, cb.SUBMIT_CONFIRM),
    ]
