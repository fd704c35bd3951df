"""An office member's manual nudge of every unit that has not submitted a task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.db.assignment_states import is_open
from bot.domain.assignments import is_overdue
from bot.messages.pushes import assignment_buttons, manual_nudge_text
from bot.services.access import Caller
from bot.services.audit import record
from bot.services.notify import push
from bot.services.outbox import message
from bot.services.people import holders


def _open_for(task_id: int) -> Any:
    return (
        m.Assignment.task_id == task_id,
        m.Assignment.archived_at.is_(None),
        is_open(),
    )


async def count_open(session: AsyncSession, caller: Caller, task: m.Task) -> int:
    """Return how many units have not submitted the task."""
    caller.require_office()
    return int(
        await session.scalar(
            select(func.count()).select_from(m.Assignment).where(*_open_for(task.id))
        )
        or 0
    )


async def nudge_task(
    session: AsyncSession,
    caller: Caller,
    task: m.Task,
    *,
    token: str,
    now: datetime,
    default_language: str,
) -> tuple[int, int]:
    """Nudge the contacts of every unit that has not submitted; return (units, messages).

    `token` comes from the confirm button, so pressing it twice sends nothing twice.
    """
    caller.require_office()
    rows = list(
        await session.execute(
            select(m.Assignment, m.Unit)
            .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
            .where(*_open_for(task.id))
            .order_by(m.Unit.position)
        )
    )
    tz = caller.campaign.timezone
    messages = 0
    for assignment, unit in rows:
        contacts = await holders(session, caller.campaign.id, ("contact",), unit_id=unit.id)
        overdue = is_overdue(assignment.status, assignment.due_at, now)

        def build(
            lang: str, a: m.Assignment = assignment, u: m.Unit = unit, late: bool = overdue
        ) -> dict[str, Any]:
            text = manual_nudge_text(task.title, u.name, a.due_at, late, tz, lang, now)
            return message(text, assignment_buttons(a.id, lang))

        messages += await push(
            session,
            contacts,
            key=f"manual:{task.id}:{token}:{assignment.id}",
            kind="nudge",
            build=build,
            now=now,
            default_language=default_language,
            campaign_id=caller.campaign.id,
            assignment_id=assignment.id,
            planned_due_at=assignment.due_at,
        )
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="nudge.manual",
        campaign_id=caller.campaign.id,
        object_type="task",
        object_id=task.id,
        details={"units": len(rows), "messages": messages, "token": token},
    )
    return len(rows), messages
