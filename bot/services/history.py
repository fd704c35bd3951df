"""Progress as it stood at a past moment (`duban status --at T`), rebuilt from the records.

An assignment's state at T follows from what happened up to T: its submissions (each
version's `submitted_at`) and the office's reviews of them (accepted, returned, reopened at
`created_at`). Its due moment at T is the plan's date, or the later date of an extension
approved by T. What the records do not keep is taken as it is now: a plan reload that moved
a date, and units or tasks archived since.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.assignments import DONE, is_overdue
from bot.services.progress import AssignmentView, CampaignProgress

# What a review decision makes of an assignment.
_AFTER_REVIEW = {"accepted": "accepted", "returned": "returned", "reopened": "submitted"}


@dataclass(frozen=True)
class PastState:
    """One assignment at a past moment."""

    status: str
    due_at: datetime

    def overdue(self, at: datetime) -> bool:
        """Return whether it was open and past its due moment at `at`."""
        return is_overdue(self.status, self.due_at, at)


async def states_at(
    session: AsyncSession, campaign: m.Campaign, at: datetime
) -> dict[int, PastState]:
    """Return every live assignment's state at `at`, by assignment id."""
    a = m.Assignment
    rows = list(
        await session.execute(
            select(a.id, a.plan_due_at).where(a.campaign_id == campaign.id, a.archived_at.is_(None))
        )
    )
    ids = [row[0] for row in rows]
    events: dict[int, list[tuple[datetime, int, str]]] = {i: [] for i in ids}
    s, r = m.Submission, m.Review
    for assignment_id, submitted_at in await session.execute(
        select(s.assignment_id, s.submitted_at)
        .join(a, a.id == s.assignment_id)
        .where(a.campaign_id == campaign.id, s.submitted_at <= at)
    ):
        events.setdefault(assignment_id, []).append((submitted_at, 0, "submitted"))
    for assignment_id, decision, created_at in await session.execute(
        select(s.assignment_id, r.decision, r.created_at)
        .join(s, s.id == r.submission_id)
        .join(a, a.id == s.assignment_id)
        .where(a.campaign_id == campaign.id, r.created_at <= at)
    ):
        status = _AFTER_REVIEW.get(decision)
        if status is not None:
            events.setdefault(assignment_id, []).append((created_at, 1, status))
    extended: dict[int, datetime] = {}
    x = m.Extension
    for assignment_id, new_due in await session.execute(
        select(x.assignment_id, x.new_due_at)
        .join(a, a.id == x.assignment_id)
        .where(
            a.campaign_id == campaign.id,
            x.status == "approved",
            x.decided_at.is_not(None),
            x.decided_at <= at,
        )
        .order_by(x.decided_at)
    ):
        extended[assignment_id] = new_due
    out: dict[int, PastState] = {}
    for assignment_id, plan_due in rows:
        history = sorted(events.get(assignment_id, []))
        status = history[-1][2] if history else "pending"
        # An approved extension stands unless the plan gives a later date (as plan load does).
        due = max(plan_due, extended[assignment_id]) if assignment_id in extended else plan_due
        out[assignment_id] = PastState(status, due)
    return out


async def progress_at(
    session: AsyncSession,
    progress: CampaignProgress,
    campaign: m.Campaign,
    at: datetime,
    *,
    unit_ids: list[int] | None = None,
) -> tuple[CampaignProgress, dict[int, PastState]]:
    """Return the figures of `progress` (its phases and tasks) recounted as they were at `at`.

    `progress` gives the rows (read with `now=at` and the same unit and task filters, the
    units given again as `unit_ids`); the counts come from `states_at`. Returns the
    recounted progress and the states used.
    """
    states = await states_at(session, campaign, at)
    a = m.Assignment
    task_ids = [task.id for task in progress.tasks]
    by_task: dict[int, list[int]] = {task_id: [] for task_id in task_ids}
    query = select(a.id, a.task_id).where(a.task_id.in_(task_ids), a.archived_at.is_(None))
    if unit_ids is not None:
        query = query.where(a.unit_id.in_(unit_ids))
    for assignment_id, task_id in await session.execute(query):
        by_task[task_id].append(assignment_id)
    phases = []
    for phase in progress.phases:
        tasks = []
        for task in phase.tasks:
            mine = [states[i] for i in by_task.get(task.id, []) if i in states]
            tasks.append(
                dataclasses.replace(
                    task,
                    submitted=sum(s.status in DONE for s in mine),
                    accepted=sum(s.status == "accepted" for s in mine),
                    overdue=sum(s.overdue(at) for s in mine),
                )
            )
        phases.append(dataclasses.replace(phase, tasks=tasks))
    return dataclasses.replace(progress, phases=phases, now=at), states


def views_at(
    views: list[AssignmentView], states: dict[int, PastState], at: datetime
) -> list[AssignmentView]:
    """Return assignment views with their status, due moment and overdue flag as at `at`."""
    out = []
    for view in views:
        state = states.get(view.id)
        if state is None:
            out.append(view)
            continue
        out.append(
            dataclasses.replace(
                view, status=state.status, due_at=state.due_at, overdue=state.overdue(at)
            )
        )
    return out
