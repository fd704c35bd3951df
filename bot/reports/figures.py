"""The figures behind the pictures: status shares per task and unit kind, units ranked."""

from __future__ import annotations

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
    session: AsyncSession, campaign_id: int, now: datetime
) -> list[UnitStanding]:
    """Rank the units by the share of their due assignments handed in, the best first.

    The text bulletin (scheduler/notices.py) and the picture both use it, so they agree:
    before anything is due, units rank by what they handed in early; ties go to fewer overdue.
    """
    a, u = m.Assignment, m.Unit
    is_due = a.due_at <= now
    done = a.status.in_(DONE)
    latest = (
        select(m.Submission.assignment_id, func.max(m.Submission.version).label("version"))
        .group_by(m.Submission.assignment_id)
        .subquery()
    )
    s = m.Submission
    rows = await session.execute(
        select(
            u.name,
            u.position,
            func.count(a.id),
            func.sum(case((is_due, 1), else_=0)),
            func.sum(case((and_(is_due, done), 1), else_=0)),
            func.sum(case((done, 1), else_=0)),
            func.sum(case((is_overdue(now), 1), else_=0)),
            func.sum(case((a.status == ACCEPTED, 1), else_=0)),
            func.sum(case((and_(done, s.late.is_(True)), 1), else_=0)),
        )
        .join(a, and_(a.unit_id == u.id, a.archived_at.is_(None)))
        .outerjoin(latest, latest.c.assignment_id == a.id)
        .outerjoin(s, and_(s.assignment_id == a.id, s.version == latest.c.version))
        .where(u.campaign_id == campaign_id, u.archived_at.is_(None))
        .group_by(u.id, u.name, u.position)
    )
    standings = []
    for name, position, total, due, done_due, done_all, overdue, accepted, late in rows:
        due, done_due, done_all = int(due or 0), int(done_due or 0), int(done_all or 0)
        standings.append(
            UnitStanding(
                name=name,
                position=position,
                done=done_due if due else done_all,
                total=due if due else int(total),
                overdue=int(overdue or 0),
                accepted=int(accepted or 0),
                due_so_far=due,
                late=int(late or 0),
            )
        )
    standings.sort(key=lambda x: (-x.rate, x.overdue, x.position))
    return standings


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
