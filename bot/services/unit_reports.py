"""Work not in the plan, part three: a unit's report to the office outside any task (/report).

A report holds a text and/or files (an album is several) and is reviewed like a submission:
the office gets it with accept / return buttons; a return carries a reason to the unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.errors import DubanError, StaleButton
from bot.i18n import format_moment, t
from bot.messages.pushes import report_buttons
from bot.services.access import Caller
from bot.services.audit import record
from bot.services.notify import push
from bot.services.outbox import file_message, message
from bot.services.people import holders

TEXT_LIMIT = 3000  # characters of a report's text shown to the office (all of it is stored)
MAX_FILES = 20


class EmptyReport(DubanError):
    """A report needs a text or a file."""

    key = "work.report_empty"


class StaleReport(DubanError):
    """The report was decided already, or is not in this campaign."""

    key = "work.report_stale"


def file_entry(
    kind: str,
    file_id: str,
    *,
    file_unique_id: str | None = None,
    file_name: str | None = None,
    file_size: int | None = None,
    mime_type: str | None = None,
) -> dict[str, Any]:
    """Return one file of a report as stored (kind: document | photo | video | audio | voice)."""
    return {
        "kind": kind,
        "file_id": file_id,
        "file_unique_id": file_unique_id,
        "file_name": file_name,
        "file_size": file_size,
        "mime_type": mime_type,
    }


def _file_payload(entry: dict[str, Any], caption: str | None) -> dict[str, Any]:
    return file_message(
        "photo" if entry["kind"] == "photo" else "document", entry["file_id"], caption
    )


async def create_report(
    session: AsyncSession,
    caller: Caller,
    unit_id: int,
    *,
    text: str,
    files: Sequence[dict[str, Any]],
    now: datetime,
    default_language: str,
) -> m.Report:
    """Store a unit's report and send it to the office with accept / return buttons.

    Raises NotAllowed (not the caller's unit) and EmptyReport.
    """
    caller.require_unit()
    if unit_id not in caller.unit_ids:
        raise StaleButton()
    text = text.strip()
    if not text and not files:
        raise EmptyReport()
    unit = await session.get(m.Unit, unit_id)
    assert unit is not None
    report = m.Report(
        campaign_id=caller.campaign.id,
        unit_id=unit_id,
        person_id=caller.person.id,
        text=text or None,
        files=list(files)[:MAX_FILES],
        status="submitted",
        created_at=now,
    )
    session.add(report)
    await session.flush()
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="report.create",
        campaign_id=caller.campaign.id,
        object_type="report",
        object_id=report.id,
        details={"unit_id": unit_id, "files": len(report.files)},
    )
    office = await holders(session, caller.campaign.id, ("office", "admin"))
    tz = caller.campaign.timezone
    # Files first (each its own message), then the text with the buttons, so the buttons
    # come last in the chat.
    for i, entry in enumerate(report.files):
        await push(
            session,
            office,
            key=f"report:{report.id}:file:{i}",
            kind="review",
            build=lambda lang, entry=entry, i=i: _file_payload(  # type: ignore[misc]
                entry,
                t("work.report_file_caption", lang, unit=unit.name, n=i + 1, count=len(files)),
            ),
            now=now,
            default_language=default_language,
            campaign_id=caller.campaign.id,
        )

    def build(lang: str) -> dict[str, Any]:
        body = t(
            "work.report_notice",
            lang,
            unit=unit.name,
            who=caller.person.name,
            moment=format_moment(now, tz, lang),
            files=len(report.files),
            body=(report.text or "")[:TEXT_LIMIT],
        )
        return message(body, report_buttons(report.id, lang))

    await push(
        session,
        office,
        key=f"report:{report.id}",
        kind="review",
        build=build,
        now=now,
        default_language=default_language,
        campaign_id=caller.campaign.id,
    )
    return report


async def pending_report(
    session: AsyncSession, caller: Caller, report_id: int
) -> tuple[m.Report, m.Unit]:
    """Return a report that awaits the office's decision; refuse anything else."""
    caller.require_office()
    row = (
        await session.execute(
            select(m.Report, m.Unit)
            .join(m.Unit, m.Unit.id == m.Report.unit_id)
            .where(m.Report.id == report_id)
        )
    ).first()
    if row is None or row[0].campaign_id != caller.campaign.id:
        raise StaleButton()
    if row[0].status != "submitted":
        raise StaleReport()
    return row[0], row[1]


async def decide_report(
    session: AsyncSession,
    caller: Caller,
    report_id: int,
    *,
    accept: bool,
    reason: str = "",
    now: datetime,
    default_language: str,
) -> tuple[m.Report, m.Unit]:
    """Accept or return (with a reason) a report and tell the unit's contacts."""
    report, unit = await pending_report(session, caller, report_id)
    report.status = "accepted" if accept else "returned"
    report.reason = None if accept else reason
    report.reviewed_by = caller.person.id
    report.reviewed_at = now
    record(
        session,
        at=now,
        actor=f"person:{caller.person.id}",
        action="report.accept" if accept else "report.return",
        campaign_id=caller.campaign.id,
        object_type="report",
        object_id=report.id,
        details={} if accept else {"reason": reason},
    )
    contacts = await holders(session, caller.campaign.id, ("contact",), unit_id=unit.id)
    moment = report.created_at
    tz = caller.campaign.timezone
    await push(
        session,
        contacts,
        key=f"report-{report.status}:{report.id}",
        kind="review_result",
        build=lambda lang: message(
            t(
                "work.report_accepted" if accept else "work.report_returned",
                lang,
                unit=unit.name,
                moment=format_moment(moment, tz, lang),
                reason=reason,
            )
        ),
        now=now,
        default_language=default_language,
        campaign_id=caller.campaign.id,
    )
    return report, unit


@dataclass
class ReportLine:
    """One report as a list shows it."""

    report: m.Report
    who: str


async def reports_of_unit(
    session: AsyncSession, campaign_id: int, unit_id: int, limit: int = 10
) -> list[ReportLine]:
    """Return a unit's latest reports, newest first."""
    rows = await session.execute(
        select(m.Report, m.Person.name)
        .outerjoin(m.Person, m.Person.id == m.Report.person_id)
        .where(m.Report.campaign_id == campaign_id, m.Report.unit_id == unit_id)
        .order_by(m.Report.created_at.desc(), m.Report.id.desc())
        .limit(limit)
    )
    return [ReportLine(report, name or "") for report, name in rows]


async def count_reports(
    session: AsyncSession, campaign_id: int, since: datetime, until: datetime
) -> int:
    """Return how many reports arrived in (since, until]."""
    return int(
        await session.scalar(
            select(func.count(m.Report.id)).where(
                m.Report.campaign_id == campaign_id,
                m.Report.created_at > since,
                m.Report.created_at <= until,
            )
        )
        or 0
    )
