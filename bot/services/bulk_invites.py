"""One invite per unit (`duban invite contact --all`): codes made and stored in one go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import BadRole
from bot.services.invites import UNIT_ROLES, create_invite, withdraw


@dataclass(frozen=True)
class UnitInvite:
    """A fresh code for one unit (the code is shown once: it is stored hashed)."""

    unit_key: str
    unit_name: str
    kind_name: str
    role: str
    code: str
    expires_at: datetime | None


@dataclass
class BulkResult:
    """The codes made, and the units skipped because they still hold an unused code."""

    made: list[UnitInvite]
    skipped: list[str]


async def invite_units(
    session: AsyncSession,
    campaign: m.Campaign,
    role: str,
    *,
    kind: str | None,
    renew: bool,
    now: datetime,
    actor: str,
    expires_in: timedelta | None,
) -> BulkResult:
    """Make one invite for each live unit (of `kind`, a kind key or name, when given).

    A unit that still holds an unused, unexpired, unrevoked invite for the role is skipped,
    unless `renew`: then those invites are revoked and a new one is made. Raises BadRole for
    a role without units or an unknown kind. Runs in the caller's transaction.
    """
    if role not in UNIT_ROLES:
        raise BadRole(f"--all makes one invite per unit: role {role} has no unit")
    query = (
        select(m.Unit, m.UnitKind)
        .join(m.UnitKind, m.UnitKind.id == m.Unit.kind_id)
        .where(m.Unit.campaign_id == campaign.id, m.Unit.archived_at.is_(None))
        .order_by(m.Unit.position)
    )
    if kind is not None:
        kinds = list(
            await session.scalars(
                select(m.UnitKind).where(
                    m.UnitKind.campaign_id == campaign.id,
                    m.UnitKind.archived_at.is_(None),
                    or_(m.UnitKind.key == kind, m.UnitKind.name == kind),
                )
            )
        )
        if not kinds:
            raise BadRole(f"unknown unit kind {kind!r}")
        query = query.where(m.Unit.kind_id.in_([k.id for k in kinds]))
    units = list(await session.execute(query))
    open_invites: dict[int, list[m.Invite]] = {}
    for invite in await session.scalars(
        select(m.Invite).where(
            m.Invite.campaign_id == campaign.id,
            m.Invite.role == role,
            m.Invite.revoked_at.is_(None),
            m.Invite.used < m.Invite.max_uses,
        )
    ):
        if invite.unit_id is not None and (invite.expires_at is None or invite.expires_at > now):
            open_invites.setdefault(invite.unit_id, []).append(invite)
    result = BulkResult([], [])
    for unit, unit_kind in units:
        held = open_invites.get(unit.id, [])
        if held and not renew:
            result.skipped.append(unit.name)
            continue
        for invite in held:
            withdraw(session, invite, now=now, actor=actor, details={"renewed": True})
        made = await create_invite(
            session, campaign, role, unit, now=now, actor=actor, expires_in=expires_in
        )
        result.made.append(
            UnitInvite(unit.key, unit.name, unit_kind.name, role, made.code, made.invite.expires_at)
        )
    return result
