"""A person's reachability: blocked, unblocked, removed from a group, a group moved.

One use case for every way duban learns that a chat can or cannot be written to:

- Telegram's `my_chat_member` update (a contact blocks or unblocks the bot, the bot is
  removed from or re-added to a group), handled by `handlers.membership`;
- a send refused for good (403 blocked / deactivated / kicked, 400 chat not found), seen by
  `scheduler.sender`;
- a person who writes to the bot again (`handlers.common`), which proves the chat is open;
- a group that became a supergroup (`migrate_to_chat_id` in an update, or a send answered
  with `migrate_to_chat_id`).

Whichever of these arrives first changes the person; the others find nothing to change. The
change is a guarded UPDATE (`WHERE reachable = <old>`), so two processes seeing it at once
still change it once, and only the one that changed it audits it and tells the office: the
office hears exactly once per block and once per unblock (SPEC §5.3, issue 11 case 9).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.i18n import Markup, t
from bot.services.audit import record
from bot.services.notify import push
from bot.services.outbox import message
from bot.services.people import holders

log = logging.getLogger(__name__)

# Why a chat cannot be written to; each has a `delivery.reason.<reason>` message.
Reason = Literal["blocked", "deactivated", "not_started", "removed", "not_found"]
REASONS: tuple[Reason, ...] = ("blocked", "deactivated", "not_started", "removed", "not_found")
# How a chat became reachable again; each has a `reachability.via.<via>` message.
Via = Literal["unblocked", "wrote", "added"]

# Outbox statuses (the sender owns the full list; these two are all this module writes).
_PENDING = "pending"
_CANCELLED = "cancelled"


@dataclass(frozen=True)
class Change:
    """What one call changed: whether it turned the person, and the office notices queued."""

    changed: bool
    notices: int = 0


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def _display(person: m.Person) -> str:
    return person.name or (f"@{person.username}" if person.username else str(person.telegram_id))


async def became_unreachable(
    session: AsyncSession,
    person: m.Person,
    reason: Reason,
    *,
    now: datetime,
    default_language: str,
    detail: str = "",
    campaign_id: int | None = None,
) -> Change:
    """Mark a person unreachable, stop what was queued for them, and tell the office once.

    Inputs: the person, why (`Reason`), the moment (aware UTC), the language for groups and
    people without one, a free-text `detail` for the audit log (Telegram's error text), and a
    campaign to tell besides the person's own (the campaign of the refused message).
    Output: `Change(changed, notices)`; `changed` is False when the person was already
    unreachable (another path got there first) and then nothing at all is written.
    """
    turned = await session.execute(
        update(m.Person)
        .where(m.Person.id == person.id, m.Person.reachable.is_(True))
        .values(reachable=False, unreachable_since=now)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(turned) == 0:
        return Change(False)
    person.reachable = False
    person.unreachable_since = now
    # Nothing else is sent to that chat; the rows stay as a record of what was not delivered.
    await session.execute(
        update(m.Outbox)
        .where(m.Outbox.chat_id == person.telegram_id, m.Outbox.status == _PENDING)
        .values(status=_CANCELLED, last_error="unreachable")
        .execution_options(synchronize_session=False)
    )
    log.warning("person %s is unreachable (%s) %s", person.id, reason, detail[:200])
    record(
        session,
        at=now,
        actor="system",
        action="person.unreachable",
        object_type="person",
        object_id=person.id,
        details={"reason": reason, "error": detail[:500]},
    )
    notices = await _tell_office(
        session,
        person,
        now=now,
        default_language=default_language,
        extra_campaign=campaign_id,
        key_prefix="unreachable",
        render=lambda lang, roles: t(
            "delivery.unreachable" if roles else "delivery.unreachable_no_role",
            lang,
            name=_display(person),
            roles=roles,
            reason=t(f"delivery.reason.{reason}", lang),
        ),
    )
    return Change(True, notices)


async def became_reachable(
    session: AsyncSession,
    person: m.Person,
    via: Via,
    *,
    now: datetime,
    default_language: str,
) -> Change:
    """Mark an unreachable person reachable again; audit it and tell the office once.

    Inputs: the person, how we know (`Via`), the moment, the default language.
    Output: `Change(changed, notices)`; nothing is written when the person was reachable.
    """
    if person.reachable:
        return Change(False)
    since = person.unreachable_since
    turned = await session.execute(
        update(m.Person)
        .where(m.Person.id == person.id, m.Person.reachable.is_(False))
        .values(reachable=True, unreachable_since=None)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(turned) == 0:
        return Change(False)
    person.reachable = True
    person.unreachable_since = None
    record(
        session,
        at=now,
        actor=f"person:{person.id}",
        action="person.reachable",
        object_type="person",
        object_id=person.id,
        details={"via": via, "unreachable_since": since.isoformat() if since else None},
    )
    notices = await _tell_office(
        session,
        person,
        now=now,
        default_language=default_language,
        extra_campaign=None,
        key_prefix="reachable",
        render=lambda lang, roles: t(
            "reachability.reachable" if roles else "reachability.reachable_no_role",
            lang,
            name=_display(person),
            roles=roles,
            via=t(f"reachability.via.{via}", lang),
        ),
    )
    return Change(True, notices)


async def chat_migrated(
    session: AsyncSession, old: int, new: int, *, now: datetime
) -> m.Person | None:
    """Follow a group that became a supergroup: its registration and queued rows move.

    Inputs: the old and new chat ids. Output: the person (group) now at `new`, or None when
    duban knew neither. A registration already at `new` is kept (the older one stays put).
    Every pending outbox row for `old` is redirected to `new` in any case.
    """
    person = await session.scalar(select(m.Person).where(m.Person.telegram_id == old))
    taken = await session.scalar(select(m.Person).where(m.Person.telegram_id == new))
    if person is not None and taken is None:
        person.telegram_id = new
        person.is_group = True
        record(
            session,
            at=now,
            actor="system",
            action="group.migrated",
            object_type="person",
            object_id=person.id,
            details={"from": old, "to": new},
        )
    elif person is not None:
        log.warning("supergroup %s already known; keeping the older registration", new)
    await session.execute(
        update(m.Outbox)
        .where(m.Outbox.chat_id == old, m.Outbox.status == _PENDING)
        .values(chat_id=new)
        .execution_options(synchronize_session=False)
    )
    return taken if taken is not None else person


async def _tell_office(
    session: AsyncSession,
    person: m.Person,
    *,
    now: datetime,
    default_language: str,
    extra_campaign: int | None,
    key_prefix: str,
    render: Callable[[str, Markup], str],
) -> int:
    """Queue one notice per campaign the person serves, to its office (not to the person)."""
    roles = list(
        await session.execute(
            select(m.Role.campaign_id, m.Role.role, m.Unit.name)
            .outerjoin(m.Unit, m.Unit.id == m.Role.unit_id)
            .where(m.Role.person_id == person.id, m.Role.revoked_at.is_(None))
            .order_by(m.Role.created_at)
        )
    )
    campaigns = sorted(
        {campaign_id for campaign_id, _, _ in roles}
        | ({extra_campaign} if extra_campaign is not None else set())
    )
    stamp = int(now.timestamp())
    added = 0
    for campaign_id in campaigns:
        office = [p for p in await holders(session, campaign_id, ("office",)) if p.id != person.id]
        if not office:
            log.warning("nobody in the office of campaign %s to tell", campaign_id)
            continue
        held: list[tuple[str, str | None]] = [
            (role, unit) for cid, role, unit in roles if cid == campaign_id
        ]

        def build(lang: str, held: list[tuple[str, str | None]] = held) -> dict[str, Any]:
            titles = [
                t("start.role_of_unit", lang, role=t(f"role.{role}", lang), unit=unit)
                if unit
                else t(f"role.{role}", lang)
                for role, unit in held
            ]
            described = Markup(t("start.role_separator", lang).join(titles))
            return message(render(lang, described))

        added += await push(
            session,
            office,
            key=f"{key_prefix}:{person.id}:{stamp}:{campaign_id}",
            kind="notice",
            build=build,
            now=now,
            default_language=default_language,
            campaign_id=campaign_id,
        )
    return added
