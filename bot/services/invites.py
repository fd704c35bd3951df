"""Invite codes: make, list, revoke and redeem them."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import (
    BadRole,
    InviteExpired,
    InviteRevoked,
    InviteUnknown,
    InviteUsedUp,
    TooManyAttempts,
)
from bot.i18n import format_moment, t
from bot.services import attempts
from bot.services.audit import record
from bot.services.notify import push
from bot.services.outbox import message
from bot.services.settings import put_setting

ROLES = ("contact", "head", "office", "leader", "admin")
UNIT_ROLES = ("contact", "head")
GROUP_ROLES = ("office", "leader")
DEFAULT_EXPIRY = timedelta(days=7)
# Wrong codes one Telegram account may try per hour before it is stopped.
FAILED_PER_HOUR = 5
# All accounts together: this many within the hour alerts the admins (refuses nobody).
FAILED_PER_HOUR_OVERALL = 50
FAILED_KIND = "invite.failed"


def hash_code(code: str) -> str:
    """Return the stored form of a code."""
    return hashlib.sha256(code.strip().encode()).hexdigest()


def hint_of(code_hash: str) -> str:
    """Return the short, non-secret name `invite --list` shows: the start of the hash."""
    return code_hash[:6]


def new_code() -> str:
    """Return a random code of 128 bits, safe in a deep link and never beginning with "-".

    A code that begins with "-" reads as an option on a command line (`--revoke -jvU…`);
    drawing again keeps the codes uniform over the rest (1 draw in 64 is redrawn).
    """
    while True:
        code = secrets.token_urlsafe(16)
        if not code.startswith("-"):
            return code


@dataclass
class NewInvite:
    """A freshly made invite; the code is shown once and never stored."""

    code: str
    invite: m.Invite
    unit_name: str | None


async def create_invite(
    session: AsyncSession,
    campaign: m.Campaign,
    role: str,
    unit: m.Unit | None,
    *,
    now: datetime,
    actor: str,
    uses: int = 1,
    expires_in: timedelta | None = DEFAULT_EXPIRY,
) -> NewInvite:
    """Make an invite for a role (and unit)."""
    if role not in ROLES:
        raise BadRole(f"unknown role {role!r}", reason="unknown", role=role)
    if role in UNIT_ROLES and unit is None:
        raise BadRole(f"role {role} needs a unit", reason="needs_unit", role=role)
    if role not in UNIT_ROLES and unit is not None:
        raise BadRole(f"role {role} takes no unit", reason="takes_no_unit", role=role)
    if uses < 1:
        raise BadRole("uses must be at least 1", reason="uses", role=role)
    code = new_code()
    invite = m.Invite(
        campaign_id=campaign.id,
        code_hash=hash_code(code),
        # Not the code's first characters: nothing of a code is stored (issue 14).
        hint=hint_of(hash_code(code)),
        role=role,
        unit_id=unit.id if unit else None,
        max_uses=uses,
        used=0,
        expires_at=now + expires_in if expires_in else None,
        created_by=actor,
        created_at=now,
    )
    session.add(invite)
    await session.flush()
    record(
        session,
        at=now,
        actor=actor,
        action="invite.create",
        campaign_id=campaign.id,
        object_type="invite",
        object_id=invite.id,
        details={"role": role, "unit": unit.key if unit else None, "uses": uses},
    )
    return NewInvite(code, invite, unit.name if unit else None)


async def list_invites(
    session: AsyncSession, campaign: m.Campaign
) -> list[tuple[m.Invite, str | None]]:
    """Return every invite of a campaign with its unit's name."""
    rows = await session.execute(
        select(m.Invite, m.Unit.name)
        .outerjoin(m.Unit, m.Unit.id == m.Invite.unit_id)
        .where(m.Invite.campaign_id == campaign.id)
        .order_by(m.Invite.created_at)
    )
    return [(invite, name) for invite, name in rows]


async def revoke_invite(
    session: AsyncSession, code_or_hint: str, *, now: datetime, actor: str
) -> m.Invite:
    """Withdraw an invite given its code (or the hint `invite --list` shows)."""
    invite = await session.scalar(
        select(m.Invite).where(m.Invite.code_hash == hash_code(code_or_hint))
    )
    if invite is None and len(code_or_hint) >= 4:
        matches = list(
            await session.scalars(
                select(m.Invite).where(m.Invite.hint == code_or_hint[:6]).limit(2)
            )
        )
        invite = matches[0] if len(matches) == 1 else None
    if invite is None:
        raise InviteUnknown(code_or_hint)
    withdraw(session, invite, now=now, actor=actor)
    return invite


def withdraw(
    session: AsyncSession,
    invite: m.Invite,
    *,
    now: datetime,
    actor: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Revoke an invite (once) and audit it: the CLI's revoke, and a renewal by a bulk run."""
    if invite.revoked_at is not None:
        return
    invite.revoked_at = now
    record(
        session,
        at=now,
        actor=actor,
        action="invite.revoke",
        campaign_id=invite.campaign_id,
        object_type="invite",
        object_id=invite.id,
        details=details,
    )


def invite_state(invite: m.Invite, now: datetime) -> str:
    """Return active, used, expired or revoked."""
    if invite.revoked_at is not None:
        return "revoked"
    if invite.used >= invite.max_uses:
        return "used"
    if invite.expires_at is not None and invite.expires_at <= now:
        return "expired"
    return "active"


@dataclass
class Redemption:
    """The role a redeemed invite granted."""

    campaign: m.Campaign
    role: m.Role
    unit_name: str | None
    already: bool
    # The first admin of the database: worth a line in the operator's log.
    first_admin: bool = False


async def too_many_failures(session: AsyncSession, account: int, *, now: datetime) -> bool:
    """Return True if this Telegram account used up its wrong codes for the hour (O(1))."""
    key = attempts.account_key(FAILED_KIND, account)
    return await attempts.count(session, key, now=now) >= FAILED_PER_HOUR


async def redeem(
    session: AsyncSession,
    person: m.Person,
    code: str,
    *,
    now: datetime,
    account: int | None = None,
    default_language: str = "zh",
    timezone: str = "Asia/Shanghai",
) -> Redemption:
    """Bind a person (or group) to the invite's role; refuse bad codes distinctly.

    `account` is the Telegram user who sent the code (in a group, the member; by default the
    person). Wrong codes are limited per account (FAILED_PER_HOUR, wherever they are sent:
    a group is not another account); the count of all accounts together raises one alert
    to the admins per hour (FAILED_PER_HOUR_OVERALL) but refuses nobody: a valid code always
    works for an account that has not used up its own tries (issue 14 case 4). Raises the
    InviteUnknown/InviteUsedUp/InviteExpired/InviteRevoked/TooManyAttempts/BadRole errors.
    """
    account = person.telegram_id if account is None else account
    actor = f"person:{person.id}"
    if await too_many_failures(session, account, now=now):
        raise TooManyAttempts()
    invite = await session.scalar(select(m.Invite).where(m.Invite.code_hash == hash_code(code)))
    state = "unknown" if invite is None else invite_state(invite, now)
    if invite is None or state != "active":
        record(
            session,
            at=now,
            actor=actor,
            action="invite.failed",
            object_type="invite",
            object_id=invite.id if invite else None,
            details={"reason": state, "account": account},
        )
        await attempts.bump(session, attempts.account_key(FAILED_KIND, account), now=now)
        overall, since = await attempts.bump(session, attempts.overall_key(FAILED_KIND), now=now)
        if overall == FAILED_PER_HOUR_OVERALL:
            await _alert_admins(session, overall, since, now, default_language, timezone)
        error = {
            "unknown": InviteUnknown,
            "used": InviteUsedUp,
            "expired": InviteExpired,
            "revoked": InviteRevoked,
        }[state]
        raise error()
    if person.is_group and invite.role not in GROUP_ROLES:
        raise BadRole(
            f"a group cannot hold the role {invite.role}", reason="group", role=invite.role
        )
    campaign = await session.get_one(m.Campaign, invite.campaign_id)
    unit_name = None
    if invite.unit_id is not None:
        unit_name = (await session.get_one(m.Unit, invite.unit_id)).name
    existing = await session.scalar(
        select(m.Role).where(
            m.Role.person_id == person.id,
            m.Role.campaign_id == invite.campaign_id,
            m.Role.role == invite.role,
            m.Role.unit_id.is_(None)
            if invite.unit_id is None
            else m.Role.unit_id == invite.unit_id,
            m.Role.revoked_at.is_(None),
        )
    )
    if existing is not None:
        # Holding the role already does not use the invite up.
        return Redemption(campaign, existing, unit_name, already=True)
    first_admin = invite.role == "admin" and not await has_admin(session)
    invite.used += 1
    role = m.Role(
        person_id=person.id,
        campaign_id=invite.campaign_id,
        role=invite.role,
        unit_id=invite.unit_id,
        invite_id=invite.id,
        created_at=now,
    )
    session.add(role)
    person.current_campaign_id = invite.campaign_id
    await session.flush()
    record(
        session,
        at=now,
        actor=actor,
        action="invite.redeem",
        campaign_id=invite.campaign_id,
        object_type="role",
        object_id=role.id,
        details={"role": invite.role, "unit_id": invite.unit_id, "invite_id": invite.id},
    )
    return Redemption(campaign, role, unit_name, already=False, first_admin=first_admin)


async def _alert_admins(
    session: AsyncSession,
    count: int,
    since: datetime,
    now: datetime,
    default_language: str,
    timezone: str,
) -> None:
    """Tell every admin, once per window, that many wrong codes are being tried."""
    admins = list(
        await session.scalars(
            select(m.Person)
            .join(m.Role, m.Role.person_id == m.Person.id)
            .where(m.Role.role == "admin", m.Role.revoked_at.is_(None), m.Person.reachable)
            .distinct()
        )
    )

    def build(lang: str) -> dict[str, Any]:
        text = t(
            "invite_flood.alert",
            lang,
            count=count,
            since=format_moment(since, timezone, lang),
            per_account=FAILED_PER_HOUR,
        )
        return message(text)

    await push(
        session,
        admins,
        key=f"invite-flood:{since.isoformat()}",
        kind="notice",
        build=build,
        now=now,
        default_language=default_language,
    )


async def has_admin(session: AsyncSession) -> bool:
    """Return whether anyone holds the admin role."""
    found = await session.scalar(
        select(m.Role.id).where(m.Role.role == "admin", m.Role.revoked_at.is_(None)).limit(1)
    )
    return found is not None


async def open_admin_invites(session: AsyncSession, now: datetime) -> list[m.Invite]:
    """Return the admin invites that can still be redeemed, newest first."""
    rows = await session.scalars(
        select(m.Invite)
        .where(m.Invite.role == "admin", m.Invite.revoked_at.is_(None))
        .order_by(m.Invite.created_at.desc(), m.Invite.id.desc())
    )
    return [invite for invite in rows if invite_state(invite, now) == "active"]


BOT_USERNAME_SETTING = "bot_username"


def invite_link(username: str, code: str) -> str:
    """Return the deep link that opens the bot with `/start CODE`."""
    return f"https://t.me/{username}?start={code}"


async def remember_username(session: AsyncSession, username: str, now: datetime) -> None:
    """Cache the bot's username (from getMe), for invite links printed without a token.

    An upsert: every `duban run` starting at the same moment writes it (issue 14 case 7).
    """
    await put_setting(session, BOT_USERNAME_SETTING, username, now=now)


async def cached_username(session: AsyncSession) -> str | None:
    """Return the bot's username as `duban run` or `invite` last learnt it, if ever."""
    return await session.scalar(
        select(m.Setting.value).where(m.Setting.key == BOT_USERNAME_SETTING)
    )
