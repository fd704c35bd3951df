"""Submissions: what a unit may submit, storing a version, and telling the office."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import DubanError
from bot.i18n import format_moment, t
from bot.services.access import Caller, NotAllowed
from bot.services.audit import record
from bot.services.notify import push
from bot.services.people import holders

OPEN_FOR_SUBMISSION = ("pending", "returned", "submitted")
# A text submission shown to the office keeps this much; the whole text stays stored.
# Counted as Telegram counts (UTF-16 code units): 3,000 emoji would be 6,000.
TEXT_BODY_LIMIT = 3000


def _body(text: str) -> str:
    """Return the start of a text that Telegram counts as at most TEXT_BODY_LIMIT long."""
    return text.encode("utf-16-le")[: 2 * TEXT_BODY_LIMIT].decode("utf-16-le", "ignore")


class StaleAssignment(DubanError):
    """The assignment is gone, archived, accepted, or not the caller's."""

    key = "submit.stale"


class WrongEvidence(DubanError):
    """The content does not fit what the task asks for."""

    key = "submit.wrong_evidence"


@dataclass
class Owed:
    """An assignment with its task and unit, as a contact sees it."""

    assignment: m.Assignment
    task: m.Task
    unit: m.Unit


@dataclass
class Content:
    """What the contact sent: a document, a photo, a text or a bare confirmation."""

    kind: str  # document | photo | text | confirm
    text: str | None = None
    file_id: str | None = None
    file_unique_id: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    mime_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the content as plain data (kept in the conversation until confirmed)."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Content:
        """Rebuild content kept by `to_json`."""
        return cls(**data)


def accepts(evidence: str, kind: str) -> bool:
    """Return whether a task's evidence setting takes this kind of content."""
    if evidence == "none":
        return kind == "confirm"
    if evidence == "file":
        return kind in ("document", "photo")
    if evidence == "text":
        return kind == "text"
    return kind in ("document", "photo", "text")


async def owed_by(
    session: AsyncSession, caller: Caller, *, statuses: tuple[str, ...] = OPEN_FOR_SUBMISSION
) -> list[Owed]:
    """Return the caller's units' live assignments in these statuses, by due date."""
    if not caller.unit_ids:
        return []
    rows = await session.execute(
        select(m.Assignment, m.Task, m.Unit)
        .join(m.Task, m.Task.id == m.Assignment.task_id)
        .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
        .where(
            m.Assignment.unit_id.in_(caller.unit_ids),
            m.Assignment.archived_at.is_(None),
            m.Assignment.status.in_(statuses),
        )
        .order_by(m.Assignment.due_at, m.Unit.position)
    )
    return [Owed(a, task, unit) for a, task, unit in rows]


async def owed_item(session: AsyncSession, caller: Caller, assignment_id: int) -> Owed:
    """Return one of the caller's open assignments; refuse anything else (a forged button)."""
    if not caller.unit_ids:
        raise NotAllowed("units")
    row = (
        await session.execute(
            select(m.Assignment, m.Task, m.Unit)
            .join(m.Task, m.Task.id == m.Assignment.task_id)
            .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
            .where(m.Assignment.id == assignment_id)
        )
    ).first()
    if row is None:
        raise StaleAssignment()
    assignment, task, unit = row
    if assignment.unit_id not in caller.unit_ids or assignment.campaign_id != caller.campaign.id:
        raise StaleAssignment()
    if assignment.archived_at is not None or assignment.status not in OPEN_FOR_SUBMISSION:
        raise StaleAssignment()
    return Owed(assignment, task, unit)


async def submit(
    session: AsyncSession,
    caller: Caller,
    assignment_id: int,
    content: Content,
    *,
    now: datetime,
    default_language: str,
) -> m.Submission:
    """Store a new version, mark the assignment submitted, and send it to the office."""
    owed = await owed_item(session, caller, assignment_id)
    if not accepts(owed.task.evidence, content.kind):
        raise WrongEvidence()
    assignment = owed.assignment
    version = (
        await session.scalar(
            select(func.max(m.Submission.version)).where(
                m.Submission.assignment_id == assignment.id
            )
        )
        or 0
    ) + 1
    submission = m.Submission(
        assignment_id=assignment.id,
        version=version,
        person_id=caller.person.id,
        kind=content.kind,
        text=content.text,
        file_id=content.file_id,
        file_unique_id=content.file_unique_id,
        file_name=content.file_name,
        file_size=content.file_size,
        mime_type=content.mime_type,
        # Late means after the due date in effect at this moment (SPEC §4.4).
        late=now > assignment.due_at,
        submitted_at=now,
    )
    session.add(submission)
    assignment.status = "submitted"
    assignment.updated_at = now
    assignment.next_check_at = None  # nudges stop at submitted
    await session.flush()
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="submission.create",
        campaign_id=caller.campaign.id,
        object_type="submission",
        object_id=submission.id,
        details={"assignment_id": assignment.id, "version": version, "late": submission.late},
    )
    office = await holders(session, caller.campaign.id, ("office", "admin"))
    tz = caller.campaign.timezone

    def build(lang: str) -> dict[str, Any]:
        text = t(
            "review.notice",
            lang,
            unit=owed.unit.name,
            task=owed.task.title,
            version=version,
            who=caller.person.name,
            moment=format_moment(now, tz, lang),
            late=t("review.late", lang) if submission.late else "",
            # Only a text submission has a body; it goes out as a message (4096 limit).
            body=_body(content.text or "") if content.kind == "text" else "",
        )
        buttons = [
            [
                {
                    "text": t("review.accept_button", lang),
                    "callback_data": f"rev:ok:{submission.id}",
                },
                {
                    "text": t("review.return_button", lang),
                    "callback_data": f"rev:ret:{submission.id}",
                },
            ]
        ]
        markup = {"inline_keyboard": buttons}
        if content.kind == "document":
            return {
                "method": "sendDocument",
                "document": content.file_id,
                "caption": text,
                "parse_mode": "HTML",
                "reply_markup": markup,
            }
        if content.kind == "photo":
            return {
                "method": "sendPhoto",
                "photo": content.file_id,
                "caption": text,
                "parse_mode": "HTML",
                "reply_markup": markup,
            }
        return {
            "method": "sendMessage",
            "text": text,
            "parse_mode": "HTML",
            "reply_markup": markup,
        }

    await push(
        session,
        office,
        key=f"review:{submission.id}",
        kind="review",
        build=build,
        now=now,
        default_language=default_language,
        campaign_id=caller.campaign.id,
    )
    return submission
