"""The reminder planner: each tick turns what has fallen due into outbox rows (SPEC §5).

A tick does two things:

1. Assignments whose `next_check_at` has come (read through its index, so that a tick with
   nothing due reads almost nothing) get their nudges and escalations, in batches of one
   transaction each, and a new `next_check_at`: the next moment something is due, or None.
2. Each campaign gets its phase announcements, daily digest and weekly bulletin when due
   (`scheduler.notices`).

Outbox keys make every message exactly-once across ticks, restarts and processes:

- `nudge:<assignment>:<stage>:<due epoch>:<person>`
- `esc:<campaign>:<person>:<hash of the (assignment, stage, due) items>:<part>`
- `announce:<phase>:<person>:<part>`
- `digest:<campaign>:<local date>:<person>:<part>`
- `bulletin:<campaign>:<ISO week>:<person>:<part>`
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.db.engine import Database
from bot.domain.assignments import is_open
from bot.domain.deadlines import days_overdue
from bot.domain.reminders import Stage
from bot.i18n import format_moment, plain, t
from bot.messages.limits import utf16_len
from bot.messages.pushes import NudgeTexts, assignment_buttons
from bot.services.notify import Addressee, language_of
from bot.services.outbox import Outgoing, enqueue, enqueue_many, message
from bot.services.people import holders
from scheduler.context import (
    CampaignContext,
    TaskInfo,
    chunked,
    load_contexts,
    pack,
    unit_names,
    unit_people,
)
from scheduler.notice_deadlines import plan_notice_deadlines
from scheduler.notices import plan_notices

log = logging.getLogger("duban.planner")

# Assignments per transaction: 1,000 keep the working set of a catch-up over 500,000
# assignments at about 25 MB (5,000: about 50 MB) for the same total time.
BATCH = 1000
LINE_BUDGET = 3000  # a line of unit names is cut before this many characters


@dataclass
class PlanReport:
    """What one tick wrote to the outbox."""

    assignments: int = 0
    nudges: int = 0
    escalations: int = 0
    announcements: int = 0
    digests: int = 0
    bulletins: int = 0
    notice_nudges: int = 0
    unreachable_units: set[int] = field(default_factory=set)

    @property
    def messages(self) -> int:
        """Return how many outbox rows the tick added."""
        return (
            self.nudges
            + self.escalations
            + self.announcements
            + self.digests
            + self.bulletins
            + self.notice_nudges
        )


async def plan_tick(
    db: Database,
    now: datetime,
    *,
    default_language: str,
    batch_size: int = BATCH,
    stopping: Callable[[], bool] | None = None,
) -> PlanReport:
    """Write every nudge, escalation and campaign notice due at `now` to the outbox.

    `stopping` is asked between batches: when it returns True (the process is shutting
    down) the tick ends after the batch in hand, each batch being its own transaction, and
    the next tick (of this process or the next leader) plans the rest. A catch-up over
    500,000 assignments takes minutes; a stop must not wait for it.
    """
    report = PlanReport()
    async with db.read() as session:
        contexts = await load_contexts(session)
        # Ordered by the indexed column, so that the index answers it whatever the table's
        # statistics say (a plain LIMIT 1 may scan the table after a big update).
        waiting = await session.scalar(
            select(m.Assignment.next_check_at)
            .where(m.Assignment.next_check_at <= now)
            .order_by(m.Assignment.next_check_at)
            .limit(1)
        )
    if waiting is not None:
        while True:
            async with db.write() as session:
                count = await _plan_batch(
                    session, db.dialect, contexts, now, default_language, batch_size, report
                )
            if count < batch_size:
                break
            if stopping is not None and stopping():
                log.info("stopping: the rest of the due assignments wait for the next tick")
                return report
    if contexts:
        counts = await plan_notices(db, contexts, now, default_language)
        report.announcements = counts.announcements
        report.digests = counts.digests
        report.bulletins = counts.bulletins
        report.notice_nudges = await plan_notice_deadlines(db, contexts, now, default_language)
    if report.unreachable_units:
        log.info("units with no reachable contact: %s", sorted(report.unreachable_units))
    return report


@dataclass(frozen=True)
class Owed:
    """One stage owed by one assignment."""

    assignment_id: int
    unit_id: int
    due_at: datetime
    task: TaskInfo
    stage: Stage
    deliver: datetime  # when it may go out: now, or (caught up late) the window's next opening


async def _plan_batch(
    session: AsyncSession,
    dialect: str,
    contexts: dict[int, CampaignContext],
    now: datetime,
    default_language: str,
    batch_size: int,
    report: PlanReport,
) -> int:
    """Plan one batch of due assignments in the caller's transaction; return its size."""
    a = m.Assignment
    query = (
        select(
            a.id,
            a.campaign_id,
            a.unit_id,
            a.task_id,
            a.status,
            a.due_at,
            a.due_set_at,
            a.next_check_at,
            a.archived_at,
        )
        .where(a.next_check_at <= now)
        .order_by(a.next_check_at)
        .limit(batch_size)
    )
    if dialect == "postgresql":
        # A second planner (a process that lost leadership unnoticed) skips these rows
        # instead of planning them twice; once committed, they are no longer due.
        query = query.with_for_update(skip_locked=True)
    rows = list(await session.execute(query))
    if not rows:
        return 0
    # The next check of each row, gathered by moment: many rows share one (a task's stage).
    checks: dict[datetime | None, list[int]] = defaultdict(list)
    nudges: dict[int, list[Owed]] = defaultdict(list)
    escalations: dict[int, list[Owed]] = defaultdict(list)
    for row in rows:
        ctx = contexts.get(row.campaign_id)
        task = None if ctx is None else (await ctx.tasks(session)).get(row.task_id)
        if ctx is None or task is None or row.archived_at is not None or not is_open(row.status):
            # Submitted, accepted or archived (or its task or campaign is): nothing is owed
            # until a change sets a new check.
            checks[None].append(row.id)
            continue
        rules = ctx.timetable(task.policy)
        owed = rules.due_in(row.due_at, row.due_set_at, row.next_check_at, now)
        checks[owed.next_at].append(row.id)
        if owed.nudge is not None:
            deliver = rules.deliver_at(owed.nudge, now)
            nudges[ctx.id].append(Owed(row.id, row.unit_id, row.due_at, task, owed.nudge, deliver))
        for stage in owed.escalations:
            deliver = rules.deliver_at(stage, now)
            escalations[ctx.id].append(Owed(row.id, row.unit_id, row.due_at, task, stage, deliver))
    report.assignments += len(rows)

    unit_ids = {o.unit_id for group in (nudges, escalations) for os in group.values() for o in os}
    units = await unit_names(session, unit_ids)
    people = await unit_people(session, unit_ids, ("contact", "head"))
    for cid, owed_list in nudges.items():
        await _write_nudges(
            session, contexts[cid], owed_list, units, people, now, default_language, report
        )
    for cid, owed_list in escalations.items():
        await _write_escalations(
            session, contexts[cid], owed_list, units, people, now, default_language, report
        )
    # One UPDATE per moment, not one statement per row: a batch holds few distinct moments
    # (a task's next stage), and each statement is a round trip and a plan on PostgreSQL.
    table = cast(Table, m.Assignment.__table__)
    for check_at, ids in checks.items():
        for chunk in chunked(ids):
            await session.execute(
                update(table).where(table.c.id.in_(chunk)).values(next_check_at=check_at)
            )
    return len(rows)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


async def _write_nudges(
    session: AsyncSession,
    ctx: CampaignContext,
    owed_list: list[Owed],
    units: dict[int, tuple[str, int]],
    people: dict[tuple[int, str], list[Addressee]],
    now: datetime,
    default_language: str,
    report: PlanReport,
) -> None:
    """Write one nudge per contact of each unit (in multi-row inserts: there may be thousands)."""
    outgoing: list[Outgoing] = []
    texts = NudgeTexts()
    for owed in owed_list:
        contacts = people.get((owed.unit_id, "contact"), [])
        if not contacts:
            report.unreachable_units.add(owed.unit_id)
            continue
        payloads: dict[str, dict[str, Any]] = {}
        for person in contacts:
            lang = language_of(person, default_language)
            if lang not in payloads:
                text = texts.text(
                    owed.stage,
                    owed.task.title,
                    units[owed.unit_id][0],
                    owed.due_at,
                    ctx.timezone,
                    lang,
                    owed.deliver,
                )
                payloads[lang] = message(text, assignment_buttons(owed.assignment_id, lang))
            outgoing.append(
                Outgoing(
                    key=f"nudge:{owed.assignment_id}:{owed.stage.key}:{_epoch(owed.due_at)}:{person.id}",
                    chat_id=person.telegram_id,
                    kind="nudge",
                    payload=payloads[lang],
                    person_id=person.id,
                    campaign_id=ctx.id,
                    assignment_id=owed.assignment_id,
                    planned_due_at=owed.due_at,
                    not_before=owed.deliver,
                )
            )
    report.nudges += await enqueue_many(session, outgoing, now=now)


async def escalation_recipients(
    session: AsyncSession,
    campaign_id: int,
    stage: Stage,
    heads: Sequence[Addressee],
    cache: dict[tuple[str, ...], Sequence[Addressee]],
) -> tuple[Sequence[Addressee], bool]:
    """Return who is told of an escalation, and whether it went to the office for want of a head."""

    async def role(*names: str) -> Sequence[Addressee]:
        if names not in cache:
            cache[names] = await holders(session, campaign_id, names)
        return cache[names]

    if stage.to == "head":
        return (heads, False) if heads else (await role("office"), True)
    if stage.to == "leaders":
        return await role("leader", "office"), False
    return await role("office"), False


async def _write_escalations(
    session: AsyncSession,
    ctx: CampaignContext,
    owed_list: list[Owed],
    units: dict[int, tuple[str, int]],
    people: dict[tuple[int, str], list[Addressee]],
    now: datetime,
    default_language: str,
    report: PlanReport,
) -> None:
    """Write one escalation message (split if long) per recipient for this batch."""
    cache: dict[tuple[str, ...], Sequence[Addressee]] = {}
    inbox: dict[int, tuple[Addressee, dict[int, Owed]]] = {}
    for owed in owed_list:
        recipients, _ = await escalation_recipients(
            session, ctx.id, owed.stage, people.get((owed.unit_id, "head"), []), cache
        )
        for person in recipients:
            _, items = inbox.setdefault(person.id, (person, {}))
            kept = items.get(owed.assignment_id)
            # Stages of one assignment falling due together for one person: the latest wins.
            if kept is None or owed.stage.order > kept.stage.order:
                items[owed.assignment_id] = owed
    for person, items in inbox.values():
        lang = language_of(person, default_language)
        entries = sorted(
            items.values(), key=lambda o: (o.task.position, o.due_at, units[o.unit_id][1])
        )
        digest = hashlib.sha1(
            "|".join(
                f"{o.assignment_id}:{o.stage.key}:{_epoch(o.due_at)}" for o in entries
            ).encode(),
            usedforsecurity=False,
        ).hexdigest()[:16]
        single = entries[0] if len(entries) == 1 else None
        # The summary goes as soon as one of its items may.
        send_at = min(o.deliver for o in entries)
        for part, text in enumerate(_escalation_texts(ctx, entries, units, send_at, lang)):
            report.escalations += await enqueue(
                session,
                key=f"esc:{ctx.id}:{person.id}:{digest}:{part}",
                chat_id=person.telegram_id,
                kind="escalation",
                payload=message(text),
                now=now,
                not_before=send_at,
                person_id=person.id,
                campaign_id=ctx.id,
                # One unit: the sender can drop it if the unit submits in the meantime.
                assignment_id=single.assignment_id if single else None,
                planned_due_at=single.due_at if single else None,
            )


def _escalation_texts(
    ctx: CampaignContext,
    entries: list[Owed],
    units: dict[int, tuple[str, int]],
    now: datetime,
    lang: str,
) -> list[str]:
    tz = ctx.timezone
    title = t("reminders.escalation.title", lang, campaign=ctx.title)
    if len(entries) == 1:
        owed = entries[0]
        line = t(
            "reminders.escalation.single",
            lang,
            unit=units[owed.unit_id][0],
            task=owed.task.title,
            days=days_overdue(owed.due_at, now),
            due=format_moment(owed.due_at, tz, lang),
        )
        return [f"{title}\n{line}"]
    groups: dict[tuple[int, datetime], list[Owed]] = defaultdict(list)
    for owed in entries:
        groups[(owed.task.id, owed.due_at)].append(owed)
    lines: list[str] = []
    separator = plain("reminders.separator", lang)
    for (_, due_at), group in groups.items():
        names = [units[o.unit_id][0] for o in group]
        for chunk in _name_chunks(names, separator):
            lines.append(
                t(
                    "reminders.escalation.group",
                    lang,
                    task=group[0].task.title,
                    due=format_moment(due_at, tz, lang),
                    count=len(group),
                    days=days_overdue(due_at, now),
                    units=separator.join(chunk),
                )
            )
    return pack(title, lines, lang)


def _name_chunks(names: list[str], separator: str) -> list[list[str]]:
    """Split names into runs short enough for one message line once escaped."""
    chunks: list[list[str]] = [[]]
    size = 0
    for name in names:
        width = utf16_len(html.escape(name, quote=False) + separator)
        if chunks[-1] and size + width > LINE_BUDGET:
            chunks.append([])
            size = 0
        chunks[-1].append(name)
        size += width
    return chunks
