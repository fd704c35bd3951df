"""One odd string never breaks an export or a view (issue 11 case 7, SPEC §3).

Control characters reach the database from people (a contact's text, a file name, a Telegram
display name, a return reason) and from plans written before `plan check` refused them. Every
writer survives them: Telegram text, XLSX, CSV, ICS, charts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from bot.db import models as m
from bot.db.engine import Database
from bot.plan import PlanInvalid, parse_plan
from bot.reports.ics import unit_calendar
from bot.services.export import build_export, write_csv
from tests.conftest import EXAMPLE
from tests.harness import T0, Harness
from tests.reliability import message_kind, record

# Word's manual line break, the other C0 controls, DEL, a newline, a tab, HTML, a formula.
ODD = "甲\x0b县\x01总\x1f工会\x7f\n<b>&amp;</b>\t=1+1"


@pytest.fixture
async def h(db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(db, T0)
    yield harness
    await harness.close()


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('title = "书面调研报告"', 'title = "书面\\u000b调研报告"', "phases[1].tasks[0].title"),
        ('name = "甲县总工会"', 'name = "甲县\\n总工会"', "units[0].name"),
        ('aliases = ["甲县"]', 'aliases = ["甲\\u0001县"]', "units[0].aliases[0]"),
        ('name = "调查研究"', 'name = "调查\\u007f研究"', "phases[1].name"),
        ('key = "county-b"', 'key = "county-b\\n"', "units[1].key"),
    ],
)
def test_plan_check_rejects_control_characters_with_file_line_and_key(
    old: str, new: str, key: str
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    bad = text.replace(old, new, 1)
    line = bad[: bad.index(new)].count("\n") + 1
    with pytest.raises(PlanInvalid) as caught:
        parse_plan(bad, "campaign.toml")
    [error] = [e for e in caught.value.errors if "control character" in e.message]
    assert (error.file, error.line, error.key) == ("campaign.toml", line, key)
    record(
        "bad input",
        "control characters in plan keys, names, aliases and titles",
        4,
        "plan check refuses them with file, line and key",
    )


def test_a_description_may_hold_newlines_and_tabs() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'description = "成立领导小组，分解任务，明确时间表"',
        'description = "成立领导小组\\n分解任务\\t明确时间表"',
    )
    plan = parse_plan(text, "campaign.toml")
    assert "\n" in plan.phases[0].description


async def test_every_writer_survives_odd_strings(h: Harness, tmp_path: Path) -> None:
    office = await h.register("office", name=ODD)
    contact = await h.register("contact", "甲县", name=ODD)
    # Strings from before plan check refused them, and from people.
    async with h.db.write() as session:
        await session.execute(update(m.Unit).where(m.Unit.key == "county-a").values(name=ODD))
        await session.execute(update(m.Task).where(m.Task.key == "arrangement").values(title=ODD))
        await session.execute(update(m.Phase).values(name=ODD))
    await h.send(contact, "/submit")
    _label, data = next(b for b in h.last_buttons(contact) if "sub:" in b[1])
    await h.press(contact, data)
    await h.send(contact, ODD)
    await h.press(contact, "sc:ok")
    for command in ("/status", "/unit county-a", "/overdue", "/mine", "/task arrangement"):
        sender = contact if command == "/mine" else office
        answers = await h.send(sender, command)
        assert answers and all(a.strip() for a in answers), command
    charts = [c for c in await h.send_calls(office, "/chart") if c.method == "sendPhoto"]
    assert charts
    exported = [c for c in await h.send_calls(office, "/export") if c.method == "sendDocument"]
    [(_, content, _)] = exported[0].files.values()
    book = load_workbook(io.BytesIO(content))
    cells = [str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row]
    assert any("甲\n县 总 工会" in c for c in cells)  # U+000B is a line break
    async with h.db.read() as session:
        campaign = await session.scalar(select(m.Campaign))
        unit = await session.scalar(select(m.Unit).where(m.Unit.key == "county-a"))
        assert campaign is not None and unit is not None
        export = await build_export(session, campaign, h.now, "zh")
        ics, _count = await unit_calendar(session, campaign, unit, h.now, "zh")
    path = tmp_path / "export.csv"
    write_csv(export, path)
    rows = list(csv.reader(path.open(encoding="utf-8-sig")))
    assert len(rows) == len(export.rows) + 1
    assert not any(ch in "".join(map("".join, rows)) for ch in "\x0b\x01\x1f\x7f")
    assert b"BEGIN:VCALENDAR" in ics and b"\x0b" not in ics and b"\x01" not in ics
    calendars = [
        c for c in await h.send_calls(office, "/calendar county-a") if c.method == "sendDocument"
    ]
    [(_, sent_ics, _)] = calendars[0].files.values()
    assert b"BEGIN:VEVENT" in sent_ics
    message_kind(
        "odd strings (control characters, HTML, formulas) in names, titles, texts",
        "every writer survives: chat answers, XLSX, CSV, ICS, charts",
    )
