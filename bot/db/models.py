"""The tables: campaigns and their plan, people and roles, assignments, outbox, audit log."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC and always hand back aware UTC datetimes.

    SQLite keeps no time zone, so a naive value read back is UTC by construction.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current moment, aware, in UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (Alembic needs them)."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Campaign(Base):
    """One campaign, as loaded from its plan file."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(64))
    due_time: Mapped[str] = mapped_column(String(5))
    units_see_all: Mapped[bool] = mapped_column(Boolean, default=False)
    # Calendar, reminder policy and digest times, as validated plain data.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    plan_file: Mapped[str] = mapped_column(Text, default="")
    plan_hash: Mapped[str] = mapped_column(String(64), default="")
    # Raised by the database (a trigger) whenever a unit of the campaign changes: the stamp
    # that tells a process its unit-name index is stale.
    units_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]


class UnitKind(Base):
    """A kind of unit within a campaign."""

    __tablename__ = "unit_kinds"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None]


class Unit(Base):
    """A unit that owes deliverables."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    kind_id: Mapped[int] = mapped_column(ForeignKey("unit_kinds.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Pinyin initials and full pinyin of its names (every reading), computed when the plan
    # load writes the names: the unit-name index reads them instead of running pypinyin.
    spellings: Mapped[list[Any] | None] = mapped_column(JSON)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None]


class Phase(Base):
    """A stage of a campaign."""

    __tablename__ = "phases"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None]


class Task(Base):
    """A deliverable of a phase."""

    __tablename__ = "tasks"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    phase_id: Mapped[int] = mapped_column(ForeignKey("phases.id"))
    # A recurring task's occurrence is keyed `<series>@<date>` (64 + 11 characters).
    key: Mapped[str] = mapped_column(String(80))
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime]
    evidence: Mapped[str] = mapped_column(String(8))
    allow_outside_phase: Mapped[bool] = mapped_column(Boolean, default=False)
    # The effective reminder policy (campaign -> phase -> task overrides merged).
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None]
    # An occurrence of a recurring task (`repeat`): the plan's task key and title, and the
    # occurrence's local date. None for a task with one deadline.
    series: Mapped[str | None] = mapped_column(String(64))
    series_title: Mapped[str | None] = mapped_column(Text)
    occurrence: Mapped[date | None] = mapped_column(Date)
    # "plan" (from the plan file) or "chat" (added with /assign or `duban task add`): a plan
    # reload never archives or changes a task added in chat (SPEC §4.6).
    origin: Mapped[str] = mapped_column(String(8), default="plan", server_default="plan")
    # Instructions attached as a file when the task was added in chat (Telegram file_id).
    instructions_file_id: Mapped[str | None] = mapped_column(Text)
    instructions_file_name: Mapped[str | None] = mapped_column(Text)


class Person(Base):
    """A Telegram account (a private chat) or a registered group."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(Text, default="")
    username: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    reachable: Mapped[bool] = mapped_column(Boolean, default=True)
    unreachable_since: Mapped[datetime | None]
    current_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    created_at: Mapped[datetime]
    # A forum group's topic where it redeemed its invite: what it receives goes there.
    thread_id: Mapped[int | None] = mapped_column(BigInteger)


class Role(Base):
    """A role a person holds in a campaign (contact and head: for one unit)."""

    __tablename__ = "roles"
    __table_args__ = (Index("ix_roles_campaign_role", "campaign_id", "role", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    role: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invites.id"))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Invite(Base):
    """An invite code (only its hash is kept)."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A short, non-secret prefix so operators can tell codes apart in `invite --list`.
    hint: Mapped[str] = mapped_column(String(8))
    role: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    max_uses: Mapped[int] = mapped_column(Integer, default=1)
    used: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class Assignment(Base):
    """A unit owing a task, with its own effective due moment."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("unit_id", "task_id"),
        Index("ix_assignments_open_due", "campaign_id", "status", "due_at"),
        Index("ix_assignments_task", "task_id", "status"),
        # The units' ranking counts a campaign's assignments per unit from this index alone.
        Index(
            "ix_assignments_unit_counts",
            "campaign_id",
            "archived_at",
            "unit_id",
            "status",
            "due_at",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    # pending | submitted | returned | accepted; archived when archived_at is set.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    due_at: Mapped[datetime]
    plan_due_at: Mapped[datetime]
    # When the deadline was last set; stages planned before this moment are skipped.
    due_set_at: Mapped[datetime]
    # The next moment the reminder planner must look at this assignment (None: nothing
    # left to send). Indexed so that a tick with nothing due reads nothing.
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    archived_at: Mapped[datetime | None]


class AssignmentCount(Base):
    """How many live assignments of a task are in one status with one due moment.

    Kept by the database itself (triggers of migration 0012) in the transaction of every
    change to `assignments`, so `/status` sums a few rows per task instead of reading every
    assignment. Rows may hold 0.
    """

    __tablename__ = "assignment_counts"

    campaign_id: Mapped[int] = mapped_column(Integer, index=True)
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class Submission(Base):
    """One version of a unit's deliverable."""

    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("assignment_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(16))  # document | photo | text | confirm | offline
    text: Mapped[str | None] = mapped_column(Text)
    file_id: Mapped[str | None] = mapped_column(Text)
    file_unique_id: Mapped[str | None] = mapped_column(String(128))
    file_name: Mapped[str | None] = mapped_column(Text)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    mime_type: Mapped[str | None] = mapped_column(String(128))
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_at: Mapped[datetime] = mapped_column(index=True)


class SubmissionFile(Base):
    """One file of a version (an album holds several), in the order they were sent."""

    __tablename__ = "submission_files"
    __table_args__ = (UniqueConstraint("submission_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, ...
    kind: Mapped[str] = mapped_column(String(16))  # document | photo | video | audio | voice
    file_id: Mapped[str] = mapped_column(Text)
    file_unique_id: Mapped[str | None] = mapped_column(String(128))
    file_name: Mapped[str | None] = mapped_column(Text)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    mime_type: Mapped[str | None] = mapped_column(String(128))


class AlbumPart(Base):
    """One part of an album while its parts arrive (each part is its own update, possibly
    handled by another process); gathered into one version when the contact confirms."""

    __tablename__ = "album_parts"
    __table_args__ = (
        UniqueConstraint("chat_id", "message_id"),
        Index("ix_album_parts_chat_group", "chat_id", "media_group_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    media_group_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]


class Review(Base):
    """The office's decision on one submission."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    decision: Mapped[str] = mapped_column(String(16))  # accepted | returned | reopened
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]


class Extension(Base):
    """A request for a later due date, and the office's answer."""

    __tablename__ = "extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), index=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    new_due_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="requested")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Outbox(Base):
    """A push message, written before it is sent; the key makes planning idempotent."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "not_before"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    # Bot API method parameters without chat_id, e.g. {"method": "sendMessage", "text": ...}.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # For nudges: re-checked at send time, so a submitted or re-dated assignment stops at once.
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))
    planned_due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed
    not_before: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # The message Telegram created, so that a later change (a review) can edit it.
    sent_message_id: Mapped[int | None] = mapped_column(BigInteger)


class Conversation(Base):
    """An open multi-step exchange (a submission, a return reason) kept in the database.

    Any process can take the person's next message because the state is here, not in memory.
    """

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("person_id", "chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class AuditLog(Base):
    """Who changed what, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))  # cli | system | person:<id>
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Setting(Base):
    """Small facts the bot keeps across runs (the bot's username from getMe)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]


class AttemptCounter(Base):
    """Failed attempts of one kind by one account in the current hour: one row, read by key.

    Keys: `invite.failed:tg:<Telegram user id>` and `invite.failed:all` (issue 14 case 5: the
    count costs O(1), instead of a scan of the audit log under the write lock).
    """

    __tablename__ = "attempt_counters"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer, default=0)


class CalendarFeed(Base):
    """A person's subscription link to one unit's deadlines (`/calendar/<token>.ics`).

    Only the token's SHA-256 is stored (`token`, looked up by hash). The token itself is an
    HMAC of `salt` under the bot token, so the bot can show the same link again while the
    database alone reveals none (issue 14). Links made before that have no salt: asking again
    makes a new one, and the old keeps working. A link works while the person may still see
    the unit.
    """

    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    salt: Mapped[str | None] = mapped_column(String(32))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Notice(Base):
    """A notice from the office to units' contacts, with a "received" button (SPEC §4.6)."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_campaign", "campaign_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    text: Mapped[str] = mapped_column(Text, default="")
    file_id: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(Text)
    file_kind: Mapped[str | None] = mapped_column(String(16))  # document | photo
    deadline_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime]
    # The last "remind again" (at most one every 5 minutes per notice).
    reminded_at: Mapped[datetime | None]
    # When the planner must next look at this notice's deadline (None: nothing to send).
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)


class NoticeReceipt(Base):
    """One unit a notice went to, and its first "received" (who, when; None: not yet)."""

    __tablename__ = "notice_receipts"
    __table_args__ = (UniqueConstraint("notice_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    received_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    received_at: Mapped[datetime | None]


class Report(Base):
    """A unit's report to the office outside any task (情况报告), reviewed like a submission."""

    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_campaign_unit", "campaign_id", "unit_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    text: Mapped[str | None] = mapped_column(Text)
    # The files, in the order sent: [{"kind", "file_id", "file_unique_id", "file_name",
    # "file_size", "mime_type"}, ...] (an album is several).
    files: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="submitted")  # |accepted|returned
    reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    reviewed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(index=True)
