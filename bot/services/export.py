"""Export every assignment with its status, dates, submitter and review (CSV or XLSX)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.deadlines import days_overdue
from bot.i18n import plain
from bot.services.progress import assignment_views

COLUMNS = (
    "phase",
    "task",
    "unit",
    "status",
    "due",
    "overdue_days",
    "submitted_at",
    "submitter",
    "late",
    "review",
    "review_reason",
)


@dataclass
class Export:
    """A table ready to be written: translated headers and one row per assignment."""

    header: list[str]
    rows: list[list[str | int | None]]


def _local(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else None


async def build_export(
    session: AsyncSession, campaign: m.Campaign, now: datetime, lang: str
) -> Export:
    """Collect the export rows; dates are in the campaign's time zone."""
    zone = ZoneInfo(campaign.timezone)
    header = [plain(f"export.{name}", lang) for name in COLUMNS]
    rows: list[list[str | int | None]] = []
    for view in await assignment_views(session, campaign, now):
        overdue_days = days_overdue(view.due_at, now) if view.overdue else None
        rows.append(
            [
                view.phase_name,
                view.task_title,
                view.unit_name,
                plain(f"state.{view.status}", lang),
                _local(view.due_at, zone),
                overdue_days,
                _local(view.last_submitted_at, zone),
                view.submitter,
                None
                if view.late is None
                else plain("export.yes" if view.late else "export.no", lang),
                plain(f"export.review_{view.review}", lang) if view.review else None,
                view.review_reason,
            ]
        )
    return Export(header, rows)


def write_csv(export: Export, path: Path) -> None:
    """Write the export as UTF-8 CSV with a BOM so that Excel reads the Chinese text."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(export.header)
        writer.writerows(["" if v is None else v for v in row] for row in export.rows)


def write_xlsx(export: Export, path: Path, title: str) -> None:
    """Write the export as an Excel workbook with a frozen, filtered header row."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31] or "duban"
    sheet.append(export.header)
    for row in export.rows:
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    for index, name in enumerate(export.header, start=1):
        values = [name, *(row[index - 1] for row in export.rows)]
        width = max(_display_width(str(v)) for v in values if v is not None)
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = min(60, width + 2)
    book.save(path)


def _display_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
