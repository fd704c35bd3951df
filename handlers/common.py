"""The frame every handler runs in: group check, one transaction, the caller, the reply."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import CallbackQueryHandler, CommandHandler, ContextTypes

from bot.db import models as m
from bot.errors import DubanError, StaleButton
from bot.i18n import t
from bot.messages.callbacks import Kind, Pressed, parse, prefix_pattern
from bot.messages.limits import split_text
from bot.runtime import Runtime
from bot.services import conversations, reachability
from bot.services.access import Caller, NotRegistered, load_caller
from bot.services.campaigns import office_for
from bot.services.people import find_person, holds_role, record_refusal, touch_person
from handlers.throttle import throttle_of

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
# How long a handler keeps retrying while the database is unavailable (SPEC §5.3).
DB_RETRY_SECONDS = 10.0

Buttons = Sequence[Sequence[tuple[str, str]]]


def runtime(context: Context) -> Runtime:
    """Return the running bot's config, database and clock."""
    value: Any = context.application.bot_data["runtime"]
    assert isinstance(value, Runtime)
    return value


def is_group(update: Update) -> bool:
    """Return whether the update comes from a group or supergroup."""
    chat = update.effective_chat
    return chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


def language(rt: Runtime, person: m.Person | None) -> str:
    """Return the language to answer a person in (their choice, else the default)."""
    if person is not None and person.language and not person.is_group:
        return person.language
    return rt.default_language


def keyboard(buttons: Buttons | None) -> InlineKeyboardMarkup | None:
    """Build an inline keyboard from rows of (label, callback data)."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(label, callback_data=data) for label, data in row]
            for row in buttons
        ]
    )


@dataclass
class Reply:
    """What a handler answers: text (split when long), buttons on the last part, or a file."""

    text: str = ""
    buttons: Buttons | None = None
    document: str | bytes | None = None  # a Telegram file_id, or the bytes of a file made here
    photo: str | bytes | None = None
    filename: str | None = None  # the name shown for a document or photo given as bytes
    file: tuple[str, str] | None = None  # a stored file sent again: (kind, Telegram file_id)
    toast: str | None = None  # a callback query's short answer
    edit: bool = False  # replace the pressed button's message instead of sending anew
    markup: InlineKeyboardMarkup | None = None  # buttons that are not callbacks (web_app, url)


@dataclass
class Ctx:
    """One update being handled: the runtime, the open transaction, who asks, in what language."""

    rt: Runtime
    session: AsyncSession
    update: Update
    context: Context
    now: datetime
    person: m.Person | None
    caller: Caller | None
    lang: str
    replies: list[Reply] = field(default_factory=list)
    pushed: bool = False  # outbox rows were written: poke the sender after commit
    # Whether the acting person holds a role once the feature is done, when the feature
    # changed it (an invite redeemed): None means "as loaded" (`caller is not None`).
    registered: bool | None = None

    @property
    def chat_id(self) -> int:
        """Return the chat the update came from."""
        chat = self.update.effective_chat
        assert chat is not None
        return chat.id

    def need_caller(self) -> Caller:
        """Return the caller, or refuse a stranger."""
        if self.caller is None:
            raise NotRegistered()
        return self.caller

    def say(self, text: str, buttons: Buttons | None = None) -> None:
        """Queue a reply, sent after the transaction commits."""
        self.replies.append(Reply(text, buttons))

    def _person_id(self) -> int:
        assert self.person is not None
        return self.person.id

    async def begin(self, kind: str, data: dict[str, Any]) -> None:
        """Open (or replace) the person's conversation in this chat: its kind and data."""
        await conversations.begin(
            self.session, self._person_id(), self.chat_id, kind, data, self.now
        )

    async def conversation(self) -> m.Conversation | None:
        """Return the person's open conversation in this chat, if any (and not expired)."""
        return await conversations.current(self.session, self._person_id(), self.chat_id, self.now)

    async def conversation_of(self, *kinds: str) -> m.Conversation:
        """Return the person's open conversation here if it is of one of `kinds`.

        Anything else (none, expired, another kind) makes the pressed button a stale one.
        """
        found = await self.conversation()
        if found is None or found.kind not in kinds:
            raise StaleButton()
        return found

    async def end(self) -> None:
        """Close the person's conversation in this chat."""
        await conversations.end(self.session, self._person_id(), self.chat_id)


Feature = Callable[[Ctx], Awaitable[None]]
# A check made in its own read transaction before the write lock is taken: the i18n key of
# a refusal to answer (as to a stranger), or None to go on. Arguments: the read session, the
# update, the context, the clock's now.
Precheck = Callable[[AsyncSession, Update, Context, datetime], Awaitable[str | None]]


@dataclass(frozen=True)
class Frame:
    """How an update enters the frame.

    `write`: one write transaction (else a read one, and the person is not touched).
    `acting_chat`: the chat acts, not the member who sent the update: a group redeeming its
    invite, a chat that blocked the bot or moved to a supergroup. The acting person is then
    the chat (a group's own Person row), and a group need not be registered yet.
    `known_only`: find the acting person, never create one, and leave their reachability to
    the feature (updates *about* a chat: my_chat_member, migrations); unknown ones are ignored.
    `precheck`: a refusal decided before the write lock (see `Precheck`).
    """

    write: bool = True
    acting_chat: bool = False
    known_only: bool = False
    precheck: Precheck | None = None


# A person's update in one write transaction (most handlers), or in a read one (answers that
# change nothing: heavy reports, an edited message).
WRITING = Frame()
READING = Frame(write=False)


class _Refused(Exception):
    """Carry a refusal out of the transaction so that it rolls back."""

    def __init__(self, ctx: Ctx, key: str) -> None:
        super().__init__("refused")
        self.ctx = ctx
        self.key = key


async def _audit_refusal(rt: Runtime, update: Update, key: str) -> None:
    """Record a refused attempt (a stranger's command, a forged button) in the audit log."""
    user = update.effective_user
    message = update.effective_message
    query = update.callback_query
    attempt = (query.data if query is not None else message.text if message else None) or ""
    try:
        async with rt.db.write() as session:
            await record_refusal(
                session, user.id if user else 0, now=rt.clock(), attempt=attempt, reason=key
            )
    except Exception:  # the refusal is answered even if the audit cannot be written
        log.warning("could not audit a refused attempt", exc_info=True)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def without_nul(update: Update, context: Context) -> Update:
    """Return the update with NUL characters removed from every string (and the args)."""
    # JSON writes NUL as \u0000: one serialisation answers for every string at once.
    if "\\u0000" not in update.to_json():
        return update
    # PostgreSQL cannot store or even compare a text holding NUL; no person means one.
    if context.args is not None:
        context.args = [a for a in (arg.replace("\x00", "") for arg in context.args) if a]
    return Update.de_json(_strip_nul(update.to_dict()), context.bot)


async def run_feature(
    update: Update,
    context: Context,
    feature: Feature,
    *,
    frame: Frame = WRITING,
) -> None:
    """Run a feature in one transaction, retrying a briefly unavailable database, then reply.

    `frame` says how the update enters (see `Frame`): by default a person's update in one
    write transaction.
    """
    rt = runtime(context)
    update = without_nul(update, context)
    user, chat = update.effective_user, update.effective_chat
    if chat is None or (user is None and not frame.acting_chat):
        return
    throttle = throttle_of(context.application.bot_data)
    group = is_group(update)
    if frame.precheck is not None:
        async with rt.db.read() as session:
            refusal = await frame.precheck(session, update, context, rt.clock())
        if refusal is not None:
            if user is None or throttle.answer_stranger(user.id, chat.id, group=group):
                await _send(update, context, [Reply(t(refusal, rt.default_language))])
            return
    deadline = asyncio.get_running_loop().time() + DB_RETRY_SECONDS
    delay = 0.2
    while True:
        try:
            ctx = await _attempt(update, context, rt, feature, frame)
            break
        except _Refused as refused:
            ctx = refused.ctx
            await _audit_refusal(rt, update, refused.key)
            break
        except Exception as exc:
            if not _transient(exc):
                raise
            if asyncio.get_running_loop().time() + delay > deadline:
                log.warning("database unavailable; asking the person to send again")
                await _send(update, context, [Reply(t("error.database", rt.default_language))])
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    if ctx is None:
        return
    if ctx.pushed:
        rt.poke_sender()
    registered = ctx.registered if ctx.registered is not None else ctx.caller is not None
    if user is not None and not (frame.acting_chat and group):
        # What the throttle knows is about the member; a group's role is not theirs.
        throttle.learn(user.id, registered=registered)
    if (
        ctx.replies
        and not registered
        and (user is None or not throttle.answer_stranger(user.id, chat.id, group=group))
    ):
        # A stranger is answered once every few minutes (once an hour in a group): their
        # refusals must not use up the chat's sending budget (issue 14).
        ctx.replies = [Reply(toast=r.toast) for r in ctx.replies if r.toast][:1]
    await _send(update, context, ctx.replies)


async def _acting_person(
    session: AsyncSession, update: Update, frame: Frame, now: datetime
) -> m.Person | None:
    """Return the person the update acts as (see `Frame`), touched or only found."""
    user, chat = update.effective_user, update.effective_chat
    assert chat is not None
    as_group = frame.acting_chat and is_group(update)
    if frame.acting_chat:
        telegram_id = chat.id
    else:
        assert user is not None
        telegram_id = user.id
    if frame.known_only or not frame.write:
        return await find_person(session, telegram_id)
    if as_group:
        return await touch_person(
            session, telegram_id, now=now, name=chat.title or "", is_group=True
        )
    assert user is not None
    return await touch_person(
        session, telegram_id, now=now, name=user.full_name, username=user.username
    )


async def _attempt(
    update: Update, context: Context, rt: Runtime, feature: Feature, frame: Frame
) -> Ctx | None:
    chat = update.effective_chat
    assert chat is not None
    now = rt.clock()
    transaction = rt.db.write() if frame.write else rt.db.read()
    async with transaction as session:
        if is_group(update) and not frame.acting_chat and not await holds_role(session, chat.id):
            return None  # unregistered groups get silence (SPEC §4.5)
        person = await _acting_person(session, update, frame, now)
        if frame.known_only and person is None:
            return None  # nothing duban knows is concerned
        reopened = False
        speaks = chat.type == ChatType.PRIVATE or frame.acting_chat
        if person is not None and not person.reachable and speaks and not frame.known_only:
            # Writing to the bot proves the chat is open again (a group's: the bot is in it).
            change = await reachability.became_reachable(
                session, person, "wrote", now=now, default_language=rt.default_language
            )
            reopened = change.notices > 0
        caller = await load_caller(session, person.telegram_id) if person is not None else None
        ctx = Ctx(rt, session, update, context, now, person, caller, language(rt, person))
        ctx.pushed = reopened
        try:
            await feature(ctx)
        except DubanError as exc:
            # Nothing of a refused action is kept: leaving the block by an exception rolls
            # the transaction back; then the person is told why, in one line.
            # Refusals tell whom to turn to: the campaign's office, or the neutral one.
            text = t(exc.key, ctx.lang, **{"office": await office_name(ctx), **exc.params})
            ctx.replies = [Reply(text, toast=text)]
            ctx.pushed = False
            raise _Refused(ctx, exc.key) from None
    return ctx


def topic_of(update: Update) -> int | None:
    """Return the forum topic (`message_thread_id`) an update came from, or None.

    Only a message in a forum topic (`is_topic_message`) names one: in other supergroups a
    thread id only marks a reply chain, and sending with it would be refused.
    """
    message: Any = update.effective_message
    query = update.callback_query
    if query is not None:
        message = query.message
    if isinstance(message, Message) and message.is_topic_message:
        return message.message_thread_id
    return None


async def _send(update: Update, context: Context, replies: list[Reply]) -> None:
    query = update.callback_query
    toast = next((r.toast for r in replies if r.toast), None)
    # Every answer goes to the topic it was asked in (SPEC §4.5).
    thread = topic_of(update)
    if query is not None:
        # A button press is always answered, or the client shows a spinner; a lost answer
        # only leaves the spinner, so the replies still go out.
        try:
            await query.answer(text=(toast or "")[:190] or None)
        except TelegramError as exc:
            log.warning("could not answer a button press: %s", exc)
    for reply in replies:
        if not (reply.text or reply.document or reply.photo or reply.file):
            continue
        if reply.edit and query is not None and isinstance(query.message, Message):
            await query.message.edit_text(
                reply.text, parse_mode=ParseMode.HTML, reply_markup=keyboard(reply.buttons)
            )
            continue
        chat = update.effective_chat
        assert chat is not None
        bot = context.bot
        caption = reply.text or None
        markup = keyboard(reply.buttons)
        if reply.file:
            kind, file_id = reply.file
            # send_document, send_photo, send_video, send_audio or send_voice, by file_id.
            send = getattr(bot, f"send_{kind}")
            await send(
                chat.id,
                file_id,
                message_thread_id=thread,
                caption=caption,
                parse_mode=ParseMode.HTML,
            )
            continue
        if reply.document:
            await bot.send_document(
                chat.id,
                _upload(reply.document, reply.filename),
                message_thread_id=thread,
                caption=caption,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
            continue
        if reply.photo:
            await bot.send_photo(
                chat.id,
                _upload(reply.photo, reply.filename),
                message_thread_id=thread,
                caption=caption,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
            )
            continue
        parts = split_text(reply.text)
        for i, part in enumerate(parts):
            markup = (reply.markup or keyboard(reply.buttons)) if i == len(parts) - 1 else None
            await bot.send_message(
                chat.id,
                part,
                message_thread_id=thread,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                disable_web_page_preview=True,
            )


def _upload(content: str | bytes, filename: str | None) -> str | InputFile:
    """Pass a file_id through; wrap bytes made here as an upload with its name."""
    if isinstance(content, bytes):
        return InputFile(content, filename=filename)
    return content


def command(name: str, feature: Feature, *, write: bool = True) -> CommandHandler[Context, None]:
    """Return a CommandHandler that runs `feature` in the frame."""

    frame = WRITING if write else READING

    async def callback(update: Update, context: Context) -> None:
        await run_feature(update, context, feature, frame=frame)

    return CommandHandler(name, callback)


def pressed(ctx: Ctx, *kinds: Kind) -> Pressed:
    """Return the pressed button, one of `kinds`; refuse data none of them can hold."""
    query = ctx.update.callback_query
    assert query is not None
    return parse(query.data, *kinds)


def button(
    feature: Feature, *kinds: Kind, write: bool = True
) -> CallbackQueryHandler[Context, None]:
    """Return a CallbackQueryHandler that runs `feature` for these kinds of button.

    Without kinds it takes every press (the catch-all for buttons nobody claims).
    """

    frame = WRITING if write else READING

    async def callback(update: Update, context: Context) -> None:
        await run_feature(update, context, feature, frame=frame)

    return CallbackQueryHandler(callback, pattern=prefix_pattern(*kinds) if kinds else None)


async def reply(update: Update, text: str) -> None:
    """Answer in the chat the update came from, as HTML."""
    message = update.effective_message
    if message is not None:
        await message.reply_text(
            text,
            parse_mode=ParseMode.HTML,
            disable_web_page_preview=True,
            message_thread_id=topic_of(update),
        )


async def office_name(ctx: Ctx) -> str:
    """Return whom this person turns to: their campaign's `[campaign] office`, or the neutral
    "the office" (for a stranger: the only active campaign's office, if it names one)."""
    campaign = ctx.caller.campaign if ctx.caller is not None else None
    named = await office_for(ctx.session, campaign)
    return named or t("office.default", ctx.lang)
