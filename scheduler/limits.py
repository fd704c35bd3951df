"""Telegram's flood limits, kept on our side: overall, per chat, per group, and 429 pauses.

A send occupies a slot in each window it belongs to from the moment it starts until one
window length after its answer arrived. Counting from the answer (not from the start) is
what makes the limit hold against a server that counts strict sliding windows by arrival
time: whatever the network delay, the server saw the earlier request before we heard back.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter

log = logging.getLogger("duban.sender")

# What the Bot API answers, and one request of a handler's reply, ready to send.
ApiResult = bool | dict[str, Any] | list[dict[str, Any]]
Request = Callable[[], Coroutine[Any, Any, ApiResult]]

# Bot API methods that put something into a chat: the ones Telegram rate-limits.
SENDING_METHODS = frozenset(
    {
        "sendmessage",
        "senddocument",
        "sendphoto",
        "sendvideo",
        "sendaudio",
        "sendvoice",
        "sendanimation",
        "sendsticker",
        "sendmediagroup",
        "sendlocation",
        "sendcontact",
        "sendpoll",
        "copymessage",
        "copymessages",
        "forwardmessage",
        "forwardmessages",
        "editmessagetext",
        "editmessagecaption",
        "editmessagemedia",
    }
)
GROUP_PER_MINUTE = 20
CHAT_INTERVAL = 1.0
GROUP_WINDOW = 60.0
# The share of the overall rate kept for the outbox while replies wait: nudges and office
# notices keep flowing under any flood of commands (and replies keep the rest, first).
OUTBOX_SHARE = 1 / 3
# Of a group's 20 a minute, replies to commands may take at most this many: the rest is kept
# for what the group is there to receive (submissions, digests) from the outbox.
GROUP_REPLY_PER_MINUTE = 10
# A reply answered 429 is waited out and tried again, this many times, for waits up to
# REPLY_RETRY_MAX seconds each (a longer wait means the person is better told by the outbox).
REPLY_429_TRIES = 5
REPLY_RETRY_MAX = 60.0
# A 429 is taken as the overall limit's when at least this share of the overall window was
# in use; otherwise as the chat's, if we sent into it within its interval.
GLOBAL_BUSY_SHARE = 0.8
# Waits (seconds) before trying a reply again that a 5xx or a cut connection lost. A timeout
# is not tried again: the answer may have arrived, and the person would see it twice.
REPLY_NETWORK_RETRIES = (0.5, 1.0)

# Set inside the sender's own requests so that the PTB rate limiter lets them through: the
# sender has already taken their slots.
FROM_SENDER: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "duban_from_sender", default=False
)


class Window:
    """At most `limit` sends whose slot is still held, each held until `length` after its answer."""

    def __init__(self, limit: int, length: float) -> None:
        self.limit = limit
        self.length = length
        # token -> moment the slot frees (math.inf while the request is in flight)
        self._release: dict[int, float] = {}

    def _prune(self, now: float) -> None:
        done = [token for token, until in self._release.items() if until <= now]
        for token in done:
            del self._release[token]

    def full(self, now: float) -> bool:
        """Return True if no slot is free at `now`."""
        self._prune(now)
        return len(self._release) >= self.limit

    def next_free(self, now: float) -> float:
        """Return when a slot frees (now if one is free; inf if all wait for answers)."""
        if not self.full(now):
            return now
        return min(self._release.values())

    def idle(self, now: float) -> bool:
        """Return True if the window holds nothing (it may be forgotten)."""
        self._prune(now)
        return not self._release

    def take(self, token: int) -> None:
        """Hold a slot for a request that starts now."""
        self._release[token] = math.inf

    def finish(self, token: int, now: float) -> None:
        """Start the slot's countdown: the request's answer arrived at `now`."""
        if token in self._release:
            self._release[token] = now + self.length


@dataclass(frozen=True)
class Ticket:
    """The slots one request holds."""

    token: int
    chat_id: int
    group: bool


def _global_window(per_second: float, span: float) -> Window:
    # 30/s over 1 s is 30 slots per second; a fractional rate such as 2.5/s is 2 slots per 0.8 s.
    limit = max(1, math.floor(per_second * span))
    return Window(limit, limit / per_second)


class RateLimits:
    """Every flood limit of one bot token, shared by the sender and the handlers' replies.

    Replies wait for their slots (never over a limit) and go before the outbox, except that
    the outbox keeps OUTBOX_SHARE of the overall rate while it has rows waiting, and
    GROUP_REPLY_PER_MINUTE caps the replies into one group (SPEC §5.3; issue 14).
    """

    def __init__(
        self,
        per_second: float = 30,
        *,
        global_window: float = 1.0,
        chat_interval: float = CHAT_INTERVAL,
        group_per_minute: int = GROUP_PER_MINUTE,
        group_window: float = GROUP_WINDOW,
        group_reply_per_minute: int = GROUP_REPLY_PER_MINUTE,
        outbox_share: float = OUTBOX_SHARE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.clock = clock
        self._global = _global_window(per_second, global_window)
        # Starts are also spaced evenly: a window's worth sent at once would come back, and
        # free up, at once again, and a crash would catch a whole burst in flight.
        self._spacing = 1.0 / per_second
        self._next_start = -math.inf
        self._chat_interval = chat_interval
        self._group_limit = group_per_minute
        self._group_window = group_window
        self._group_reply_limit = max(1, min(group_reply_per_minute, group_per_minute - 1))
        self._chats: dict[int, Window] = {}
        self._groups: dict[int, Window] = {}
        self._group_replies: dict[int, Window] = {}
        # None pauses everything; a chat id pauses that chat (a 429's retry_after).
        self._paused: dict[int | None, float] = {}
        self._tokens = itertools.count(1)
        # Starts within the last overall window: (moment, was it a reply).
        self._starts: deque[tuple[float, bool]] = deque()
        # Overall slots the outbox may always have while it has rows waiting.
        self._outbox_reserve = max(1, math.floor(self._global.limit * outbox_share))
        # Set by the sender: it holds rows that want to go.
        self.outbox_waiting = False
        # Replies that wait only for an overall slot: they go before the sender's rows.
        self._replies_waiting = 0
        # Chats a reply is waiting for: the sender leaves them to the reply.
        self._reply_chats: dict[int, int] = {}
        # The last 429s: (moment, chat), to tell a chat's limit from the overall one.
        self._last_429: tuple[float, int] | None = None
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        """Return the limiter's clock (monotonic seconds)."""
        return self.clock()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` whenever a slot starts its countdown or a pause is set."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def _paused_at(self, scope: int | None, now: float) -> bool:
        until = self._paused.get(scope)
        if until is None:
            return False
        if until <= now:
            del self._paused[scope]
            return False
        return True

    def _recent(self, now: float) -> tuple[int, int]:
        """Return (replies, outbox sends) started within the last overall window."""
        horizon = now - self._global.length
        while self._starts and self._starts[0][0] <= horizon:
            self._starts.popleft()
        replies = sum(1 for _, reply in self._starts if reply)
        return replies, len(self._starts) - replies

    def _overall_free(self, now: float) -> bool:
        return now >= self._next_start and not self._global.full(now)

    def global_ready(self, now: float) -> bool:
        """Return True if a send may start now as far as the overall limit goes."""
        return not self._paused_at(None, now) and self._overall_free(now)

    def sender_may_send(self, now: float) -> bool:
        """Return True if the sender may take an overall slot.

        Replies waiting go first, but the outbox always keeps its reserved share.
        """
        if not self.global_ready(now):
            return False
        return self._replies_waiting == 0 or self._recent(now)[1] < self._outbox_reserve

    def _reply_overall_free(self, now: float) -> bool:
        if not self._overall_free(now):
            return False
        if not self.outbox_waiting:
            return True
        return self._recent(now)[0] < self._global.limit - self._outbox_reserve

    def _chat_free(self, chat_id: int, group: bool, now: float) -> bool:
        chat = self._chats.get(chat_id)
        if chat is not None and chat.full(now):
            return False
        if group:
            window = self._groups.get(chat_id)
            if window is not None and window.full(now):
                return False
        return True

    def _group_reply_free(self, chat_id: int, group: bool, now: float) -> bool:
        window = self._group_replies.get(chat_id) if group else None
        return window is None or not window.full(now)

    def chat_ready(self, chat_id: int, group: bool, now: float) -> bool:
        """Return True if the sender may send into the chat now (limits, pauses, replies)."""
        if self._paused_at(None, now) or self._paused_at(chat_id, now):
            return False
        return chat_id not in self._reply_chats and self._chat_free(chat_id, group, now)

    def busy_chats(self, now: float) -> set[int]:
        """Return the chats that may not be sent to now (and forget idle windows)."""
        busy: set[int] = set()
        for windows in (self._chats, self._groups):
            for chat_id, window in list(windows.items()):
                if window.idle(now):
                    del windows[chat_id]
                elif window.full(now):
                    busy.add(chat_id)
        for chat_id, window in list(self._group_replies.items()):
            if window.idle(now):
                del self._group_replies[chat_id]
        busy.update(
            scope
            for scope in list(self._paused)
            if scope is not None and self._paused_at(scope, now)
        )
        return busy

    def next_change(self, now: float) -> float:
        """Return the next moment a slot frees or a pause ends (inf if none is pending)."""
        moments = [until for until in self._paused.values() if until > now]
        moments.append(self._global.next_free(now) if self._global.full(now) else math.inf)
        if self._next_start > now:
            moments.append(self._next_start)
        self._recent(now)  # forget starts that left the window
        if self._starts and (self._replies_waiting or self.outbox_waiting):
            # A share (the outbox's, the replies') frees when the oldest start leaves it.
            moments.append(self._starts[0][0] + self._global.length)
        for windows in (self._chats, self._groups, self._group_replies):
            for window in windows.values():
                if window.full(now):
                    moments.append(window.next_free(now))
        return min(moments)

    def begin(self, chat_id: int, group: bool, *, reply: bool = False) -> Ticket:
        """Take the overall, chat and (for groups) group slots for a request starting now."""
        ticket = Ticket(next(self._tokens), chat_id, group)
        now = self.now()
        # Keep to the schedule when a start is only a little late, so that small wake-up
        # delays do not add up; after a pause, start a new schedule from now.
        on_time = now - self._next_start < self._spacing
        self._next_start = (self._next_start if on_time else now) + self._spacing
        self._global.take(ticket.token)
        self._recent(now)
        self._starts.append((now, reply))
        self._chats.setdefault(chat_id, Window(1, self._chat_interval)).take(ticket.token)
        if group:
            window = self._groups.setdefault(chat_id, Window(self._group_limit, self._group_window))
            window.take(ticket.token)
            if reply:
                replies = self._group_replies.setdefault(
                    chat_id, Window(self._group_reply_limit, self._group_window)
                )
                replies.take(ticket.token)
        return ticket

    def finish(self, ticket: Ticket) -> None:
        """Start the countdown of the ticket's slots: its answer has arrived."""
        now = self.now()
        self._global.finish(ticket.token, now)
        for windows in (self._chats, self._groups, self._group_replies):
            window = windows.get(ticket.chat_id)
            if window is not None:
                window.finish(ticket.token, now)
        self._changed()

    def pause(self, chat_id: int, group: bool, seconds: float) -> None:
        """Honour a 429: send nothing into the limited scope for `seconds`.

        Telegram does not say which limit a 429 is for. It is taken as the overall limit's
        when the overall window was nearly full, or when another chat was answered 429 within
        the last overall window; otherwise as the chat's (a long one on a group is the
        group's per-minute limit), so that one busy chat does not stop every other.
        """
        now = self.now()
        until = now + seconds
        self._paused[chat_id] = max(until, self._paused.get(chat_id, 0.0))
        self._recent(now)
        busy = len(self._starts) >= GLOBAL_BUSY_SHARE * self._global.limit
        last = self._last_429
        spread = last is not None and last[1] != chat_id and now - last[0] <= self._global.length
        self._last_429 = (now, chat_id)
        scope = "chat"
        if busy or spread:
            scope = "everything"
            self._paused[None] = max(until, self._paused.get(None, 0.0))
        log.warning("Telegram asked to wait %.0f s (chat %s; pausing %s)", seconds, chat_id, scope)
        self._changed()

    def _claim_chat(self, chat_id: int, claim: bool) -> None:
        if claim:
            self._reply_chats[chat_id] = self._reply_chats.get(chat_id, 0) + 1
            return
        left = self._reply_chats.pop(chat_id) - 1
        if left:
            self._reply_chats[chat_id] = left

    async def acquire_for_reply(self, chat_id: int, group: bool) -> Ticket:
        """Wait for pauses and free slots (never going over a limit); take a reply's slots."""
        counted = False  # in _replies_waiting: only an overall slot is missing
        claimed = False  # in _reply_chats: the sender leaves the chat to this reply
        try:
            while True:
                now = self.now()
                paused = self._paused_at(None, now) or self._paused_at(chat_id, now)
                share_free = self._group_reply_free(chat_id, group, now)
                if share_free != claimed:
                    # Waiting for the group's reply share leaves the group to the outbox.
                    self._claim_chat(chat_id, share_free)
                    claimed = share_free
                chat_free = self._chat_free(chat_id, group, now)
                overall_free = self._reply_overall_free(now)
                if not paused and chat_free and share_free and overall_free:
                    break
                only_overall = not paused and chat_free and share_free
                if only_overall != counted:
                    self._replies_waiting += 1 if only_overall else -1
                    counted = only_overall
                wake = min(self.next_change(now), now + 0.05)
                await asyncio.sleep(max(0.001, wake - now))
        finally:
            if counted:
                self._replies_waiting -= 1
            if claimed:
                self._claim_chat(chat_id, False)
        ticket = self.begin(chat_id, group, reply=True)
        self._changed()
        return ticket


def retry_after_seconds(exc: RetryAfter) -> float:
    """Return a RetryAfter's wait in seconds (PTB gives an int or a timedelta)."""
    # Read the stored value: the public property warns about its future type.
    value = exc._retry_after
    return max(1.0, value.total_seconds())


class TelegramLimiter(BaseRateLimiter[None]):
    """Route the handlers' direct replies through the shared limits (the sender passes through).

    A reply waits for a 429 pause and for its slots (it never goes over a limit); it goes
    before the sender's rows (but for the outbox's share), and its slots count, so that a
    nudge and an answer into one chat do not collide. A reply answered 429 is waited out and
    tried again (REPLY_429_TRIES times, for waits up to REPLY_RETRY_MAX seconds).
    """

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, ApiResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> ApiResult:
        """Send one request, holding its slots unless the sender already holds them."""
        chat_id = _chat_id(data.get("chat_id"))
        if FROM_SENDER.get() or endpoint.lower() not in SENDING_METHODS or chat_id is None:
            return await callback(*args, **kwargs)
        group = chat_id < 0
        request: Request = functools.partial(callback, *args, **kwargs)
        for wait in (*REPLY_NETWORK_RETRIES, None):
            try:
                return await self._reply(request, chat_id, group)
            except TimedOut:
                raise
            except NetworkError as exc:
                if isinstance(exc, BadRequest) or wait is None:
                    raise
                log.info("reply to %s lost (%s); trying again in %.1f s", chat_id, exc, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _reply(self, request: Request, chat_id: int, group: bool) -> ApiResult:
        for tried in range(1, REPLY_429_TRIES + 1):
            try:
                return await self._once(request, chat_id, group)
            except RetryAfter as exc:
                if retry_after_seconds(exc) > REPLY_RETRY_MAX or tried == REPLY_429_TRIES:
                    raise
            # The pause is set: the next try waits it out, and the person gets the answer late.
        raise AssertionError("unreachable")

    async def _once(self, request: Request, chat_id: int, group: bool) -> ApiResult:
        ticket = await self.limits.acquire_for_reply(chat_id, group)
        try:
            return await request()
        except RetryAfter as exc:
            self.limits.pause(chat_id, group, retry_after_seconds(exc))
            raise
        finally:
            self.limits.finish(ticket)


def _chat_id(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None  # "@channelname": not a chat we send to
    return None
