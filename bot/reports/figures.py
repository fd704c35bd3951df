"""The figures behind the pictures: status shares per task and unit kind, units ranked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.db.assignment_states import is_open, is_overdue
from bot.domain.assignments import ACCEPTED, DONE, SUBMITTED


@dataclass
class Split:
    """How many assignments are accepted, awaiting review, overdue, or open and not yet due."""

    accepted: int = 0
    submitted: int = 0
    overdue: int = 0
    pending: int = 0

    @property
    def done(self) -> int:
        """Return how many were handed in (submitted or accepted)."""
        return self.accepted + self.submitted

    @property
    def total(self) -> int:
        """Return how many assignments there are."""
        return self.accepted + self.submitted + self.overdue + self.pending

    def add(self, other: Split) -> None:
        """Add another split's counts to this one."""
        self.accepted += other.accepted
        self.submitted += other.submitted
        self.overdue += other.overdue
        self.pending += other.pending


@dataclass
class TaskSplit:
    """One task and how its units stand."""

    key: str
    title: str
    phase: str
    due_at: datetime
    split: Split


@dataclass
class KindSplit:
    """One kind of unit and how its units stand over every task."""

    key: str
    name: str
    split: Split


@dataclass
class ChartData:
    """Everything the progress chart shows, read at one moment."""

    title: str
    timezone: str
    now: datetime
    tasks: list[TaskSplit] = field(default_factory=list)
    kinds: list[KindSplit] = field(default_factory=list)


async def chart_data(session: AsyncSession, campaign: m.Campaign, now: datetime) -> ChartData:
    """Count each task's and each unit kind's assignments by state (one grouped query)."""
    a, u = m.Assignment, m.Unit
    open_ = is_open()
    rows = await session.execute(
        select(
            a.task_id,
            u.kind_id,
            func.sum(case((a.status == ACCEPTED, 1), else_=0)),
            func.sum(case((a.status == SUBMITTED, 1), else_=0)),
            func.sum(case((is_overdue(now), 1), else_=0)),
            func.sum(case((and_(open_, a.due_at >= now), 1), else_=0)),
        )
        .join(u, u.id == a.unit_id)
        .where(a.campaign_id == campaign.id, a.archived_at.is_(None), u.archived_at.is_(None))
        .group_by(a.task_id, u.kind_id)
    )
    by_task: dict[int, Split] = {}
    by_kind: dict[int, Split] = {}
    for task_id, kind_id, accepted, submitted, overdue, pending in rows:
        split = Split(int(accepted or 0), int(submitted or 0), int(overdue or 0), int(pending or 0))
        by_task.setdefault(task_id, Split()).add(split)
        by_kind.setdefault(kind_id, Split()).add(split)
    tasks = await session.execute(
        select(m.Task, m.Phase.name)
        .join(m.Phase, m.Phase.id == m.Task.phase_id)
        .where(m.Task.campaign_id == campaign.id, m.Task.archived_at.is_(None))
        .order_by(m.Phase.position, m.Task.position)
    )
    kinds = await session.scalars(
        select(m.UnitKind)
        .where(m.UnitKind.campaign_id == campaign.id, m.UnitKind.archived_at.is_(None))
        .order_by(m.UnitKind.position)
    )
    data = ChartData(campaign.title, campaign.timezone, now)
    series: dict[str, TaskSplit] = {}
    found_next: dict[str, bool] = {}
    for task, phase in tasks:
        if task.id not in by_task:
            continue
        if task.series is None:
            data.tasks.append(TaskSplit(task.key, task.title, phase, task.due_at, by_task[task.id]))
            continue
        # A recurring task is one bar: its occurrences due so far (the first one while none
        # is due yet), dated by its next due moment.
        bar = series.get(task.series)
        if bar is None:
            bar = TaskSplit(
                task.series, task.series_title or task.title, phase, task.due_at, Split()
            )
            series[task.series] = bar
            data.tasks.append(bar)
            bar.split.add(by_task[task.id])
            found_next[task.series] = task.due_at > now
            continue
        if task.due_at <= now:
            bar.split.add(by_task[task.id])
            bar.due_at = task.due_at
        elif not found_next[task.series]:
            bar.due_at = task.due_at
            found_next[task.series] = True
    for kind in kinds:
        if kind.id in by_kind:
            data.kinds.append(KindSplit(kind.key, kind.name, by_kind[kind.id]))
    return data


@dataclass(frozen=True)
class UnitStanding:
    """One unit's place in the bulletin."""

    name: str
    position: int
    done: int  # submitted or accepted, of `total`
    total: int  # assignments due so far (all of them while none is due yet)
    overdue: int
    accepted: int
    due_so_far: int
    late: int  # handed in, but after the deadline

    @property
    def rate(self) -> float:
        """Return the share done, 0..1."""
        return self.done / self.total if self.total else 1.0


async def unit_ranking(
    session: AsyncSession, campaign_id: int, now: datetime, *, with_late: bool = True
) -> list[UnitStanding]:
    """Rank the units by the share of their due assignments handed in, the best first.

    The text bulletin (scheduler/notices.py), the picture and the dashboard use it, so they
    agree: before anything is due, units rank by what they handed in early; ties go to fewer
    overdue. One grouped read of the live assignments by `ix_assignments_unit_counts`, which
    holds every column counted (no table row is read, in unit order), joined to the units.
    `with_late=False` leaves the late versions uncounted (the dashboard does not show them).
    """
    a, u = m.Assignment, m.Unit
    is_due = a.due_at <= now
    done = a.status.in_(DONE)
    counts = (
        select(
            a.unit_id,
            func.count().label("total"),
            func.count().filter(is_due).label("due"),
            func.count().filter(and_(is_due, done)).label("done_due"),
            func.count().filter(done).label("done_all"),
            func.count().filter(is_overdue(now)).label("overdue"),
            func.count().filter(a.status == ACCEPTED).label("accepted"),
        )
        .where(a.campaign_id == campaign_id, a.archived_at.is_(None))
        .group_by(a.unit_id)
        .subquery()
    )
    c = counts.c
    rows = await session.execute(
        select(
            u.id, u.name, u.position, c.total, c.due, c.done_due, c.done_all, c.overdue, c.accepted
        )
        .join(counts, c.unit_id == u.id)
        .where(u.archived_at.is_(None))
    )
    late = await _late_by_unit(session, campaign_id) if with_late else {}
    standings = []
    for unit_id, name, position, *figures in rows:
        total, due, done_due, done_all, overdue, accepted = (int(x or 0) for x in figures)
        standings.append(
            UnitStanding(
                name=name,
                position=position,
                done=done_due if due else done_all,
                total=due if due else total,
                overdue=overdue,
                accepted=accepted,
                due_so_far=due,
                late=late.get(unit_id, 0),
            )
        )
    standings.sort(key=lambda x: (-x.rate, x.overdue, x.position))
    return standings


async def _late_by_unit(session: AsyncSession, campaign_id: int) -> dict[int, int]:
    """Return, per unit, how many handed-in assignments' latest version came in late."""
    a, s = m.Assignment, m.Submission
    latest = (
        select(s.assignment_id, func.max(s.version).label("version"))
        .join(a, a.id == s.assignment_id)
        .where(a.campaign_id == campaign_id, a.archived_at.is_(None), a.status.in_(DONE))
        .group_by(s.assignment_id)
        .subquery()
    )
    rows = await session.execute(
        select(a.unit_id, func.count())
        .select_from(latest)
        .join(
            s,
            and_(s.assignment_id == latest.c.assignment_id, s.version == latest.c.version),
        )
        .join(a, a.id == s.assignment_id)
        .where(s.late.is_(True))
        .group_by(a.unit_id)
    )
    return {unit_id: int(n) for unit_id, n in rows}


async def most_overdue(
    session: AsyncSession, campaign: m.Campaign, now: datetime, limit: int = 5
) -> list[tuple[str, int]]:
    """Return the units with the most overdue assignments, the worst first, with their counts."""
    a, u = m.Assignment, m.Unit
    # Only open, past-due rows are read: the (campaign, status, due) index finds them.
    overdue = func.count(a.id).label("overdue")
    rows = await session.execute(
        select(u.name, overdue)
        .join(u, u.id == a.unit_id)
        .where(
            a.campaign_id == campaign.id,
            is_overdue(now),
            a.archived_at.is_(None),
            u.archived_at.is_(None),
        )
        .group_by(u.id, u.name, u.position)
        .order_by(overdue.desc(), u.position)
        .limit(limit)
    )
    return [(name, int(count)) for name, count in rows]


# A bulletin ranks every unit up to this many; beyond, the best and the worst are named.
BULLETIN_ALL = 30


@dataclass(frozen=True)
class Skipped:
    """The middle of a long ranking: counted, not named."""

    count: int


def named_ranks(
    ranking: Sequence[UnitStanding], ends: int, every_up_to: int = BULLETIN_ALL
) -> list[tuple[int, UnitStanding] | Skipped]:
    """Return what a bulletin names: (rank, standing) of every unit of a short ranking.

    A ranking longer than `every_up_to` is named at its `ends` best and `ends` worst, with
    one `Skipped` between them counting the middle (the text and the picture both).
    """
    ranked = list(enumerate(ranking, 1))
    if len(ranked) <= every_up_to:
        return list(ranked)
    return [*ranked[:ends], Skipped(len(ranked) - 2 * ends), *ranked[-ends:]]
