"""Submissions: what a unit may submit, storing a version, and telling the office."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.assignments import SUBMITTABLE, SUBMITTED, change_status, is_late
from bot.errors import DubanError
from bot.i18n import Markup, format_moment, t
from bot.messages.limits import utf16_prefix
from bot.messages.pushes import review_buttons
from bot.services.access import Caller, NotAllowed
from bot.services.audit import record
from bot.services.notify import push
from bot.services.outbox import file_message, message
from bot.services.people import holders

OPEN_FOR_SUBMISSION = SUBMITTABLE
# A text submission shown to the office keeps this much; the whole text stays stored.
# Counted as Telegram counts (UTF-16 code units): 3,000 emoji would be 6,000.
TEXT_BODY_LIMIT = 3000


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


# What Telegram messages count as files (SPEC §4.4); anything else is not a submission.
FILE_KINDS = ("document", "photo", "video", "audio", "voice")
# The Bot API method and parameter that send each kind of file by its file_id.


@dataclass
class FileRef:
    """One file a contact sent: its kind and Telegram's description of it."""

    kind: str  # one of FILE_KINDS
    file_id: str
    file_unique_id: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    mime_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the file as plain data."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRef:
        """Rebuild a file kept by `to_json`."""
        size = data.get("file_size")
        return cls(
            str(data["kind"]),
            str(data["file_id"]),
            data.get("file_unique_id"),
            data.get("file_name"),
            int(size) if size is not None else None,
            data.get("mime_type"),
        )


@dataclass
class Content:
    """What the contact sent: files (one, or an album), a text, or a bare confirmation.

    `kind` is the file's kind for one file, `album` for several, else `text` or `confirm`;
    `text` is the text, or the caption that came with the files (the version's text).
    """

    kind: str  # document | photo | video | audio | voice | album | text | confirm
    text: str | None = None
    files: list[FileRef] = field(default_factory=list)

    @classmethod
    def of_files(cls, files: list[FileRef], text: str | None) -> Content:
        """Return the content of one or more files with their caption."""
        if not files:
            raise ValueError("no files")
        return cls(files[0].kind if len(files) == 1 else "album", text, list(files))

    @property
    def first(self) -> FileRef | None:
        """Return the first file, if any."""
        return self.files[0] if self.files else None

    def to_json(self) -> dict[str, Any]:
        """Return the content as plain data (kept in the conversation until confirmed)."""
        return {"kind": self.kind, "text": self.text, "files": [f.to_json() for f in self.files]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Content:
        """Rebuild content kept by `to_json` (or by the one-file form stored before albums)."""
        files = [FileRef.from_json(f) for f in data.get("files") or []]
        if not files and data.get("file_id"):
            files = [FileRef.from_json(data)]
        return cls(str(data["kind"]), data.get("text"), files)


def accepts(evidence: str, kind: str) -> bool:
    """Return whether a task's evidence setting takes this kind of content."""
    if evidence == "none":
        return kind == "confirm"
    files = kind in FILE_KINDS or kind == "album"
    if evidence == "file":
        return files
    if evidence == "text":
        return kind == "text"
    return files or kind == "text"


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
    first = content.first
    submission = m.Submission(
        assignment_id=assignment.id,
        version=version,
        person_id=caller.person.id,
        kind=content.kind,
        text=content.text,
        # The first file is kept on the version too (readers from before albums use it).
        file_id=first.file_id if first else None,
        file_unique_id=first.file_unique_id if first else None,
        file_name=first.file_name if first else None,
        file_size=first.file_size if first else None,
        mime_type=first.mime_type if first else None,
        late=is_late(assignment.due_at, now),
        submitted_at=now,
    )
    session.add(submission)
    await session.flush()
    for position, ref in enumerate(content.files, start=1):
        session.add(
            m.SubmissionFile(
                submission_id=submission.id,
                position=position,
                kind=ref.kind,
                file_id=ref.file_id,
                file_unique_id=ref.file_unique_id,
                file_name=ref.file_name,
                file_size=ref.file_size,
                mime_type=ref.mime_type,
            )
        )
    change_status(assignment, SUBMITTED, now)  # nudges stop at submitted
    await session.flush()
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="submission.create",
        campaign_id=caller.campaign.id,
        object_type="submission",
        object_id=submission.id,
        details={
            "assignment_id": assignment.id,
            "version": version,
            "late": submission.late,
            "files": len(content.files),
        },
    )
    office = await holders(session, caller.campaign.id, ("office", "admin"))
    tz = caller.campaign.timezone

    files = content.files

    def body(lang: str) -> str:
        """The files' names and the text or caption, as the office reads them."""
        parts = []
        if files:
            parts.append(t("kinds.notice_files", lang, count=len(files), names=file_names(files)))
        if content.text:
            parts.append(
                t("kinds.notice_text", lang, text=utf16_prefix(content.text, TEXT_BODY_LIMIT))
            )
        return Markup("\n".join(parts))

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
            body=body(lang),
        )
        buttons = review_buttons(submission.id, lang)
        if len(files) == 1 and not content.text:
            # One file without a text: the file itself carries the notice and the buttons.
            return file_message(files[0].kind, files[0].file_id, text, buttons)
        return message(text, buttons)

    if len(files) > 1 or (files and content.text):
        # Every file goes to the office first (a caption holds 1,024 characters only), then
        # the notice with the text and the buttons: the sender keeps each chat's order.
        for position, ref in enumerate(files, start=1):

            def build_file(
                lang: str, ref: FileRef = ref, position: int = position
            ) -> dict[str, Any]:
                caption = t(
                    "kinds.file_caption",
                    lang,
                    unit=owed.unit.name,
                    version=version,
                    position=position,
                    count=len(files),
                )
                return file_message(ref.kind, ref.file_id, caption)

            await push(
                session,
                office,
                key=f"review:{submission.id}:file{position}",
                kind="review",
                build=build_file,
                now=now,
                default_language=default_language,
                campaign_id=caller.campaign.id,
            )

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


def file_names(files: list[FileRef] | list[m.SubmissionFile]) -> str:
    """Return the files' names joined for a message (a photo or voice without one by kind)."""
    return "、".join(f.file_name or f"[{f.kind}]" for f in files)
