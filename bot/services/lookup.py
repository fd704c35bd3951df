"""Find units and tasks by key, name or alias."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import UnknownTask, UnknownUnit
from bot.services.matching import Candidate, choose, rank


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


async def unit_candidates(
    session: AsyncSession, campaign_id: int, only: list[int] | None = None
) -> list[Candidate]:
    """Return every live unit's names (key, name, aliases), reading only those columns."""
    query = select(m.Unit.id, m.Unit.key, m.Unit.name, m.Unit.aliases).where(
        m.Unit.campaign_id == campaign_id, m.Unit.archived_at.is_(None)
    )
    if only is not None:
        query = query.where(m.Unit.id.in_(only))
    rows = await session.execute(query.order_by(m.Unit.position))
    return [Candidate(uid, (key, name, *(aliases or []))) for uid, key, name, aliases in rows]


async def resolve_unit(
    session: AsyncSession, campaign_id: int, text: str, only: list[int] | None = None
) -> tuple[m.Unit | None, list[m.Unit]]:
    """Return (the unit meant, []) or (None, close alternatives) for a name typed by a person.

    An exact key or name is found through the index first, so a campaign of thousands of
    units does not have to be compared name by name.
    """
    wanted = text.strip()
    query = select(m.Unit).where(
        m.Unit.campaign_id == campaign_id,
        m.Unit.archived_at.is_(None),
        or_(m.Unit.name == wanted, m.Unit.key == wanted),
    )
    if only is not None:
        query = query.where(m.Unit.id.in_(only))
    exact = await session.scalar(query.limit(1))
    if exact is not None:
        return exact, []
    best, close = choose(rank(wanted, await unit_candidates(session, campaign_id, only)))
    if best is not None:
        return await session.get_one(m.Unit, best.id), []
    units = [await session.get_one(m.Unit, c.id) for c in close]
    return None, units
