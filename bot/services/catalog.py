"""The campaign's live units, tasks and rows as a caller names them or presses a button for them.

Handlers read the database only through these (and the other services): each function takes
the open session of the update's transaction, and the `pressed_*` ones re-check what a
button names against the caller's campaign, raising `StaleButton` for anything gone,
archived or foreign (a button is input like any other).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import StaleButton
from bot.services.access import Caller
from bot.services.matching import Candidate


async def units_by_id(session: AsyncSession, ids: Sequence[int]) -> list[m.Unit]:
    """Return the units with these ids, in the order given (ids known to exist)."""
    return [await session.get_one(m.Unit, unit_id) for unit_id in ids]


async def series_tasks(session: AsyncSession, campaign_id: int, series: str) -> list[m.Task]:
    """Return the live occurrences of a recurring task, by due date."""
    return list(
        await session.scalars(
            select(m.Task)
            .where(
                m.Task.campaign_id == campaign_id,
                m.Task.series == series,
                m.Task.archived_at.is_(None),
            )
            .order_by(m.Task.due_at)
        )
    )


def task_candidates(tasks: Sequence[m.Task]) -> list[Candidate]:
    """Return the names each task goes by (a recurring task also by its own key and title)."""
    return [
        Candidate(
            task.id,
            (
                task.key,
                task.title,
                *([task.series, task.series_title or ""] if task.series else []),
            ),
        )
        for task in tasks
    ]


def current_occurrences(tasks: Sequence[m.Task], now: datetime) -> list[m.Task]:
    """Keep one occurrence per recurring task: the next one due, else the last one.

    Tasks with one deadline pass through; the order is kept (the series where it starts).
    """
    chosen: dict[str, m.Task] = {}
    for task in tasks:
        if task.series is None:
            continue
        best = chosen.get(task.series)
        if best is None or (
            best.due_at <= now and (task.due_at > now or task.due_at > best.due_at)
        ):
            chosen[task.series] = task
    out: list[m.Task] = []
    seen: set[str] = set()
    for task in tasks:
        if task.series is None:
            out.append(task)
        elif task.series not in seen:
            seen.add(task.series)
            out.append(chosen[task.series])
    return out


async def submitted_versions(session: AsyncSession, unit_id: int) -> list[tuple[m.Submission, str]]:
    """Return (submission, task title) of a unit's live assignments, by task and version."""
    rows = await session.execute(
        select(m.Submission, m.Task.title)
        .join(m.Assignment, m.Assignment.id == m.Submission.assignment_id)
        .join(m.Task, m.Task.id == m.Assignment.task_id)
        .where(m.Assignment.unit_id == unit_id, m.Assignment.archived_at.is_(None))
        .order_by(m.Task.position, m.Submission.version)
    )
    return [(sub, title) for sub, title in rows]


async def live_assignment(session: AsyncSession, unit_id: int, task_id: int) -> m.Assignment | None:
    """Return the live assignment of a unit for a task, if it owes it."""
    return await session.scalar(
        select(m.Assignment).where(
            m.Assignment.unit_id == unit_id,
            m.Assignment.task_id == task_id,
            m.Assignment.archived_at.is_(None),
        )
    )


_Live = TypeVar("_Live", m.Unit, m.Task, m.UnitKind)


async def _pressed_live(
    session: AsyncSession, caller: Caller, model: type[_Live], row_id: int
) -> _Live:
    """Return the live row of the caller's campaign a button names; else StaleButton."""
    row = await session.get(model, row_id)
    if row is None or row.campaign_id != caller.campaign.id or row.archived_at is not None:
        raise StaleButton()
    return row


async def pressed_unit(session: AsyncSession, caller: Caller, unit_id: int) -> m.Unit:
    """Return the live unit of the caller's campaign a button names; else StaleButton."""
    return await _pressed_live(session, caller, m.Unit, unit_id)


async def pressed_task(session: AsyncSession, caller: Caller, task_id: int) -> m.Task:
    """Return the live task of the caller's campaign a button names; else StaleButton."""
    return await _pressed_live(session, caller, m.Task, task_id)


async def pressed_assignment_unit(
    session: AsyncSession, caller: Caller, assignment_id: int
) -> m.Unit:
    """Return the unit of an assignment of the caller's campaign a button names."""
    assignment = await session.get(m.Assignment, assignment_id)
    if assignment is None or assignment.campaign_id != caller.campaign.id:
        raise StaleButton()
    return await session.get_one(m.Unit, assignment.unit_id)


async def pressed_submission(
    session: AsyncSession, caller: Caller, submission_id: int
) -> m.Submission:
    """Return a submission of the caller's campaign a button names; else StaleButton."""
    submission = await session.get(m.Submission, submission_id)
    if submission is None:
        raise StaleButton()
    assignment = await session.get_one(m.Assignment, submission.assignment_id)
    if assignment.campaign_id != caller.campaign.id:
        raise StaleButton()
    return submission


async def pressed_kind(session: AsyncSession, caller: Caller, kind_id: int) -> m.UnitKind:
    """Return a live unit kind of the caller's campaign a button names; else StaleButton."""
    return await _pressed_live(session, caller, m.UnitKind, kind_id)
