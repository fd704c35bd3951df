"""Progress figures: per phase and task, and per unit, straight from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.db import models as m
from bot.db.assignment_states import is_overdue
from bot.domain import assignments as states
from bot.domain.assignments import ACCEPTED, DONE


@dataclass
class TaskProgress:
    """How far the units are with one task."""

    id: int
    key: str
    title: str
    due_at: datetime
    total: int = 0
    submitted: int = 0
    accepted: int = 0
    overdue: int = 0
    # A recurring task (SPEC §3 `repeat`) is one entry holding its occurrences: its figures
    # count the occurrences due so far, `due_at` is the next one's (else the last one's).
    occurrences: list[TaskProgress] = field(default_factory=list)
    due_so_far: int = 0
    next_due: datetime | None = None

    @property
    def recurring(self) -> bool:
        """Return whether this entry groups the occurrences of a recurring task."""
        return bool(self.occurrences)


def group_series(
    entries: list[tuple[str | None, str | None, TaskProgress]], now: datetime
) -> list[TaskProgress]:
    """Fold occurrences (series key, series title, figures) into one entry per series.

    The entry sits where the series' first occurrence is; figures sum the occurrences whose
    due moment is at or before `now` (done / due so far), `next_due` is the first one after.
    """
    out: list[TaskProgress] = []
    groups: dict[str, TaskProgress] = {}
    for series, series_title, item in entries:
        if series is None:
            out.append(item)
            continue
        group = groups.get(series)
        if group is None:
            group = TaskProgress(item.id, series, series_title or item.title, item.due_at)
            groups[series] = group
            out.append(group)
        group.occurrences.append(item)
    for group in groups.values():
        due = [o for o in group.occurrences if o.due_at <= now]
        later = [o for o in group.occurrences if o.due_at > now]
        group.due_so_far = len(due)
        group.next_due = later[0].due_at if later else None
        group.due_at = later[0].due_at if later else group.occurrences[-1].due_at
        group.id = (later[0] if later else group.occurrences[-1]).id
        group.total = sum(o.total for o in due)
        group.submitted = sum(o.submitted for o in due)
        group.accepted = sum(o.accepted for o in due)
        group.overdue = sum(o.overdue for o in due)
    return out


@dataclass
class PhaseProgress:
    """One phase and its tasks."""

    key: str
    name: str
    start: date
    end: date
    tasks: list[TaskProgress] = field(default_factory=list)


@dataclass
class CampaignProgress:
    """Every phase of a campaign with its figures at one moment."""

    key: str
    title: str
    timezone: str
    now: datetime
    phases: list[PhaseProgress]

    @property
    def tasks(self) -> list[TaskProgress]:
        """Return every task in order."""
        return [task for phase in self.phases for task in phase.tasks]

    def totals(self) -> tuple[int, int, int, int]:
        """Return (total, submitted, accepted, overdue) over all tasks."""
        tasks = self.tasks
        return (
            sum(t.total for t in tasks),
            sum(t.submitted for t in tasks),
            sum(t.accepted for t in tasks),
            sum(t.overdue for t in tasks),
        )


async def campaign_progress(
    session: AsyncSession,
    campaign: m.Campaign,
    now: datetime,
    *,
    unit_ids: list[int] | None = None,
    task_ids: list[int] | None = None,
) -> CampaignProgress:
    """Count done, accepted and overdue assignments per task at `now` (aware, UTC).

    The whole campaign (or chosen tasks) is summed from the counts the database keeps per
    (task, status, due moment), a few rows per task whatever the number of units; a
    unit-scoped view reads that unit's own assignments.
    """
    if unit_ids is None:
        figures = await _kept_figures(session, campaign.id, now, task_ids)
    else:
        figures = await _counted_figures(session, campaign.id, now, unit_ids, task_ids)
    phases = list(
        await session.scalars(
            select(m.Phase)
            .where(m.Phase.campaign_id == campaign.id, m.Phase.archived_at.is_(None))
            .order_by(m.Phase.position)
        )
    )
    task_query = select(m.Task).where(
        m.Task.campaign_id == campaign.id, m.Task.archived_at.is_(None)
    )
    if task_ids is not None:
        task_query = task_query.where(m.Task.id.in_(task_ids))
    tasks = list(await session.scalars(task_query.order_by(m.Task.position)))
    by_phase: dict[int, PhaseProgress] = {}
    out = []
    for phase in phases:
        progress = PhaseProgress(phase.key, phase.name, phase.start_date, phase.end_date)
        by_phase[phase.id] = progress
        out.append(progress)
    entries: dict[int, list[tuple[str | None, str | None, TaskProgress]]] = {}
    for task in tasks:
        total, submitted, accepted, overdue = figures.get(task.id, (0, 0, 0, 0))
        if unit_ids is not None and total == 0:
            continue
        entries.setdefault(task.phase_id, []).append(
            (
                task.series,
                task.series_title,
                TaskProgress(
                    task.id,
                    task.key,
                    task.title,
                    task.due_at,
                    total,
                    submitted,
                    accepted,
                    overdue,
                ),
            )
        )
    for phase_id, items in entries.items():
        by_phase[phase_id].tasks.extend(group_series(items, now))
    return CampaignProgress(campaign.key, campaign.title, campaign.timezone, now, out)


Figures = dict[int, tuple[int, int, int, int]]


async def _kept_figures(
    session: AsyncSession, campaign_id: int, now: datetime, task_ids: list[int] | None
) -> Figures:
    """Return (total, submitted, accepted, overdue) per task from `assignment_counts`."""
    c = m.AssignmentCount
    query = (
        select(
            c.task_id,
            func.sum(c.n),
            func.sum(case((c.status.in_(DONE), c.n), else_=0)),
            func.sum(case((c.status == ACCEPTED, c.n), else_=0)),
            func.sum(case((is_overdue(now, c.status, c.due_at), c.n), else_=0)),
        )
        .where(c.campaign_id == campaign_id)
        .group_by(c.task_id)
    )
    if task_ids is not None:
        query = query.where(c.task_id.in_(task_ids))
    return {row[0]: _ints(row[1:]) for row in await session.execute(query)}


async def _counted_figures(
    session: AsyncSession,
    campaign_id: int,
    now: datetime,
    unit_ids: list[int],
    task_ids: list[int] | None,
) -> Figures:
    """Return (total, submitted, accepted, overdue) per task over some units' assignments."""
    a = m.Assignment
    query = (
        select(
            a.task_id,
            func.count(),
            func.sum(case((a.status.in_(DONE), 1), else_=0)),
            func.sum(case((a.status == ACCEPTED, 1), else_=0)),
            func.sum(case((is_overdue(now), 1), else_=0)),
        )
        .where(a.campaign_id == campaign_id, a.archived_at.is_(None), a.unit_id.in_(unit_ids))
        .group_by(a.task_id)
    )
    if task_ids is not None:
        query = query.where(a.task_id.in_(task_ids))
    return {row[0]: _ints(row[1:]) for row in await session.execute(query)}


def _ints(row: Any) -> tuple[int, int, int, int]:
    total, submitted, accepted, overdue = row
    return int(total or 0), int(submitted or 0), int(accepted or 0), int(overdue or 0)


@dataclass
class AssignmentView:
    """One unit's standing on one task."""

    id: int
    unit_key: str
    unit_name: str
    task_key: str
    task_title: str
    phase_name: str
    status: str
    due_at: datetime
    overdue: bool
    last_submitted_at: datetime | None
    submitter: str | None
    late: bool | None
    review: str | None
    review_reason: str | None


async def assignment_views(
    session: AsyncSession,
    campaign: m.Campaign,
    now: datetime,
    *,
    unit_ids: list[int] | None = None,
    task_ids: list[int] | None = None,
) -> list[AssignmentView]:
    """Return every live assignment with its latest submission and review."""
    a, u, t, p = m.Assignment, m.Unit, m.Task, m.Phase
    s = m.Submission
    earlier = aliased(m.Submission)
    # The latest version of each assignment, through uq_submissions_assignment_id per row
    # (a grouped subquery would aggregate every submission of the database first).
    latest = (
        select(func.max(earlier.version))
        .where(earlier.assignment_id == a.id)
        .correlate(a)
        .scalar_subquery()
    )
    query = (
        select(a, u.key, u.name, t.key, t.title, p.name, s, m.Person.name)
        .join(u, u.id == a.unit_id)
        .join(t, t.id == a.task_id)
        .join(p, p.id == t.phase_id)
        .outerjoin(s, and_(s.assignment_id == a.id, s.version == latest))
        .outerjoin(m.Person, m.Person.id == s.person_id)
        .where(a.campaign_id == campaign.id, a.archived_at.is_(None))
        .order_by(t.position, u.position)
    )
    if unit_ids is not None:
        query = query.where(a.unit_id.in_(unit_ids))
    if task_ids is not None:
        query = query.where(a.task_id.in_(task_ids))
    rows = list(await session.execute(query))
    submission_ids = [row[6].id for row in rows if row[6] is not None]
    reviews: dict[int, m.Review] = {}
    if submission_ids:
        for found in await session.scalars(
            select(m.Review)
            .where(m.Review.submission_id.in_(submission_ids))
            .order_by(m.Review.created_at)
        ):
            reviews[found.submission_id] = found
    out = []
    for assignment, unit_key, unit_name, task_key, task_title, phase_name, sub, who in rows:
        review: m.Review | None = reviews.get(sub.id) if sub is not None else None
        out.append(
            AssignmentView(
                id=assignment.id,
                unit_key=unit_key,
                unit_name=unit_name,
                task_key=task_key,
                task_title=task_title,
                phase_name=phase_name,
                status=assignment.status,
                due_at=assignment.due_at,
                overdue=states.is_overdue(assignment.status, assignment.due_at, now),
                last_submitted_at=sub.submitted_at if sub is not None else None,
                submitter=who,
                late=sub.late if sub is not None else None,
                review=review.decision if review is not None else None,
                review_reason=review.reason if review is not None else None,
            )
        )
    return out
