"""Work not in the plan, part two: notices to units' contacts with a 收到 (received) button.

Each unit's first "received" (who, when) is kept; "remind again" goes to the units not yet
received, at most once every REMIND_GAP per notice; a notice with a deadline makes the units
that have not received it by then overdue (their contacts are nudged by the planner).
Everything sent to others goes through the outbox (SPEC §4.6, §5.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import DubanError, StaleButton
from bot.i18n import format_moment, t
from bot.messages.pushes import received_buttons
from bot.services.access import Caller
from bot.services.audit import record
from bot.services.notify import push
from bot.services.outbox import file_message, message
from bot.services.people import holders

REMIND_GAP = timedelta(minutes=5)
TEXT_LIMIT = 3500  # characters of a notice's text (a message holds 4096 with the header)
CAPTION_TEXT_LIMIT = 800  # with a file, the text is the caption (1024)


class RemindTooSoon(DubanError):
    """The notice was reminded less than REMIND_GAP ago."""

    key = "work.notice_remind_too_soon"


class AllReceived(DubanError):
    """Every unit has received the notice: nobody to remind."""

    key = "work.notice_all_received"


class EmptyNotice(DubanError):
    """A notice needs a text or a file."""

    key = "work.notice_empty"


@dataclass
class NoticeFile:
    """A file attached to a notice (a Telegram file_id)."""

    kind: str  # document | photo
    file_id: str
    file_name: str | None = None


def title_of(notice: m.Notice, limit: int = 30) -> str:
    """Return a short name for a notice: its first line, cut, else its file's name."""
    first = (notice.text or "").strip().split("\n", 1)[0]
    if not first:
        first = notice.file_name or f"#{notice.id}"
    return first if len(first) <= limit else first[: limit - 1] + "…"


def notice_payload(
    notice: m.Notice, unit: m.Unit, lang: str, tz: str, *, heading: str = "work.notice_message"
) -> dict[str, Any]:
    """Return the Bot API payload of a notice to one unit, with its 收到 button."""
    deadline = (
        t("work.notice_deadline", lang, due=format_moment(notice.deadline_at, tz, lang))
        if notice.deadline_at is not None
        else ""
    )
    limit = CAPTION_TEXT_LIMIT if notice.file_id else TEXT_LIMIT
    body = (notice.text or "")[:limit]
    text = t(
        heading,
        lang,
        unit=unit.name,
        body=body,
        deadline=deadline,
    )
    buttons = received_buttons(notice.id, unit.id, lang)
    if notice.file_id and notice.file_kind in ("document", "photo"):
        return file_message(notice.file_kind, notice.file_id, text, buttons)
    return message(text, buttons)


async def _push_to_units(
    session: AsyncSession,
    notice: m.Notice,
    campaign: m.Campaign,
    units: Sequence[m.Unit],
    *,
    key: str,
    again: bool,
    now: datetime,
    default_language: str,
) -> int:
    sent = 0
    for unit in units:
        contacts = await holders(session, campaign.id, ("contact",), unit_id=unit.id)
        sent += await push(
            session,
            contacts,
            key=f"{key}:{unit.id}",
            kind="notice",
            build=lambda lang, unit=unit: notice_payload(  # type: ignore[misc]
                notice,
                unit,
                lang,
                campaign.timezone,
                heading="work.notice_again" if again else "work.notice_message",
            ),
            now=now,
            default_language=default_language,
            campaign_id=campaign.id,
        )
    return sent


async def create_notice(
    session: AsyncSession,
    caller: Caller,
    *,
    text: str,
    file: NoticeFile | None,
    units: Sequence[m.Unit],
    deadline_at: datetime | None,
    now: datetime,
    default_language: str,
) -> tuple[m.Notice, int]:
    """Store a notice for `units`, write it to their contacts' outbox; return it and messages.

    Raises NotAllowed (not office) and EmptyNotice.
    """
    caller.require_office()
    text = text.strip()[:TEXT_LIMIT]
    if not text and file is None:
        raise EmptyNotice()
    notice = m.Notice(
        campaign_id=caller.campaign.id,
        text=text,
        file_id=file.file_id if file else None,
        file_name=file.file_name if file else None,
        file_kind=file.kind if file else None,
        deadline_at=deadline_at,
        created_by=caller.person.id,
        created_at=now,
        next_check_at=deadline_at,
    )
    session.add(notice)
    await session.flush()
    session.add_all(m.NoticeReceipt(notice_id=notice.id, unit_id=unit.id) for unit in units)
    messages = await _push_to_units(
        session,
        notice,
        caller.campaign,
        units,
        key=f"notice:{notice.id}",
        again=False,
        now=now,
        default_language=default_language,
    )
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="notice.create",
        campaign_id=caller.campaign.id,
        object_type="notice",
        object_id=notice.id,
        details={
            "units": len(units),
            "messages": messages,
            "file": file.file_name if file else None,
            "deadline_at": deadline_at.isoformat() if deadline_at else None,
        },
    )
    return notice, messages


@dataclass
class Receipt:
    """The outcome of a 收到 press: whether it was the unit's first, and who/when that was."""

    first: bool
    notice: m.Notice
    unit: m.Unit
    who: str
    at: datetime


async def receive(
    session: AsyncSession, caller: Caller, notice_id: int, unit_id: int, *, now: datetime
) -> Receipt:
    """Record a unit's receipt of a notice (only its first is kept).

    Only a contact or head of that unit may record it; anything else (a forged button for
    another unit, a notice of another campaign) raises StaleButton and records nothing.
    """
    if unit_id not in caller.unit_ids:
        raise StaleButton()
    row = (
        await session.execute(
            select(m.NoticeReceipt, m.Notice, m.Unit)
            .join(m.Notice, m.Notice.id == m.NoticeReceipt.notice_id)
            .join(m.Unit, m.Unit.id == m.NoticeReceipt.unit_id)
            .where(m.NoticeReceipt.notice_id == notice_id, m.NoticeReceipt.unit_id == unit_id)
        )
    ).first()
    if row is None or row[1].campaign_id != caller.campaign.id:
        raise StaleButton()
    receipt, notice, unit = row
    if receipt.received_at is not None:
        who = await session.get(m.Person, receipt.received_by) if receipt.received_by else None
        return Receipt(False, notice, unit, who.name if who else "", receipt.received_at)
    receipt.received_at = now
    receipt.received_by = caller.person.id
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="notice.received",
        campaign_id=caller.campaign.id,
        object_type="notice",
        object_id=notice.id,
        details={"unit_id": unit.id},
    )
    return Receipt(True, notice, unit, caller.person.name, now)


@dataclass
class NoticeSummary:
    """A notice with its counts of units received and in all."""

    notice: m.Notice
    received: int
    total: int


async def list_notices(
    session: AsyncSession, campaign_id: int, *, open_only: bool = False, limit: int = 20
) -> list[NoticeSummary]:
    """Return a campaign's latest notices with received / total counts, newest first."""
    r = m.NoticeReceipt
    received = func.sum(case((r.received_at.is_not(None), 1), else_=0))
    query = (
        select(m.Notice, received, func.count(r.id))
        .join(r, r.notice_id == m.Notice.id)
        .where(m.Notice.campaign_id == campaign_id)
        .group_by(m.Notice.id)
        .order_by(m.Notice.created_at.desc(), m.Notice.id.desc())
        .limit(limit)
    )
    if open_only:
        query = query.having(received < func.count(r.id))
    return [
        NoticeSummary(notice, int(got or 0), int(total))
        for notice, got, total in await session.execute(query)
    ]


@dataclass
class NoticeState:
    """Who has received a notice (unit, person, when) and which units have not."""

    notice: m.Notice
    received: list[tuple[m.Unit, str, datetime]]
    missing: list[m.Unit]


async def notice_state(session: AsyncSession, caller: Caller, notice_id: int) -> NoticeState:
    """Return a notice's receipts for the office or leaders; raise StaleButton if not theirs."""
    caller.require_overseer()
    notice = await session.get(m.Notice, notice_id)
    if notice is None or notice.campaign_id != caller.campaign.id:
        raise StaleButton()
    rows = await session.execute(
        select(m.NoticeReceipt, m.Unit, m.Person.name)
        .join(m.Unit, m.Unit.id == m.NoticeReceipt.unit_id)
        .outerjoin(m.Person, m.Person.id == m.NoticeReceipt.received_by)
        .where(m.NoticeReceipt.notice_id == notice.id)
        .order_by(m.Unit.position)
    )
    received: list[tuple[m.Unit, str, datetime]] = []
    missing: list[m.Unit] = []
    for receipt, unit, name in rows:
        if receipt.received_at is None:
            missing.append(unit)
        else:
            received.append((unit, name or "", receipt.received_at))
    return NoticeState(notice, received, missing)


async def remind_again(
    session: AsyncSession,
    caller: Caller,
    notice_id: int,
    *,
    now: datetime,
    default_language: str,
) -> tuple[int, int]:
    """Send the notice again to the units not yet received; return (units, messages).

    At most once every REMIND_GAP per notice (RemindTooSoon, with the minutes to wait);
    AllReceived when nobody is left. Only the office may remind.
    """
    caller.require_office()
    state = await notice_state(session, caller, notice_id)
    notice = state.notice
    if notice.reminded_at is not None and now - notice.reminded_at < REMIND_GAP:
        wait = REMIND_GAP - (now - notice.reminded_at)
        raise RemindTooSoon(minutes=max(1, -(-int(wait.total_seconds()) // 60)))
    if not state.missing:
        raise AllReceived()
    notice.reminded_at = now
    messages = await _push_to_units(
        session,
        notice,
        caller.campaign,
        state.missing,
        key=f"notice-again:{notice.id}:{int(now.timestamp())}",
        again=True,
        now=now,
        default_language=default_language,
    )
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="notice.remind",
        campaign_id=caller.campaign.id,
        object_type="notice",
        object_id=notice.id,
        details={"units": len(state.missing), "messages": messages},
    )
    return len(state.missing), messages


@dataclass
class UnitNotice:
    """A notice one unit was sent, and its receipt (who and when; None: not yet)."""

    notice: m.Notice
    received_at: datetime | None
    who: str


async def notices_of_unit(
    session: AsyncSession, campaign_id: int, unit_id: int, limit: int = 10
) -> list[UnitNotice]:
    """Return the latest notices a unit was sent, newest first, with the unit's receipt.

    The caller has checked that the person may see the unit (its contacts got them anyway).
    """
    r = m.NoticeReceipt
    rows = await session.execute(
        select(m.Notice, r.received_at, m.Person.name)
        .join(r, r.notice_id == m.Notice.id)
        .outerjoin(m.Person, m.Person.id == r.received_by)
        .where(m.Notice.campaign_id == campaign_id, r.unit_id == unit_id)
        .order_by(m.Notice.created_at.desc(), m.Notice.id.desc())
        .limit(limit)
    )
    return [UnitNotice(notice, at, name or "") for notice, at, name in rows]
