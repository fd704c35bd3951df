"""Find the campaign a command is about."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Assignment, Campaign, Outbox, Phase, Unit
from bot.errors import AllArchived, CampaignAmbiguous, NoCampaign, UnknownCampaign
from bot.services.audit import record


async def pick_campaign(session: AsyncSession, key: str | None = None) -> Campaign:
    """Return the named campaign, or the only active one."""
    if key:
        found = await session.scalar(select(Campaign).where(Campaign.key == key))
        if found is None:
            raise UnknownCampaign(key, key=key)
        return found
    active = list(
        await session.scalars(select(Campaign).where(Campaign.archived_at.is_(None)).limit(2))
    )
    if not active:
        archived = ", ".join(await session.scalars(select(Campaign.key).order_by(Campaign.id)))
        if archived:
            raise AllArchived(archived, keys=archived)
        raise NoCampaign()
    if len(active) > 1:
        keys = ", ".join(
            await session.scalars(select(Campaign.key).where(Campaign.archived_at.is_(None)))
        )
        raise CampaignAmbiguous(keys, keys=keys)
    return active[0]


@dataclass
class CampaignRow:
    """One campaign as `duban campaign list` shows it."""

    key: str
    title: str
    timezone: str
    start: date | None
    end: date | None
    units: int
    archived_at: datetime | None


async def list_campaigns(session: AsyncSession) -> list[CampaignRow]:
    """Return every campaign, active ones first, with its dates and number of live units."""
    units = (
        select(Unit.campaign_id, func.count().label("n"))
        .where(Unit.archived_at.is_(None))
        .group_by(Unit.campaign_id)
        .subquery()
    )
    dates = (
        select(
            Phase.campaign_id,
            func.min(Phase.start_date).label("start"),
            func.max(Phase.end_date).label("end"),
        )
        .where(Phase.archived_at.is_(None))
        .group_by(Phase.campaign_id)
        .subquery()
    )
    rows = await session.execute(
        select(Campaign, units.c.n, dates.c.start, dates.c.end)
        .outerjoin(units, units.c.campaign_id == Campaign.id)
        .outerjoin(dates, dates.c.campaign_id == Campaign.id)
        .order_by(Campaign.archived_at.is_not(None), Campaign.id)
    )
    return [
        CampaignRow(c.key, c.title, c.timezone, start, end, n or 0, c.archived_at)
        for c, n, start, end in rows
    ]


async def archive_campaign(
    session: AsyncSession, key: str, *, now: datetime, actor: str
) -> tuple[Campaign, int]:
    """Archive a campaign: every reminder and queued message of it stops, its data stays.

    Returns the campaign and how many queued messages were withdrawn. Archiving an archived
    campaign changes nothing. Raises `UnknownCampaign`. Loading its plan again restores it.
    """
    campaign = await session.scalar(select(Campaign).where(Campaign.key == key))
    if campaign is None:
        raise UnknownCampaign(key, key=key)
    if campaign.archived_at is not None:
        return campaign, 0
    campaign.archived_at = now
    # The planner reads live campaigns only; what it already queued is withdrawn here.
    withdrawn = await session.execute(
        update(Outbox)
        .where(Outbox.campaign_id == campaign.id, Outbox.status == "pending")
        .values(status="failed", last_error="campaign archived")
    )
    await session.execute(
        update(Assignment).where(Assignment.campaign_id == campaign.id).values(next_check_at=None)
    )
    count = int(getattr(withdrawn, "rowcount", 0) or 0)
    record(
        session,
        at=now,
        actor=actor,
        action="campaign.archive",
        campaign_id=campaign.id,
        object_type="campaign",
        object_id=campaign.id,
        details={"withdrawn_messages": count},
    )
    return campaign, count


def office_of(campaign: Campaign) -> str:
    """Return the campaign's `[campaign] office`, or "" when the plan names none."""
    value = (campaign.settings or {}).get("office")
    return value if isinstance(value, str) else ""


async def office_for(session: AsyncSession, campaign: Campaign | None) -> str:
    """Return whom people of `campaign` turn to; for a stranger (None), the only active one's.

    "" when no plan names an office (or several campaigns are active): the catalogs'
    neutral "the office" is meant then.
    """
    if campaign is None:
        active = list(
            await session.scalars(select(Campaign).where(Campaign.archived_at.is_(None)).limit(2))
        )
        if len(active) != 1:
            return ""
        campaign = active[0]
    return office_of(campaign)
