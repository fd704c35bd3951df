"""Who is asking: a person's roles in their current campaign, and what those roles allow."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import DubanError

UNIT_ROLES = ("contact", "head")


class NotRegistered(DubanError):
    """A stranger used a command that needs a role."""

    key = "access.not_registered"


class NotAllowed(DubanError):
    """The caller's roles do not allow this."""

    key = "access.not_allowed"

    def __init__(self, needed: str) -> None:
        super().__init__(needed)
        self.key = f"access.only_{needed}"


class OtherUnit(DubanError):
    """A contact asked about a unit that is not theirs."""

    key = "access.other_unit"


@dataclass
class Caller:
    """A registered person (or group) with their roles in one campaign."""

    person: m.Person
    campaign: m.Campaign
    roles: set[str] = field(default_factory=set)
    # Units the person is contact or head of.
    unit_ids: list[int] = field(default_factory=list)

    @property
    def is_admin(self) -> bool:
        """Return whether the caller is an admin."""
        return "admin" in self.roles

    @property
    def is_office(self) -> bool:
        """Return whether the caller acts for the office (office staff and admins)."""
        return bool(self.roles & {"office", "admin"})

    @property
    def is_leader(self) -> bool:
        """Return whether the caller is on the leading group."""
        return "leader" in self.roles

    @property
    def sees_all(self) -> bool:
        """Return whether the caller may see every unit's figures."""
        return self.is_office or self.is_leader or bool(self.campaign.units_see_all)

    @property
    def is_unit_member(self) -> bool:
        """Return whether the caller is contact or head of some unit."""
        return bool(self.unit_ids)

    def require_office(self) -> None:
        """Refuse unless office or admin."""
        if not self.is_office:
            raise NotAllowed("office")

    def require_overseer(self) -> None:
        """Refuse unless office, admin or leader."""
        if not (self.is_office or self.is_leader):
            raise NotAllowed("overseers")

    def require_unit(self) -> None:
        """Refuse unless contact or head of a unit."""
        if not self.unit_ids:
            raise NotAllowed("units")

    def may_see_unit(self, unit_id: int) -> bool:
        """Return whether the caller may see one unit's data."""
        return self.sees_all or unit_id in self.unit_ids


async def load_caller(
    session: AsyncSession, telegram_id: int, campaign_id: int | None = None
) -> Caller | None:
    """Return the caller with their live roles in their current campaign, or None."""
    person = await session.scalar(select(m.Person).where(m.Person.telegram_id == telegram_id))
    if person is None:
        return None
    rows = list(
        await session.execute(
            select(m.Role, m.Campaign)
            .join(m.Campaign, m.Campaign.id == m.Role.campaign_id)
            .where(
                m.Role.person_id == person.id,
                m.Role.revoked_at.is_(None),
                m.Campaign.archived_at.is_(None),
            )
            .order_by(m.Role.created_at)
        )
    )
    if not rows:
        return None
    campaigns = {campaign.id: campaign for _, campaign in rows}
    wanted = campaign_id or person.current_campaign_id
    if wanted not in campaigns:
        # Default: the most recently joined active campaign.
        wanted = rows[-1][1].id
    campaign = campaigns[wanted]
    caller = Caller(person, campaign)
    for role, role_campaign in rows:
        if role_campaign.id != campaign.id:
            continue
        caller.roles.add(role.role)
        if (
            role.role in UNIT_ROLES
            and role.unit_id is not None
            and role.unit_id not in caller.unit_ids
        ):
            caller.unit_ids.append(role.unit_id)
    return caller


async def campaigns_of(session: AsyncSession, person: m.Person) -> list[m.Campaign]:
    """Return the active campaigns in which the person holds a role."""
    return list(
        await session.scalars(
            select(m.Campaign)
            .join(m.Role, m.Role.campaign_id == m.Campaign.id)
            .where(
                m.Role.person_id == person.id,
                m.Role.revoked_at.is_(None),
                m.Campaign.archived_at.is_(None),
            )
            .distinct()
            .order_by(m.Campaign.id)
        )
    )
