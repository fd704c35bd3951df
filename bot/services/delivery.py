"""Delivery of the outbox, the database side: claim rows under a lease, record outcomes.

`scheduler.sender` runs the send loop (limits, Telegram, classifying errors); everything it
reads from or writes to the database goes through here: claiming due rows (one per chat,
skipping what is no longer wanted), releasing leases, and recording each outcome in one
transaction with what follows from it (a sent row, a retry with backoff, a moved group, an
unreachable recipient, through `bot.services.reachability`). See docs/delivery.md.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.db.engine import Database
from bot.domain.assignments import is_open
from bot.services import reachability
from bot.services.audit import record

log = logging.getLogger("duban.sender")

# A claimed row is ours for this long; another sender may take it afterwards.
LEASE = timedelta(seconds=30)
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=10)
# Outbox kinds a person is waiting for (the office's notice of a new submission, a decision
# on an extension): claimed and sent before the rows of a burst (issue 14 case 8).
URGENT_KINDS = frozenset({"review", "review_result", "extension", "extension_result", "notice"})

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
    if not is_open(assignment.status):
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
    ranked_query = select(m.Outbox.id, m.Outbox.not_before, m.Outbox.kind, rank).where(
        *_claimable(now)
    )
    if exclude:
        ranked_query = ranked_query.where(m.Outbox.chat_id.not_in(list(exclude)))
    ranked = ranked_query.subquery()
    urgent = case((ranked.c.kind.in_(sorted(URGENT_KINDS)), 0), else_=1)
    first = (
        select(ranked.c.id)
        .where(ranked.c.rank == 1)
        .order_by(urgent, ranked.c.not_before, ranked.c.id)
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
