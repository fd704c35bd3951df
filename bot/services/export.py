"""Export a campaign: one CSV row per assignment, or an Excel workbook people can read.

The workbook has a summary sheet (per task: handed in of total, late, overdue), one sheet per
phase (unit × task: state and when it was handed in), every assignment as a flat table, and
every submission version with its reviews. Dates are in the campaign's time zone.
"""

from __future__ import annotations

import asyncio
import csv
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.db import models as m
from bot.domain.assignments import DONE
from bot.domain.deadlines import days_overdue
from bot.domain.text import printable
from bot.i18n import plain
from bot.services.progress import (
    AssignmentView,
    CampaignProgress,
    assignment_views,
    campaign_progress,
)

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
# Excel's limits: sheet names, characters in one cell.
SHEET_NAME_MAX = 31
CELL_MAX = 32_000
DATE_FORMAT = "yyyy-mm-dd hh:mm"
# Fill and font colour per state, the usual Excel "good / neutral / bad" palette.
STATE_STYLES = {
    "accepted": ("C6EFCE", "006100"),
    "submitted": ("DDEBF7", "1F4E78"),
    "returned": ("FFEB9C", "9C5700"),
    "overdue": ("FFC7CE", "9C0006"),
    "archived": ("EDEDED", "595959"),
    "not_owed": ("F2F2F2", "808080"),
}
HEADER_FILL = "1F4E78"

Value = str | int | float | datetime | None


@dataclass
class Export:
    """A table ready to be written: translated headers and one row per assignment."""

    header: list[str]
    rows: list[list[Value]]


def _local(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else None


def _rows(views: list[AssignmentView], now: datetime, zone: ZoneInfo, lang: str) -> Export:
    header = [plain(f"export.{name}", lang) for name in COLUMNS]
    rows: list[list[Value]] = []
    for view in views:
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


async def build_export(
    session: AsyncSession, campaign: m.Campaign, now: datetime, lang: str
) -> Export:
    """Collect the export rows; dates are in the campaign's time zone."""
    views = await assignment_views(session, campaign, now)
    return _rows(views, now, ZoneInfo(campaign.timezone), lang)


# What makes a spreadsheet read a cell as a formula (OWASP "CSV injection"): the four
# signs, and a leading tab or carriage return that spreadsheets skip before one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(value: Value) -> Value:
    """Keep a spreadsheet from running plan or user text as a formula (CSV injection), and
    drop control characters a reader would choke on."""
    if isinstance(value, str):
        value = printable(value)
        if value[:1] in FORMULA_STARTS:
            return "'" + value
    return value


def write_csv(export: Export, path: Path) -> None:
    """Write the export as UTF-8 CSV with a BOM so that Excel reads the Chinese text."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([printable(name) for name in export.header])
        writer.writerows(["" if v is None else _safe_text(v) for v in row] for row in export.rows)


# -- the workbook ---------------------------------------------------------------------------


@dataclass
class Cell:
    """One value with how it looks: a state colour, a number or date format."""

    value: Value
    state: str | None = None
    number_format: str | None = None


@dataclass
class Sheet:
    """One worksheet: a header row and rows below it."""

    title: str
    header: list[str]
    rows: list[list[Cell]] = field(default_factory=list)


@dataclass
class Workbook:
    """Every sheet of the export, ready to be written."""

    title: str
    sheets: list[Sheet]
    assignments: int


def _naive_local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    # Excel has no time zones: it shows what it is given, so give it the campaign's wall time.
    return moment.astimezone(zone).replace(tzinfo=None) if moment else None


def _when(moment: datetime | None, zone: ZoneInfo) -> Cell:
    return Cell(_naive_local(moment, zone), number_format=DATE_FORMAT)


def _state_of(view: AssignmentView) -> str:
    return "overdue" if view.overdue else view.status


def _summary(progress: CampaignProgress, views: list[AssignmentView], lang: str) -> Sheet:
    zone = ZoneInfo(progress.timezone)

    def col(name: str) -> str:
        return plain(f"reports.xlsx.{name}", lang)

    late: dict[str, int] = {}
    for view in views:
        if view.status in DONE and view.late:
            late[view.task_key] = late.get(view.task_key, 0) + 1
    sheet = Sheet(
        col("summary"),
        [col(n) for n in ("phase", "task", "due", "total", "done", "accepted")]
        + [col(n) for n in ("late", "overdue", "rate")],
    )
    for phase in progress.phases:
        if not phase.tasks:
            sheet.rows.append([Cell(phase.name), Cell(col("no_tasks"), "not_owed")])
        # A recurring task: its row (occurrences due so far), then one row per occurrence.
        for task in [x for entry in phase.tasks for x in (entry, *entry.occurrences)]:
            rate = task.submitted / task.total if task.total else 0.0
            sheet.rows.append(
                [
                    Cell(phase.name),
                    Cell(task.title),
                    _when(task.due_at, zone),
                    Cell(task.total),
                    Cell(task.submitted, "accepted" if task.submitted == task.total else None),
                    Cell(task.accepted),
                    Cell(sum(late.get(o.key, 0) for o in task.occurrences or [task])),
                    Cell(task.overdue, "overdue" if task.overdue else None),
                    Cell(rate, number_format="0%"),
                ]
            )
    total, submitted, accepted, overdue = progress.totals()
    sheet.rows.append(
        [
            Cell(col("all")),
            Cell(None),
            Cell(None),
            Cell(total),
            Cell(submitted),
            Cell(accepted),
            Cell(sum(late.values())),
            Cell(overdue, "overdue" if overdue else None),
            Cell(submitted / total if total else 0.0, number_format="0%"),
        ]
    )
    return sheet


async def _units(session: AsyncSession, campaign: m.Campaign) -> list[tuple[str, str, str]]:
    rows = await session.execute(
        select(m.Unit.key, m.Unit.name, m.UnitKind.name)
        .join(m.UnitKind, m.UnitKind.id == m.Unit.kind_id)
        .where(m.Unit.campaign_id == campaign.id, m.Unit.archived_at.is_(None))
        .order_by(m.Unit.position)
    )
    return [(key, name, kind) for key, name, kind in rows]


def _phase_sheets(
    progress: CampaignProgress,
    views: list[AssignmentView],
    units: list[tuple[str, str, str]],
    lang: str,
) -> list[Sheet]:
    zone = ZoneInfo(progress.timezone)
    by_cell = {(v.unit_key, v.task_key): v for v in views}
    sheets = []
    for phase in progress.phases:
        if not phase.tasks:
            continue  # nothing is owed in it; the summary says so
        header = [plain("reports.xlsx.unit", lang), plain("reports.xlsx.kind", lang)]
        columns = [x for entry in phase.tasks for x in (entry.occurrences or [entry])]
        for task in columns:
            header += [task.title, plain("reports.xlsx.submitted_at", lang, task=task.title)]
        sheet = Sheet(phase.name, header)
        for unit_key, unit_name, kind in units:
            row = [Cell(unit_name), Cell(kind)]
            owes = False
            for task in columns:
                view = by_cell.get((unit_key, task.key))
                if view is None:
                    row += [Cell(plain("reports.xlsx.not_owed", lang), "not_owed"), Cell(None)]
                    continue
                owes = True
                state = _state_of(view)
                row += [
                    Cell(plain(f"state.{state}", lang), state),
                    _when(view.last_submitted_at, zone),
                ]
            if owes:
                sheet.rows.append(row)
        sheets.append(sheet)
    return sheets


def _flat(export: Export, views: list[AssignmentView]) -> list[list[Cell]]:
    rows = []
    for values, view in zip(export.rows, views, strict=True):
        cells = [Cell(v) for v in values]
        cells[3].state = _state_of(view)
        rows.append(cells)
    return rows


async def _submissions(session: AsyncSession, campaign: m.Campaign, lang: str) -> Sheet:
    zone = ZoneInfo(campaign.timezone)

    def col(name: str) -> str:
        return plain(f"reports.xlsx.{name}", lang)

    submitter = aliased(m.Person)
    reviewer = aliased(m.Person)
    s, r = m.Submission, m.Review
    rows = await session.execute(
        select(s, m.Phase.name, m.Task.title, m.Unit.name, submitter.name, r, reviewer.name)
        .join(m.Assignment, m.Assignment.id == s.assignment_id)
        .join(m.Task, m.Task.id == m.Assignment.task_id)
        .join(m.Phase, m.Phase.id == m.Task.phase_id)
        .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
        .outerjoin(submitter, submitter.id == s.person_id)
        .outerjoin(r, r.submission_id == s.id)
        .outerjoin(reviewer, reviewer.id == r.reviewer_id)
        .where(m.Assignment.campaign_id == campaign.id, m.Assignment.archived_at.is_(None))
        .order_by(m.Task.position, m.Unit.position, s.version, r.created_at, r.id)
    )
    sheet = Sheet(
        col("submissions"),
        [col(n) for n in ("phase", "task", "unit", "version", "type", "content", "submitter", "at")]
        + [col(n) for n in ("late", "review", "reviewer", "reviewed_at", "reason")],
    )
    listed = list(rows)
    files = await files_of(session, [row[0].id for row in listed])
    for sub, phase, task, unit, who, review, reviewer_name in listed:
        # Every file of the version by name, then its text (a caption is the version's text).
        names = "、".join(f.file_name or f"[{f.kind}]" for f in files.get(sub.id, []))
        content = "\n".join(part for part in (names, sub.text or "") if part)
        decision = review.decision if review is not None else None
        sheet.rows.append(
            [
                Cell(phase),
                Cell(task),
                Cell(unit),
                Cell(sub.version),
                Cell(plain(f"reports.xlsx.kind_{sub.kind}", lang)),
                Cell((content or "")[:CELL_MAX] or None),
                Cell(who),
                _when(sub.submitted_at, zone),
                Cell(col("yes") if sub.late else None, "overdue" if sub.late else None),
                Cell(
                    plain(f"export.review_{decision}", lang) if decision else None,
                    {"accepted": "accepted", "returned": "returned"}.get(decision or ""),
                ),
                Cell(reviewer_name if review is not None else None),
                _when(review.created_at if review is not None else None, zone),
                Cell(review.reason if review is not None else None),
            ]
        )
    return sheet


async def build_workbook(
    session: AsyncSession, campaign: m.Campaign, now: datetime, lang: str
) -> Workbook:
    """Read everything the workbook shows, at one moment, in one transaction."""
    progress = await campaign_progress(session, campaign, now)
    views = await assignment_views(session, campaign, now)
    units = await _units(session, campaign)
    submissions = await _submissions(session, campaign, lang)
    zone = ZoneInfo(campaign.timezone)

    def assemble() -> list[Sheet]:
        export = _rows(views, now, zone, lang)
        rows = _flat(export, views)
        flat = Sheet(plain("reports.xlsx.all_assignments", lang), export.header, rows)
        return [_summary(progress, views, lang), *_phase_sheets(progress, views, units, lang), flat]

    # Tens of thousands of rows take a second to lay out: off the event loop (issue 14 case 6).
    sheets = [*await asyncio.to_thread(assemble), submissions]
    # Work outside the plan (SPEC §4.6): reports and notices, when there are any.
    from bot.services.export_work import notices_sheet, reports_sheet

    for extra in (
        await reports_sheet(session, campaign, lang),
        await notices_sheet(session, campaign, lang),
    ):
        if extra.rows:
            sheets.append(extra)
    return Workbook(campaign.title, sheets, len(views))


def display_width(text: str) -> int:
    """Return how many columns a text takes (a Chinese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _width(cells: Sequence[Any]) -> float:
    widest = 4
    for value in cells:
        if value is None:
            continue
        if isinstance(value, datetime):
            widest = max(widest, 16)
        elif isinstance(value, float):
            widest = max(widest, 6)
        else:
            widest = max(widest, display_width(str(value)))
    # A little air; very long texts (a submitted text) wrap in the cell instead.
    return min(widest + 3, 60)


def _sheet_title(name: str, taken: set[str]) -> str:
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in name).strip("' ") or "sheet"
    title = cleaned[:SHEET_NAME_MAX]
    n = 2
    while title.lower() in taken:
        suffix = f" ({n})"
        title = cleaned[: SHEET_NAME_MAX - len(suffix)] + suffix
        n += 1
    taken.add(title.lower())
    return title


def _text_cell(cell: Any) -> Any:
    """Keep a text that starts with "=" a text: openpyxl would store it as a formula."""
    if isinstance(cell.value, str) and cell.value.startswith("="):
        cell.data_type = "s"
    return cell


def xlsx_bytes(book: Workbook) -> bytes:
    """Write the workbook: frozen, filtered, coloured header; widths that fit Chinese text."""
    from openpyxl import Workbook as OpenpyxlWorkbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    # Write-only mode streams rows: a province-sized campaign fits in memory.
    out = OpenpyxlWorkbook(write_only=True)
    out.properties.title = printable(book.title, multiline=False)[:255]
    out.properties.creator = "duban"
    taken: set[str] = set()
    header_font = Font(bold=True, color="FFFFFF")
    header_fill = PatternFill("solid", fgColor=HEADER_FILL)
    fills = {k: PatternFill("solid", fgColor=fill) for k, (fill, _) in STATE_STYLES.items()}
    fonts = {k: Font(color=colour) for k, (_, colour) in STATE_STYLES.items()}
    for sheet in book.sheets:
        ws = out.create_sheet(_sheet_title(printable(sheet.title, multiline=False), taken))
        columns = max([len(sheet.header), *(len(row) for row in sheet.rows)])
        for index in range(columns):
            values: list[Any] = [sheet.header[index] if index < len(sheet.header) else None]
            values += [row[index].value for row in sheet.rows if index < len(row)]
            ws.column_dimensions[get_column_letter(index + 1)].width = _width(values)
        ws.freeze_panes = "A2"
        last = get_column_letter(max(columns, 1))
        ws.auto_filter.ref = f"A1:{last}{len(sheet.rows) + 1}"
        header = []
        for name in sheet.header:
            cell = _text_cell(WriteOnlyCell(ws, value=printable(name)))
            cell.font = header_font
            cell.fill = header_fill
            cell.alignment = Alignment(vertical="center")
            header.append(cell)
        ws.append(header)
        for row in sheet.rows:
            cells = []
            for item in row:
                value = item.value
                if isinstance(value, str):
                    # openpyxl refuses control characters (IllegalCharacterError).
                    value = printable(value)[:CELL_MAX]
                cell = _text_cell(WriteOnlyCell(ws, value=value))
                if item.state in fills:
                    cell.fill = fills[item.state]
                    cell.font = fonts[item.state]
                if item.number_format:
                    cell.number_format = item.number_format
                cells.append(cell)
            ws.append(cells)
    buffer = io.BytesIO()
    out.save(buffer)
    return buffer.getvalue()


async def files_of(
    session: AsyncSession, submission_ids: list[int]
) -> dict[int, list[m.SubmissionFile]]:
    """Return each version's files in the order they were sent, by submission id."""
    out: dict[int, list[m.SubmissionFile]] = {}
    for start in range(0, len(submission_ids), 500):
        chunk = submission_ids[start : start + 500]
        for row in await session.scalars(
            select(m.SubmissionFile)
            .where(m.SubmissionFile.submission_id.in_(chunk))
            .order_by(m.SubmissionFile.submission_id, m.SubmissionFile.position)
        ):
            out.setdefault(row.submission_id, []).append(row)
    return out
