"""Drain the outbox into Telegram under the flood limits; sort failures into retry and give up.

The loop: claim due rows (one per chat, under a lease), send each as soon as its overall,
chat and group slots are free, classify what Telegram answered, and record the outcome right
after. Every read and write of the database (claiming, re-checking that a row is still
wanted, leases, outcomes and what follows from them) is `bot.services.delivery`; this module
holds no SQL. See docs/delivery.md for the design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram import Bot, InputFile
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBUserWarning

from bot.db.engine import Database
from bot.logs import redact
from bot.reports.attachments import RenderError, render_attachment
from bot.runtime import Clock
from bot.services import reachability
from bot.services.delivery import (
    URGENT_KINDS,
    Claimed,
    Failed,
    Migrated,
    Outcome,
    Paused,
    Retry,
    Sent,
    Unreachable,
    claim,
    record_outcomes,
    release,
    release_all,
)
from scheduler.limits import FROM_SENDER, RateLimits, Ticket, retry_after_seconds

log = logging.getLogger("duban.sender")


def _quiet_ptb() -> None:
    """Silence PTB's advice to call its wrapper: the payload names the Bot API method."""
    warnings.filterwarnings("ignore", message=r"Please use 'Bot\.", category=PTBUserWarning)


# A send starts only if it can finish (every timeout below elapsed) well inside the lease.
SEND_BUDGET = timedelta(seconds=15)
TIMEOUTS: dict[str, float] = {
    "connect_timeout": 4.0,
    "write_timeout": 4.0,
    "read_timeout": 5.0,
    "pool_timeout": 1.0,
}
# The outbox is looked at least this often (seconds), and at once when poked.
POLL_SECONDS = 1.0


# ---------------------------------------------------------------------- outcomes


# Telegram's error texts for a recipient that is gone, and the catalog reason for each.
_GONE: tuple[tuple[str, reachability.Reason], ...] = (
    ("blocked by the user", "blocked"),
    ("user is deactivated", "deactivated"),
    ("can't initiate conversation", "not_started"),
    ("kicked from", "removed"),
    ("not a member", "removed"),
    ("chat not found", "not_found"),
    ("user not found", "not_found"),
    ("peer_id_invalid", "not_found"),
)


def _gone_reason(text: str) -> reachability.Reason | None:
    lowered = text.lower()
    return next((reason for needle, reason in _GONE if needle in lowered), None)


def classify(exc: Exception) -> Outcome:
    """Sort a failed request into what to do about it."""
    text = redact(str(exc))
    if isinstance(exc, RetryAfter):
        return Paused(retry_after_seconds(exc))
    if isinstance(exc, ChatMigrated):
        return Migrated(int(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        return Unreachable(_gone_reason(text) or "blocked", text)
    if isinstance(exc, BadRequest):  # before NetworkError: BadRequest is one of them in PTB
        reason = _gone_reason(text)
        return Unreachable(reason, text) if reason else Failed(text)
    if isinstance(exc, InvalidToken):
        # Every message fails the same way; keep them all and say so loudly.
        log.error("Telegram refused the bot token: %s", text)
        return Retry(text)
    if isinstance(exc, TelegramError):  # NetworkError, TimedOut, 5xx, Conflict, ...
        return Retry(text)
    return Retry(redact(f"{type(exc).__name__}: {exc}"))


# ---------------------------------------------------------------------- the loop


def make_owner() -> str:
    """Return a lease owner name unique to this process run."""
    host = socket.gethostname()[:32]
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _message_id(result: Any) -> int | None:
    if isinstance(result, list) and result:
        result = result[0]
    if isinstance(result, dict) and isinstance(result.get("message_id"), int):
        return int(result["message_id"])
    return None


@dataclass
class SenderStats:
    """What this sender has done since it started."""

    sent: int = 0
    retried: int = 0
    paused: int = 0
    failed: int = 0
    unreachable: int = 0
    migrated: int = 0
    claims: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Sender:
    """The outbox sender of one process: runs while this process leads."""

    def __init__(
        self,
        bot: Bot,
        db: Database,
        limits: RateLimits,
        *,
        clock: Clock,
        default_language: str,
        ready: asyncio.Event | None = None,
        is_leader: Callable[[], bool] = lambda: True,
        exclusive: bool = False,
        owner: str | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.bot = bot
        self.db = db
        self.limits = limits
        self.clock = clock
        self.default_language = default_language
        self.owner = owner or make_owner()
        self.stats = SenderStats()
        self.poll_seconds = poll_seconds
        self._ready = ready if ready is not None else asyncio.Event()
        self._is_leader = is_leader
        # With a file lock (SQLite) no other sender can exist: leases left by a dead run
        # are void and taken back at once instead of after they run out.
        self._exclusive = exclusive
        self._reclaimed = False
        # Keep about two seconds of work claimed so that no slot waits for the database.
        self._capacity = max(4, round(2 * limits.per_second))
        self._queue: list[Claimed] = []
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._inflight_chats: set[int] = set()
        # Outcomes waiting to be recorded; None tells the writer to finish.
        self._results: asyncio.Queue[tuple[Claimed, Outcome] | None] = asyncio.Queue()
        self._unwritten = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._poked = True
        self._more = False
        self._next_poll = 0.0
        self._was_leading = False
        limits.on_change(self._wake.set)
        _quiet_ptb()

    # -- life cycle

    async def run(self) -> None:
        """Send until `stop()`; then let requests in flight finish and record them."""
        writer = asyncio.create_task(self._write_results(), name="duban-sender-writer")
        watcher = asyncio.create_task(self._watch_ready(), name="duban-sender-ready")
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    await self._step()
                except Exception:
                    log.exception("sender step failed; retrying in %.1f s", self.poll_seconds)
                    self._next_poll = self.limits.now() + self.poll_seconds
                if self._stopping:
                    break
                timeout = self._timeout()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        finally:
            watcher.cancel()
            await self._wind_down(writer)

    def stop(self) -> None:
        """Ask the loop to stop after the current step."""
        self._stopping = True
        self._wake.set()

    @property
    def idle(self) -> bool:
        """Return True if nothing is claimed, in flight or waiting to be recorded."""
        return not self._queue and not self._inflight and self._unwritten == 0

    async def _watch_ready(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            self._poked = True
            self._wake.set()

    async def _wind_down(self, writer: asyncio.Task[None]) -> None:
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=SEND_BUDGET.total_seconds())
        self._results.put_nowait(None)
        try:
            await asyncio.wait_for(writer, timeout=SEND_BUDGET.total_seconds())
        except TimeoutError:
            log.error("gave up recording outcomes; their rows go again when the lease runs out")
        queued, self._queue = [row.id for row in self._queue], []
        with contextlib.suppress(Exception):
            await release(self.db, queued, owner=self.owner)

    # -- one step: claim, then start every send whose slots are free

    async def _step(self) -> None:
        leading = self._is_leader()
        if leading != self._was_leading:
            log.info("sender %s", "started" if leading else "stopped: not the leader")
            self._was_leading = leading
        if not leading:
            await self._give_back()
            self._next_poll = self.limits.now() + self.poll_seconds
            return
        if self._exclusive and not self._reclaimed:
            count = await release_all(self.db)
            if count:
                log.info("took back %d rows leased by an earlier run", count)
            self._reclaimed = True
        await self._refill()
        self._dispatch()

    async def _give_back(self) -> None:
        """Release what we claimed but did not start: another process leads now."""
        if not self._queue:
            return
        queued, self._queue = [row.id for row in self._queue], []
        try:
            await release(self.db, queued, owner=self.owner)
        except Exception:
            log.warning("could not release %d claimed rows; their lease will run out", len(queued))

    async def _refill(self) -> None:
        now = self.limits.now()
        want = self._capacity - len(self._queue)
        # A poke (a handler wrote a notice) claims at once, whatever the queue holds: what a
        # person is waiting for does not queue behind two seconds of a burst (issue 14).
        if want <= 0 or (want < self._capacity // 2 and not self._poked):
            return
        if not (self._poked or self._more or now >= self._next_poll):
            return
        self._poked = False
        exclude = (
            {row.chat_id for row in self._queue}
            | self._inflight_chats
            | self.limits.busy_chats(now)
        )
        rows = await claim(self.db, owner=self.owner, now=self.clock(), limit=want, exclude=exclude)
        self.stats.claims += 1
        self._queue.extend(rows)
        # Interactive first: office notices go before nudges and other pushes already queued.
        self._queue.sort(key=lambda row: row.kind not in URGENT_KINDS)
        self._more = len(rows) == want
        if not self._more:
            self._next_poll = now + self.poll_seconds

    def _dispatch(self) -> None:
        # Replies leave the outbox its share of the rate while it has rows waiting.
        self.limits.outbox_waiting = bool(self._queue)
        if not self._queue:
            return
        now = self.limits.now()
        latest_start = self.clock() + SEND_BUDGET
        keep: list[Claimed] = []
        expiring: list[int] = []
        for row in self._queue:
            if row.lease_until <= latest_start:
                expiring.append(row.id)
            elif (
                row.chat_id in self._inflight_chats
                or not self.limits.sender_may_send(now)
                or not self.limits.chat_ready(row.chat_id, row.group, now)
            ):
                keep.append(row)
            else:
                self._start(row, self.limits.begin(row.chat_id, row.group))
        self._queue = keep
        self.limits.outbox_waiting = bool(keep)
        if expiring:
            # Held too long (a long 429 pause): hand back rather than risk a double send.
            task = asyncio.create_task(release(self.db, expiring, owner=self.owner))
            task.add_done_callback(_log_failure)

    def _start(self, row: Claimed, ticket: Ticket) -> None:
        self._inflight_chats.add(row.chat_id)
        task = asyncio.create_task(self._send(row, ticket), name=f"duban-send-{row.id}")
        self._inflight[row.id] = task

    async def _send(self, row: Claimed, ticket: Ticket) -> None:
        FROM_SENDER.set(True)  # this task's context only: the PTB limiter lets it through
        params = {k: v for k, v in row.payload.items() if k not in ("method", "render")}
        params["chat_id"] = row.chat_id
        if row.thread_id is not None and "message_thread_id" not in params:
            params["message_thread_id"] = row.thread_id  # the group's topic (SPEC §4.5)
        outcome: Outcome
        try:
            spec = row.payload.get("render")
            if spec is not None:
                # A picture (the weekly bulletin) is drawn now, from the state of this moment.
                try:
                    data, name = await render_attachment(self.db, spec, self.clock())
                except RenderError as exc:
                    raise BadRequest(f"cannot draw the picture: {exc}") from None
                params["photo"] = InputFile(data, filename=name)
            result = await self.bot.do_api_request(
                str(row.payload["method"]),
                api_kwargs=params,
                connect_timeout=TIMEOUTS["connect_timeout"],
                write_timeout=TIMEOUTS["write_timeout"],
                read_timeout=TIMEOUTS["read_timeout"],
                pool_timeout=TIMEOUTS["pool_timeout"],
            )
            outcome = Sent(_message_id(result))
        except Exception as exc:
            outcome = classify(exc)
        finally:
            self.limits.finish(ticket)
            self._inflight.pop(row.id, None)
            self._inflight_chats.discard(row.chat_id)
        self._count(row, outcome)
        if isinstance(outcome, Paused):
            self.limits.pause(row.chat_id, row.group, outcome.seconds)
            self._queue.insert(0, row)  # still leased: send it again when the pause ends
        else:
            self._unwritten += 1
            self._results.put_nowait((row, outcome))
        self._wake.set()

    def _count(self, row: Claimed, outcome: Outcome) -> None:
        stats = self.stats
        if isinstance(outcome, Sent):
            stats.sent += 1
            stats.by_kind[row.kind] = stats.by_kind.get(row.kind, 0) + 1
        elif isinstance(outcome, Paused):
            stats.paused += 1
        elif isinstance(outcome, Retry):
            stats.retried += 1
            log.info("outbox %s: will retry (%s)", row.id, outcome.error)
        elif isinstance(outcome, Failed):
            stats.failed += 1
        elif isinstance(outcome, Unreachable):
            stats.unreachable += 1
        elif isinstance(outcome, Migrated):
            stats.migrated += 1

    def _timeout(self) -> float:
        now = self.limits.now()
        wake = self._next_poll
        if self._queue:
            wake = min(wake, self.limits.next_change(now))
        return min(self.poll_seconds, max(0.001, wake - now))

    # -- recording outcomes

    async def _write_results(self) -> None:
        """Record outcomes as they come, all that are ready in one transaction."""
        while True:
            batch = [await self._results.get()]
            while not self._results.empty():
                batch.append(self._results.get_nowait())
            done = None in batch
            outcomes = [item for item in batch if item is not None]
            if outcomes:
                # While stopping, give up after a few tries rather than hang the shutdown.
                await self._record(outcomes, attempts=5 if self._stopping else None)
            if done:
                return

    async def _record(self, batch: list[tuple[Claimed, Outcome]], attempts: int | None) -> None:
        """Write a batch of outcomes, retrying while the database is away."""
        tried = 0
        while True:
            tried += 1
            try:
                notices = await record_outcomes(
                    self.db,
                    batch,
                    owner=self.owner,
                    now=self.clock(),
                    default_language=self.default_language,
                )
            except Exception:
                if attempts is not None and tried >= attempts:
                    # The leases run out and the rows go again: at most these few repeat.
                    log.exception("could not record %d sent messages", len(batch))
                    self._unwritten -= len(batch)
                    return
                log.warning("could not record outcomes; retrying", exc_info=True)
                await asyncio.sleep(min(5.0, 0.5 * tried))
                continue
            self._unwritten -= len(batch)
            if notices:
                self._poked = True
            self._wake.set()
            return


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not release expiring leases: %s", task.exception())
