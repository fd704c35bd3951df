"""The office's review: accept, return with a reason, reopen, mark received outside the bot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.assignments import ACCEPTED, RETURNED, SUBMITTED, change_status, is_late
from bot.errors import DubanError
from bot.i18n import t
from bot.services.access import Caller
from bot.services.audit import record
from bot.services.notify import push
from bot.services.outbox import message
from bot.services.people import holders


class StaleReview(DubanError):
    """The submission was already decided, superseded, or is not in this campaign."""

    key = "review.stale"


class NothingToReopen(DubanError):
    """Only an accepted assignment can be reopened."""

    key = "review.nothing_to_reopen"


class AlreadyAccepted(DubanError):
    """The assignment is accepted already."""

    key = "review.already_accepted"


@dataclass
class Reviewed:
    """A decided submission with its assignment, unit and task."""

    submission: m.Submission
    assignment: m.Assignment
    unit: m.Unit
    task: m.Task


async def _load(session: AsyncSession, caller: Caller, submission_id: int) -> Reviewed:
    row = (
        await session.execute(
            select(m.Submission, m.Assignment, m.Unit, m.Task)
            .join(m.Assignment, m.Assignment.id == m.Submission.assignment_id)
            .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
            .join(m.Task, m.Task.id == m.Assignment.task_id)
            .where(m.Submission.id == submission_id)
        )
    ).first()
    if row is None or row[1].campaign_id != caller.campaign.id:
        raise StaleReview()
    return Reviewed(*row)


async def _latest_version(session: AsyncSession, assignment_id: int) -> int:
    return int(
        await session.scalar(
            select(func.max(m.Submission.version)).where(
                m.Submission.assignment_id == assignment_id
            )
        )
        or 0
    )


async def pending_review(session: AsyncSession, caller: Caller, submission_id: int) -> Reviewed:
    """Return a submission that awaits review: the latest version of a submitted assignment."""
    caller.require_office()
    item = await _load(session, caller, submission_id)
    latest = await _latest_version(session, item.assignment.id)
    if (
        item.assignment.status != SUBMITTED
        or item.submission.version != latest
        or item.assignment.archived_at is not None
    ):
        raise StaleReview()
    return item


async def _tell_unit(
    session: AsyncSession,
    item: Reviewed,
    *,
    key: str,
    text_key: str,
    now: datetime,
    default_language: str,
    **params: Any,
) -> None:
    contacts = await holders(
        session, item.assignment.campaign_id, ("contact",), unit_id=item.unit.id
    )
    await push(
        session,
        contacts,
        key=key,
        kind="review_result",
        build=lambda lang: message(
            t(text_key, lang, unit=item.unit.name, task=item.task.title, **params)
        ),
        now=now,
        default_language=default_language,
        campaign_id=item.assignment.campaign_id,
    )


async def accept(
    session: AsyncSession,
    caller: Caller,
    submission_id: int,
    *,
    now: datetime,
    default_language: str,
) -> Reviewed:
    """Accept the latest version of a submission."""
    item = await pending_review(session, caller, submission_id)
    change_status(item.assignment, ACCEPTED, now)
    session.add(
        m.Review(
            submission_id=item.submission.id,
            reviewer_id=caller.person.id,
            decision="accepted",
            created_at=now,
        )
    )
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="review.accept",
        campaign_id=caller.campaign.id,
        object_type="submission",
        object_id=item.submission.id,
    )
    await _tell_unit(
        session,
        item,
        key=f"accepted:{item.submission.id}",
        text_key="review.accepted_notice",
        now=now,
        default_language=default_language,
    )
    return item


async def return_submission(
    session: AsyncSession,
    caller: Caller,
    submission_id: int,
    reason: str,
    *,
    now: datetime,
    default_language: str,
) -> Reviewed:
    """Return a submission with a reason; the assignment is pending again and nudges resume."""
    item = await pending_review(session, caller, submission_id)
    change_status(item.assignment, RETURNED, now)  # nudges resume
    session.add(
        m.Review(
            submission_id=item.submission.id,
            reviewer_id=caller.person.id,
            decision="returned",
            reason=reason,
            created_at=now,
        )
    )
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="review.return",
        campaign_id=caller.campaign.id,
        object_type="submission",
        object_id=item.submission.id,
        details={"reason": reason},
    )
    await _tell_unit(
        session,
        item,
        key=f"returned:{item.submission.id}",
        text_key="review.returned_notice",
        now=now,
        default_language=default_language,
        reason=reason,
    )
    return item


async def reopen(
    session: AsyncSession, caller: Caller, assignment: m.Assignment, *, now: datetime
) -> None:
    """Undo an accept: the assignment goes back to submitted."""
    caller.require_office()
    if assignment.status != ACCEPTED:
        raise NothingToReopen()
    latest = await session.scalar(
        select(m.Submission)
        .where(m.Submission.assignment_id == assignment.id)
        .order_by(m.Submission.version.desc())
        .limit(1)
    )
    change_status(assignment, SUBMITTED, now)
    if latest is not None:
        session.add(
            m.Review(
                submission_id=latest.id,
                reviewer_id=caller.person.id,
                decision="reopened",
                created_at=now,
            )
        )
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="review.reopen",
        campaign_id=caller.campaign.id,
        object_type="assignment",
        object_id=assignment.id,
    )


async def received(
    session: AsyncSession, caller: Caller, assignment: m.Assignment, *, now: datetime
) -> m.Submission:
    """Record a deliverable received outside the bot: accepted, with who marked it."""
    caller.require_office()
    if assignment.status == ACCEPTED:
        raise AlreadyAccepted()
    version = await _latest_version(session, assignment.id) + 1
    submission = m.Submission(
        assignment_id=assignment.id,
        version=version,
        person_id=caller.person.id,
        kind="offline",
        late=is_late(assignment.due_at, now),
        submitted_at=now,
    )
    session.add(submission)
    await session.flush()
    session.add(
        m.Review(
            submission_id=submission.id,
            reviewer_id=caller.person.id,
            decision="accepted",
            reason=None,
            created_at=now,
        )
    )
    change_status(assignment, ACCEPTED, now)
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="review.received",
        campaign_id=caller.campaign.id,
        object_type="assignment",
        object_id=assignment.id,
    )
    return submission
