"""People: the Telegram accounts and groups duban knows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.services.audit import record


async def touch_person(
    session: AsyncSession,
    telegram_id: int,
    *,
    now: datetime,
    name: str = "",
    username: str | None = None,
    is_group: bool = False,
) -> m.Person:
    """Return the person for a Telegram id, creating it (reachable), updating name and username.

    An existing person's reachability is not touched here: `bot.services.reachability`
    decides it (and tells the office), called by whoever knows the chat is open again.
    """
    found = select(m.Person).where(m.Person.telegram_id == telegram_id)
    person = await session.scalar(found)
    if person is None:
        # Insert-or-nothing: another process may create the same person at this moment
        # (webhook processes behind a load balancer; issue 14 case 7's kind).
        bind = session.get_bind()
        insert: Any = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
        await session.execute(
            insert(m.Person)
            .values(
                telegram_id=telegram_id,
                is_group=is_group,
                name=name,
                username=username,
                reachable=True,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=[m.Person.telegram_id])
        )
        created = await session.scalar(found)
        assert created is not None
        return created
    if name and person.name != name:
        person.name = name
    if username != person.username:
        person.username = username
    return person


async def holds_role(session: AsyncSession, telegram_id: int) -> bool:
    """Return whether the Telegram account (a person, or a group) holds any live role.

    One indexed read: the throttle asks it of a person not seen yet, the frame of a group
    (unregistered groups get silence).
    """
    found = await session.scalar(
        select(m.Role.id)
        .join(m.Person, m.Person.id == m.Role.person_id)
        .where(m.Person.telegram_id == telegram_id, m.Role.revoked_at.is_(None))
        .limit(1)
    )
    return found is not None


async def active_roles(
    session: AsyncSession, person: m.Person
) -> list[tuple[m.Role, m.Campaign, str | None]]:
    """Return the person's live roles with their campaign and unit name."""
    rows = await session.execute(
        select(m.Role, m.Campaign, m.Unit.name)
        .join(m.Campaign, m.Campaign.id == m.Role.campaign_id)
        .outerjoin(m.Unit, m.Unit.id == m.Role.unit_id)
        .where(m.Role.person_id == person.id, m.Role.revoked_at.is_(None))
        .order_by(m.Role.created_at)
    )
    return [(role, campaign, unit) for role, campaign, unit in rows]


async def holders(
    session: AsyncSession,
    campaign_id: int,
    roles: tuple[str, ...],
    *,
    unit_id: int | None = None,
    reachable_only: bool = True,
) -> list[m.Person]:
    """Return the people and groups holding any of `roles` (for one unit, if given), once each."""
    query = (
        select(m.Person)
        .join(m.Role, m.Role.person_id == m.Person.id)
        .where(
            m.Role.campaign_id == campaign_id,
            m.Role.role.in_(roles),
            m.Role.revoked_at.is_(None),
        )
        .distinct()
        .order_by(m.Person.id)
    )
    if unit_id is not None:
        query = query.where(m.Role.unit_id == unit_id)
    if reachable_only:
        query = query.where(m.Person.reachable.is_(True))
    return list(await session.scalars(query))


async def find_person(session: AsyncSession, telegram_id: int) -> m.Person | None:
    """Return the person (or group) with this Telegram id, if duban knows them."""
    return await session.scalar(select(m.Person).where(m.Person.telegram_id == telegram_id))


async def record_refusal(
    session: AsyncSession, telegram_id: int, *, now: datetime, attempt: str, reason: str
) -> None:
    """Audit a refused attempt (a stranger's command, a forged button) by a Telegram account."""
    person = await find_person(session, telegram_id)
    record(
        session,
        at=now,
        actor=f"person:{person.id}" if person else f"telegram:{telegram_id}",
        action="access.refused",
        details={"attempt": attempt[:100], "reason": reason},
    )
