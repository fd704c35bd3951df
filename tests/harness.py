"""Handler tests: the real Application with the network replaced at PTB's request layer.

`OfflineRequest` answers the Bot API like Telegram would (validating HTML and lengths with the
fake server's checker), records every call, and never opens a socket. `Harness` feeds real
`telegram.Update` objects through the real Application with every handler registered.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

from bot.app import build_application
from bot.config import Config, load_config
from bot.db import models as m
from bot.db.engine import Database
from bot.plan import parse_plan
from bot.services.campaigns import pick_campaign
from bot.services.invites import create_invite
from bot.services.lookup import find_unit
from bot.services.plan_load import load_plan_into
from sandbox.botapi.htmlcheck import HTMLParseError, parse_html, utf16_len
from scheduler.limits import RateLimits
from tests.conftest import EXAMPLE

TOKEN = "555000:HARNESS"
BOT_ID = 555000
BOT_USERNAME = "duban_test_bot"


class TelegramRefused(AssertionError):
    """The bot made a request Telegram would reject (bad HTML, too long, bad button)."""


@dataclass
class Call:
    """One Bot API request the bot made."""

    method: str
    params: dict[str, Any]
    # Uploaded files by parameter name: (file name, content, MIME type).
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)


class OfflineRequest(BaseRequest):
    """Answer Bot API requests locally, like Telegram, and remember them."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._message_ids = itertools.count(1000)

    async def initialize(self) -> None:
        """Open nothing: there is no network."""

    async def shutdown(self) -> None:
        """Close nothing."""

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data is not None else {}
        files: dict[str, tuple[str, bytes, str]] = {}
        if request_data is not None and request_data.contains_files:
            for name, (file_name, content, mime) in request_data.multipart_data.items():
                raw = content if isinstance(content, bytes) else content.read()
                files[name] = (file_name, raw, mime)
        self.calls.append(Call(endpoint, params, files))
        try:
            result = self._answer(endpoint, params)
        except TelegramRefused as exc:
            body = {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
            return 400, json.dumps(body).encode()
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def _check_text(self, text: str, parse_mode: Any, limit: int) -> None:
        plain = text
        if parse_mode == "HTML":
            try:
                parsed = parse_html(text)
            except HTMLParseError as exc:
                raise TelegramRefused(exc.description) from None
            plain = parsed.text
            if len(parsed.entities) > 100:
                # Telegram would take it but drop the formatting after the 100th entity.
                raise TelegramRefused(f"{len(parsed.entities)} entities (formatting lost)")
        if not plain.strip():
            raise TelegramRefused("message text is empty")
        if utf16_len(plain) > limit:
            raise TelegramRefused("message is too long")

    def _check_markup(self, markup: Any) -> None:
        if not markup:
            return
        data = markup if isinstance(markup, dict) else json.loads(markup)
        for row in data.get("inline_keyboard", []):
            for button in row:
                if not button.get("text"):
                    raise TelegramRefused("BUTTON_TEXT_INVALID")
                raw = button.get("callback_data")
                if raw is not None and not 1 <= len(raw.encode()) <= 64:
                    raise TelegramRefused("BUTTON_DATA_INVALID")

    def _message(self, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        chat_id = int(params.get("chat_id", 0))
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup", "title": "g"}
        return {
            "message_id": next(self._message_ids),
            "date": 0,
            "chat": chat,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "duban", "username": BOT_USERNAME},
            **extra,
        }

    def _answer(self, endpoint: str, params: dict[str, Any]) -> Any:
        if endpoint == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "duban",
                "username": BOT_USERNAME,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if endpoint in ("sendMessage", "editMessageText"):
            self._check_text(str(params.get("text", "")), params.get("parse_mode"), 4096)
            self._check_markup(params.get("reply_markup"))
            return self._message(params, text=params.get("text"))
        if endpoint in ("sendDocument", "sendPhoto", "sendVideo", "sendAudio", "sendVoice"):
            field_name = endpoint.removeprefix("send").lower()
            if field_name not in params and field_name not in self.calls[-1].files:
                raise TelegramRefused(f"there is no {field_name} in the request")
            caption = params.get("caption")
            if caption:
                self._check_text(str(caption), params.get("parse_mode"), 1024)
            self._check_markup(params.get("reply_markup"))
            return self._message(params, caption=caption)
        if endpoint in (
            "answerCallbackQuery",
            "setMyCommands",
            "deleteWebhook",
            "deleteMessage",
            "editMessageReplyMarkup",
        ):
            if endpoint == "answerCallbackQuery" and len(str(params.get("text") or "")) > 200:
                raise TelegramRefused("callback answer too long")
            return True
        raise TelegramRefused(f"method {endpoint} not handled by the offline request")


@dataclass
class User:
    """A Telegram account in a test."""

    id: int
    first_name: str
    language_code: str = "zh"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": self.language_code,
        }


@dataclass
class Harness:
    """A campaign in a database, the real Application, and a settable clock."""

    db: Database
    app: Application[Any, Any, Any, Any, Any, Any]
    request: OfflineRequest
    now: datetime
    config: Config
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _user_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7_000_001))

    @classmethod
    async def create(cls, db: Database, now: datetime, plan_text: str | None = None) -> Harness:
        """Load the example campaign (or `plan_text`) and build the Application."""
        text = plan_text or EXAMPLE.read_text(encoding="utf-8")
        await load_plan_into(db, parse_plan(text, str(EXAMPLE)), now=now - timedelta(days=30))
        config = load_config(env={"DUBAN_TELEGRAM_TOKEN": TOKEN})
        request = OfflineRequest()
        made: list[Harness] = []
        # The production Application; only the network and the waits between sends differ
        # (the offline request has no flood limits to keep, and tests never sleep).
        app = build_application(
            config, db, clock=lambda: made[0].now, request=request, limits=unhurried_limits()
        )
        harness = cls(db, app, request, now, config)
        made.append(harness)
        await app.initialize()
        return harness

    async def close(self) -> None:
        """Shut the Application down."""
        await self.app.shutdown()

    def user(self, name: str = "用户", language_code: str = "zh") -> User:
        """Make a new Telegram account."""
        return User(next(self._user_ids), name, language_code)

    async def invite(self, role: str, unit: str | None = None, uses: int = 1) -> str:
        """Make an invite code through the service, as `duban invite` does."""
        async with self.db.write() as session:
            campaign = await pick_campaign(session)
            found = await find_unit(session, campaign.id, unit) if unit else None
            made = await create_invite(
                session, campaign, role, found, now=self.now, actor="test", uses=uses
            )
        return made.code

    async def register(self, role: str, unit: str | None = None, name: str | None = None) -> User:
        """Make a user and let them redeem an invite with /start."""
        user = self.user(name or f"{role}-{unit or ''}")
        code = await self.invite(role, unit)
        replies = await self.send(user, f"/start {code}")
        assert any("登记成功" in r for r in replies), replies
        return user

    # -- updates --------------------------------------------------------------------

    def _chat(self, user: User, chat: dict[str, Any] | None) -> dict[str, Any]:
        return chat or {"id": user.id, "type": "private", "first_name": user.first_name}

    def _message(self, user: User, chat: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._ids),
            "date": int(self.now.timestamp()),
            "chat": self._chat(user, chat),
            "from": user.as_dict(),
            **fields,
        }

    async def _feed(self, payload: dict[str, Any]) -> list[Call]:
        before = len(self.request.calls)
        update = Update.de_json({"update_id": next(self._ids), **payload}, self.app.bot)
        await self.app.process_update(update)
        return self.request.calls[before:]

    async def send(
        self, user: User, text: str, chat: dict[str, Any] | None = None, **extra: Any
    ) -> list[str]:
        """Send a text (commands get their entity) and return the texts the bot answered."""
        fields: dict[str, Any] = {"text": text, **extra}
        if text.startswith("/"):
            command = text.split()[0]
            fields["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        calls = await self._feed({"message": self._message(user, chat, **fields)})
        return texts(calls)

    async def send_calls(
        self, user: User, text: str, chat: dict[str, Any] | None = None
    ) -> list[Call]:
        """Send a text and return the raw calls the bot made."""
        before = len(self.request.calls)
        await self.send(user, text, chat)
        return self.request.calls[before:]

    async def send_calls_extra(
        self, user: User, text: str, chat: dict[str, Any] | None = None, **extra: Any
    ) -> list[Call]:
        """Send a text with extra message fields (a topic); return the raw calls the bot made."""
        before = len(self.request.calls)
        await self.send(user, text, chat, **extra)
        return self.request.calls[before:]

    async def send_document(
        self, user: User, name: str = "报告.pdf", size: int = 2048
    ) -> list[str]:
        """Send a document and return the texts the bot answered."""
        unique = f"doc-{next(self._ids)}"
        document = {
            "file_id": f"FILE-{unique}",
            "file_unique_id": unique,
            "file_name": name,
            "file_size": size,
            "mime_type": "application/pdf",
        }
        calls = await self._feed({"message": self._message(user, None, document=document)})
        return texts(calls)

    async def send_photo(self, user: User) -> list[str]:
        """Send a photo and return the texts the bot answered."""
        unique = f"photo-{next(self._ids)}"
        photo = [
            {"file_id": f"PHOTO-{unique}", "file_unique_id": unique, "width": 800, "height": 600}
        ]
        calls = await self._feed({"message": self._message(user, None, photo=photo)})
        return texts(calls)

    def file_message(
        self,
        user: User,
        kind: str,
        name: str | None = None,
        caption: str | None = None,
        *,
        size: int = 2048,
        chat: dict[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Return a message carrying a file as Telegram sends it (document, photo, video,
        audio, voice), or a sticker or location; `extra` adds fields (media_group_id...)."""
        unique = f"{kind}-{next(self._ids)}"
        base = {"file_id": f"ID-{unique}", "file_unique_id": unique, "file_size": size}
        fields: dict[str, Any]
        if kind == "photo":
            fields = {"photo": [{**base, "width": 800, "height": 600}]}
        elif kind == "document":
            fields = {"document": {**base, "file_name": name, "mime_type": "application/pdf"}}
        elif kind == "video":
            video = {**base, "width": 1280, "height": 720, "duration": 1800}
            fields = {"video": {**video, "file_name": name, "mime_type": "video/mp4"}}
        elif kind == "audio":
            fields = {"audio": {**base, "duration": 60, "file_name": name}}
        elif kind == "voice":
            fields = {"voice": {**base, "duration": 12, "mime_type": "audio/ogg"}}
        elif kind == "sticker":
            sticker = {"type": "regular", "is_animated": False, "is_video": False}
            fields = {"sticker": {**base, **sticker, "width": 512, "height": 512}}
        elif kind == "location":
            fields = {"location": {"latitude": 36.19, "longitude": 113.12}}
        elif kind == "contact":
            fields = {"contact": {"phone_number": "+8613800000000", "first_name": "张三"}}
        elif kind == "poll":
            poll = {
                "id": unique,
                "question": "几号开会？",
                "options": [
                    {"text": t, "voter_count": 0, "persistent_id": t} for t in ("周一", "周二")
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            }
            fields = {"poll": poll}
        else:
            raise ValueError(kind)
        if caption:
            fields["caption"] = caption
        return self._message(user, chat, **fields, **extra)

    async def send_file(
        self,
        user: User,
        kind: str,
        name: str | None = None,
        caption: str | None = None,
        **extra: Any,
    ) -> list[str]:
        """Send a file (or sticker, location) and return the texts the bot answered."""
        message = self.file_message(user, kind, name, caption, **extra)
        return texts(await self._feed({"message": message}))

    async def press(self, user: User, data: str, chat: dict[str, Any] | None = None) -> list[Call]:
        """Press an inline button with this callback data; return the calls the bot made."""
        message = self._message(user, chat, text="…")
        message["from"] = {"id": BOT_ID, "is_bot": True, "first_name": "duban"}
        query = {
            "id": str(next(self._ids)),
            "from": user.as_dict(),
            "chat_instance": "ci",
            "message": message,
            "data": data,
        }
        return await self._feed({"callback_query": query})

    def last_buttons(self, user: User) -> list[tuple[str, str]]:
        """Return the (label, data) of the buttons of the last message sent to a user."""
        for call in reversed(self.request.calls):
            if (
                call.method in ("sendMessage", "editMessageText")
                and int(call.params.get("chat_id", 0)) == user.id
            ):
                markup = call.params.get("reply_markup")
                if not markup:
                    return []
                data = markup if isinstance(markup, dict) else json.loads(markup)
                return [
                    (b["text"], b.get("callback_data", ""))
                    for row in data["inline_keyboard"]
                    for b in row
                ]
        return []

    async def outbox(self, kind: str | None = None) -> list[m.Outbox]:
        """Return the outbox rows (of one kind)."""
        from sqlalchemy import select

        async with self.db.read() as session:
            query = select(m.Outbox).order_by(m.Outbox.id)
            if kind:
                query = query.where(m.Outbox.kind == kind)
            return list(await session.scalars(query))


def unhurried_limits() -> RateLimits:
    """Flood limits that never make a reply wait (the offline request enforces none)."""
    return RateLimits(10**9, chat_interval=0.0, group_per_minute=10**9, group_window=0.0)


def texts(calls: list[Call]) -> list[str]:
    """Return what the bot said in these calls (messages, edits, captions, callback answers)."""
    out = []
    for call in calls:
        if call.method in ("sendMessage", "editMessageText"):
            out.append(str(call.params.get("text", "")))
        elif call.method.startswith("send") and call.params.get("caption"):
            out.append(str(call.params["caption"]))
        elif call.method == "answerCallbackQuery" and call.params.get("text"):
            out.append(str(call.params["text"]))
    return out


T0 = datetime(2017, 5, 8, 2, 0, tzinfo=UTC)  # Monday 5月8日 10:00 in Shanghai


async def assignment_id(db: Database, unit_key: str, task_key: str) -> int:
    """Return the id of the assignment of a unit and a task, by their keys."""
    async with db.read() as session:
        found = await session.scalar(
            select(m.Assignment.id)
            .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
            .join(m.Task, m.Task.id == m.Assignment.task_id)
            .where(m.Unit.key == unit_key, m.Task.key == task_key)
        )
    assert found is not None
    return int(found)
