"""The schedule as `duban remind --dry-run` shows it: every message of a span, and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.db.assignment_states import is_open
from bot.domain.policy import ReminderPolicy
from bot.domain.reminders import Stage
from bot.domain.timespec import WEEKDAYS, Duration, parse_duration
from bot.i18n import format_moment, plain
from bot.services.notify import Addressee
from bot.services.people import holders
from scheduler.context import CampaignContext, day_text, load_contexts, unit_names, unit_people
from scheduler.notices import (
    announce_moment,
    bulletin_moment,
    digest_moment,
    phase_audience,
    phase_over,
)
from scheduler.planner import Owed, escalation_recipients


@dataclass(frozen=True)
class PreviewLine:
    """One message the schedule sends: when, what about, to whom, and why then."""

    at: datetime
    task: str | None  # None for campaign notices (announcements, digest, bulletin)
    unit: str | None
    stage: str
    recipient: str
    why: str


def span_text(span: Duration, workdays: bool, lang: str) -> str:
    """Write a duration for people (`3 个工作日`, `2 h`)."""
    if workdays and span.is_days:
        return plain("reminders.span.workdays", lang, n=span.days)
    return plain(f"reminders.span.{span.unit}", lang, n=span.amount)


def stage_label(stage: Stage, policy: ReminderPolicy, lang: str) -> str:
    """Name a stage for people."""
    _, _, arg = stage.key.partition(":")
    if stage.kind == "before":
        return plain(
            "reminders.stage.before", lang, offset=span_text(parse_duration(arg), False, lang)
        )
    if stage.kind == "due":
        return plain("reminders.stage.due", lang)
    if stage.kind == "overdue":
        return plain("reminders.stage.overdue", lang, n=int(arg))
    step = policy.escalate[int(arg)]
    return plain(
        "reminders.stage.escalate",
        lang,
        after=span_text(step.after, policy.workdays_only, lang),
        target=plain(f"reminders.target.{step.to}", lang),
    )


def stage_why(stage: Stage, tz: str, lang: str) -> str:
    """Say why a stage goes out when it does."""
    nominal = format_moment(stage.nominal, tz, lang)
    return plain(f"reminders.why.{stage.moved or 'on_time'}", lang, nominal=nominal)


def person_label(person: Addressee, lang: str) -> str:
    """Name a person or group for the operator."""
    name = person.name or (f"@{person.username}" if person.username else str(person.telegram_id))
    return plain("reminders.dry.group", lang, name=name) if person.is_group else name


async def preview(
    session: AsyncSession,
    campaign: m.Campaign,
    start: datetime,
    end: datetime,
    *,
    lang: str,
    one_tick: bool,
) -> list[PreviewLine]:
    """List every message the schedule sends in [start, end], in send order.

    Current submissions count (only open assignments are nudged), but every deadline is
    taken as set before its stages. With `one_tick`, [start, end] is one tick: the contacts
    get only the latest nudge, as a tick sends them; otherwise every stage is listed.
    """
    ctx = (await load_contexts(session, [campaign.id]))[campaign.id]
    tasks = await ctx.tasks(session)
    a = m.Assignment
    owed_list: list[Owed] = []
    result = await session.stream(
        select(a.id, a.unit_id, a.task_id, a.due_at).where(
            a.campaign_id == ctx.id, a.archived_at.is_(None), is_open()
        )
    )
    async for row in result:
        task = tasks.get(row.task_id)
        if task is None:
            continue
        table = ctx.timetable(task.policy)
        if one_tick:
            tick = table.due_in(row.due_at, None, start, end)
            stages = [*([tick.nudge] if tick.nudge else []), *tick.escalations]
        else:
            latest: dict[datetime, Stage] = {}
            stages = []
            for stage in table.stages(row.due_at, None, start, end):
                if stage.kind == "escalate":
                    stages.append(stage)
                # Nudges falling due at one moment collapse into the latest, as in a tick.
                elif stage.at not in latest or stage.order > latest[stage.at].order:
                    latest[stage.at] = stage
            stages.extend(latest.values())
        owed_list.extend(Owed(row.id, row.unit_id, row.due_at, task, s, s.at) for s in stages)

    unit_ids = {o.unit_id for o in owed_list}
    units = await unit_names(session, unit_ids)
    people = await unit_people(session, unit_ids, ("contact", "head"))
    cache: dict[tuple[str, ...], Sequence[Addressee]] = {}
    tz = ctx.timezone
    lines: list[tuple[tuple[Any, ...], PreviewLine]] = []

    def add(order: tuple[Any, ...], line: PreviewLine) -> None:
        lines.append(((line.at, *order), line))

    for owed in owed_list:
        unit_name, unit_position = units[owed.unit_id]
        label = stage_label(owed.stage, owed.task.policy, lang)
        why = stage_why(owed.stage, tz, lang)
        if owed.stage.kind == "escalate":
            heads = people.get((owed.unit_id, "head"), [])
            recipients, no_head = await escalation_recipients(
                session, ctx.id, owed.stage, heads, cache
            )
            if no_head:
                why = plain("reminders.why.join", lang).join(
                    (why, plain("reminders.why.no_head", lang))
                )
            empty = plain("reminders.dry.nobody", lang)
        else:
            recipients = people.get((owed.unit_id, "contact"), [])
            empty = plain("reminders.dry.no_contact", lang)
        names = [person_label(p, lang) for p in recipients] or [empty]
        for name in names:
            add(
                (owed.task.position, unit_position, owed.stage.rank, name),
                PreviewLine(owed.stage.at, owed.task.title, unit_name, label, name, why),
            )

    nobody = plain("reminders.dry.nobody", lang)
    for at, notice, why, recipients in await _preview_notices(session, ctx, start, end, lang):
        for name in [person_label(p, lang) for p in recipients] or [nobody]:
            add((-1, 0, 0, name), PreviewLine(at, None, None, notice, name, why))
    return [line for _, line in sorted(lines, key=lambda x: x[0])]


async def _preview_notices(
    session: AsyncSession, ctx: CampaignContext, start: datetime, end: datetime, lang: str
) -> list[tuple[datetime, str, str, list[m.Person]]]:
    """Return the announcements, digests and bulletins whose moment lies in [start, end]."""
    out: list[tuple[datetime, str, str, list[m.Person]]] = []
    for phase in ctx.phases:
        at = announce_moment(ctx, phase)
        if start <= at <= end and at < phase_over(ctx, phase):
            audience = await phase_audience(session, ctx, phase, None)
            contacts = list({p.id: p for _, p in audience.contacts}.values())
            stage = plain("reminders.stage.announce", lang, phase=phase.name)
            why = plain("reminders.why.announce", lang, date=day_text(phase.start, lang))
            out.append((at, stage, why, contacts))
    board: list[m.Person] | None = None
    day, last = ctx.local_date(start), ctx.local_date(end)
    weeks: set[str] = set()
    while day <= last:
        found: list[tuple[datetime, str, str]] = []
        daily = digest_moment(ctx, day)
        if daily is not None:
            clock = daily.astimezone(ctx.base.zone).strftime("%H:%M")
            found.append(
                (
                    daily,
                    plain("reminders.stage.digest", lang),
                    plain("reminders.why.digest", lang, time=clock),
                )
            )
        weekly = bulletin_moment(ctx, day)
        if weekly is not None and weekly[1] not in weeks:
            weeks.add(weekly[1])
            when = weekly[0].astimezone(ctx.base.zone)
            weekday = plain(f"reminders.weekday.{WEEKDAYS[when.weekday()]}", lang)
            why = plain("reminders.why.bulletin", lang, weekday=weekday, time=f"{when:%H:%M}")
            found.append((weekly[0], plain("reminders.stage.bulletin", lang), why))
        for at, stage, why in found:
            if start <= at <= end:
                if board is None:
                    board = await holders(session, ctx.id, ("leader", "office"))
                out.append((at, stage, why, board))
        day += timedelta(days=1)
    return out
