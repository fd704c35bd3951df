"""Find the campaign a command is about."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Campaign
from bot.errors import CampaignAmbiguous, NoCampaign, UnknownCampaign


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
        raise NoCampaign()
    if len(active) > 1:
        keys = ", ".join(
            await session.scalars(select(Campaign.key).where(Campaign.archived_at.is_(None)))
        )
        raise CampaignAmbiguous(keys, keys=keys)
    return active[0]
