"""Calendar feed links: one random token per person and unit, revocable, re-checked on use."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.services.access import Caller, load_caller
from bot.services.audit import record

# 192 random bits, URL-safe: a link nobody guesses.
TOKEN_BYTES = 24


def feed_path(token: str) -> str:
    """Return the path duban's HTTP server serves a feed at."""
    return f"/calendar/{token}.ics"


def feed_url(public_url: str, token: str) -> str:
    """Return the full subscription link under the configured public URL."""
    return public_url.rstrip("/") + feed_path(token)


def hash_token(token: str) -> str:
    """Return the stored form of a feed token (SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _token(secret: str, salt: str) -> str:
    digest = hmac.new(secret.encode(), f"calendar-feed:{salt}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()[:TOKEN_BYTES]).decode().rstrip("=")


async def feed_token(
    session: AsyncSession, caller: Caller, unit: m.Unit, now: datetime, *, secret: str
) -> str:
    """Return the caller's live link token for a unit, making one the first time.

    `secret` is the bot token: the link is derived from it and the row's salt, never stored.
    """
    salt = await session.scalar(
        select(m.CalendarFeed.salt)
        .where(
            m.CalendarFeed.person_id == caller.person.id,
            m.CalendarFeed.unit_id == unit.id,
            m.CalendarFeed.revoked_at.is_(None),
            m.CalendarFeed.salt.is_not(None),
        )
        .order_by(m.CalendarFeed.id.desc())
        .limit(1)
    )
    if salt is not None:
        return _token(secret, salt)
    return _make(session, caller, unit, now, secret)


def _make(session: AsyncSession, caller: Caller, unit: m.Unit, now: datetime, secret: str) -> str:
    salt = secrets.token_hex(16)
    token = _token(secret, salt)
    session.add(
        m.CalendarFeed(
            token=hash_token(token),
            salt=salt,
            campaign_id=caller.campaign.id,
            unit_id=unit.id,
            person_id=caller.person.id,
            created_at=now,
        )
    )
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="calendar_feed.created",
        campaign_id=caller.campaign.id,
        object_type="unit",
        object_id=unit.id,
    )
    return token


async def renew_feed(
    session: AsyncSession, caller: Caller, unit: m.Unit, now: datetime, *, secret: str
) -> str:
    """Revoke the caller's link for a unit and return a new one."""
    await session.execute(
        update(m.CalendarFeed)
        .where(
            m.CalendarFeed.person_id == caller.person.id,
            m.CalendarFeed.unit_id == unit.id,
            m.CalendarFeed.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    return _make(session, caller, unit, now, secret)


async def revoke_unit_feeds(
    session: AsyncSession, campaign: m.Campaign, unit: m.Unit, now: datetime, actor: str
) -> int:
    """Revoke every live link to a unit's calendar; return how many."""
    result = await session.execute(
        update(m.CalendarFeed)
        .where(m.CalendarFeed.unit_id == unit.id, m.CalendarFeed.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    record(
        session,
        at=now,
        actor=actor,
        action="calendar_feed.revoked",
        campaign_id=campaign.id,
        object_type="unit",
        object_id=unit.id,
        details={"count": count},
    )
    return count


@dataclass
class Feed:
    """What a valid link shows: whose view, which unit."""

    campaign: m.Campaign
    unit: m.Unit
    person: m.Person


async def resolve_feed(session: AsyncSession, token: str) -> Feed | None:
    """Return the feed a token opens, or None when it is unknown, revoked or no longer allowed.

    The holder's roles are checked on every fetch: a contact whose role was revoked, or a
    unit or campaign archived since, gets nothing.
    """
    feed = await session.scalar(
        select(m.CalendarFeed).where(
            m.CalendarFeed.token == hash_token(token), m.CalendarFeed.revoked_at.is_(None)
        )
    )
    if feed is None:
        return None
    person = await session.get(m.Person, feed.person_id)
    unit = await session.get(m.Unit, feed.unit_id)
    if person is None or unit is None or unit.archived_at is not None:
        return None
    caller = await load_caller(session, person.telegram_id, campaign_id=feed.campaign_id)
    if caller is None or caller.campaign.id != feed.campaign_id:
        return None
    if not caller.may_see_unit(unit.id):
        return None
    return Feed(caller.campaign, unit, person)
