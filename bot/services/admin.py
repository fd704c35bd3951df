"""Office and admin housekeeping in the chat: who holds which role, and removing a role."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import DubanError
from bot.services.access import Caller, NotAllowed
from bot.services.audit import record

OFFICE_MANAGES = ("contact", "head")


class UnknownPerson(DubanError):
    """No registered person matches."""

    key = "admin.unknown_person"


@dataclass
class Holder:
    """A role held by a person, as `/people` lists it."""

    role_id: int
    person: m.Person
    role: str
    unit_id: int | None
    unit_name: str | None


def may_grant(caller: Caller, role: str) -> bool:
    """Return whether the caller may invite or revoke this role (office: contact and head)."""
    return caller.is_admin or (caller.is_office and role in OFFICE_MANAGES)


async def list_holders(
    session: AsyncSession, caller: Caller, unit_id: int | None = None
) -> tuple[list[Holder], list[m.Unit]]:
    """Return the campaign's role holders (of one unit, if given) and the units with no contact."""
    caller.require_office()
    query = (
        select(m.Role, m.Person, m.Unit.name)
        .join(m.Person, m.Person.id == m.Role.person_id)
        .outerjoin(m.Unit, m.Unit.id == m.Role.unit_id)
        .where(m.Role.campaign_id == caller.campaign.id, m.Role.revoked_at.is_(None))
        .order_by(m.Role.role, m.Unit.position, m.Person.id)
    )
    if unit_id is not None:
        query = query.where(m.Role.unit_id == unit_id)
    holders = [
        Holder(role.id, person, role.role, role.unit_id, unit_name)
        for role, person, unit_name in await session.execute(query)
    ]
    reachable_contacts = (
        select(m.Role.unit_id)
        .join(m.Person, m.Person.id == m.Role.person_id)
        .where(
            m.Role.campaign_id == caller.campaign.id,
            m.Role.role == "contact",
            m.Role.revoked_at.is_(None),
            m.Person.reachable.is_(True),
        )
    )
    orphans_query = select(m.Unit).where(
        m.Unit.campaign_id == caller.campaign.id,
        m.Unit.archived_at.is_(None),
        m.Unit.id.not_in(reachable_contacts),
    )
    if unit_id is not None:
        orphans_query = orphans_query.where(m.Unit.id == unit_id)
    orphans = list(await session.scalars(orphans_query.order_by(m.Unit.position)))
    return holders, orphans


async def revoke_role(
    session: AsyncSession, caller: Caller, role_id: int, *, now: datetime
) -> Holder:
    """Remove one role from a person (office: contacts and heads; admin: anyone)."""
    caller.require_office()
    row = (
        await session.execute(
            select(m.Role, m.Person, m.Unit.name)
            .join(m.Person, m.Person.id == m.Role.person_id)
            .outerjoin(m.Unit, m.Unit.id == m.Role.unit_id)
            .where(m.Role.id == role_id)
        )
    ).first()
    if row is None or row[0].campaign_id != caller.campaign.id or row[0].revoked_at is not None:
        raise UnknownPerson()
    role, person, unit_name = row
    if not may_grant(caller, role.role):
        raise NotAllowed("admin")
    role.revoked_at = now
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="role.revoke",
        campaign_id=caller.campaign.id,
        object_type="role",
        object_id=role.id,
        details={"person_id": person.id, "role": role.role, "unit_id": role.unit_id},
    )
    return Holder(role.id, person, role.role, role.unit_id, unit_name)


async def find_roles(session: AsyncSession, caller: Caller, text: str) -> list[Holder]:
    """Return live roles of people whose name, @username or id matches the text."""
    caller.require_office()
    wanted = text.strip().removeprefix("@").casefold()
    rows = await session.execute(
        select(m.Role, m.Person, m.Unit.name)
        .join(m.Person, m.Person.id == m.Role.person_id)
        .outerjoin(m.Unit, m.Unit.id == m.Role.unit_id)
        .where(m.Role.campaign_id == caller.campaign.id, m.Role.revoked_at.is_(None))
    )
    out = []
    for role, person, unit_name in rows:
        names = {
            person.name.casefold(),
            (person.username or "").casefold(),
            str(person.telegram_id),
        }
        if wanted and wanted in names:
            out.append(Holder(role.id, person, role.role, role.unit_id, unit_name))
    return out
