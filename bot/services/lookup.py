"""Find units and tasks by key, name or alias."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import UnknownTask, UnknownUnit


async def find_unit(session: AsyncSession, campaign_id: int, name: str) -> m.Unit:
    """Return the live unit whose key, name or alias is exactly `name`."""
    wanted = name.strip()
    units = await session.scalars(
        select(m.Unit).where(m.Unit.campaign_id == campaign_id, m.Unit.archived_at.is_(None))
    )
    for unit in units:
        if wanted in (unit.key, unit.name) or wanted in (unit.aliases or []):
            return unit
    raise UnknownUnit(wanted, name=wanted)


async def find_task(session: AsyncSession, campaign_id: int, name: str) -> m.Task:
    """Return the live task whose key or title is exactly `name`."""
    wanted = name.strip()
    task = await session.scalar(
        select(m.Task).where(
            m.Task.campaign_id == campaign_id,
            m.Task.archived_at.is_(None),
            (m.Task.key == wanted) | (m.Task.title == wanted),
        )
    )
    if task is None:
        raise UnknownTask(wanted, name=wanted)
    return task
