"""Tests for the local Bot API server, driven by a real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from sandbox.botapi import Faults, Limits, LocalBotAPI, parse_html, utf16_len
from sandbox.botapi.htmlcheck import HTMLParseError

TOKEN = "123456:TEST-token"


@pytest.fixture(autouse=True)
def _timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # Opt in to PTB's future behaviour so RetryAfter.retry_after does not warn.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def srv() -> AsyncIterator[LocalBotAPI]:
    async with LocalBotAPI(token=TOKEN, limits=Limits.off()) as server:
        yield server


@pytest.fixture
async def bot(srv: LocalBotAPI) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=srv.base_url, base_file_url=srv.base_file_url) as client:
        yield client


@asynccontextmanager
async def running_app(
    srv: LocalBotAPI, handlers: Iterable[BaseHandler[Any, Any, Any]]
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """Run a real PTB Application that long-polls the fake server."""
    app = (
        ApplicationBuilder()
        .token(srv.token)
        .base_url(srv.base_url)
        .base_file_url(srv.base_file_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


# ---------------------------------------------------------------------- basics


async def test_get_me_and_token_check(srv: LocalBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "duban_test_bot", True)
    async with httpx.AsyncClient() as client:
        wrong = await client.post(f"{srv.base_url}999:nope/getMe")
        unknown = await client.post(f"{srv.base_url}{TOKEN}/frobnicate")
    assert wrong.status_code == 401
    assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert unknown.status_code == 404
    assert unknown.json()["description"] == "Not Found"
    with pytest.raises(InvalidToken):
        async with Bot("999:nope", base_url=srv.base_url):  # initialize() calls getMe
            pass


async def test_params_as_json_form_and_query(srv: LocalBotAPI) -> None:
    user = srv.add_user(started=True)
    markup = {"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}
    url = f"{srv.base_url}{TOKEN}/sendMessage"
    async with httpx.AsyncClient() as client:
        # reply_markup as a JSON string inside a JSON body, as some clients send it
        r1 = await client.post(
            url, json={"chat_id": user.id, "text": "json", "reply_markup": json.dumps(markup)}
        )
        r2 = await client.post(
            url, data={"chat_id": str(user.id), "text": "123", "reply_markup": json.dumps(markup)}
        )
        r3 = await client.get(url, params={"chat_id": user.id, "text": "query"})
    assert [r.status_code for r in (r1, r2, r3)] == [200, 200, 200]
    assert srv.texts_to(user) == ["json", "123", "query"]  # "123" stays text
    assert srv.sent[0]["reply_markup"] == markup
    assert srv.requests[-2].params["chat_id"] == user.id
    assert srv.rejected == []


# ---------------------------------------------------------------------- HTML and lengths


async def test_html_is_parsed_into_entities(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user(started=True)
    msg = await bot.send_message(
        user.id, "<b>粗 &amp; 😀</b> <a href='https://e.x/?a=1&b=2'>链接</a>", parse_mode="HTML"
    )
    assert msg.text == "粗 & 😀 链接"
    assert [(e.type, e.offset, e.length) for e in msg.entities] == [
        ("bold", 0, 6),
        ("text_link", 7, 2),
    ]
    assert msg.entities[1].url == "https://e.x/?a=1&b=2"
    assert srv.texts_to(user) == ["粗 & 😀 链接"]
    assert srv.requests[-1].params["text"].startswith("<b>")


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b" at byte offset 0'),
        ("<b><i>x</b></i>", 'Unmatched end tag, expected "</i>", found "</b>" at byte offset 7'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("Tom & Jerry", "at byte offset 4"),
        ("a > b", "at byte offset 2"),
        ("中<x>", 'Unsupported start tag "x" at byte offset 3'),
        ('<span class="x">s</span>', 'Tag "span" must have class "tg-spoiler"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
    ],
)
async def test_bad_html_is_rejected(srv: LocalBotAPI, bot: Bot, html: str, reason: str) -> None:
    user = srv.add_user(started=True)
    with pytest.raises(BadRequest, match="an't parse entities") as exc:
        await bot.send_message(user.id, html, parse_mode="HTML")
    assert "an't parse entities" in str(exc.value)
    rejected = srv.rejected[-1]
    assert rejected.response_status == 400
    assert rejected.description is not None
    assert rejected.description.startswith("Bad Request: can't parse entities: ")
    assert reason in rejected.description
    assert srv.sent == []


def test_htmlcheck_details() -> None:
    parsed = parse_html(
        "<pre><code class='language-py'>x</code></pre> <code class='language-c'>y</code>"
        " <blockquote expandable>q</blockquote> &#x1F600;&#39;<tg-spoiler>s</tg-spoiler>"
    )
    assert parsed.text == "x y q 😀's"
    assert parsed.entities == [
        {"type": "pre", "offset": 0, "length": 1, "language": "py"},
        {"type": "code", "offset": 2, "length": 1},
        {"type": "expandable_blockquote", "offset": 4, "length": 1},
        {"type": "spoiler", "offset": 9, "length": 1},
    ]
    assert utf16_len("😀a") == 3
    with pytest.raises(HTMLParseError, match="byte offset 0"):
        parse_html("&nbsp;")
    with pytest.raises(HTMLParseError, match="Unclosed start tag"):
        parse_html("<a href='x>y")


async def test_text_length_limits_count_utf16_after_parsing(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user(started=True)
    await bot.send_message(user.id, "a" * 4096)
    await bot.send_message(user.id, "😀" * 2048)  # 2 UTF-16 units each
    await bot.send_message(user.id, "<b>" + "&lt;" * 4096 + "</b>", parse_mode="HTML")
    for text in ("a" * 4097, "😀" * 2048 + "a"):
        with pytest.raises(BadRequest, match="Message is too long"):
            await bot.send_message(user.id, text)
    for text in ("   ", "<b></b>"):
        with pytest.raises(BadRequest, match="Message text is empty"):
            await bot.send_message(user.id, text, parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_document(user.id, b"x", filename="a.txt", caption="c" * 1025)
    await bot.send_document(user.id, b"x", filename="a.txt", caption="c" * 1024)
    assert len(srv.sent) == 4


async def test_reply_markup_validation(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user(started=True)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(user.id, "hi", reply_markup=too_long)
    async with httpx.AsyncClient() as client:
        no_text = await client.post(
            f"{srv.base_url}{TOKEN}/sendMessage",
            json={
                "chat_id": user.id,
                "text": "hi",
                "reply_markup": {"inline_keyboard": [[{"callback_data": "x"}]]},
            },
        )
    assert no_text.status_code == 400
    assert "inline keyboard button" in no_text.json()["description"]
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("确认", callback_data="d" * 64)]])
    await bot.send_message(user.id, "hi", reply_markup=ok)


# ---------------------------------------------------------------------- chats


async def test_unknown_blocked_and_unstarted_chats(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user()
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(user.id, "never wrote to the bot")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(-987, "no such group")
    group = srv.add_group("办公室群")
    srv.send_text(user, "hello group", chat=group)
    with pytest.raises(Forbidden, match="initiate conversation"):
        await bot.send_message(user.id, "seen only in the group")
    await bot.send_message(group.id, "group is fine")
    srv.send_text(user, "/start")
    await bot.send_message(user.id, "now the private chat is open")
    srv.block(user)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(user.id, "blocked")
    srv.unblock(user)
    await bot.send_message(user.id, "unblocked")
    srv.kick_bot(group)
    with pytest.raises(Forbidden, match="kicked"):
        await bot.send_message(group.id, "kicked")
    assert srv.texts_to(user) == ["now the private chat is open", "unblocked"]
    assert (await bot.get_chat(group.id)).title == "办公室群"
    member = await bot.get_chat_member(group.id, user.id)
    assert member.status == "member"


async def test_group_migration(srv: LocalBotAPI, bot: Bot) -> None:
    group = srv.add_group("老群")
    await bot.send_message(group.id, "before")
    supergroup = srv.migrate_group(group)
    assert supergroup.type == "supergroup" and supergroup.id < -1_000_000_000_000
    with pytest.raises(ChatMigrated) as exc:
        await bot.send_message(group.id, "after")
    assert exc.value.new_chat_id == supergroup.id
    rejected = srv.rejected[-1]
    assert rejected.response_status == 400
    await bot.send_message(supergroup.id, "after")
    updates = await bot.get_updates()
    assert updates[0].message is not None and updates[0].message.migrate_to_chat_id == supergroup.id
    assert updates[1].message is not None and updates[1].message.migrate_from_chat_id == group.id


# ---------------------------------------------------------------------- rate limits


async def test_per_chat_limit_answers_retry_after_and_counts_violations() -> None:
    async with LocalBotAPI(token=TOKEN) as srv:  # Telegram's default limits
        user = srv.add_user(started=True)
        async with Bot(TOKEN, base_url=srv.base_url) as bot:
            await bot.send_message(user.id, "one")
            with pytest.raises(RetryAfter) as exc:
                await bot.send_message(user.id, "two")
            assert exc.value.retry_after == dtm.timedelta(seconds=1)
            assert srv.rejected[-1].response_status == 429
            assert srv.retry_after_violations == 0
            with pytest.raises(RetryAfter):  # ignoring retry_after
                await bot.send_message(user.id, "three")
            assert srv.retry_after_violations == 1
            assert srv.violations[0].scope == f"chat:{user.id}"
            other = srv.add_user(started=True)
            await bot.send_message(other.id, "other chats are not affected")
            await asyncio.sleep(1.0)
            await bot.send_message(user.id, "after waiting")
        assert srv.count_429 == 2
        assert srv.retry_after_violations == 1
        assert srv.texts_to(user) == ["one", "after waiting"]


async def test_global_and_group_limits() -> None:
    limits = Limits(global_per_second=3, per_chat_per_second=100, per_group_per_minute=2)
    async with (
        LocalBotAPI(token=TOKEN, limits=limits) as srv,
        Bot(TOKEN, base_url=srv.base_url) as bot,
    ):
        users = [srv.add_user(started=True) for _ in range(4)]
        for user in users[:3]:
            await bot.send_message(user.id, "x")
        with pytest.raises(RetryAfter):
            await bot.send_message(users[3].id, "x")
        with pytest.raises(RetryAfter):  # the global retry_after covers every chat
            await bot.send_message(users[0].id, "x")
        assert [v.scope for v in srv.violations] == ["global"]

    limits = Limits(per_chat_per_second=100, per_group_per_minute=2)
    async with (
        LocalBotAPI(token=TOKEN, limits=limits) as srv,
        Bot(TOKEN, base_url=srv.base_url) as bot,
    ):
        group = srv.add_group()
        await bot.send_message(group.id, "1")
        await bot.send_message(group.id, "2")
        with pytest.raises(RetryAfter) as exc:
            await bot.send_message(group.id, "3")
        retry_after = exc.value.retry_after
        assert isinstance(retry_after, dtm.timedelta)
        assert dtm.timedelta(seconds=59) <= retry_after <= dtm.timedelta(seconds=60)
        user = srv.add_user(started=True)
        await bot.get_me()  # not rate limited
        await bot.send_message(user.id, "private chats still work")


async def test_disabled_limits_never_answer_429(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user(started=True)
    await asyncio.gather(*(bot.send_message(user.id, f"m{i}") for i in range(40)))
    assert srv.count_429 == 0 and len(srv.sent_to(user)) == 40
    ids = [m["message_id"] for m in srv.sent_to(user)]
    assert sorted(ids) == list(range(1, 41))


# ---------------------------------------------------------------------- files


async def test_document_upload_get_file_and_download(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user(started=True)
    content = bytes(range(256)) * 10
    msg = await bot.send_document(
        user.id, content, filename="报告.pdf", caption="<b>c</b>", parse_mode="HTML"
    )
    assert msg.document is not None
    assert (msg.document.file_name, msg.document.file_size) == ("报告.pdf", len(content))
    assert msg.document.mime_type == "application/pdf"
    assert msg.caption == "c"
    assert srv.requests[-1].params["document"]["size"] == len(content)
    tg_file = await bot.get_file(msg.document.file_id)
    assert bytes(await tg_file.download_as_bytearray()) == content

    again = await bot.send_document(user.id, msg.document.file_id)  # reuse by file_id
    assert again.document is not None and again.document.file_id == msg.document.file_id

    upd = srv.send_document(user, file_name="来文.xlsx", content=b"PK\x03\x04data")
    file_id = upd["message"]["document"]["file_id"]
    incoming = await bot.get_file(file_id)
    assert bytes(await incoming.download_as_bytearray()) == b"PK\x03\x04data"

    photo = await bot.send_photo(user.id, b"\xff\xd8jpeg", caption="pic")
    assert photo.photo[-1].width > 0
    photo_upd = srv.send_photo(user, content=b"\xff\xd8img")
    photo_file = await bot.get_file(photo_upd["message"]["photo"][-1]["file_id"])
    assert bytes(await photo_file.download_as_bytearray()) == b"\xff\xd8img"
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("nope")


async def test_get_file_refuses_more_than_20_mb(srv: LocalBotAPI, bot: Bot) -> None:
    # The cloud Bot API lets bots download files of up to 20 MB; getFile refuses bigger ones.
    user = srv.add_user(started=True)
    limit = 20 * 1024 * 1024
    just = srv.send_document(user, file_name="a.zip", content=b"x" * limit)
    over = srv.send_document(user, file_name="b.zip", content=b"x" * (limit + 1))
    found = await bot.get_file(just["message"]["document"]["file_id"])
    assert found.file_size == limit and found.file_path
    with pytest.raises(BadRequest, match="too big"):
        await bot.get_file(over["message"]["document"]["file_id"])


async def test_copy_forward_edit_delete(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user(started=True)
    group = srv.add_group()
    upd = srv.send_document(user, file_name="a.pdf", content=b"%PDF", caption="原件")
    source = upd["message"]
    copied = await bot.copy_message(group.id, user.id, source["message_id"])
    assert srv.sent_to(group)[0]["document"]["file_id"] == source["document"]["file_id"]
    assert srv.sent_to(group)[0]["message_id"] == copied.message_id
    forwarded = await bot.forward_message(group.id, user.id, source["message_id"])
    assert forwarded.forward_origin is not None

    sent = await bot.send_message(user.id, "v1")
    edited = await bot.edit_message_text("<i>v2</i>", user.id, sent.message_id, parse_mode="HTML")
    assert isinstance(edited, Message) and edited.text == "v2"
    assert srv.texts_to(user) == ["v2"]
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("<i>v2</i>", user.id, sent.message_id, parse_mode="HTML")
    assert await bot.delete_message(user.id, sent.message_id)
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(user.id, sent.message_id)
    assert srv.deleted == [(user.id, sent.message_id)]


async def test_command_menu_by_scope_and_language(srv: LocalBotAPI, bot: Bot) -> None:
    zh = srv.add_user(started=True, language_code="zh")
    en = srv.add_user(started=True, language_code="en")
    assert srv.menu(zh) == []
    await bot.set_my_commands([("help", "帮助")])
    await bot.set_my_commands([("status", "进度")], scope=BotCommandScopeAllPrivateChats())
    await bot.set_my_commands(
        [("status", "Progress")], scope=BotCommandScopeAllPrivateChats(), language_code="en"
    )
    # The narrowest scope wins; within it, the user's language before the list for all.
    assert [c["description"] for c in srv.menu(zh)] == ["进度"]
    assert [c["description"] for c in srv.menu(en)] == ["Progress"]
    await bot.set_my_commands([("mine", "本单位")], scope=BotCommandScopeChat(zh.id))
    assert [c["command"] for c in srv.menu(zh)] == ["mine"]
    assert [c["command"] for c in srv.menu(en)] == ["status"]


async def test_history_both_ways_file_bytes_and_clock() -> None:
    moments = iter([1_800_000_000.0, 1_800_000_060.0, 1_800_000_120.0])
    async with (
        LocalBotAPI(token=TOKEN, limits=Limits.off(), clock=lambda: next(moments)) as srv,
        Bot(TOKEN, base_url=srv.base_url, base_file_url=srv.base_file_url) as bot,
    ):
        user = srv.add_user(started=True)
        srv.send_text(user, "/start")
        sent = await bot.send_document(user.id, b"%PDF-1", filename="a.pdf")
        gone = await bot.send_message(user.id, "bye")
        await bot.delete_message(user.id, gone.message_id)
        history = srv.history(user)
        assert [m["message_id"] for m in history] == [1, 2]
        assert history[0]["from"]["id"] == user.id and history[1]["from"]["is_bot"]
        # Message dates follow the server's clock (the sandbox moves it).
        assert [m["date"] for m in history] == [1_800_000_000, 1_800_000_060]
        assert sent.document is not None
        assert srv.file(sent.document.file_id) == (b"%PDF-1", "application/pdf", "a.pdf")
        assert srv.file("nope") is None


# ---------------------------------------------------------------------- updates


async def test_application_start_command_round_trip(srv: LocalBotAPI) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"hello {context.args}")

    user = srv.add_user(first_name="联络员")
    async with running_app(srv, [CommandHandler("start", start)]):
        srv.send_text(user, "/start CODE")
        await srv.wait_for(lambda s: s.texts_to(user), timeout=3)
    assert srv.texts_to(user) == ["hello ['CODE']"]
    assert srv.rejected == []
    assert srv.pending_updates == []  # confirmed by the final getUpdates offset


async def test_callback_button_round_trip(srv: LocalBotAPI) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("完成", callback_data="done:7")]])
        await update.effective_message.reply_text("任务 7", reply_markup=keyboard)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("已记录")
        await query.edit_message_text(f"已完成 ({query.data})")

    user = srv.add_user()
    handlers = [CommandHandler("start", start), CallbackQueryHandler(pressed)]
    async with running_app(srv, handlers):
        srv.send_text(user, "/start")
        [message] = await srv.wait_for(lambda s: s.sent_to(user), timeout=3)
        with pytest.raises(ValueError, match="no button"):
            srv.press_button(user, message, "other")
        srv.press_button(user, message, "done:7")
        await srv.wait_for(lambda s: s.edits, timeout=3)
    assert srv.texts_to(user) == ["已完成 (done:7)"]
    assert "reply_markup" not in srv.sent_to(user)[0]  # edit without markup drops it
    assert srv.callback_answers[0]["text"] == "已记录"
    assert srv.rejected == []


async def test_long_poll_returns_promptly_and_offset_confirms(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    srv.send_text(user, "hi")
    updates = await asyncio.wait_for(poll, 1)
    assert time.monotonic() - started < 0.5
    assert [u.message.text for u in updates if u.message] == ["hi"]
    assert len(await bot.get_updates()) == 1  # not confirmed yet
    assert await bot.get_updates(offset=updates[0].update_id + 1) == ()
    started = time.monotonic()
    assert await bot.get_updates(timeout=dtm.timedelta(seconds=0.2)) == ()
    assert time.monotonic() - started >= 0.2


async def test_second_poller_conflicts(srv: LocalBotAPI, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=2))
    await asyncio.sleep(0.1)
    # A second Bot: one Bot's getUpdates connection pool would serialize the two polls.
    async with Bot(TOKEN, base_url=srv.base_url) as other_instance:
        second = asyncio.create_task(other_instance.get_updates(timeout=dtm.timedelta(seconds=0.3)))
        with pytest.raises(Conflict, match="terminated by other getUpdates"):
            await asyncio.wait_for(first, 1)
        assert await second == ()
    assert [r.response_status for r in srv.calls("getUpdates")] == [409, 200]


async def test_webhook_delivery_and_getupdates_conflict(srv: LocalBotAPI, bot: Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    fail_first = [True]

    async def hook(request: web.Request) -> web.Response:
        if fail_first.pop() if fail_first else False:
            return web.Response(status=500)  # Telegram retries failed deliveries
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    srv.webhook_retry_delay = 0.05
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook")
        user = srv.add_user()
        srv.send_text(user, "/start")
        await srv.wait_for(lambda s: received, timeout=3)
        assert received[0][0] == "s3cret"
        assert received[0][1]["message"]["text"] == "/start"
        assert (await bot.get_webhook_info()).last_error_message is not None
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        await bot.delete_webhook()
        srv.send_text(user, "polled")
        assert [u.message.text for u in await bot.get_updates() if u.message] == ["polled"]
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------- faults


async def test_faults_errors_and_drops_are_not_rejections(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user(started=True)
    srv.faults = Faults(error_rate=1.0, status=502)
    with pytest.raises(NetworkError):
        await bot.send_message(user.id, "x")
    srv.faults = Faults(drop_rate=1.0)
    with pytest.raises(NetworkError):
        await bot.send_message(user.id, "x")
    assert await bot.get_me()  # not a sending method
    srv.faults = Faults(error_rate=0.5, seed=1)
    outcomes = []
    for i in range(20):
        try:
            await bot.send_message(user.id, f"m{i}")
            outcomes.append(True)
        except NetworkError:
            outcomes.append(False)
    assert 0 < sum(outcomes) < 20
    assert [r.fault for r in srv.calls("sendMessage")[:2]] == ["error", "drop"]
    assert srv.rejected == []
    assert len(srv.sent) == sum(outcomes)


async def test_commands_and_menu_button(srv: LocalBotAPI, bot: Bot) -> None:
    from telegram import BotCommand, BotCommandScopeAllPrivateChats

    scope = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands([BotCommand("start", "开始")], scope=scope, language_code="zh")
    commands = await bot.get_my_commands(scope=scope, language_code="zh")
    assert [c.command for c in commands] == ["start"]
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad-Name", "x")])
    await bot.delete_my_commands(scope=scope, language_code="zh")
    assert await bot.get_my_commands(scope=scope, language_code="zh") == ()
    assert await bot.set_chat_menu_button()
    assert await bot.log_out() and await bot.close()


async def test_control_api_and_command_entities(srv: LocalBotAPI) -> None:
    async with httpx.AsyncClient(base_url=srv.url) as client:
        added = await client.post("/_control/add_user", json={"first_name": "远程"})
        user = added.json()["result"]
        sent = await client.post(
            "/_control/send_text", json={"user_id": user["id"], "text": "😀 /help@duban_test_bot x"}
        )
        state = await client.post("/_control/state")
    update = sent.json()["result"]
    assert srv.pending_updates == [update]
    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 3, "length": 20}]
    assert state.json()["result"]["pending_updates"] == 1


# ---------------------------------------------------------------------- message kinds


async def test_album_parts_share_a_media_group_and_the_caption_rides_on_the_first(
    srv: LocalBotAPI, bot: Bot
) -> None:
    user = srv.add_user(started=True)
    items = [
        ("document", "调研报告.docx", b"PK docx"),
        ("document", "台账.xlsx", b"PK xlsx"),
        ("document", "典型案例.pdf", b"%PDF"),
    ]
    sent = srv.send_album(user, items, caption="说明：附件第3页数据为初步统计")
    updates = [Update.de_json(u, bot) for u in sent]
    messages = [u.message for u in updates]
    assert all(m is not None for m in messages)
    groups = {m.media_group_id for m in messages if m is not None}
    assert len(groups) == 1 and None not in groups
    assert [m.caption for m in messages if m is not None] == [
        "说明：附件第3页数据为初步统计",
        None,
        None,
    ]
    names = [m.document.file_name for m in messages if m is not None and m.document]
    assert names == ["调研报告.docx", "台账.xlsx", "典型案例.pdf"]
    # Each part is its own update, with its own update_id.
    assert len({u.update_id for u in updates}) == 3
    part = await bot.get_file(messages[1].document.file_id)  # type: ignore[union-attr]
    assert bytes(await part.download_as_bytearray()) == b"PK xlsx"


async def test_video_audio_voice_sticker_and_location_messages(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user(started=True)
    video = Update.de_json(
        srv.send_media(user, "video", b"\x00" * 1000, caption="会议录像", file_name="会议.mp4"),
        bot,
    ).message
    assert video is not None and video.video is not None and video.caption == "会议录像"
    assert (video.video.file_name, video.video.file_size) == ("会议.mp4", 1000)
    audio = Update.de_json(srv.send_media(user, "audio", b"mp3", file_name="录音.mp3"), bot)
    assert audio.message is not None and audio.message.audio is not None
    voice = Update.de_json(srv.send_media(user, "voice", b"ogg"), bot).message
    assert voice is not None and voice.voice is not None and voice.voice.mime_type == "audio/ogg"
    sticker = Update.de_json(srv.send_media(user, "sticker", b"webp"), bot).message
    assert sticker is not None and sticker.sticker is not None and sticker.effective_attachment
    location = Update.de_json(srv.send_media(user, "location"), bot).message
    assert location is not None and location.location is not None
    assert location.location.latitude == pytest.approx(36.195)
    got = await bot.get_file(voice.voice.file_id)
    assert bytes(await got.download_as_bytearray()) == b"ogg"
    # The bot can copy any of them on (to the office).
    office = srv.add_user(started=True)
    for message in (video, voice, sticker, location):
        await bot.copy_message(office.id, user.id, message.message_id)
    assert len(srv.sent_to(office)) == 4


async def test_forum_topics_carry_the_thread_both_ways(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user()
    forum = srv.add_group("办公室工作群", forum=True, members=[user])
    assert forum.is_forum and forum.type == "supergroup"
    topic = srv.create_topic(forum, "督办", thread_id=42)
    assert topic == 42
    incoming = Update.de_json(srv.send_text(user, "/status@bot", chat=forum, thread_id=42), bot)
    message = incoming.message
    assert message is not None and message.chat.is_forum
    assert message.message_thread_id == 42 and message.is_topic_message
    # A send with the thread lands in the topic; without it, in General.
    in_topic = await bot.send_message(forum.id, "答复", message_thread_id=42)
    assert in_topic.message_thread_id == 42 and in_topic.is_topic_message
    general = await bot.send_message(forum.id, "通知")
    assert general.message_thread_id is None
    with pytest.raises(BadRequest, match="thread not found"):
        await bot.send_message(forum.id, "lost", message_thread_id=999)
    doc = await bot.send_document(forum.id, b"x", filename="a.pdf", message_thread_id=42)
    assert doc.message_thread_id == 42
    with pytest.raises(ValueError, match="no topic"):
        srv.send_text(user, "hi", chat=forum, thread_id=7)


async def test_edited_message_keeps_the_id_and_gains_an_edit_date(
    srv: LocalBotAPI, bot: Bot
) -> None:
    user = srv.add_user(started=True)
    first = srv.send_text(user, "/invite contact 甲县")
    edited = Update.de_json(srv.edit_text(user, first, "/invite contact 甲县"), bot)
    assert edited.message is None and edited.edited_message is not None
    assert edited.edited_message.message_id == first["message"]["message_id"]
    assert edited.edited_message.edit_date is not None
    assert edited.edited_message.text == "/invite contact 甲县"
    assert edited.edited_message.entities[0].type == "bot_command"


async def test_more_than_100_entities_keep_the_first_100_and_are_flagged(
    srv: LocalBotAPI, bot: Bot
) -> None:
    user = srv.add_user(started=True)
    ok = await bot.send_message(user.id, " ".join(["<b>x</b>"] * 100), parse_mode="HTML")
    assert len(ok.entities) == 100 and srv.entity_overflows == []
    over = await bot.send_message(user.id, " ".join(["<b>x</b>"] * 106), parse_mode="HTML")
    assert len(over.entities) == 100
    assert srv.entity_overflows == [("text", 106)]


async def test_an_album_can_be_handed_back_undelivered(srv: LocalBotAPI, bot: Bot) -> None:
    user = srv.add_user(started=True)
    parts = srv.send_album(user, [("document", "a.pdf", b"a"), ("photo", "", b"p")], deliver=False)
    assert [p["message"]["media_group_id"] for p in parts] == [
        parts[0]["message"]["media_group_id"]
    ] * 2
    assert len({p["update_id"] for p in parts}) == 2
    assert await bot.get_updates(timeout=0) == ()  # nothing queued: the test posts them itself
    srv.send_text(user, "next")
    [update] = await bot.get_updates(timeout=0)
    assert update.update_id > parts[-1]["update_id"]
