"""Campaign notices of the tick: phase announcements, the daily digest, the weekly bulletin."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from sqlalchemy import case, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.db.assignment_states import is_open, is_overdue
from bot.db.engine import Database
from bot.domain.timespec import parse_clock
from bot.i18n import format_moment, plain, t
from bot.reports.figures import Skipped, UnitStanding, named_ranks, unit_ranking
from bot.services.notices import NoticeSummary, list_notices, title_of
from bot.services.notify import language_of
from bot.services.outbox import Outgoing, enqueue_many, message
from bot.services.people import holders
from bot.services.unit_reports import count_reports
from scheduler.context import (
    CampaignContext,
    PhaseInfo,
    TaskInfo,
    chunked,
    day_text,
    languages,
    pack,
    unit_names,
)

LIST_NAMES = 30  # unit names a digest line shows before "and N in all"
BULLETIN_ENDS = 10  # a long ranking's best and worst named (figures.named_ranks)
DESCRIPTION_LIMIT = 1500  # characters of a phase's description in its announcement
STATE_PREFIX = "planner:"


@dataclass
class NoticeCounts:
    """How many notices a tick wrote to the outbox."""

    announcements: int = 0
    digests: int = 0
    bulletins: int = 0


def announce_moment(ctx: CampaignContext, phase: PhaseInfo) -> datetime:
    """Return when a phase's start is announced: the first opening of its first day."""
    return ctx.base.send_moment(ctx.base.local(phase.start, time()))[0]


def phase_over(ctx: CampaignContext, phase: PhaseInfo) -> datetime:
    """Return the moment a phase ends (midnight after its last day)."""
    return ctx.base.local(phase.end + timedelta(days=1), time())


def digest_moment(ctx: CampaignContext, day: date) -> datetime | None:
    """Return when the daily digest of a local day goes out (None: not on that day)."""
    daily = (ctx.settings.get("digest") or {}).get("daily")
    if not daily or not ctx.in_campaign(day) or not ctx.calendar.is_working_day(day):
        return None
    clock = parse_clock(daily)
    assert clock is not None
    return ctx.base.local(day, clock)


def bulletin_moment(ctx: CampaignContext, day: date) -> tuple[datetime, str] | None:
    """Return when the weekly bulletin of the ISO week holding `day` goes out, and the week."""
    weekly = (ctx.settings.get("digest") or {}).get("weekly")
    if not weekly:
        return None
    weekday, clock_text = int(weekly[0]), str(weekly[1])
    when = day - timedelta(days=day.weekday()) + timedelta(days=weekday)
    # The week after the last phase gets the final ranking.
    if not ctx.in_campaign(when, grace_days=7):
        return None
    clock = parse_clock(clock_text)
    assert clock is not None
    year, week, _ = when.isocalendar()
    return ctx.base.local(when, clock), f"{year}-W{week:02d}"


async def _states(session: AsyncSession, campaign_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    keys = {f"{STATE_PREFIX}{cid}": cid for cid in campaign_ids}
    rows = await session.execute(
        select(m.Setting.key, m.Setting.value).where(m.Setting.key.in_(list(keys)))
    )
    return {keys[key]: json.loads(value) for key, value in rows}


async def _save_state(
    session: AsyncSession, campaign_id: int, state: dict[str, Any], now: datetime
) -> None:
    values = {"key": f"{STATE_PREFIX}{campaign_id}", "value": json.dumps(state), "updated_at": now}
    insert: Any = (
        postgresql.insert(m.Setting)
        if session.bind is not None and session.bind.dialect.name == "postgresql"
        else sqlite.insert(m.Setting)
    )
    stmt = insert.values(values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": now}
        )
    )


@dataclass
class _Notices:
    """What one campaign owes at this tick."""

    announce: list[PhaseInfo] = field(default_factory=list)
    digest: date | None = None
    bulletin: str | None = None

    def __bool__(self) -> bool:
        return bool(self.announce or self.digest or self.bulletin)


async def plan_notices(
    db: Database,
    contexts: dict[int, CampaignContext],
    now: datetime,
    default_language: str,
) -> NoticeCounts:
    """Write the phase announcements, digests and bulletins that have come due."""
    counts = NoticeCounts()
    async with db.read() as session:
        states = await _states(session, contexts)
        live_phases = {
            cid: [p for p in ctx.phases if announce_moment(ctx, p) <= now < phase_over(ctx, p)]
            for cid, ctx in contexts.items()
        }
        role_marks: dict[int, int] = {}
        if any(live_phases.values()):
            # New contacts since the last announcement get it too: compare role ids.
            role_marks = {
                cid: mark
                for cid, mark in await session.execute(
                    select(m.Role.campaign_id, func.max(m.Role.id))
                    .where(m.Role.campaign_id.in_([c for c, ps in live_phases.items() if ps]))
                    .group_by(m.Role.campaign_id)
                )
            }
    todo: dict[int, _Notices] = {}
    for cid, ctx in contexts.items():
        state = states.get(cid, {})
        notices = _Notices()
        announced = state.get("announced", {})
        mark = role_marks.get(cid, 0)
        notices.announce = [
            p for p in live_phases[cid] if str(p.id) not in announced or announced[str(p.id)] < mark
        ]
        today = ctx.local_date(now)
        moment = digest_moment(ctx, today)
        if moment is not None and moment <= now and state.get("digest") != today.isoformat():
            notices.digest = today
        weekly = bulletin_moment(ctx, today)
        # Like the digest, a bulletin goes out late on its day, not on a later day.
        if (
            weekly is not None
            and weekly[0] <= now
            and ctx.local_date(weekly[0]) == today
            and state.get("bulletin") != weekly[1]
        ):
            notices.bulletin = weekly[1]
        if notices:
            todo[cid] = notices
    if not todo:
        return counts
    async with db.write() as session:
        states = await _states(session, todo)
        for cid, notices in todo.items():
            ctx = contexts[cid]
            state = states.get(cid, {})
            announced = state.setdefault("announced", {})
            for phase in notices.announce:
                announced[str(phase.id)] = await _announce(
                    session, ctx, phase, announced.get(str(phase.id)), now, default_language, counts
                )
            if notices.digest is not None:
                since = (
                    datetime.fromisoformat(state["digest_at"])
                    if state.get("digest_at")
                    else now - timedelta(days=1)
                )
                await _digest(session, ctx, notices.digest, since, now, default_language, counts)
                state["digest"] = notices.digest.isoformat()
                state["digest_at"] = now.isoformat()
            if notices.bulletin is not None:
                await _bulletin(session, ctx, notices.bulletin, now, default_language, counts)
                state["bulletin"] = notices.bulletin
            await _save_state(session, cid, state, now)
    return counts


async def _push_all(
    session: AsyncSession,
    ctx: CampaignContext,
    people: Sequence[m.Person],
    *,
    key: str,
    kind: str,
    texts: dict[str, list[str]],
    now: datetime,
    default_language: str,
) -> int:
    """Write the texts (per language, in parts) to each person; return how many rows were new."""
    outgoing = [
        Outgoing(
            key=f"{key}:{person.id}:{part}",
            chat_id=person.telegram_id,
            kind=kind,
            payload=message(text),
            person_id=person.id,
            campaign_id=ctx.id,
        )
        for person in people
        for part, text in enumerate(texts[language_of(person, default_language)])
    ]
    return await enqueue_many(session, outgoing, now=now)


@dataclass
class Audience:
    """Who hears of a phase's start, and what each unit owes in it."""

    contacts: list[tuple[int, m.Person]]  # (unit, contact)
    units: dict[int, tuple[str, int]]
    owes: dict[int, list[tuple[TaskInfo, datetime]]]
    has_tasks: bool


async def phase_audience(
    session: AsyncSession, ctx: CampaignContext, phase: PhaseInfo, mark: int | None
) -> Audience:
    """Return the contacts (with a role newer than `mark`) of the units a phase concerns."""
    r = m.Role
    query = (
        select(r.unit_id, m.Person)
        .join(m.Person, m.Person.id == r.person_id)
        .join(m.Unit, m.Unit.id == r.unit_id)
        .where(
            r.campaign_id == ctx.id,
            r.role == "contact",
            r.revoked_at.is_(None),
            m.Person.reachable.is_(True),
            m.Unit.archived_at.is_(None),
        )
        .order_by(m.Unit.position, m.Person.id)
    )
    if mark is not None:
        query = query.where(r.id > mark)
    # The join with units leaves no unit-less role.
    rows = [(cast(int, unit_id), person) for unit_id, person in await session.execute(query)]
    all_tasks = await ctx.tasks(session)
    tasks = {tid: task for tid, task in all_tasks.items() if task.phase_id == phase.id}
    unit_ids = sorted({unit_id for unit_id, _ in rows})
    owes: dict[int, list[tuple[TaskInfo, datetime]]] = defaultdict(list)
    if tasks:
        for chunk in chunked(unit_ids):
            found = await session.execute(
                select(m.Assignment.unit_id, m.Assignment.task_id, m.Assignment.due_at).where(
                    m.Assignment.task_id.in_(list(tasks)),
                    m.Assignment.unit_id.in_(chunk),
                    m.Assignment.archived_at.is_(None),
                )
            )
            for unit_id, task_id, due_at in found:
                owes[unit_id].append((tasks[task_id], due_at))
        # A phase with tasks goes to the units that owe some; one without, to every unit.
        rows = [(unit_id, person) for unit_id, person in rows if unit_id in owes]
    units = await unit_names(session, {unit_id for unit_id, _ in rows})
    return Audience(rows, units, owes, bool(tasks))


async def _announce(
    session: AsyncSession,
    ctx: CampaignContext,
    phase: PhaseInfo,
    mark: int | None,
    now: datetime,
    default_language: str,
    counts: NoticeCounts,
) -> int:
    """Announce a phase to the contacts not told yet; return the new role mark."""
    new_mark = (
        await session.scalar(select(func.max(m.Role.id)).where(m.Role.campaign_id == ctx.id))
    ) or 0
    audience = await phase_audience(session, ctx, phase, mark)
    by_person: dict[int, tuple[m.Person, list[int]]] = {}
    for unit_id, person in audience.contacts:
        by_person.setdefault(person.id, (person, []))[1].append(unit_id)
    outgoing: list[Outgoing] = []
    for person, unit_ids in by_person.values():
        lang = language_of(person, default_language)
        # A contact of several units gets one message naming each.
        units = tuple(dict.fromkeys(unit_ids))
        for part, text in enumerate(_announcement(ctx, phase, units, audience, lang)):
            outgoing.append(
                Outgoing(
                    key=f"announce:{phase.id}:{person.id}:{part}",
                    chat_id=person.telegram_id,
                    kind="announcement",
                    payload=message(text),
                    person_id=person.id,
                    campaign_id=ctx.id,
                )
            )
    counts.announcements += await enqueue_many(session, outgoing, now=now)
    return new_mark


def _announcement(
    ctx: CampaignContext,
    phase: PhaseInfo,
    unit_ids: tuple[int, ...],
    audience: Audience,
    lang: str,
) -> list[str]:
    title = t(
        "reminders.announce.title",
        lang,
        campaign=ctx.title,
        phase=phase.name,
        start=day_text(phase.start, lang),
        end=day_text(phase.end, lang),
    )
    lines: list[str] = []
    if phase.description:
        # `pack` splits between lines only: keep the one free-text line well inside a message.
        text = phase.description[:DESCRIPTION_LIMIT]
        lines.append(t("reminders.announce.description", lang, text=text))
    if not audience.has_tasks:
        lines.append(t("reminders.announce.no_tasks", lang))
        return pack(title, lines, lang)
    for unit_id in unit_ids:
        lines.append(t("reminders.announce.unit", lang, unit=audience.units[unit_id][0]))
        for task, due_at in sorted(audience.owes[unit_id], key=lambda x: (x[0].position, x[1])):
            due = format_moment(due_at, ctx.timezone, lang)
            lines.append(t("reminders.announce.task", lang, task=task.title, due=due))
    lines.append(t("reminders.announce.footer", lang))
    return pack(title, lines, lang)


def _names(names: Sequence[str], lang: str, total: int | None = None) -> str:
    """Return up to LIST_NAMES names, then "and N in all" when there are more (or `total`)."""
    separator = plain("reminders.separator", lang)
    shown = separator.join(names[:LIST_NAMES])
    count = len(names) if total is None else total
    if count <= LIST_NAMES:
        return shown
    return plain("reminders.digest.more", lang, units=shown, count=count)


async def _digest(
    session: AsyncSession,
    ctx: CampaignContext,
    day: date,
    since: datetime,
    now: datetime,
    default_language: str,
    counts: NoticeCounts,
) -> None:
    """Write the daily digest to the leaders and the office."""
    people = await holders(session, ctx.id, ("leader", "office"))
    if not people:
        return
    data = await _digest_data(session, ctx, day, since, now)
    texts = {
        lang: _digest_texts(ctx, day, since, data, lang)
        for lang in languages(people, default_language)
    }
    counts.digests += await _push_all(
        session,
        ctx,
        people,
        key=f"digest:{ctx.id}:{day.isoformat()}",
        kind="digest",
        texts=texts,
        now=now,
        default_language=default_language,
    )


@dataclass
class _DigestData:
    due_today: list[tuple[TaskInfo, datetime, int, int]]  # task, due, open, total
    overdue: list[tuple[TaskInfo, int, list[str]]]  # task, count, first unit names
    submitted: list[tuple[TaskInfo, list[str]]]
    unreachable: list[str]
    open_notices: list[NoticeSummary] = field(default_factory=list)
    new_reports: int = 0


async def _digest_data(
    session: AsyncSession, ctx: CampaignContext, day: date, since: datetime, now: datetime
) -> _DigestData:
    a, u = m.Assignment, m.Unit
    tasks = await ctx.tasks(session)
    live = (a.campaign_id == ctx.id, a.archived_at.is_(None))
    start, end = ctx.base.local(day, time()), ctx.base.local(day + timedelta(days=1), time())
    due_today = [
        (tasks[task_id], due_at, int(open_ or 0), int(total))
        for task_id, due_at, open_, total in await session.execute(
            select(
                a.task_id,
                a.due_at,
                func.sum(case((is_open(), 1), else_=0)),
                func.count(),
            )
            .where(*live, a.due_at >= start, a.due_at < end)
            .group_by(a.task_id, a.due_at)
        )
        if task_id in tasks
    ]
    due_today.sort(key=lambda x: (x[1], x[0].position))
    late = (*live, is_overdue(now))
    counts = {
        task_id: int(count)
        for task_id, count in await session.execute(
            select(a.task_id, func.count()).where(*late).group_by(a.task_id)
        )
    }
    # Only the first names of each task are shown, so only they are read.
    ranked = (
        select(
            a.task_id,
            u.name,
            func.row_number().over(partition_by=a.task_id, order_by=u.position).label("n"),
        )
        .join(u, u.id == a.unit_id)
        .where(*late)
        .subquery()
    )
    late_names: dict[int, list[str]] = defaultdict(list)
    for task_id, name in await session.execute(
        select(ranked.c.task_id, ranked.c.name)
        .where(ranked.c.n <= LIST_NAMES)
        .order_by(ranked.c.task_id, ranked.c.n)
    ):
        late_names[task_id].append(name)
    overdue = [
        (tasks[tid], count, late_names[tid]) for tid, count in counts.items() if tid in tasks
    ]
    overdue.sort(key=lambda x: x[0].position)
    submitted_units: dict[int, list[str]] = defaultdict(list)
    for task_id, name in await session.execute(
        select(a.task_id, u.name)
        .join(m.Submission, m.Submission.assignment_id == a.id)
        .join(u, u.id == a.unit_id)
        .where(*live, m.Submission.submitted_at > since, m.Submission.submitted_at <= now)
        .order_by(u.position)
    ):
        if task_id in tasks and name not in submitted_units[task_id]:
            submitted_units[task_id].append(name)
    submitted = sorted(
        ((tasks[tid], names) for tid, names in submitted_units.items()),
        key=lambda x: x[0].position,
    )
    reachable_contact = (
        select(m.Role.id)
        .join(m.Person, m.Person.id == m.Role.person_id)
        .where(
            m.Role.unit_id == u.id,
            m.Role.role == "contact",
            m.Role.revoked_at.is_(None),
            m.Person.reachable.is_(True),
        )
    )
    unreachable = list(
        await session.scalars(
            select(u.name)
            .where(u.campaign_id == ctx.id, u.archived_at.is_(None), ~exists(reachable_contact))
            .order_by(u.position)
        )
    )
    return _DigestData(
        due_today,
        overdue,
        submitted,
        unreachable,
        open_notices=await list_notices(session, ctx.id, open_only=True, limit=10),
        new_reports=await count_reports(session, ctx.id, since, now),
    )


def _digest_texts(
    ctx: CampaignContext, day: date, since: datetime, data: _DigestData, lang: str
) -> list[str]:
    tz = ctx.timezone
    title = t("reminders.digest.title", lang, campaign=ctx.title, date=day_text(day, lang))
    lines: list[str] = [t("reminders.digest.due_today", lang)]
    if data.due_today:
        lines.extend(
            t(
                "reminders.digest.due_today_line",
                lang,
                task=task.title,
                time=due_at.astimezone(ctx.base.zone).strftime("%H:%M"),
                open=open_,
                total=total,
            )
            for task, due_at, open_, total in data.due_today
        )
    else:
        lines.append(t("reminders.digest.no_due_today", lang))
    lines.append(t("reminders.digest.overdue", lang))
    if data.overdue:
        lines.extend(
            t(
                "reminders.digest.overdue_line",
                lang,
                task=task.title,
                count=count,
                units=_names(names, lang, count),
            )
            for task, count, names in data.overdue
        )
    else:
        lines.append(t("reminders.digest.no_overdue", lang))
    lines.append(t("reminders.digest.submissions", lang, since=format_moment(since, tz, lang)))
    if data.submitted:
        lines.extend(
            t("reminders.digest.submission_line", lang, task=task.title, units=_names(names, lang))
            for task, names in data.submitted
        )
    else:
        lines.append(t("reminders.digest.no_submissions", lang))
    if data.new_reports:
        lines.append(t("work.digest_reports", lang, count=data.new_reports))
    if data.open_notices:
        lines.append(t("work.digest_notices", lang))
        lines.extend(
            t(
                "work.digest_notice_line",
                lang,
                title=title_of(s.notice),
                received=s.received,
                total=s.total,
            )
            for s in data.open_notices
        )
    if data.unreachable:
        lines.append(
            t(
                "reminders.digest.unreachable",
                lang,
                count=len(data.unreachable),
                units=_names(data.unreachable, lang),
            )
        )
    return pack(title, lines, lang)


async def _bulletin(
    session: AsyncSession,
    ctx: CampaignContext,
    week: str,
    now: datetime,
    default_language: str,
    counts: NoticeCounts,
) -> None:
    """Write the weekly bulletin (units ranked by completion) to the leaders and the office."""
    people = await holders(session, ctx.id, ("leader", "office"))
    if not people:
        return
    ranking = await unit_ranking(session, ctx.id, now)
    texts = {
        lang: bulletin_texts(ctx, week, ranking, now, lang)
        for lang in languages(people, default_language)
    }
    counts.bulletins += await _push_all(
        session,
        ctx,
        people,
        key=f"bulletin:{ctx.id}:{week}",
        kind="bulletin",
        texts=texts,
        now=now,
        default_language=default_language,
    )
    # The ranking chart follows the text; the sender draws it when it goes out (rows are JSON).
    pictures = []
    for person in people:
        lang = language_of(person, default_language)
        pictures.append(
            Outgoing(
                key=f"bulletin:{ctx.id}:{week}:{person.id}:image",
                chat_id=person.telegram_id,
                kind="bulletin",
                payload={
                    "method": "sendPhoto",
                    "render": {"kind": "bulletin", "campaign_id": ctx.id, "lang": lang},
                    "caption": t("reminders.bulletin.image_caption", lang, campaign=ctx.title),
                    "parse_mode": "HTML",
                },
                person_id=person.id,
                campaign_id=ctx.id,
            )
        )
    await enqueue_many(session, pictures, now=now)


def bulletin_texts(
    ctx: CampaignContext, week: str, ranking: list[UnitStanding], now: datetime, lang: str
) -> list[str]:
    """Render the bulletin: totals, then the ranking (top and bottom of a long one)."""
    year, number = week.split("-W")
    title = t(
        "reminders.bulletin.title",
        lang,
        campaign=ctx.title,
        week=t("reminders.bulletin.week", lang, year=year, week=int(number)),
    )
    lines = [
        t(
            "reminders.bulletin.summary",
            lang,
            moment=format_moment(now, ctx.timezone, lang),
            due=sum(s.due_so_far for s in ranking),
            submitted=sum(s.done for s in ranking if s.due_so_far),
            accepted=sum(s.accepted for s in ranking),
            overdue=sum(s.overdue for s in ranking),
        )
    ]
    if not ranking:
        lines.append(t("reminders.bulletin.no_units", lang))
    # A long ranking names the best and the worst; the middle is counted.
    for item in named_ranks(ranking, BULLETIN_ENDS):
        if isinstance(item, Skipped):
            lines.append(t("reminders.bulletin.skipped", lang, count=item.count))
            continue
        rank, standing = item
        lines.append(
            t(
                "reminders.bulletin.line",
                lang,
                rank=rank,
                unit=standing.name,
                done=standing.done,
                total=standing.total,
                percent=round(100 * standing.rate),
                overdue=t("reminders.bulletin.overdue_mark", lang, count=standing.overdue)
                if standing.overdue
                else "",
            )
        )
    return pack(title, lines, lang)
