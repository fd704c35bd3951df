"""A local Telegram Bot API server for tests and the sandbox (no network, real HTTP on 127.0.0.1).

A real python-telegram-bot ``Bot``/``Application`` (in the test process or in a ``duban run``
subprocess) talks to it over HTTP exactly as it would to api.telegram.org::

    async with LocalBotAPI(token="123:ABC", limits=Limits(enabled=False)) as srv:
        app = (
            ApplicationBuilder().token(srv.token)
            .base_url(srv.base_url).base_file_url(srv.base_file_url).build()
        )
        ...start polling...
        user = srv.add_user(first_name="联络员")
        srv.send_text(user, "/start CODE")           # queued for getUpdates / POSTed to a webhook
        await srv.wait_for(lambda s: s.texts_to(user))
        assert srv.rejected == []                   # the bot never got a 4xx

The server keeps Telegram's observable rules so that bugs surface in tests rather than in
production: HTML is validated (see ``htmlcheck``), lengths are counted in UTF-16 after entity
parsing, unknown/blocked/migrated chats fail with Telegram's error texts, and sending methods
are rate limited with 429 ``retry_after`` answers (``Limits``). A client that sends again into
a scope whose ``retry_after`` has not yet expired is counted in ``retry_after_violations``.
``Faults`` injects 5xx answers, dropped connections and delays for robustness tests.

Private chats follow Telegram's rules: a user the bot has never seen gives "chat not found",
a user seen only in a group gives 403 "bot can't initiate conversation with a user", and the
private chat opens once the user sends something there (or ``add_user(..., started=True)``).

Sent messages are stored the way Telegram stores them: ``text`` is the plain text after HTML
parsing and formatting lives in ``entities``; the raw request is in ``requests[i].params``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import mimetypes
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import aiohttp
from aiohttp import web

from .htmlcheck import HTMLParseError, parse_html, utf16_len

__all__ = [
    "ApiError",
    "FakeChat",
    "FakeUser",
    "Faults",
    "Limits",
    "LocalBotAPI",
    "RecordedRequest",
    "Violation",
]

JSON: TypeAlias = dict[str, Any]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
# Telegram keeps the formatting of the first 100 entities of a message and drops the rest.
MAX_ENTITIES = 100
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile refuses bigger files, like the cloud Bot API
CLIENT_CLOSED = 499  # recorded status of a request whose client went away before the answer

# What a message may carry that copyMessage/forwardMessage can pass on.
_COPYABLE = ("text", "document", "photo", "video", "audio", "voice", "sticker", "location")
# Methods that deliver content into a chat: they are rate limited and subject to Faults.
SENDING_METHODS = frozenset(
    {"sendmessage", "senddocument", "sendphoto", "copymessage", "forwardmessage", "editmessagetext"}
)
# Update types Telegram leaves out unless allowed_updates names them explicitly.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_INT_PARAMS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "reply_to_message_id",
        "max_connections",
        "cache_time",
        "message_thread_id",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "drop_pending_updates",
        "show_alert",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "has_spoiler",
        "disable_content_type_detection",
        "show_caption_above_media",
    }
)
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "commands",
        "scope",
        "menu_button",
        "reply_parameters",
        "link_preview_options",
        "message_ids",
    }
)
_INLINE_BUTTON_ACTIONS = frozenset(
    {
        "callback_data",
        "url",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)
_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w@/])")
_BOT_COMMAND_NAME_RE = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Telegram's "anonymous group admin", the sender of service messages nobody else is known for.
_ANONYMOUS_ADMIN: JSON = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}


class ApiError(Exception):
    """An ``ok: false`` answer; raise it from an API method to reply with this error."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        """Return the JSON body Telegram would send."""
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


def _forbidden(reason: str) -> ApiError:
    return ApiError(403, f"Forbidden: {reason}")


class _ClientGone(Exception):
    """The client closed its connection before the answer (e.g. a cancelled long poll)."""


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user; their private chat with the bot has ``id == user.id``."""

    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = None
    last_name: str | None = None

    def to_dict(self) -> JSON:
        """Return the Bot API ``User`` object."""
        data: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    def private_chat(self) -> FakeChat:
        """Return the private chat between this user and the bot."""
        return FakeChat(
            self.id,
            "private",
            first_name=self.first_name,
            username=self.username,
            last_name=self.last_name,
        )


@dataclass(frozen=True)
class FakeChat:
    """A chat: ``private`` (id > 0), ``group`` or ``supergroup`` (id < 0)."""

    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    username: str | None = None
    last_name: str | None = None
    is_forum: bool = False  # a supergroup with topics

    @property
    def is_group(self) -> bool:
        """Return True for groups and supergroups."""
        return self.type in ("group", "supergroup")

    def to_dict(self) -> JSON:
        """Return the Bot API ``Chat`` object."""
        data: JSON = {"id": self.id, "type": self.type}
        for key in ("title", "first_name", "last_name", "username"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.is_forum:
            data["is_forum"] = True
        return data


@dataclass
class RecordedRequest:
    """One Bot API call as the server saw and answered it."""

    method: str
    params: JSON  # decoded; uploads appear as {"filename", "size", "content_type"}
    at: float  # time.monotonic() when the request arrived
    response_status: int  # HTTP status; 0 = connection dropped by Faults, 499 = client left
    ok: bool
    description: str | None = None
    result: Any = None
    fault: str | None = None  # "error", "drop", "timeout" or "flood" when Faults decided

    def __str__(self) -> str:
        params = json.dumps(self.params, ensure_ascii=False, default=str)
        if len(params) > 300:
            params = params[:300] + "…"
        outcome = "ok" if self.ok else f"{self.description or ''} fault={self.fault}"
        return f"{self.at:.3f} {self.method} -> {self.response_status} {outcome} {params}"


@dataclass
class Violation:
    """A request made into a scope whose announced retry_after had not yet expired."""

    at: float
    method: str
    scope: str  # "global" or "chat:<id>"


@dataclass
class Limits:
    """Flood limits for sending methods; Telegram's documented values by default."""

    enabled: bool = True
    global_per_second: int = 30
    per_chat_per_second: int = 1
    per_group_per_minute: int = 20
    # Window lengths in seconds; tests may shrink them, retry_after stays an integer >= 1.
    global_window: float = 1.0
    chat_window: float = 1.0
    group_window: float = 60.0

    @classmethod
    def off(cls) -> Limits:
        """Return limits that never answer 429."""
        return cls(enabled=False)


@dataclass
class Faults:
    """Random failures for sending methods: 5xx answers, drops, timeouts, 429s, delays.

    A "timeout" performs the request and then holds the answer for ``timeout_delay`` seconds,
    as when Telegram's answer is lost on the way back: a client that gives up earlier sees a
    timeout although the message was delivered. A "flood" answers 429 with ``retry_after``
    and holds the chat to it, as Telegram does for a chat it considers flooded.
    """

    error_rate: float = 0.0
    status: int = 502
    statuses: tuple[int, ...] = ()  # when set, each error picks one of these at random
    drop_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_delay: float = 0.0
    flood_rate: float = 0.0
    retry_after: int = 1
    delay: float = 0.0
    seed: int | None = None
    methods: frozenset[str] = SENDING_METHODS  # lower-case method names
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def applies_to(self, method: str) -> bool:
        """Return True if ``method`` is subject to fault injection."""
        return method.lower() in self.methods

    def roll(self) -> str | None:
        """Return "drop", "error", "timeout", "flood" or None for one request."""
        x = self._rng.random()
        for kind, rate in (
            ("drop", self.drop_rate),
            ("error", self.error_rate),
            ("timeout", self.timeout_rate),
            ("flood", self.flood_rate),
        ):
            if x < rate:
                return kind
            x -= rate
        return None

    def error_status(self) -> int:
        """Return the HTTP status of one injected error."""
        return self._rng.choice(self.statuses) if self.statuses else self.status


@dataclass
class _Upload:
    filename: str
    content: bytes
    content_type: str | None


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    content: bytes
    file_path: str
    file_name: str | None
    mime_type: str | None


@dataclass
class _Call:
    params: JSON
    uploads: dict[str, _Upload]
    request: web.Request


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _Poll:
    superseded: bool = False


_ApiMethod: TypeAlias = Callable[[_Call], Awaitable[Any]]


class LocalBotAPI:
    """Fake Telegram Bot API server; see the module docstring for how tests use it."""

    def __init__(
        self,
        token: str = "123:ABC",
        bot_username: str = "duban_test_bot",
        limits: Limits | None = None,
        *,
        bot_first_name: str = "Duban Test Bot",
        faults: Faults | None = None,
        webhook_retry_delay: float = 0.2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        # The Unix time in message dates: the sandbox passes its movable clock.
        self.clock = clock
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.limits = limits if limits is not None else Limits()
        self.faults = faults if faults is not None else Faults()
        self.webhook_retry_delay = webhook_retry_delay

        # Observations for tests.
        self.requests: list[RecordedRequest] = []
        self.sent: list[JSON] = []  # same dicts as the stored messages, so edits show up here
        self.edits: list[JSON] = []  # snapshots after each successful edit
        self.deleted: list[tuple[int, int]] = []  # (chat_id, message_id)
        self.callback_answers: list[JSON] = []
        self.violations: list[Violation] = []
        # Messages the bot sent with more than MAX_ENTITIES entities: (method, count).
        self.entity_overflows: list[tuple[str, int]] = []
        self.webhook_deliveries: list[JSON] = []
        self.commands: dict[tuple[str, str], list[JSON]] = {}  # (scope JSON, language) -> list
        self.menu_buttons: dict[int | None, JSON] = {}

        # The simulated world.
        self._users: dict[int, FakeUser] = {}
        self._chats: dict[int, FakeChat] = {}  # chats the bot knows (groups, seen users)
        self._seen_users: set[int] = set()
        self._started: set[int] = set()  # users who opened the private chat
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}
        self._topics: dict[int, dict[int, str]] = {}  # forum chat -> thread id -> topic name
        self._media_groups = itertools.count(13_000_000_000_000_000)
        self._members: dict[int, dict[int, str]] = {}  # chat -> user (or bot) -> status
        self._messages: dict[tuple[int, int], JSON] = {}
        self._last_message_id: dict[int, int] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._callback_queries: dict[str, bool] = {}  # id -> answered
        self._ids = itertools.count(1)
        self._next_user_id = 700_000_001
        self._next_group_id = 4_000_000_001

        # Update delivery.
        self._updates: deque[JSON] = deque()
        self._next_update_id = 500_000_001
        self._allowed_updates: frozenset[str] | None = None
        self._signal = asyncio.Event()
        self._active_poll: _Poll | None = None
        self._webhook: _Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None

        # Rate limiting: sliding windows and announced retry_after deadlines per scope.
        self._windows: dict[str, deque[float]] = {}
        self._retry_until: dict[str, float] = {}

        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        self.port = 0
        self._methods: dict[str, _ApiMethod] = {
            name.removeprefix("_api_"): getattr(self, name)
            for name in dir(self)
            if name.startswith("_api_")
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start serving on 127.0.0.1 at a free port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/_control/{action}", self._handle_control)
        # handler_cancellation: a long poll whose client went away must not linger.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._stopping = False

    async def stop(self) -> None:
        """Release pending long polls, stop webhook delivery and close the server."""
        self._stopping = True
        self._notify()
        await self._stop_webhook_task()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> LocalBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Return the server root, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """Return the value for PTB's ``base_url`` (the token is appended by PTB)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Return the value for PTB's ``base_file_url``."""
        return f"{self.url}/file/bot"

    @property
    def bot_user(self) -> JSON:
        """Return the bot's ``User`` object."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    # ------------------------------------------------------------------ the simulated world

    def add_user(
        self,
        first_name: str = "User",
        *,
        username: str | None = None,
        language_code: str | None = "zh",
        last_name: str | None = None,
        user_id: int | None = None,
        started: bool = False,
    ) -> FakeUser:
        """Create a user; ``started=True`` as if they had already opened the private chat."""
        if user_id is None:
            user_id = self._next_user_id
            self._next_user_id += 1
        user = FakeUser(user_id, first_name, username, language_code, last_name)
        self._users[user.id] = user
        if started:
            self._see_user(user, user.private_chat())
        return user

    def add_group(
        self,
        title: str = "Group",
        *,
        supergroup: bool = False,
        username: str | None = None,
        members: Iterable[FakeUser] = (),
        bot_status: str = "member",
        forum: bool = False,
    ) -> FakeChat:
        """Create a group the bot is in (``bot_status`` e.g. "administrator").

        ``forum=True`` makes a supergroup with topics (``is_forum``); add topics with
        ``create_topic``.
        """
        serial = self._next_group_id
        self._next_group_id += 1
        supergroup = supergroup or forum
        chat_id = -(1_000_000_000_000 + serial) if supergroup else -serial
        chat = FakeChat(
            chat_id,
            "supergroup" if supergroup else "group",
            title=title,
            username=username,
            is_forum=forum,
        )
        if forum:
            self._topics[chat.id] = {}
        self._chats[chat.id] = chat
        self._members[chat.id] = {self.bot_id: bot_status}
        for user in members:
            self._members[chat.id][user.id] = "member"
        return chat

    def create_topic(self, chat: FakeChat, name: str, *, thread_id: int | None = None) -> int:
        """Open a topic in a forum supergroup; return its ``message_thread_id``.

        As in Telegram, the thread id is the id of the service message that created the
        topic (or ``thread_id`` if given, for a test that needs a known number).
        """
        if not chat.is_forum:
            raise ValueError(f"chat {chat.id} is not a forum")
        service = self._new_message(
            chat, self.bot_user, forum_topic_created={"name": name, "icon_color": 7322096}
        )
        thread = thread_id if thread_id is not None else int(service["message_id"])
        if thread_id is not None:
            self._last_message_id[chat.id] = max(self._last_message_id[chat.id], thread_id)
        self._topics[chat.id][thread] = name
        return thread

    def user(self, user_id: int) -> FakeUser:
        """Return the user with this id."""
        return self._users[user_id]

    def chat(self, chat_id: int) -> FakeChat:
        """Return the known chat with this id."""
        return self._chats[chat_id]

    def block(self, user: FakeUser | int, *, notify: bool = False) -> None:
        """Make the user block the bot; ``notify`` also injects the my_chat_member update."""
        uid = _id_of(user)
        self._blocked.add(uid)
        if notify:
            self._inject_my_chat_member(self._users[uid], "member", "kicked")

    def unblock(self, user: FakeUser | int, *, notify: bool = False) -> None:
        """Undo ``block``."""
        uid = _id_of(user)
        self._blocked.discard(uid)
        if notify:
            self._inject_my_chat_member(self._users[uid], "kicked", "member")

    def set_member_status(self, chat: FakeChat | int, user: FakeUser | int, status: str) -> None:
        """Set a member's status in a group (user may be ``srv.bot_id``; "kicked" for the bot)."""
        if status not in ("creator", "administrator", "member", "left", "kicked"):
            raise ValueError(f"unsupported status {status!r}")
        self._members.setdefault(_id_of(chat), {})[_id_of(user)] = status

    def kick_bot(self, chat: FakeChat | int) -> None:
        """Remove the bot from a group: sends there answer 403 afterwards."""
        self.set_member_status(chat, self.bot_id, "kicked")

    def migrate_group(self, group: FakeChat, by: FakeUser | None = None) -> FakeChat:
        """Upgrade a group to a supergroup and inject both migration service messages."""
        if group.type != "group":
            raise ValueError("only basic groups can be migrated")
        serial = self._next_group_id
        self._next_group_id += 1
        new = FakeChat(-(1_000_000_000_000 + serial), "supergroup", title=group.title)
        self._chats[new.id] = new
        self._members[new.id] = dict(self._members.get(group.id, {}))
        sender = by.to_dict() if by is not None else dict(_ANONYMOUS_ADMIN)
        old_msg = self._new_message(group, sender, migrate_to_chat_id=new.id)
        self._migrated[group.id] = new.id
        new_msg = self._new_message(new, sender, migrate_from_chat_id=group.id)
        self.send_update({"message": old_msg})
        self.send_update({"message": new_msg})
        return new

    # ------------------------------------------------------------------ injecting updates

    def send_update(self, update: JSON) -> JSON:
        """Queue a raw update (``update_id`` is assigned if missing) and return it."""
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
        self._learn_from_update(update)
        self._updates.append(update)
        self._notify()
        return update

    def send_text(
        self,
        user: FakeUser,
        text: str,
        chat: FakeChat | None = None,
        *,
        reply_to: JSON | None = None,
        thread_id: int | None = None,
    ) -> JSON:
        """Inject a text message from ``user`` (bot_command entities are added for commands).

        ``thread_id`` sends it in a forum topic (``message_thread_id``, ``is_topic_message``).
        """
        fields: JSON = {"text": text}
        entities = _command_entities(text)
        if entities:
            fields["entities"] = entities
        if reply_to is not None:
            fields["reply_to_message"] = self._public(self._current(reply_to))
        return self._incoming(user, chat, fields, thread_id=thread_id)

    def edit_text(self, user: FakeUser, update: JSON, text: str) -> JSON:
        """Inject the ``edited_message`` Telegram sends when ``user`` edits their message.

        ``update`` is what ``send_text`` returned; the edited message keeps its id, chat and
        date and gains ``edit_date``.
        """
        original = update["message"]
        stored = self._current(original)
        if stored["from"].get("id") != user.id:
            raise ValueError("a user can only edit their own messages")
        stored["text"] = text
        stored.pop("entities", None)
        entities = _command_entities(text)
        if entities:
            stored["entities"] = entities
        stored["edit_date"] = int(time.time())
        return self.send_update({"edited_message": self._public(stored)})

    def send_document(
        self,
        user: FakeUser,
        file_name: str = "file.bin",
        content: bytes = b"",
        caption: str | None = None,
        chat: FakeChat | None = None,
        *,
        mime_type: str | None = None,
        thread_id: int | None = None,
    ) -> JSON:
        """Inject a document message; its bytes are downloadable via getFile."""
        mime = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        stored = self._register_file(content, "documents", file_name, mime)
        fields: JSON = {"document": _document_json(stored)}
        self._add_caption(fields, caption)
        return self._incoming(user, chat, fields, thread_id=thread_id)

    def send_media(
        self,
        user: FakeUser,
        kind: str,
        content: bytes = b"",
        caption: str | None = None,
        chat: FakeChat | None = None,
        *,
        file_name: str | None = None,
        duration: int = 30,
        latitude: float = 36.195,
        longitude: float = 113.117,
        thread_id: int | None = None,
    ) -> JSON:
        """Inject a video, audio, voice, sticker or location message, shaped as Telegram's.

        Files (all but ``location``) are downloadable via getFile like documents.
        """
        fields: JSON
        if kind == "location":
            fields = {"location": {"latitude": latitude, "longitude": longitude}}
        else:
            fields = {kind: self._media_json(kind, content, file_name, duration)}
            if kind != "sticker":
                self._add_caption(fields, caption)
        return self._incoming(user, chat, fields, thread_id=thread_id)

    def send_album(
        self,
        user: FakeUser,
        items: Iterable[tuple[str, str, bytes]],
        caption: str | None = None,
        chat: FakeChat | None = None,
        *,
        thread_id: int | None = None,
        deliver: bool = True,
    ) -> list[JSON]:
        """Inject an album: one message per ``(kind, file name, bytes)``, one ``media_group_id``.

        ``kind`` is ``document``, ``photo``, ``video`` or ``audio``. Like a Telegram client,
        the caption rides on the first message; Telegram delivers each part as its own update.
        ``deliver=False`` returns the updates without queueing them, for a test that posts
        each part to a different process's webhook.
        """
        group_id = str(next(self._media_groups))
        updates = []
        for i, (kind, file_name, content) in enumerate(items):
            fields: JSON
            if kind == "document":
                mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
                stored = self._register_file(content, "documents", file_name, mime)
                fields = {"document": _document_json(stored)}
            elif kind == "photo":
                stored = self._register_file(content, "photos", None, "image/jpeg")
                fields = {"photo": [_photo_size_json(stored, 800, 600)]}
            else:
                fields = {kind: self._media_json(kind, content, file_name, 30)}
            fields["media_group_id"] = group_id
            if i == 0:
                self._add_caption(fields, caption)
            updates.append(self._incoming(user, chat, fields, thread_id=thread_id, deliver=deliver))
        if not updates:
            raise ValueError("an album holds at least one item")
        return updates

    def _media_json(self, kind: str, content: bytes, file_name: str | None, duration: int) -> JSON:
        """Return the Bot API object of a video, audio, voice or sticker with stored bytes."""
        mimes = {
            "video": "video/mp4",
            "audio": "audio/mpeg",
            "voice": "audio/ogg",
            "sticker": "image/webp",
        }
        if kind not in mimes:
            raise ValueError(f"unknown media kind {kind!r}")
        mime = (mimetypes.guess_type(file_name)[0] if file_name else None) or mimes[kind]
        stored = self._register_file(content, f"{kind}s", file_name, mime)
        data: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(content),
        }
        if kind == "sticker":
            return data | {
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": "👍",
            }
        data |= {"duration": duration, "mime_type": mime}
        if kind == "video":
            data |= {"width": 1280, "height": 720}
        if kind in ("video", "audio") and file_name:
            data["file_name"] = file_name
        return data

    def send_photo(
        self,
        user: FakeUser,
        content: bytes = b"",
        caption: str | None = None,
        chat: FakeChat | None = None,
        *,
        width: int = 800,
        height: int = 600,
        thread_id: int | None = None,
    ) -> JSON:
        """Inject a photo message (a single PhotoSize)."""
        stored = self._register_file(content, "photos", None, "image/jpeg")
        fields: JSON = {"photo": [_photo_size_json(stored, width, height)]}
        self._add_caption(fields, caption)
        return self._incoming(user, chat, fields, thread_id=thread_id)

    def press_button(self, user: FakeUser, message: JSON, callback_data: str) -> JSON:
        """Inject a callback_query for a button with ``callback_data`` on a sent message."""
        current = self._current(message)
        markup = current.get("reply_markup") or {}
        datas = [
            button.get("callback_data")
            for row in markup.get("inline_keyboard", [])
            for button in row
        ]
        if callback_data not in datas:
            raise ValueError(f"no button with callback_data {callback_data!r}; have {datas}")
        chat = self._chats[current["chat"]["id"]]
        query_id = str(10**15 + next(self._ids))
        self._callback_queries[query_id] = False
        self._see_user(user, chat)
        return self.send_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.to_dict(),
                    "message": self._public(current),
                    "chat_instance": str(abs(hash((chat.id, self.bot_id)))),
                    "data": callback_data,
                }
            }
        )

    # ------------------------------------------------------------------ observing

    def sent_to(self, chat: FakeChat | FakeUser | int) -> list[JSON]:
        """Return the messages the bot sent into ``chat`` (oldest first, edits applied)."""
        chat_id = _id_of(chat)
        return [m for m in self.sent if m["chat"]["id"] == chat_id]

    def texts_to(self, chat: FakeChat | FakeUser | int) -> list[str]:
        """Return the plain texts (or captions) of messages sent into ``chat``."""
        texts = [m.get("text", m.get("caption")) for m in self.sent_to(chat)]
        return [t for t in texts if t is not None]

    def history(self, chat: FakeChat | FakeUser | int) -> list[JSON]:
        """Return every message of ``chat``, both ways, oldest first (edits applied, deleted gone).

        The same dicts the server keeps (not copies): read them, do not change them.
        """
        chat_id = _id_of(chat)
        mine = [(mid, msg) for (cid, mid), msg in self._messages.items() if cid == chat_id]
        return [msg for _, msg in sorted(mine, key=lambda pair: pair[0])]

    def menu(self, user: FakeUser) -> list[JSON]:
        """Return the command menu ``user`` sees in their private chat, as Telegram picks it.

        The narrowest scope with commands wins (this chat, then all private chats, then the
        default), and within a scope the list for the user's language before the one for all.
        """
        scopes = (
            {"type": "chat", "chat_id": user.id},
            {"type": "all_private_chats"},
            {"type": "default"},
        )
        languages = ([user.language_code] if user.language_code else []) + [""]
        for scope in scopes:
            for language in languages:
                found = self.commands.get((json.dumps(scope, sort_keys=True), language))
                if found:
                    return list(found)
        return []

    def file(self, file_id: str) -> tuple[bytes, str | None, str | None] | None:
        """Return a stored file's bytes, MIME type and name (None for an unknown file_id)."""
        stored = self._files.get(file_id)
        if stored is None:
            return None
        return stored.content, stored.mime_type, stored.file_name

    def calls(self, method: str) -> list[RecordedRequest]:
        """Return recorded requests of one method (case-insensitive)."""
        return [r for r in self.requests if r.method.lower() == method.lower()]

    @property
    def rejected(self) -> list[RecordedRequest]:
        """Return requests answered ok=false by the API itself (injected faults excluded)."""
        return [
            r
            for r in self.requests
            if not r.ok and r.fault is None and r.response_status != CLIENT_CLOSED
        ]

    @property
    def retry_after_violations(self) -> int:
        """Return how many requests ignored an active retry_after."""
        return len(self.violations)

    @property
    def count_429(self) -> int:
        """Return how many requests were answered 429."""
        return sum(1 for r in self.requests if r.response_status == 429)

    @property
    def pending_updates(self) -> list[JSON]:
        """Return updates not yet confirmed by the bot."""
        return list(self._updates)

    def dump(self, last: int = 20) -> str:
        """Return a readable summary of the last requests, for failure messages."""
        lines = [str(r) for r in self.requests[-last:]]
        lines.append(f"pending updates: {len(self._updates)}; sent messages: {len(self.sent)}")
        return "\n".join(lines)

    async def wait_for(
        self,
        predicate: Callable[[LocalBotAPI], Any],
        timeout: float = 10.0,  # noqa: ASYNC109 - the documented API, polled not awaited
        interval: float = 0.02,
    ) -> Any:
        """Poll ``predicate(self)`` until truthy and return its value; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"condition not met within {timeout}s; last requests:\n{self.dump()}"
                )
            await asyncio.sleep(interval)

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        """Answer one Bot API call and record it."""
        at = time.monotonic()
        method = request.match_info["method"]
        recorded: JSON = {}
        fault: str | None = None
        try:
            try:
                if request.match_info["token"] != self.token:
                    raise ApiError(401, "Unauthorized")
                params, uploads = await _read_params(request)
                recorded = _recordable(params, uploads)
                handler = self._methods.get(method.lower())
                if handler is None:
                    raise ApiError(404, "Not Found")
                if self.faults.applies_to(method):
                    if self.faults.delay > 0:
                        await asyncio.sleep(self.faults.delay)
                    fault = self.faults.roll()
                    if fault == "drop":
                        self._record(method, recorded, at, 0, False, "dropped", fault=fault)
                        if request.transport is not None:
                            request.transport.abort()
                        return web.Response()  # never reaches the client
                    if fault == "error":
                        status = self.faults.error_status()
                        raise ApiError(status, _http_reason(status))
                    if fault == "flood":
                        chat_id = params.get("chat_id")
                        if chat_id is not None:
                            until = time.monotonic() + self.faults.retry_after
                            self._retry_until[f"chat:{chat_id}"] = until
                        raise _too_many(self.faults.retry_after)
                result = await handler(_Call(params, uploads, request))
                if fault == "timeout":
                    # Delivered, but the answer is late: a client that gives up first cannot
                    # know the message arrived (the request is then recorded as 499).
                    await asyncio.sleep(self.faults.timeout_delay)
            except ApiError as err:
                self._record(method, recorded, at, err.code, False, err.description, fault=fault)
                return web.json_response(err.body(), status=err.code)
        except _ClientGone:
            self._record(method, recorded, at, CLIENT_CLOSED, False, "client closed connection")
            return web.Response(status=CLIENT_CLOSED)  # nobody is listening any more
        except asyncio.CancelledError:  # aiohttp cancels handlers whose client disconnected
            self._record(
                method, recorded, at, CLIENT_CLOSED, False, "client closed connection", fault=fault
            )
            raise
        self._record(method, recorded, at, 200, True, result=result)
        return web.json_response({"ok": True, "result": result})

    def _record(
        self,
        method: str,
        params: JSON,
        at: float,
        status: int,
        ok: bool,
        description: str | None = None,
        *,
        result: Any = None,
        fault: str | None = None,
    ) -> None:
        """Append one RecordedRequest."""
        self.requests.append(
            RecordedRequest(method, params, at, status, ok, description, result, fault)
        )

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        """Serve a file's bytes like api.telegram.org/file/bot<token>/<file_path>."""
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    async def _handle_control(self, request: web.Request) -> web.StreamResponse:
        """Drive the fake from another process: POST /_control/<action> with a JSON body."""
        action = request.match_info["action"]
        body: JSON = await request.json() if request.can_read_body else {}
        try:
            result = self._control(action, body)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "description": repr(exc)}, status=400)
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    def _control(self, action: str, body: JSON) -> Any:
        """Run one control action and return a JSON-able result."""
        users = self._users
        if action == "add_user":
            return self.add_user(**body).to_dict()
        if action == "add_group":
            return self.add_group(**body).to_dict()
        if action == "send_text":
            chat = self._chats[body["chat_id"]] if body.get("chat_id") else None
            return self.send_text(users[body["user_id"]], body["text"], chat)
        if action == "press_button":
            msg = self._messages[(body["chat_id"], body["message_id"])]
            return self.press_button(users[body["user_id"]], msg, body["data"])
        if action == "send_update":
            return self.send_update(body)
        if action in ("block", "unblock"):
            getattr(self, action)(body["user_id"])
            return True
        if action == "migrate_group":
            return self.migrate_group(self._chats[body["chat_id"]]).to_dict()
        if action == "state":
            return {
                "requests": [str(r) for r in self.requests],
                "sent": self.sent,
                "pending_updates": len(self._updates),
                "retry_after_violations": self.retry_after_violations,
            }
        raise KeyError(action)

    # ------------------------------------------------------------------ world helpers

    def _notify(self) -> None:
        """Wake every long poll and the webhook loop."""
        event, self._signal = self._signal, asyncio.Event()
        event.set()

    async def _wait_signal(self, seconds: float | None) -> None:
        """Wait until the next ``_notify`` or for ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signal.wait(), seconds)

    def _see_user(self, user: FakeUser, chat: FakeChat) -> None:
        """Remember that the bot has seen ``user`` in ``chat``."""
        self._users.setdefault(user.id, user)
        self._seen_users.add(user.id)
        private = user.private_chat()
        self._chats.setdefault(private.id, private)  # known, though maybe not yet started
        if chat.type == "private":
            self._started.add(user.id)
        else:
            self._members.setdefault(chat.id, {}).setdefault(user.id, "member")

    def _learn_from_update(self, update: JSON) -> None:
        """Mark users in a raw update as seen, as Telegram would after delivering it."""
        for key, value in update.items():
            if key == "update_id" or not isinstance(value, dict):
                continue
            sender = value.get("from")
            chat_data = value.get("chat") or (value.get("message") or {}).get("chat")
            if not isinstance(sender, dict) or sender.get("is_bot"):
                continue
            user = self._users.get(sender["id"]) or FakeUser(
                sender["id"],
                sender.get("first_name", "User"),
                sender.get("username"),
                sender.get("language_code"),
                sender.get("last_name"),
            )
            if isinstance(chat_data, dict) and chat_data.get("id") in self._chats:
                self._see_user(user, self._chats[chat_data["id"]])
            elif isinstance(chat_data, dict) and chat_data.get("id") == user.id:
                self._see_user(user, user.private_chat())

    def _incoming(
        self,
        user: FakeUser,
        chat: FakeChat | None,
        fields: JSON,
        *,
        thread_id: int | None = None,
        deliver: bool = True,
    ) -> JSON:
        """Create a message from ``user`` in ``chat`` (default: private) and queue it."""
        target = chat if chat is not None else user.private_chat()
        if target.is_group:
            if target.id in self._migrated:
                raise ValueError(f"group {target.id} was migrated to {self._migrated[target.id]}")
            if target.id not in self._chats:
                raise ValueError(f"unknown group {target.id}; create it with add_group()")
        if thread_id is not None:
            if thread_id not in self._topics.get(target.id, {}):
                raise ValueError(f"chat {target.id} has no topic {thread_id}")
            fields = {**fields, "message_thread_id": thread_id, "is_topic_message": True}
        self._see_user(user, target)
        message = self._new_message(target, user.to_dict(), **fields)
        if not deliver:
            update_id = self._next_update_id
            self._next_update_id += 1
            return {"update_id": update_id, "message": message}
        return self.send_update({"message": message})

    def _inject_my_chat_member(self, user: FakeUser, old: str, new: str) -> None:
        """Queue the my_chat_member update Telegram sends when a user (un)blocks the bot."""
        bot = self.bot_user
        update: JSON = {
            "chat": user.private_chat().to_dict(),
            "from": user.to_dict(),
            "date": int(self.clock()),
            "old_chat_member": _member_json(bot, old),
            "new_chat_member": _member_json(bot, new),
        }
        self.send_update({"my_chat_member": update})

    def _new_message(self, chat: FakeChat, sender: JSON, **fields: Any) -> JSON:
        """Store a new message with the chat's next message_id."""
        message_id = self._last_message_id.get(chat.id, 0) + 1
        self._last_message_id[chat.id] = message_id
        message: JSON = {
            "message_id": message_id,
            "from": sender,
            "chat": chat.to_dict(),
            "date": int(self.clock()),
            **fields,
        }
        self._messages[(chat.id, message_id)] = message
        return message

    def _current(self, message: JSON) -> JSON:
        """Return the stored (latest) version of a message dict."""
        key = (message["chat"]["id"], message["message_id"])
        if key not in self._messages:
            raise ValueError(f"message {key} does not exist (deleted?)")
        return self._messages[key]

    @staticmethod
    def _public(message: JSON) -> JSON:
        """Return the message as the API shows it: only inline keyboards are echoed back."""
        public = copy.deepcopy(message)
        markup = public.get("reply_markup")
        if markup is not None and "inline_keyboard" not in markup:
            del public["reply_markup"]
        return public

    def _register_file(
        self, content: bytes, folder: str, file_name: str | None, mime_type: str | None
    ) -> _StoredFile:
        """Store bytes under a new file_id and file_path (served by ``_handle_file``)."""
        serial = next(self._ids)
        suffix = (mimetypes.guess_extension(mime_type or "") or "") if file_name is None else ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        stored = _StoredFile(
            file_id=f"{folder[:3].upper()}-{serial:06d}-fake",
            file_unique_id=f"U{serial:06d}",
            content=content,
            file_path=f"{folder}/file_{serial}{suffix}",
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    @staticmethod
    def _add_caption(fields: JSON, caption: str | None) -> None:
        """Add an incoming caption with its bot_command entities."""
        if caption is not None:
            fields["caption"] = caption
            entities = _command_entities(caption)
            if entities:
                fields["caption_entities"] = entities

    # ------------------------------------------------------------------ validation helpers

    def _resolve_chat(self, value: Any, *, sending: bool = True) -> FakeChat:
        """Find the target chat or raise Telegram's error for it."""
        if value is None or value == "":
            raise _bad("chat_id is empty")
        if isinstance(value, str) and value.startswith("@"):
            for known in self._chats.values():
                if known.username and known.username.lower() == value[1:].lower():
                    value = known.id
                    break
            else:
                raise _bad("chat not found")
        if not isinstance(value, int):
            raise _bad("chat not found")
        if value in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[value]},
            )
        chat = self._chats.get(value)
        if chat is None:
            raise _bad("chat not found")
        if not sending:
            return chat
        if chat.type == "private":
            if chat.id not in self._started:
                raise _forbidden("bot can't initiate conversation with a user")
            if chat.id in self._blocked:
                raise _forbidden("bot was blocked by the user")
        else:
            status = self._members.get(chat.id, {}).get(self.bot_id, "member")
            if status == "kicked":
                raise _forbidden(f"bot was kicked from the {chat.type} chat")
            if status == "left":
                raise _forbidden(f"bot is not a member of the {chat.type} chat")
        return chat

    @staticmethod
    def _format(text: str, parse_mode: Any, entities: Any) -> tuple[str, list[JSON]]:
        """Apply parse_mode; return the plain text and its entities."""
        mode = str(parse_mode or "").lower()
        if mode == "html":
            try:
                parsed = parse_html(text)
            except HTMLParseError as exc:
                raise _bad(exc.description) from None
            return parsed.text, parsed.entities
        if mode in ("", "markdown", "markdownv2"):  # Markdown is passed through unchecked
            return text, list(entities) if isinstance(entities, list) else []
        raise _bad("unsupported parse_mode")

    def _text_fields(self, params: JSON) -> JSON:
        """Validate ``text``/``parse_mode``; return the message fields for it."""
        raw = params.get("text")
        if not isinstance(raw, str) or not raw:
            raise _bad("message text is empty")
        text, entities = self._format(raw, params.get("parse_mode"), params.get("entities"))
        if not text.strip():
            raise _bad("message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise _bad("message is too long")
        fields: JSON = {"text": text}
        if entities:
            fields["entities"] = self._keep_entities("text", entities)
        return fields

    def _keep_entities(self, where: str, entities: list[JSON]) -> list[JSON]:
        """Keep the first MAX_ENTITIES entities, as Telegram does, and flag the overflow."""
        if len(entities) > MAX_ENTITIES:
            self.entity_overflows.append((where, len(entities)))
            return entities[:MAX_ENTITIES]
        return entities

    def _thread_fields(self, chat: FakeChat, params: JSON) -> JSON:
        """Check ``message_thread_id`` against the chat's topics; return the message fields.

        In a forum a send without a thread lands in General (no thread id on the message);
        a thread that does not exist is refused with Telegram's error.
        """
        thread = params.get("message_thread_id")
        if thread is None or thread == 0:
            return {}
        if not isinstance(thread, int) or thread not in self._topics.get(chat.id, {}):
            raise _bad("message thread not found")
        return {"message_thread_id": thread, "is_topic_message": True}

    def _caption_fields(self, params: JSON) -> JSON:
        """Validate ``caption``/``parse_mode``; return the message fields for it."""
        raw = params.get("caption")
        if raw is None or raw == "":
            return {}
        text, entities = self._format(
            str(raw), params.get("parse_mode"), params.get("caption_entities")
        )
        if utf16_len(text) > MAX_CAPTION:
            raise _bad("message caption is too long")
        fields: JSON = {"caption": text}
        if entities:
            fields["caption_entities"] = self._keep_entities("caption", entities)
        return fields

    @staticmethod
    def _check_markup(markup: Any) -> JSON | None:
        """Validate reply_markup the way Telegram does; return it."""
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('Field "inline_keyboard" must be of type Array')
            for button in itertools.chain.from_iterable(rows):
                _check_inline_button(button)
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('Field "keyboard" must be of type Array')
            for button in itertools.chain.from_iterable(rows):
                text = button.get("text") if isinstance(button, dict) else button
                if not isinstance(text, str) or not text:
                    raise _bad('can\'t parse keyboard button: Field "text" must be of type String')
        elif not ("remove_keyboard" in markup or "force_reply" in markup):
            raise _bad("can't parse reply keyboard markup JSON object")
        return markup

    def _reply_fields(self, chat: FakeChat, params: JSON) -> JSON:
        """Resolve reply_parameters / reply_to_message_id into ``reply_to_message``."""
        reply = params.get("reply_parameters")
        if not isinstance(reply, dict):
            if params.get("reply_to_message_id") is None:
                return {}
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        target_chat = int(reply.get("chat_id") or chat.id)
        original = self._messages.get((target_chat, int(reply.get("message_id") or 0)))
        if original is None:
            if reply.get("allow_sending_without_reply"):
                return {}
            raise _bad("message to be replied not found")
        quoted = self._public(original)
        quoted.pop("reply_to_message", None)  # Telegram does not nest replies further
        return {"reply_to_message": quoted}

    def _markup_fields(self, params: JSON) -> JSON:
        """Validate reply_markup; return the message fields for it."""
        markup = self._check_markup(params.get("reply_markup"))
        return {"reply_markup": markup} if markup is not None else {}

    def _input_file(
        self, call: _Call, name: str, folder: str, default_mime: str | None
    ) -> _StoredFile:
        """Resolve an InputFile param: uploaded part, attach://, or an existing file_id."""
        value = call.params.get(name)
        upload = call.uploads.get(name)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = call.uploads.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad(f"file of the {name} not found in the request")
        if upload is not None:
            if not upload.content:
                raise _bad("file must be non-empty")
            mime = (
                upload.content_type
                if upload.content_type and upload.content_type != "application/octet-stream"
                else mimetypes.guess_type(upload.filename)[0] or default_mime
            )
            file_name = upload.filename if folder == "documents" else None
            return self._register_file(upload.content, folder, file_name, mime)
        if value is None or value == "":
            raise _bad(f"there is no {name} in the request")
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        raise _bad("wrong file identifier/HTTP URL specified")

    # ------------------------------------------------------------------ rate limiting

    def _check_retry_after(self, method: str, chat: FakeChat) -> None:
        """Answer 429 again (and count a violation) while a scope's retry_after is active."""
        if not self.limits.enabled:
            return
        now = time.monotonic()
        for scope in ("global", f"chat:{chat.id}"):
            until = self._retry_until.get(scope, 0.0)
            if now < until:
                self.violations.append(Violation(now, method, scope))
                raise _too_many(math.ceil(until - now))

    def _consume_rate(self, chat: FakeChat) -> None:
        """Count one sending request in every window, or answer 429 if one is full."""
        limits = self.limits
        if not limits.enabled:
            return
        now = time.monotonic()
        windows = [
            ("global", "global", limits.global_per_second, limits.global_window),
            (f"chat:{chat.id}", f"chat:{chat.id}", limits.per_chat_per_second, limits.chat_window),
        ]
        if chat.is_group:
            group = (f"group:{chat.id}", f"chat:{chat.id}", limits.per_group_per_minute)
            windows.append((*group, limits.group_window))
        for key, scope, limit, window in windows:
            stamps = self._windows.setdefault(key, deque())
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) >= limit:
                retry_after = max(1, math.ceil(stamps[0] + window - now))
                self._retry_until[scope] = now + retry_after
                raise _too_many(retry_after)
        for key, _scope, _limit, _window in windows:
            self._windows[key].append(now)

    # ------------------------------------------------------------------ update delivery

    def _confirm(self, offset: int) -> None:
        """Forget updates confirmed by a getUpdates ``offset``."""
        if offset > 0:
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()
        elif offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()

    def _take_updates(self, limit: int) -> list[JSON]:
        """Return up to ``limit`` pending updates, dropping types that are not allowed."""
        allowed = self._allowed_updates
        kept = [u for u in self._updates if _update_allowed(u, allowed)]
        if len(kept) != len(self._updates):
            self._updates = deque(kept)
        return kept[:limit]

    async def _stop_webhook_task(self) -> None:
        """Cancel webhook delivery if it runs."""
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _webhook_loop(self) -> None:
        """POST pending updates to the webhook one by one, retrying failures."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        while not self._stopping and self._webhook is not None:
            batch = self._take_updates(1)
            if not batch:
                await self._wait_signal(None)
                continue
            hook, update = self._webhook, batch[0]
            headers = {"Content-Type": "application/json"}
            if hook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
            try:
                async with self._http.post(hook.url, data=_dumps(update), headers=headers) as resp:
                    await resp.read()
                    error = None if 200 <= resp.status < 300 else f"Wrong response: {resp.status}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                error = f"Connection failed: {exc!r}"
            if error is None:
                if self._updates and self._updates[0] is update:
                    self._updates.popleft()
                self.webhook_deliveries.append(update)
                continue
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            await asyncio.sleep(self.webhook_retry_delay)

    # ------------------------------------------------------------------ API methods
    # Each _api_<lowercase method name> gets the decoded call and returns the result or
    # raises ApiError; method names are case-insensitive in the real API too.

    async def _api_getme(self, call: _Call) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _api_logout(self, call: _Call) -> Any:
        return True

    async def _api_close(self, call: _Call) -> Any:
        return True

    async def _api_getupdates(self, call: _Call) -> Any:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        params = call.params
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = min(max(float(params.get("timeout") or 0), 0.0), 50.0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):  # like Telegram, the setting sticks for later calls
            self._allowed_updates = frozenset(allowed) if allowed else None
        self._confirm(int(params.get("offset") or 0))

        poll = _Poll()
        if self._active_poll is not None:
            self._active_poll.superseded = True
            self._notify()
        self._active_poll = poll
        deadline = time.monotonic() + timeout
        try:
            while True:
                if poll.superseded:
                    # A client that cancelled its request is usually the one superseded; give
                    # its disconnect a moment to cancel us before calling it a second instance.
                    await asyncio.sleep(0.05)
                    transport = call.request.transport
                    if transport is None or transport.is_closing():
                        raise _ClientGone
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                batch = self._take_updates(limit)
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._stopping:
                    return batch
                await self._wait_signal(remaining)
        finally:
            if self._active_poll is poll:
                self._active_poll = None

    async def _api_setwebhook(self, call: _Call) -> Any:
        params = call.params
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_TOKEN_RE.fullmatch(str(secret)):
            raise _bad("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else None
        await self._stop_webhook_task()
        if not url:
            self._webhook = None
            return True
        if not url.startswith(("http://", "https://")):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self._webhook = _Webhook(
            url, str(secret) if secret else None, int(params.get("max_connections") or 40)
        )
        self._webhook_task = asyncio.create_task(self._webhook_loop())
        return True

    async def _api_deletewebhook(self, call: _Call) -> Any:
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook = None
        await self._stop_webhook_task()
        return True

    async def _api_getwebhookinfo(self, call: _Call) -> Any:
        hook = self._webhook
        info: JSON = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = "127.0.0.1"
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        if self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    async def _api_sendmessage(self, call: _Call) -> Any:
        chat = self._resolve_chat(call.params.get("chat_id"))
        self._check_retry_after("sendMessage", chat)
        fields = self._text_fields(call.params)
        fields |= self._reply_fields(chat, call.params) | self._markup_fields(call.params)
        fields |= self._thread_fields(chat, call.params)
        self._consume_rate(chat)
        return self._deliver(chat, fields)

    async def _api_senddocument(self, call: _Call) -> Any:
        chat = self._resolve_chat(call.params.get("chat_id"))
        self._check_retry_after("sendDocument", chat)
        fields = self._caption_fields(call.params)
        fields |= self._reply_fields(chat, call.params) | self._markup_fields(call.params)
        fields |= self._thread_fields(chat, call.params)
        stored = self._input_file(call, "document", "documents", "application/octet-stream")
        self._consume_rate(chat)
        return self._deliver(chat, {"document": _document_json(stored), **fields})

    async def _api_sendphoto(self, call: _Call) -> Any:
        chat = self._resolve_chat(call.params.get("chat_id"))
        self._check_retry_after("sendPhoto", chat)
        fields = self._caption_fields(call.params)
        fields |= self._reply_fields(chat, call.params) | self._markup_fields(call.params)
        fields |= self._thread_fields(chat, call.params)
        stored = self._input_file(call, "photo", "photos", "image/jpeg")
        self._consume_rate(chat)
        return self._deliver(chat, {"photo": [_photo_size_json(stored, 800, 600)], **fields})

    def _deliver(self, chat: FakeChat, fields: JSON) -> JSON:
        """Store a message from the bot, record it in ``sent`` and return its API form."""
        message = self._new_message(chat, self.bot_user, **fields)
        self.sent.append(message)
        return self._public(message)

    def _source_message(self, call: _Call, what: str) -> JSON:
        """Return the message named by from_chat_id/message_id for copy or forward."""
        source_chat = self._resolve_chat(call.params.get("from_chat_id"), sending=False)
        source = self._messages.get((source_chat.id, int(call.params.get("message_id") or 0)))
        if source is None:
            raise _bad(f"message to {what} not found")
        if not any(k in source for k in _COPYABLE):
            raise _bad(f"message can't be {'forwarded' if what == 'forward' else 'copied'}")
        return source

    async def _api_copymessage(self, call: _Call) -> Any:
        chat = self._resolve_chat(call.params.get("chat_id"))
        self._check_retry_after("copyMessage", chat)
        source = self._source_message(call, "copy")
        fields: JSON = {k: source[k] for k in ("entities", *_COPYABLE) if k in source}
        if "caption" in call.params:
            fields |= self._caption_fields(call.params)
        else:
            fields |= {k: source[k] for k in ("caption", "caption_entities") if k in source}
        fields |= self._reply_fields(chat, call.params) | self._markup_fields(call.params)
        fields |= self._thread_fields(chat, call.params)
        self._consume_rate(chat)
        message = self._new_message(chat, self.bot_user, **copy.deepcopy(fields))
        self.sent.append(message)
        return {"message_id": message["message_id"]}

    async def _api_forwardmessage(self, call: _Call) -> Any:
        chat = self._resolve_chat(call.params.get("chat_id"))
        self._check_retry_after("forwardMessage", chat)
        source = self._source_message(call, "forward")
        keep = ("entities", "caption", "caption_entities", *_COPYABLE)
        fields = copy.deepcopy({k: source[k] for k in keep if k in source})
        fields["forward_origin"] = source.get("forward_origin") or {
            "type": "user",
            "sender_user": source["from"],
            "date": source["date"],
        }
        self._consume_rate(chat)
        return self._deliver(chat, fields)

    def _own_message(self, call: _Call, action: str) -> tuple[FakeChat, JSON]:
        """Return the bot's own message named by chat_id/message_id for an edit."""
        if call.params.get("inline_message_id"):
            raise _bad("inline messages are not supported by the fake server")
        chat = self._resolve_chat(call.params.get("chat_id"), sending=False)
        message = self._messages.get((chat.id, int(call.params.get("message_id") or 0)))
        if message is None:
            raise _bad(f"message to {action} not found")
        if message["from"]["id"] != self.bot_id:
            raise _bad(f"message can't be {action}ed")
        return chat, message

    async def _api_editmessagetext(self, call: _Call) -> Any:
        chat, message = self._own_message(call, "edit")
        self._check_retry_after("editMessageText", chat)
        if "text" not in message:
            raise _bad("there is no text in the message to edit")
        fields = self._text_fields(call.params)
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        markup = self._check_markup(call.params.get("reply_markup"))
        unchanged = (
            fields["text"] == message["text"]
            and fields.get("entities", []) == message.get("entities", [])
            and markup == message.get("reply_markup")
        )
        if unchanged:
            raise _not_modified()
        self._consume_rate(chat)
        for key in ("entities", "reply_markup"):
            message.pop(key, None)
        message |= fields
        if markup is not None:
            message["reply_markup"] = markup
        return self._edited(message)

    async def _api_editmessagereplymarkup(self, call: _Call) -> Any:
        _chat, message = self._own_message(call, "edit")
        markup = self._check_markup(call.params.get("reply_markup"))
        if markup is not None and "inline_keyboard" not in markup:
            raise _bad("inline keyboard expected")
        if markup == message.get("reply_markup"):
            raise _not_modified()
        message.pop("reply_markup", None)
        if markup is not None:
            message["reply_markup"] = markup
        return self._edited(message)

    def _edited(self, message: JSON) -> JSON:
        """Stamp an edit, snapshot it in ``edits`` and return the API form."""
        message["edit_date"] = int(self.clock())
        self.edits.append(copy.deepcopy(message))
        return self._public(message)

    async def _api_deletemessage(self, call: _Call) -> Any:
        chat = self._resolve_chat(call.params.get("chat_id"), sending=False)
        key = (chat.id, int(call.params.get("message_id") or 0))
        message = self._messages.get(key)
        if message is None:
            raise _bad("message to delete not found")
        bot_is_admin = self._members.get(chat.id, {}).get(self.bot_id) in (
            "administrator",
            "creator",
        )
        own = message["from"]["id"] == self.bot_id
        if not (own or chat.type == "private" or bot_is_admin):
            raise _bad("message can't be deleted")
        del self._messages[key]
        self.deleted.append(key)
        return True

    async def _api_answercallbackquery(self, call: _Call) -> Any:
        query_id = str(call.params.get("callback_query_id") or "")
        if self._callback_queries.get(query_id, True):  # unknown or already answered
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        self._callback_queries[query_id] = True
        self.callback_answers.append(dict(call.params))
        return True

    async def _api_sendchataction(self, call: _Call) -> Any:
        self._resolve_chat(call.params.get("chat_id"))
        if not call.params.get("action"):
            raise _bad("wrong parameter action in request")
        return True

    async def _api_setmycommands(self, call: _Call) -> Any:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for command in commands:
            name = command.get("command") if isinstance(command, dict) else None
            description = command.get("description") if isinstance(command, dict) else None
            if not isinstance(name, str) or not _BOT_COMMAND_NAME_RE.fullmatch(name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(call.params)] = commands
        return True

    async def _api_getmycommands(self, call: _Call) -> Any:
        return self.commands.get(self._commands_key(call.params), [])

    async def _api_deletemycommands(self, call: _Call) -> Any:
        self.commands.pop(self._commands_key(call.params), None)
        return True

    @staticmethod
    def _commands_key(params: JSON) -> tuple[str, str]:
        """Return the storage key of a command list: (scope JSON, language_code)."""
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _api_setchatmenubutton(self, call: _Call) -> Any:
        chat_id = call.params.get("chat_id")
        if chat_id is not None:
            chat_id = self._resolve_chat(chat_id, sending=False).id
        self.menu_buttons[chat_id] = call.params.get("menu_button") or {"type": "default"}
        return True

    async def _api_getchatmenubutton(self, call: _Call) -> Any:
        return self.menu_buttons.get(call.params.get("chat_id"), {"type": "default"})

    async def _api_getfile(self, call: _Call) -> Any:
        stored = self._files.get(str(call.params.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        if len(stored.content) > MAX_DOWNLOAD:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    async def _api_getchat(self, call: _Call) -> Any:
        chat = self._resolve_chat(call.params.get("chat_id"), sending=False)
        return {
            **chat.to_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _api_getchatmember(self, call: _Call) -> Any:
        chat = self._resolve_chat(call.params.get("chat_id"), sending=False)
        user_id = call.params.get("user_id")
        if user_id == self.bot_id:
            user = self.bot_user
        elif isinstance(user_id, int) and user_id in self._users:
            user = self._users[user_id].to_dict()
        else:
            raise _bad("user not found")
        if chat.type == "private":
            status = "member" if user_id in (chat.id, self.bot_id) else "left"
        else:
            status = self._members.get(chat.id, {}).get(int(user_id), "left")
        return _member_json(user, status)

    async def _api_leavechat(self, call: _Call) -> Any:
        chat = self._resolve_chat(call.params.get("chat_id"), sending=False)
        if chat.type == "private":
            raise _bad("chat member status can't be changed in private chats")
        self._members.setdefault(chat.id, {})[self.bot_id] = "left"
        return True


# ---------------------------------------------------------------------- module helpers


def _id_of(obj: FakeChat | FakeUser | int) -> int:
    """Return the id of a chat, user or plain id."""
    return obj if isinstance(obj, int) else obj.id


def _dumps(obj: Any) -> str:
    """Serialize JSON keeping non-ASCII text readable."""
    return json.dumps(obj, ensure_ascii=False)


def _too_many(retry_after: int) -> ApiError:
    """Return the 429 error with ``parameters.retry_after``."""
    retry_after = max(1, retry_after)
    return ApiError(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


def _not_modified() -> ApiError:
    """Return Telegram's error for an edit that changes nothing."""
    return _bad(
        "message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message"
    )


def _http_reason(status: int) -> str:
    """Return the description Telegram's front end uses for a 5xx status."""
    return {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(
        status, "Server Error"
    )


def _check_inline_button(button: Any) -> None:
    """Validate one InlineKeyboardButton like Telegram."""
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise _bad('can\'t parse inline keyboard button: Field "text" must be of type String')
    if not button["text"]:
        raise _bad("BUTTON_TEXT_INVALID")
    if not _INLINE_BUTTON_ACTIONS.intersection(button):
        raise _bad(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
            raise _bad("BUTTON_DATA_INVALID")
    if "url" in button and not str(button["url"]).startswith(("http://", "https://", "tg://")):
        raise _bad("BUTTON_URL_INVALID")


def _command_entities(text: str) -> list[JSON]:
    """Return bot_command entities like Telegram adds them to incoming text."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group()),
        }
        for m in _COMMAND_RE.finditer(text)
    ]


def _update_allowed(update: JSON, allowed: frozenset[str] | None) -> bool:
    """Return True if the update's type passes the allowed_updates setting."""
    kind = next((k for k in update if k != "update_id"), "")
    if allowed is None:
        return kind not in _OPT_IN_UPDATES
    return kind in allowed


def _document_json(stored: _StoredFile) -> JSON:
    """Return the Bot API ``Document`` object of a stored file."""
    data: JSON = {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.content),
    }
    if stored.file_name is not None:
        data["file_name"] = stored.file_name
    if stored.mime_type is not None:
        data["mime_type"] = stored.mime_type
    return data


def _photo_size_json(stored: _StoredFile, width: int, height: int) -> JSON:
    """Return the Bot API ``PhotoSize`` object of a stored file."""
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.content),
        "width": width,
        "height": height,
    }


def _member_json(user: JSON, status: str) -> JSON:
    """Return a Bot API ``ChatMember`` object with the fields PTB requires for ``status``."""
    member: JSON = {"status": status, "user": user}
    if status == "administrator":
        member |= {
            "can_be_edited": False,
            "is_anonymous": False,
            "can_manage_chat": True,
            "can_delete_messages": True,
            "can_manage_video_chats": False,
            "can_restrict_members": True,
            "can_promote_members": False,
            "can_change_info": False,
            "can_invite_users": True,
            "can_post_stories": False,
            "can_edit_stories": False,
            "can_delete_stories": False,
            "can_pin_messages": True,
        }
    elif status == "creator":
        member["is_anonymous"] = False
    elif status == "kicked":
        member["until_date"] = 0
    return member


async def _read_params(request: web.Request) -> tuple[JSON, dict[str, _Upload]]:
    """Decode query string, JSON, urlencoded or multipart parameters into typed values."""
    params: JSON = dict(request.query)
    uploads: dict[str, _Upload] = {}
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad("can't parse JSON encoded request") from None
            if not isinstance(body, dict):
                raise _bad("can't parse JSON encoded request")
            params.update(body)
        else:
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    uploads[name] = _Upload(value.filename, value.file.read(), value.content_type)
                else:
                    params[name] = value
    return {name: _coerce(name, value) for name, value in params.items()}, uploads


def _coerce(name: str, value: Any) -> Any:
    """Convert a form string to the type Telegram reads for that parameter."""
    if not isinstance(value, str):
        return value
    if name in _INT_PARAMS and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if name in _BOOL_PARAMS:
        return value.strip().lower() in ("true", "1")
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            if name == "reply_markup":
                raise _bad("can't parse reply keyboard markup JSON object") from None
            raise _bad(f"can't parse {name} JSON object") from None
    return value


def _recordable(params: JSON, uploads: dict[str, _Upload]) -> JSON:
    """Return params for RecordedRequest, with uploads summarized by name and size."""
    recorded = dict(params)
    for name, upload in uploads.items():
        recorded[name] = {
            "filename": upload.filename,
            "size": len(upload.content),
            "content_type": upload.content_type,
        }
    return recorded
