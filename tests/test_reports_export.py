"""The Excel export, opened with openpyxl and checked against the database."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.db import models as m
from bot.db.engine import Database
from bot.domain.assignments import DONE, OPEN
from bot.services.campaigns import pick_campaign
from bot.services.export import (
    Cell,
    Sheet,
    Workbook,
    build_export,
    build_workbook,
    display_width,
    write_csv,
    xlsx_bytes,
)
from tests.reports_world import NOW, seed

ZONE = ZoneInfo("Asia/Shanghai")


def local(moment: datetime | None) -> datetime | None:
    return moment.astimezone(ZONE).replace(tzinfo=None) if moment else None


@pytest.fixture
async def seeded(db: Database) -> Database:
    await seed(db)
    return db


async def _facts(db: Database) -> dict[str, object]:
    async with db.read() as session:
        latest = (
            select(m.Submission.assignment_id, func.max(m.Submission.version).label("v"))
            .group_by(m.Submission.assignment_id)
            .subquery()
        )
        rows = list(
            await session.execute(
                select(m.Assignment, m.Unit, m.Task, m.Phase.name, m.Submission)
                .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
                .join(m.Task, m.Task.id == m.Assignment.task_id)
                .join(m.Phase, m.Phase.id == m.Task.phase_id)
                .outerjoin(latest, latest.c.assignment_id == m.Assignment.id)
                .outerjoin(
                    m.Submission,
                    (m.Submission.assignment_id == m.Assignment.id)
                    & (m.Submission.version == latest.c.v),
                )
            )
        )
        submissions = list(await session.scalars(select(m.Submission)))
        reviews = list(await session.scalars(select(m.Review)))
    return {"rows": rows, "submissions": submissions, "reviews": reviews}


async def test_workbook_sheets_and_figures_match_the_database(seeded: Database) -> None:
    async with seeded.read() as session:
        campaign = await pick_campaign(session)
        book = await build_workbook(session, campaign, NOW, "zh")
    data = xlsx_bytes(book)
    facts = await _facts(seeded)
    rows = facts["rows"]
    assert isinstance(rows, list)

    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == [
        "汇总",
        "动员部署",
        "调查研究",
        "排查化解",
        "总结落实",
        "全部单位任务",
        "报送记录",
    ]
    assert wb.active is not None and wb.active.title == "汇总"
    for ws in wb.worksheets:
        assert ws.freeze_panes == "A2", ws.title
        assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:"), ws.title
        header = [c.value for c in ws[1]]
        assert all(c.font.bold for c in ws[1] if c.value)
        for index, name in enumerate(header, start=1):
            if name:
                width = ws.column_dimensions[ws.cell(1, index).column_letter].width
                assert width >= display_width(str(name)), (ws.title, name)

    # Summary: per task, handed in of total, accepted, late, overdue, as the database says.
    summary = wb["汇总"]
    header = [c.value for c in summary[1]]
    assert header == [
        "阶段", "任务", "截止时间", "应报", "已报", "已审", "逾期报送", "逾期未报", "完成率"
    ]  # fmt: skip
    by_task = {r[1]: r for r in summary.iter_rows(min_row=2, values_only=True) if r[2]}
    assert set(by_task) == {task.title for _, _, task, _, _ in rows}
    for title, line in by_task.items():
        mine = [(a, s) for a, _, task, _, s in rows if task.title == title]
        due = next(task.due_at for _, _, task, _, _ in rows if task.title == title)
        assert line[2] == local(due) and line[2].hour == 18
        assert line[3] == len(mine)
        assert line[4] == sum(a.status in DONE for a, _ in mine)
        assert line[5] == sum(a.status == "accepted" for a, _ in mine)
        assert line[6] == sum(a.status in DONE and s is not None and s.late for a, s in mine)
        assert line[7] == sum(a.status in OPEN and a.due_at < NOW for a, _ in mine)
        assert line[8] == pytest.approx(line[4] / line[3])
    assert any(line[6] for line in by_task.values())  # the seed has late ones
    inspection = [r for r in summary.iter_rows(min_row=2, values_only=True) if r[0] == "督促检查"]
    assert inspection and inspection[0][1] == "本阶段无需报送材料"
    totals = list(summary.iter_rows(values_only=True))[-1]
    assert totals[0] == "合计" and totals[3] == len(rows)

    # One sheet per phase: unit × task, the state and when it was handed in.
    research = wb["调查研究"]
    assert [c.value for c in research[1]] == [
        "单位",
        "单位类别",
        "书面调研报告",
        "书面调研报告·报送时间",
    ]
    matrix = {r[0]: r for r in research.iter_rows(min_row=2, values_only=True)}
    owed = [(a, u, s) for a, u, task, _, s in rows if task.key == "research-report"]
    assert set(matrix) == {u.name for _, u, _ in owed}
    labels = {
        "accepted": "已通过",
        "submitted": "已报送",
        "pending": "待报送",
        "returned": "已退回",
    }
    for a, u, s in owed:
        state = "已逾期" if a.status in OPEN and a.due_at < NOW else labels[a.status]
        assert matrix[u.name][2] == state
        assert matrix[u.name][3] == (local(s.submitted_at) if s else None)
    fills = {
        row[2].value: row[2].fill.fgColor.rgb
        for row in research.iter_rows(min_row=2)
        if row[2].value
    }
    assert fills["已通过"].endswith("C6EFCE") and fills["已逾期"].endswith("FFC7CE")
    # A unit that does not owe a task of the phase is marked, not left blank.
    screening = wb["排查化解"]
    marks = [r for r in screening.iter_rows(min_row=2, values_only=True) if "—" in r]
    assert marks, "问题清单和工作台账 is owed by 9 of 13 units"

    # Every assignment as a flat table, like the CSV.
    flat = list(wb["全部单位任务"].iter_rows(values_only=True))
    assert flat[0][:4] == ("阶段", "任务", "单位", "状态") and len(flat) == len(rows) + 1

    # Every submission version and every review of it.
    submissions, reviews = facts["submissions"], facts["reviews"]
    assert isinstance(submissions, list) and isinstance(reviews, list)
    log = list(wb["报送记录"].iter_rows(min_row=2, values_only=True))
    per_sub = {s.id: sum(1 for r in reviews if r.submission_id == s.id) for s in submissions}
    assert len(log) == sum(max(1, n) for n in per_sub.values())
    assert {r[3] for r in log} == {1, 2}
    returned = [r for r in log if r[9] == "退回"]
    assert returned and all(r[12] == "请补充典型案例" and r[10] == "办公室主任" for r in returned)
    stamps = {local(s.submitted_at) for s in submissions}
    assert {r[7] for r in log} == stamps
    assert {r[8] for r in log} == {"是", None}


async def test_english_workbook(seeded: Database) -> None:
    async with seeded.read() as session:
        campaign = await pick_campaign(session)
        book = await build_workbook(session, campaign, NOW, "en")
    wb = load_workbook(io.BytesIO(xlsx_bytes(book)))
    assert wb.sheetnames[0] == "Summary" and wb.sheetnames[-1] == "Submissions"


async def test_csv_keeps_one_row_per_assignment(seeded: Database, tmp_path: Path) -> None:
    async with seeded.read() as session:
        campaign = await pick_campaign(session)
        table = await build_export(session, campaign, NOW, "zh")
    path = tmp_path / "x.csv"
    write_csv(table, path)
    with path.open(encoding="utf-8-sig") as fh:
        lines = list(csv.reader(fh))
    assert len(lines) == 62 and lines[0][:3] == ["阶段", "任务", "单位"]


def test_text_that_looks_like_a_formula_stays_text(tmp_path: Path) -> None:
    book = Workbook(
        "t",
        [Sheet("a/b:c", ["=cmd|' /C calc'!A0"], [[Cell("=1+1")], [Cell("+1")]])],
        2,
    )
    wb = load_workbook(io.BytesIO(xlsx_bytes(book)))
    ws = wb["a b c"]
    assert ws["A1"].value == "=cmd|' /C calc'!A0" and ws["A1"].data_type == "s"
    assert ws["A2"].value == "=1+1" and ws["A2"].data_type == "s"
    table_path = tmp_path / "x.csv"
    from bot.services.export import Export

    write_csv(Export(["h"], [["=1+1"], ["@x"]]), table_path)
    assert table_path.read_text(encoding="utf-8-sig").splitlines()[1:] == ["'=1+1", "'@x"]
