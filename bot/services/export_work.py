"""The export's sheets of work outside the plan: reports (情况报告) and notices with receipts."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.db import models as m
from bot.i18n import plain
from bot.services.export import CELL_MAX, Cell, Sheet, _when
from bot.services.notices import title_of


def _col(name: str, lang: str) -> str:
    return plain(f"work.xlsx.{name}", lang)


async def reports_sheet(session: AsyncSession, campaign: m.Campaign, lang: str) -> Sheet:
    """Return one row per report: unit, sender, when, text, files, review."""
    zone = ZoneInfo(campaign.timezone)
    sender, reviewer = aliased(m.Person), aliased(m.Person)
    rows = await session.execute(
        select(m.Report, m.Unit.name, sender.name, reviewer.name)
        .join(m.Unit, m.Unit.id == m.Report.unit_id)
        .outerjoin(sender, sender.id == m.Report.person_id)
        .outerjoin(reviewer, reviewer.id == m.Report.reviewed_by)
        .where(m.Report.campaign_id == campaign.id)
        .order_by(m.Unit.position, m.Report.created_at, m.Report.id)
    )
    names = ("unit", "sender", "at", "text", "files", "state", "reviewer", "reviewed_at", "reason")
    sheet = Sheet(_col("reports", lang), [_col(n, lang) for n in names])
    for report, unit, who, reviewed_by in rows:
        files = "\n".join(
            str(f.get("file_name") or f.get("kind") or "") for f in (report.files or [])
        )
        sheet.rows.append(
            [
                Cell(unit),
                Cell(who),
                _when(report.created_at, zone),
                Cell((report.text or "")[:CELL_MAX] or None),
                Cell(files[:CELL_MAX] or None),
                Cell(
                    plain(f"work.report_state_{report.status}", lang),
                    {"accepted": "accepted", "returned": "returned"}.get(report.status),
                ),
                Cell(reviewed_by),
                _when(report.reviewed_at, zone),
                Cell(report.reason),
            ]
        )
    return sheet


async def notices_sheet(session: AsyncSession, campaign: m.Campaign, lang: str) -> Sheet:
    """Return one row per (notice, unit): sent, deadline, received by whom and when."""
    zone = ZoneInfo(campaign.timezone)
    rows = await session.execute(
        select(m.Notice, m.Unit.name, m.Person.name, m.NoticeReceipt.received_at)
        .join(m.NoticeReceipt, m.NoticeReceipt.notice_id == m.Notice.id)
        .join(m.Unit, m.Unit.id == m.NoticeReceipt.unit_id)
        .outerjoin(m.Person, m.Person.id == m.NoticeReceipt.received_by)
        .where(m.Notice.campaign_id == campaign.id)
        .order_by(m.Notice.created_at, m.Notice.id, m.Unit.position)
    )
    names = ("notice", "sent_at", "deadline", "unit", "received", "received_by", "received_at")
    sheet = Sheet(_col("notices", lang), [_col(n, lang) for n in names])
    for notice, unit, who, at in rows:
        late = at is None and notice.deadline_at is not None
        sheet.rows.append(
            [
                Cell(title_of(notice, 200)),
                _when(notice.created_at, zone),
                _when(notice.deadline_at, zone),
                Cell(unit),
                Cell(
                    _col("yes" if at is not None else "no", lang),
                    "accepted" if at is not None else ("overdue" if late else None),
                ),
                Cell(who),
                _when(at, zone),
            ]
        )
    return sheet
