"""Extensions: a unit asks for a later due date; the office approves or rejects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.assignments import OPEN, move_deadline
from bot.errors import DubanError
from bot.i18n import format_moment, t
from bot.messages.pushes import extension_buttons
from bot.services.access import Caller
from bot.services.audit import record
from bot.services.notify import push
from bot.services.outbox import message
from bot.services.people import holders
from bot.services.submissions import owed_item

# Open assignments may be extended; accepted or submitted ones need nothing.
EXTENDABLE = OPEN


class NotLater(DubanError):
    """The date asked for is not after the current due date."""

    key = "extend.not_later"


class StaleExtension(DubanError):
    """The request was decided already or does not belong to this campaign."""

    key = "extend.stale"


class AlreadyRequested(DubanError):
    """An undecided request for this assignment exists."""

    key = "extend.already_requested"


@dataclass
class Decided:
    """An extension with its assignment, unit and task."""

    extension: m.Extension
    assignment: m.Assignment
    unit: m.Unit
    task: m.Task


async def request(
    session: AsyncSession,
    caller: Caller,
    assignment_id: int,
    new_due: datetime,
    reason: str,
    *,
    now: datetime,
    default_language: str,
) -> m.Extension:
    """Record a request and send it to the office with approve / reject buttons."""
    owed = await owed_item(session, caller, assignment_id)
    if owed.assignment.status not in EXTENDABLE:
        raise StaleExtension()
    if new_due <= owed.assignment.due_at or new_due <= now:
        raise NotLater()
    open_request = await session.scalar(
        select(m.Extension.id).where(
            m.Extension.assignment_id == assignment_id, m.Extension.status == "requested"
        )
    )
    if open_request is not None:
        raise AlreadyRequested()
    extension = m.Extension(
        assignment_id=assignment_id,
        requested_by=caller.person.id,
        new_due_at=new_due,
        reason=reason,
        status="requested",
        created_at=now,
    )
    session.add(extension)
    await session.flush()
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="extension.request",
        campaign_id=caller.campaign.id,
        object_type="extension",
        object_id=extension.id,
        details={"assignment_id": assignment_id, "new_due_at": new_due.isoformat()},
    )
    office = await holders(session, caller.campaign.id, ("office", "admin"))
    tz = caller.campaign.timezone

    def build(lang: str) -> dict[str, Any]:
        return message(
            t(
                "extend.notice",
                lang,
                unit=owed.unit.name,
                task=owed.task.title,
                old=format_moment(owed.assignment.due_at, tz, lang),
                new=format_moment(new_due, tz, lang),
                reason=reason,
                who=caller.person.name,
            ),
            extension_buttons(extension.id, lang),
        )

    await push(
        session,
        office,
        key=f"extension:{extension.id}",
        kind="extension",
        build=build,
        now=now,
        default_language=default_language,
        campaign_id=caller.campaign.id,
    )
    return extension


async def decide(
    session: AsyncSession,
    caller: Caller,
    extension_id: int,
    approve: bool,
    *,
    now: datetime,
    default_language: str,
) -> Decided:
    """Approve (moving the due date and its reminders) or reject a request."""
    caller.require_office()
    row = (
        await session.execute(
            select(m.Extension, m.Assignment, m.Unit, m.Task)
            .join(m.Assignment, m.Assignment.id == m.Extension.assignment_id)
            .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
            .join(m.Task, m.Task.id == m.Assignment.task_id)
            .where(m.Extension.id == extension_id)
        )
    ).first()
    if row is None or row[1].campaign_id != caller.campaign.id or row[0].status != "requested":
        raise StaleExtension()
    item = Decided(*row)
    item.extension.status = "approved" if approve else "rejected"
    item.extension.decided_by = caller.person.id
    item.extension.decided_at = now
    if approve:
        assignment = item.assignment
        # The effective due date is the latest approved extension (SPEC §4.4).
        if item.extension.new_due_at > assignment.due_at:
            move_deadline(assignment, item.extension.new_due_at, now)
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="extension.approve" if approve else "extension.reject",
        campaign_id=caller.campaign.id,
        object_type="extension",
        object_id=extension_id,
    )
    contacts = await holders(session, caller.campaign.id, ("contact",), unit_id=item.unit.id)
    tz = caller.campaign.timezone
    await push(
        session,
        contacts,
        key=f"extension-decided:{extension_id}",
        kind="extension_result",
        build=lambda lang: message(
            t(
                "extend.approved_notice" if approve else "extend.rejected_notice",
                lang,
                unit=item.unit.name,
                task=item.task.title,
                new=format_moment(item.extension.new_due_at, tz, lang),
            )
        ),
        now=now,
        default_language=default_language,
        campaign_id=caller.campaign.id,
    )
    return item
