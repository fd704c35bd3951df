"""Work not in the plan, part one: tasks added in chat (`/assign`, `duban task add`).

A task added in chat is a task of the current phase, marked `origin = "chat"`; from then on
the planner, the views, the export and the calendar treat it as any plan task. A plan reload
never archives or changes it (SPEC §4.6).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.assignments import PENDING
from bot.domain.calendar import WorkCalendar
from bot.domain.deadline_text import resolve_deadline
from bot.errors import DubanError
from bot.i18n import format_moment, t
from bot.messages.pushes import assignment_buttons
from bot.plan.model import EVIDENCE_KINDS
from bot.services.audit import record
from bot.services.notify import push
from bot.services.outbox import file_message, message
from bot.services.people import holders

EVIDENCE = EVIDENCE_KINDS
TITLE_LIMIT = 200
DESCRIPTION_LIMIT = 3000


class DeadlineUnreadable(DubanError):
    """The deadline is neither a date nor a relative form."""

    key = "work.deadline_unreadable"


class DeadlinePast(DubanError):
    """The deadline lies before now."""

    key = "work.deadline_past"


class DeadlineOutside(DubanError):
    """The deadline lies outside the campaign's phases."""

    key = "work.deadline_outside"


class BadTitle(DubanError):
    """The title is empty, too long, or holds control characters."""

    key = "work.bad_title"


class NoUnits(DubanError):
    """No live unit was chosen."""

    key = "work.no_units"


class NoPhase(DubanError):
    """The campaign has no phase to attach a task to."""

    key = "work.no_phase"


def calendar_of(campaign: m.Campaign) -> WorkCalendar:
    """Return a campaign's working-day calendar (from its stored settings)."""
    cal = (campaign.settings or {}).get("calendar") or {}
    return WorkCalendar(
        cal.get("country") or None,
        frozenset(date.fromisoformat(d) for d in cal.get("extra_holidays") or ()),
        frozenset(date.fromisoformat(d) for d in cal.get("extra_workdays") or ()),
    )


async def live_phases(session: AsyncSession, campaign_id: int) -> list[m.Phase]:
    """Return a campaign's live phases in plan order."""
    return list(
        await session.scalars(
            select(m.Phase)
            .where(m.Phase.campaign_id == campaign_id, m.Phase.archived_at.is_(None))
            .order_by(m.Phase.position)
        )
    )


def campaign_span(campaign: m.Campaign, phases: Sequence[m.Phase]) -> tuple[datetime, datetime]:
    """Return the campaign's first moment and its end (midnight after the last phase's day)."""
    if not phases:
        raise NoPhase()
    zone = ZoneInfo(campaign.timezone)
    start = min(p.start_date for p in phases)
    end = max(p.end_date for p in phases) + timedelta(days=1)
    return (
        datetime.combine(start, time(), tzinfo=zone),
        datetime.combine(end, time(), tzinfo=zone),
    )


async def read_deadline(
    session: AsyncSession, campaign: m.Campaign, text: str, *, now: datetime
) -> datetime:
    """Return the deadline typed for this campaign (UTC); refuse unreadable, past or outside.

    Raises DeadlineUnreadable, DeadlinePast, or DeadlineOutside (with the campaign's dates).
    """
    due = resolve_deadline(
        text,
        now=now,
        timezone=campaign.timezone,
        due_time=campaign.due_time,
        calendar=calendar_of(campaign),
    )
    if due is None:
        raise DeadlineUnreadable(text=text.strip()[:40])
    if due <= now:
        raise DeadlinePast()
    start, end = campaign_span(campaign, await live_phases(session, campaign.id))
    if not start <= due <= end:
        zone = ZoneInfo(campaign.timezone)
        raise DeadlineOutside(
            start=start.astimezone(zone).date().isoformat(),
            end=(end.astimezone(zone).date() - timedelta(days=1)).isoformat(),
        )
    return due


def phase_for(campaign: m.Campaign, phases: Sequence[m.Phase], now: datetime) -> m.Phase:
    """Return the phase a task added now belongs to: the running one, else the latest begun.

    Between phases or before the first, it is the latest phase that has begun, else the first:
    a task needs a phase to be listed under, and the deadline check keeps it in the campaign.
    """
    if not phases:
        raise NoPhase()
    today = now.astimezone(ZoneInfo(campaign.timezone)).date()
    running = [p for p in phases if p.start_date <= today <= p.end_date]
    if running:
        return running[-1]
    begun = [p for p in phases if p.start_date <= today]
    return begun[-1] if begun else phases[0]


def clean_title(text: str) -> str:
    """Return a usable task title, or raise BadTitle."""
    title = " ".join(text.split())
    if not title or len(title) > TITLE_LIMIT or any(ord(ch) < 32 or ord(ch) == 127 for ch in title):
        raise BadTitle(limit=TITLE_LIMIT)
    return title


async def target_units(
    session: AsyncSession, campaign_id: int, target: str, chosen: Sequence[int] = ()
) -> list[m.Unit]:
    """Return the live units a target names: `all`, `kind:<id>`, or `units` (the chosen ids)."""
    query = select(m.Unit).where(m.Unit.campaign_id == campaign_id, m.Unit.archived_at.is_(None))
    if target == "all":
        pass
    elif target.startswith("kind:") and target[5:].isdigit():
        query = query.where(m.Unit.kind_id == int(target[5:]))
    elif target == "units":
        query = query.where(m.Unit.id.in_(list(chosen)))
    else:
        raise NoUnits()
    units = list(await session.scalars(query.order_by(m.Unit.position)))
    if not units:
        raise NoUnits()
    return units


@dataclass
class Added:
    """A task added in chat, and how many units owe it."""

    task: m.Task
    units: int


async def add_task(
    session: AsyncSession,
    campaign: m.Campaign,
    *,
    title: str,
    due_at: datetime,
    evidence: str,
    units: Sequence[m.Unit],
    description: str = "",
    file_id: str | None = None,
    file_name: str | None = None,
    actor: str,
    now: datetime,
    default_language: str,
) -> Added:
    """Add a task of the current phase owed by `units`, due at `due_at`; audit and announce it.

    Its reminder policy is the campaign's (a phase's overrides live only in the plan file).
    The units' contacts are told at once (through the outbox), with the instructions file
    if there is one: the planner's first nudge may be hours away.
    Raises BadTitle, NoUnits, NoPhase; `evidence` must be one of EVIDENCE.
    """
    if evidence not in EVIDENCE:
        raise ValueError(f"unknown evidence {evidence!r}")
    if not units:
        raise NoUnits()
    title = clean_title(title)
    phase = phase_for(campaign, await live_phases(session, campaign.id), now)
    position = (
        await session.scalar(
            select(func.max(m.Task.position)).where(m.Task.campaign_id == campaign.id)
        )
        or 0
    ) + 1
    task = m.Task(
        campaign_id=campaign.id,
        phase_id=phase.id,
        # A colon never appears in a plan key, so a later plan can never claim this one.
        key=f"chat:{int(now.timestamp())}:{secrets.token_hex(3)}",
        title=title,
        description=description[:DESCRIPTION_LIMIT],
        due_at=due_at,
        evidence=evidence,
        allow_outside_phase=True,
        policy=dict((campaign.settings or {})["reminders"]),
        position=position,
        origin="chat",
        instructions_file_id=file_id,
        instructions_file_name=file_name,
    )
    session.add(task)
    await session.flush()
    await session.execute(
        insert(m.Assignment),
        [
            {
                "campaign_id": campaign.id,
                "unit_id": unit.id,
                "task_id": task.id,
                "status": PENDING,
                "due_at": due_at,
                "plan_due_at": due_at,
                "due_set_at": now,
                "next_check_at": now,
                "updated_at": now,
            }
            for unit in units
        ],
    )
    record(
        session,
        at=now,
        actor=actor,
        action="task.add",
        campaign_id=campaign.id,
        object_type="task",
        object_id=task.id,
        details={
            "title": title,
            "due_at": due_at.isoformat(),
            "evidence": evidence,
            "phase": phase.key,
            "units": len(units),
            "instructions_file": file_name or (file_id is not None),
        },
    )
    await _announce(session, campaign, task, units, now=now, default_language=default_language)
    return Added(task, len(units))


async def _announce(
    session: AsyncSession,
    campaign: m.Campaign,
    task: m.Task,
    units: Sequence[m.Unit],
    *,
    now: datetime,
    default_language: str,
) -> None:
    """Tell each unit's contacts of the new task, with submit and details buttons."""
    ids: dict[int, int] = {
        unit_id: aid
        for unit_id, aid in await session.execute(
            select(m.Assignment.unit_id, m.Assignment.id).where(m.Assignment.task_id == task.id)
        )
    }
    tz = campaign.timezone
    instructions = task.instructions_file_id
    for unit in units:
        contacts = await holders(session, campaign.id, ("contact",), unit_id=unit.id)
        if not contacts:
            continue
        aid = ids[unit.id]

        def build(lang: str, unit: m.Unit = unit, aid: int = aid) -> dict[str, Any]:
            text = t(
                "work.task_announce",
                lang,
                unit=unit.name,
                title=task.title,
                due=format_moment(task.due_at, tz, lang),
                evidence=t(f"work.evidence_{task.evidence}", lang),
                description=task.description,
            )
            return message(text, assignment_buttons(aid, lang, extend=False))

        await push(
            session,
            contacts,
            key=f"task-added:{task.id}:{unit.id}",
            kind="announcement",
            build=build,
            now=now,
            default_language=default_language,
            campaign_id=campaign.id,
        )
        if instructions:
            await push(
                session,
                contacts,
                key=f"task-added:{task.id}:{unit.id}:file",
                kind="announcement",
                build=lambda lang: file_message(
                    "document",
                    instructions,
                    t("work.instructions_caption", lang, title=task.title),
                ),
                now=now,
                default_language=default_language,
                campaign_id=campaign.id,
            )
