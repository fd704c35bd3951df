"""Drain the outbox into Telegram under the flood limits; sort failures into retry and give up.

The loop: claim due rows (one per chat, under a lease), re-check that each is still wanted,
send each as soon as its overall, chat and group slots are free, and record the outcome
right after Telegram answers. See docs/delivery.md for the design.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
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

from bot.db import models as m
from bot.db.engine import Database
from bot.logs import redact
from bot.reports.attachments import RenderError, render_attachment
from bot.runtime import Clock
from bot.services import reachability
from bot.services.audit import record
from scheduler.limits import FROM_SENDER, RateLimits, Ticket, retry_after_seconds

log = logging.getLogger("duban.sender")


def _quiet_ptb() -> None:
    """Silence PTB's advice to call its wrapper: the payload names the Bot API method."""
    warnings.filterwarnings("ignore", message=r"Please use 'Bot\.", category=PTBUserWarning)


# A claimed row is ours for this long; another sender may take it afterwards.
LEASE = timedelta(seconds=30)
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
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=10)
# Statuses of an assignment that still wants nudges.
OPEN_ASSIGNMENT = ("pending", "returned")

STATUS_PENDING = "pending"
STATUS_SENT = "sent"
STATUS_FAILED = "failed"  # Telegram refused the message itself: a bug to look at
STATUS_CANCELLED = "cancelled"  # no longer wanted: assignment closed or re-dated, recipient gone


# ---------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Sent:
    """Telegram accepted the message."""

    message_id: int | None


@dataclass(frozen=True)
class Paused:
    """A 429: wait `seconds`, then send the same row again."""

    seconds: float


@dataclass(frozen=True)
class Migrated:
    """The group became a supergroup with a new chat id."""

    new_chat_id: int


@dataclass(frozen=True)
class Unreachable:
    """The recipient refused for good (blocked, deactivated, removed, no such chat)."""

    reason: reachability.Reason
    error: str


@dataclass(frozen=True)
class Failed:
    """Telegram refused the message itself (bad HTML, too long): retrying cannot help."""

    error: str


@dataclass(frozen=True)
class Retry:
    """A network error, timeout or 5xx: try again later."""

    error: str


Outcome = Sent | Paused | Migrated | Unreachable | Failed | Retry

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


def backoff(attempts: int) -> timedelta:
    """Return the wait before attempt `attempts + 1` (2 s, 4 s, 8 s, ... at most 10 min)."""
    if attempts <= 0:
        return timedelta(0)
    delay: timedelta = BACKOFF_BASE * (2 ** min(attempts - 1, 20))
    return min(BACKOFF_CAP, delay)


# ---------------------------------------------------------------------- the database side


@dataclass(frozen=True)
class Claimed:
    """One outbox row this sender holds a lease on."""

    id: int
    chat_id: int
    group: bool
    payload: dict[str, Any]
    kind: str
    person_id: int | None
    campaign_id: int | None
    attempts: int
    lease_until: datetime
    # The forum topic of a group that registered in one: every send there carries it.
    thread_id: int | None = None


def _claimable(now: datetime) -> tuple[Any, ...]:
    return (
        m.Outbox.status == STATUS_PENDING,
        m.Outbox.not_before <= now,
        or_(m.Outbox.lease_until.is_(None), m.Outbox.lease_until <= now),
    )


def _still_wanted(row: m.Outbox, assignment: Any) -> str | None:
    """Return why a nudge must not go out any more, or None if it still should."""
    if assignment is None:
        return None
    if assignment.archived_at is not None:
        return "assignment archived"
    if assignment.status not in OPEN_ASSIGNMENT:
        return f"assignment {assignment.status}"
    if row.planned_due_at is not None and assignment.due_at != row.planned_due_at:
        return "deadline changed"
    return None


async def claim(
    db: Database,
    *,
    owner: str,
    now: datetime,
    limit: int,
    exclude: Collection[int] = (),
) -> list[Claimed]:
    """Lease up to `limit` due rows, the oldest of each chat, skipping chats in `exclude`.

    In the same transaction, rows for a closed or re-dated assignment, or for a recipient
    marked unreachable, are cancelled instead (stop at once).
    """
    if limit <= 0:
        return []
    rank = (
        func.row_number()
        .over(partition_by=m.Outbox.chat_id, order_by=(m.Outbox.not_before, m.Outbox.id))
        .label("rank")
    )
    ranked_query = select(m.Outbox.id, m.Outbox.not_before, rank).where(*_claimable(now))
    if exclude:
        ranked_query = ranked_query.where(m.Outbox.chat_id.not_in(list(exclude)))
    ranked = ranked_query.subquery()
    first = (
        select(ranked.c.id)
        .where(ranked.c.rank == 1)
        .order_by(ranked.c.not_before, ranked.c.id)
        .limit(limit)
    )
    # The claimable conditions are repeated outside so that PostgreSQL re-checks them on the
    # row version it locks (another sender may have leased it since the subquery ran).
    query = (
        select(m.Outbox)
        .where(m.Outbox.id.in_(first), *_claimable(now))
        .order_by(m.Outbox.not_before, m.Outbox.id)
    )
    if db.dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    # A read first: an idle outbox, looked at every second, never takes SQLite's write lock.
    async with db.read() as session:
        due = await session.scalar(select(m.Outbox.id).where(*_claimable(now)).limit(1))
    if due is None:
        return []
    claimed: list[Claimed] = []
    async with db.write() as session:
        rows = list(await session.scalars(query))
        if not rows:
            return []
        people = {
            telegram_id: (reachable, is_group, thread_id)
            for telegram_id, reachable, is_group, thread_id in await session.execute(
                select(
                    m.Person.telegram_id, m.Person.reachable, m.Person.is_group, m.Person.thread_id
                ).where(m.Person.telegram_id.in_({row.chat_id for row in rows}))
            )
        }
        assignment_ids = {row.assignment_id for row in rows if row.assignment_id is not None}
        assignments = {}
        if assignment_ids:
            assignments = {
                a.id: a
                for a in await session.execute(
                    select(
                        m.Assignment.id,
                        m.Assignment.status,
                        m.Assignment.archived_at,
                        m.Assignment.due_at,
                    ).where(m.Assignment.id.in_(assignment_ids))
                )
            }
        lease_until = now + LEASE
        for row in rows:
            reachable, is_group, thread_id = people.get(row.chat_id, (True, False, None))
            reason = _still_wanted(row, assignments.get(row.assignment_id or 0))
            if reason is None and not reachable:
                reason = "unreachable"
            if reason is not None:
                row.status = STATUS_CANCELLED
                row.last_error = reason
                log.info("outbox %s (%s) not sent: %s", row.id, row.kind, reason)
                continue
            row.lease_owner = owner
            row.lease_until = lease_until
            claimed.append(
                Claimed(
                    id=row.id,
                    chat_id=row.chat_id,
                    group=is_group or row.chat_id < 0,
                    payload=dict(row.payload),
                    kind=row.kind,
                    person_id=row.person_id,
                    campaign_id=row.campaign_id,
                    attempts=row.attempts,
                    lease_until=lease_until,
                    thread_id=thread_id if is_group else None,
                )
            )
    return claimed


async def release(db: Database, ids: Collection[int], *, owner: str) -> None:
    """Give leased rows back unsent, so that any sender may claim them at once."""
    if not ids:
        return
    async with db.write() as session:
        await session.execute(
            update(m.Outbox)
            .where(m.Outbox.id.in_(list(ids)), m.Outbox.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


async def release_all(db: Database) -> int:
    """Drop every lease on pending rows; only for a sender that knows it is the only one."""
    async with db.write() as session:
        result = await session.execute(
            update(m.Outbox)
            .where(m.Outbox.status == STATUS_PENDING, m.Outbox.lease_owner.is_not(None))
            .values(lease_owner=None, lease_until=None)
        )
    return _rowcount(result)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _mine(row: Claimed, owner: str) -> tuple[Any, ...]:
    return (
        m.Outbox.id == row.id,
        m.Outbox.lease_owner == owner,
        m.Outbox.status == STATUS_PENDING,
    )


async def record_outcomes(
    db: Database,
    results: Sequence[tuple[Claimed, Outcome]],
    *,
    owner: str,
    now: datetime,
    default_language: str,
) -> int:
    """Write what Telegram answered for each row; return how many office notices were queued."""
    notices = 0
    async with db.write() as session:
        for row, outcome in results:
            if isinstance(outcome, Sent):
                await _record_sent(session, row, outcome, owner=owner, now=now)
            elif isinstance(outcome, Retry):
                await session.execute(
                    update(m.Outbox)
                    .where(*_mine(row, owner))
                    .values(
                        attempts=row.attempts + 1,
                        not_before=now + backoff(row.attempts + 1),
                        last_error=outcome.error[:1000],
                        lease_owner=None,
                        lease_until=None,
                    )
                )
            elif isinstance(outcome, Failed):
                log.error("outbox %s (%s) refused by Telegram: %s", row.id, row.kind, outcome.error)
                await _finish(session, row, owner, STATUS_FAILED, outcome.error)
            elif isinstance(outcome, Migrated):
                await _follow_migration(session, row, outcome, owner=owner, now=now)
            elif isinstance(outcome, Unreachable):
                notices += await _mark_unreachable(
                    session, row, outcome, owner=owner, now=now, default_language=default_language
                )
            # Paused rows never reach the database: the sender keeps them and retries.
    return notices


async def _record_sent(
    session: AsyncSession, row: Claimed, outcome: Sent, *, owner: str, now: datetime
) -> None:
    result = await session.execute(
        update(m.Outbox)
        .where(*_mine(row, owner))
        .values(
            status=STATUS_SENT,
            sent_at=now,
            sent_message_id=outcome.message_id,
            attempts=row.attempts + 1,
            last_error=None,
            lease_owner=None,
            lease_until=None,
        )
    )
    if _rowcount(result) == 0:
        # Only possible if our lease ran out and another sender took the row.
        log.warning("outbox %s was sent but its lease had passed to another sender", row.id)
    record(
        session,
        at=now,
        actor="system",
        action="message.sent",
        campaign_id=row.campaign_id,
        object_type="outbox",
        object_id=row.id,
        details={"kind": row.kind, "chat_id": row.chat_id, "message_id": outcome.message_id},
    )


async def _finish(session: AsyncSession, row: Claimed, owner: str, status: str, error: str) -> None:
    await session.execute(
        update(m.Outbox)
        .where(*_mine(row, owner))
        .values(
            status=status,
            attempts=row.attempts + 1,
            last_error=error[:1000],
            lease_owner=None,
            lease_until=None,
        )
    )


async def _follow_migration(
    session: AsyncSession, row: Claimed, outcome: Migrated, *, owner: str, now: datetime
) -> None:
    old, new = row.chat_id, outcome.new_chat_id
    log.info("group %s became supergroup %s; following it", old, new)
    # Every pending row for the old chat, this one included, now goes to the new one.
    await reachability.chat_migrated(session, old, new, now=now)
    await session.execute(
        update(m.Outbox)
        .where(*_mine(row, owner))
        .values(
            attempts=row.attempts + 1,
            last_error=f"migrated to {new}",
            lease_owner=None,
            lease_until=None,
        )
    )


async def _mark_unreachable(
    session: AsyncSession,
    row: Claimed,
    outcome: Unreachable,
    *,
    owner: str,
    now: datetime,
    default_language: str,
) -> int:
    await _finish(session, row, owner, STATUS_CANCELLED, f"unreachable: {outcome.error}")
    person = await session.scalar(select(m.Person).where(m.Person.telegram_id == row.chat_id))
    if person is None:
        # Nothing else is sent to that chat; the rows stay as a record of what was not sent.
        await session.execute(
            update(m.Outbox)
            .where(m.Outbox.chat_id == row.chat_id, m.Outbox.status == STATUS_PENDING)
            .values(status=STATUS_CANCELLED, last_error="unreachable")
        )
        log.warning("chat %s refused outbox %s: %s", row.chat_id, row.id, outcome.error)
        return 0
    # The same use case as Telegram's my_chat_member update: whichever comes first tells
    # the office, once.
    change = await reachability.became_unreachable(
        session,
        person,
        outcome.reason,
        now=now,
        default_language=default_language,
        detail=outcome.error,
        campaign_id=row.campaign_id,
    )
    return change.notices


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
        if want < self._capacity // 2:
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
        self._more = len(rows) == want
        if not self._more:
            self._next_poll = now + self.poll_seconds

    def _dispatch(self) -> None:
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
