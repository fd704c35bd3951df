"""Submitted versions: the office's review queue, a unit's versions, and who may open a file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.assignments import SUBMITTED
from bot.errors import DubanError
from bot.services.access import Caller, OtherUnit
from bot.services.export import files_of


class NoSuchVersion(DubanError):
    """The version does not exist in the caller's campaign, or was archived."""

    key = "review.stale"


@dataclass
class VersionFile:
    """One file of a version (an album has several), numbered from 1 in the order sent."""

    position: int
    kind: str  # document | photo | video | audio | voice
    file_name: str | None
    file_size: int | None
    mime_type: str | None


@dataclass
class Version:
    """One submitted version with its unit, task, submitter and latest review."""

    submission_id: int
    assignment_id: int
    unit_id: int
    unit_name: str
    task_id: int
    task_title: str
    version: int
    kind: str
    caption: str | None
    file_name: str | None
    file_size: int | None
    mime_type: str | None
    has_file: bool
    late: bool
    submitted_at: datetime
    submitter: str | None
    status: str  # the assignment's status now
    review: str | None = None
    review_reason: str | None = None
    files: list[VersionFile] = field(default_factory=list)


async def _attach_reviews(session: AsyncSession, versions: list[Version]) -> None:
    """Add each version's latest review and its files."""
    ids = [v.submission_id for v in versions]
    if not ids:
        return
    by_id = {v.submission_id: v for v in versions}
    for sid, rows in (await files_of(session, ids)).items():
        by_id[sid].files = [
            VersionFile(f.position, f.kind, f.file_name, f.file_size, f.mime_type) for f in rows
        ]
        by_id[sid].has_file = bool(rows)
    for review in await session.scalars(
        select(m.Review).where(m.Review.submission_id.in_(ids)).order_by(m.Review.created_at)
    ):
        found = by_id[review.submission_id]
        found.review, found.review_reason = review.decision, review.reason


def _version(row: tuple[object, ...]) -> Version:
    sub, status, unit_id, unit_name, task_id, task_title, who = row
    assert isinstance(sub, m.Submission)
    return Version(
        submission_id=sub.id,
        assignment_id=sub.assignment_id,
        unit_id=int(str(unit_id)),
        unit_name=str(unit_name),
        task_id=int(str(task_id)),
        task_title=str(task_title),
        version=sub.version,
        kind=sub.kind,
        caption=sub.text,
        file_name=sub.file_name,
        file_size=sub.file_size,
        mime_type=sub.mime_type,
        has_file=False,  # set with the files by _attach_reviews
        late=sub.late,
        submitted_at=sub.submitted_at,
        submitter=str(who) if who is not None else None,
        status=str(status),
    )


async def review_queue(session: AsyncSession, caller: Caller, limit: int = 200) -> list[Version]:
    """Return the latest version of every submitted (not yet decided) assignment, oldest first.

    Office and admins only (NotAllowed otherwise), as the review buttons in the chat.
    """
    caller.require_office()
    s, a = m.Submission, m.Assignment
    latest = (
        select(s.assignment_id, func.max(s.version).label("version"))
        .join(a, a.id == s.assignment_id)
        .where(a.campaign_id == caller.campaign.id, a.status == SUBMITTED)
        .group_by(s.assignment_id)
        .subquery()
    )
    rows = await session.execute(
        select(s, a.status, a.unit_id, m.Unit.name, a.task_id, m.Task.title, m.Person.name)
        .join(
            latest,
            and_(latest.c.assignment_id == s.assignment_id, latest.c.version == s.version),
        )
        .join(a, a.id == s.assignment_id)
        .join(m.Unit, m.Unit.id == a.unit_id)
        .join(m.Task, m.Task.id == a.task_id)
        .outerjoin(m.Person, m.Person.id == s.person_id)
        .where(a.archived_at.is_(None), a.status == SUBMITTED)
        .order_by(s.submitted_at, s.id)
        .limit(limit)
    )
    versions = [_version(tuple(row)) for row in rows]
    await _attach_reviews(session, versions)
    return versions


async def unit_versions(session: AsyncSession, caller: Caller, unit: m.Unit) -> list[Version]:
    """Return every version a unit handed in, by task and version (OtherUnit if not visible)."""
    if unit.campaign_id != caller.campaign.id or not caller.may_see_unit(unit.id):
        raise OtherUnit()
    s, a = m.Submission, m.Assignment
    rows = await session.execute(
        select(s, a.status, a.unit_id, m.Unit.name, a.task_id, m.Task.title, m.Person.name)
        .join(a, a.id == s.assignment_id)
        .join(m.Unit, m.Unit.id == a.unit_id)
        .join(m.Task, m.Task.id == a.task_id)
        .outerjoin(m.Person, m.Person.id == s.person_id)
        .where(a.unit_id == unit.id, a.archived_at.is_(None))
        .order_by(m.Task.position, s.version)
    )
    versions = [_version(tuple(row)) for row in rows]
    await _attach_reviews(session, versions)
    return versions


def may_open_files(caller: Caller, unit_id: int) -> bool:
    """Return whether the caller may open a unit's files: the office, or the unit's own people.

    The chat's rule: the office gets any version again (the `ver:` button); a contact or head
    has their own unit's files in their chat already.
    """
    return caller.is_office or unit_id in caller.unit_ids


async def version_file(
    session: AsyncSession, caller: Caller, submission_id: int, position: int
) -> tuple[Version, VersionFile, str]:
    """Return (version, file, Telegram file_id) of one file the caller may open.

    NoSuchVersion when the version or file does not exist in the caller's campaign;
    OtherUnit when the caller may not open the unit's files (`may_open_files`).
    """
    s, a = m.Submission, m.Assignment
    row = (
        await session.execute(
            select(s, a.status, a.unit_id, m.Unit.name, a.task_id, m.Task.title, m.Person.name)
            .join(a, a.id == s.assignment_id)
            .join(m.Unit, m.Unit.id == a.unit_id)
            .join(m.Task, m.Task.id == a.task_id)
            .outerjoin(m.Person, m.Person.id == s.person_id)
            .where(s.id == submission_id, a.campaign_id == caller.campaign.id)
            .where(a.archived_at.is_(None))
        )
    ).first()
    if row is None:
        raise NoSuchVersion()
    found = _version(tuple(row))
    if not may_open_files(caller, found.unit_id):
        raise OtherUnit()
    stored = await session.scalar(
        select(m.SubmissionFile).where(
            m.SubmissionFile.submission_id == submission_id,
            m.SubmissionFile.position == position,
        )
    )
    if stored is None:
        raise NoSuchVersion()
    info = VersionFile(
        stored.position, stored.kind, stored.file_name, stored.file_size, stored.mime_type
    )
    return found, info, stored.file_id
