"""Messages that are not commands: open conversations first, then questions, else a hint."""

from __future__ import annotations

from telegram import Message, MessageEntity, Update
from telegram.ext import BaseHandler, MessageHandler, filters

from bot.errors import StaleButton
from bot.i18n import t
from handlers import extend, queries, review, submit, unit_report, work
from handlers.common import Context, Ctx, button, is_group, office_name, run_feature


def _addressed_to_bot(message: Message, bot_id: int, username: str | None) -> bool:
    """Return whether a group message replies to the bot or mentions it (never casual chat)."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True
    if username:
        for entity, text in message.parse_entities([MessageEntity.MENTION]).items():
            if (
                entity.type == MessageEntity.MENTION
                and text.lstrip("@").casefold() == username.casefold()
            ):
                return True
    return False


async def route(ctx: Ctx) -> None:
    """Hand the message to the open conversation, or answer it as a question."""
    message = ctx.update.effective_message
    assert message is not None
    text = message.text or ""
    if ctx.person is not None:
        conversation = await ctx.conversation()
        if conversation is not None:
            data = dict(conversation.data)
            if conversation.kind == submit.KIND:
                await submit.receive(ctx, data)
                return
            if conversation.kind == review.KIND and text:
                await review.take_reason(ctx, data, text)
                return
            if conversation.kind == extend.KIND and text:
                await extend.take_text(ctx, data, text)
                return
            if conversation.kind in work.KINDS:
                await work.take_message(ctx, conversation.kind, data)
                return
            if conversation.kind == unit_report.KIND:
                await unit_report.take_message(ctx, data)
                return
            if conversation.kind == unit_report.REASON and text:
                await unit_report.take_reason(ctx, data, text)
                return
    if ctx.caller is None:
        ctx.say(t("help.stranger", ctx.lang, office=await office_name(ctx)))
        return
    if text and await queries.free_text(ctx, text):
        return
    if ctx.caller.unit_ids and (submit.file_of(message) is not None or text):
        ctx.say(t("submit.use_submit", ctx.lang))
        return
    ctx.say(t("error.not_understood", ctx.lang))


async def on_message(update: Update, context: Context) -> None:
    """Route a private message, or a group message addressed to the bot."""
    message = update.effective_message
    if message is None:
        return
    if is_group(update) and not _addressed_to_bot(message, context.bot.id, context.bot.username):
        return
    await run_feature(update, context, route)


async def unknown_command(ctx: Ctx) -> None:
    """Answer a command nobody handles with one polite line (strangers learn how to register)."""
    ctx.say(
        t("error.not_understood", ctx.lang)
        if ctx.caller
        else t("help.stranger", ctx.lang, office=await office_name(ctx))
    )


async def on_unknown_command(update: Update, context: Context) -> None:
    """Answer an unknown command in a private chat; in groups it may be for another bot."""
    if not is_group(update):
        await run_feature(update, context, unknown_command)


async def unknown_button(ctx: Ctx) -> None:
    """Refuse a button whose data no handler knows."""
    raise StaleButton()


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the message router and the catch-all for unknown buttons (after every other)."""
    # Every kind of message is met (SPEC §4.4): text, files of every kind, and stickers,
    # locations, contacts, polls..., which get one line saying what is expected. Service
    # messages (members joining, a pinned message) are not addressed to anyone.
    content = ~filters.COMMAND & ~filters.StatusUpdate.ALL
    return [
        MessageHandler(content & ~filters.UpdateType.EDITED, on_message),
        MessageHandler(filters.COMMAND & ~filters.UpdateType.EDITED, on_unknown_command),
        button(unknown_button),
    ]
