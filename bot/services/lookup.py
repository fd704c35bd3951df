"""Find units and tasks by key, name or alias."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import UnknownTask, UnknownUnit
from bot.services.matching import Match, choose
from bot.services.unit_index import unit_index


async def find_unit(session: AsyncSession, campaign_id: int, name: str) -> m.Unit:
    """Return the live unit whose key, name or alias is exactly `name`.

    Raises UnknownUnit when none is.
    """
    wanted = name.strip()
    index = await unit_index(session, campaign_id)
    for pos in index.exact.get(wanted, []):
        return await session.get_one(m.Unit, index.candidates[pos].id)
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


async def rank_units(
    session: AsyncSession, campaign_id: int, text: str, only: list[int] | None = None
) -> list[Match]:
    """Return the units the text may mean, best first (see `matching.rank`), from the index."""
    return (await unit_index(session, campaign_id)).rank(text, only)


async def resolve_unit(
    session: AsyncSession, campaign_id: int, text: str, only: list[int] | None = None
) -> tuple[m.Unit | None, list[m.Unit]]:
    """Return (the unit meant, []) or (None, close alternatives) for a name typed by a person.

    Everything is answered by the campaign's unit-name index (no scan of the units table):
    an exact key or name first, then what `rank_units` finds.
    """
    wanted = text.strip()
    index = await unit_index(session, campaign_id)
    allowed = None if only is None else set(only)
    for pos in index.exact.get(wanted, []):
        candidate = index.candidates[pos]
        if wanted in candidate.names[:2] and (allowed is None or candidate.id in allowed):
            return await session.get_one(m.Unit, candidate.id), []
    best, close = choose(index.rank(wanted, only))
    if best is not None:
        return await session.get_one(m.Unit, best.id), []
    # One query for the alternatives (up to 8), in the order of their scores.
    ids = [c.id for c in close]
    found = {u.id: u for u in await session.scalars(select(m.Unit).where(m.Unit.id.in_(ids)))}
    return None, [found[i] for i in ids if i in found]


async def live_units(
    session: AsyncSession, campaign_id: int, only: Sequence[int] | None = None
) -> list[m.Unit]:
    """Return the campaign's live units (or those of `only`) in plan order."""
    query = select(m.Unit).where(m.Unit.campaign_id == campaign_id, m.Unit.archived_at.is_(None))
    if only is not None:
        query = query.where(m.Unit.id.in_(only))
    return list(await session.scalars(query.order_by(m.Unit.position)))


async def live_kinds(session: AsyncSession, campaign_id: int) -> list[m.UnitKind]:
    """Return the campaign's live unit kinds in plan order."""
    query = select(m.UnitKind).where(
        m.UnitKind.campaign_id == campaign_id, m.UnitKind.archived_at.is_(None)
    )
    return list(await session.scalars(query.order_by(m.UnitKind.position)))


async def live_tasks(session: AsyncSession, campaign_id: int) -> list[m.Task]:
    """Return the campaign's live tasks in plan order."""
    query = select(m.Task).where(m.Task.campaign_id == campaign_id, m.Task.archived_at.is_(None))
    return list(await session.scalars(query.order_by(m.Task.position)))
