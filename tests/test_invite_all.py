"""`duban invite contact --all`: one stored code per unit, as a sheet or printable QR cards."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.cli import Result, clean_env, run_duban
from tests.conftest import EXAMPLE

zxingcpp = pytest.importorskip("zxingcpp")
pypdf = pytest.importorskip("pypdf")

ROSTER = Path(__file__).parent / "fixtures" / "intake" / "roster-grassroots-2027.xlsx"
UNITS = 13  # the example campaign's units


def duban(work: Path, *args: str) -> Result:
    return run_duban(*args, cwd=work, env=clean_env())


def stored_hashes(work: Path) -> set[str]:
    with sqlite3.connect(work / "duban.db") as con:
        return {
            row[0]
            for row in con.execute(
                "SELECT code_hash FROM invites WHERE revoked_at IS NULL AND role = 'contact'"
            )
        }


def set_username(work: Path, name: str) -> None:
    with sqlite3.connect(work / "duban.db") as con:
        con.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES ('bot_username', ?, "
            "'2026-01-01 00:00:00')",
            (name,),
        )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    assert duban(tmp_path, "plan", "load", str(EXAMPLE)).code == 0
    return tmp_path


def sheet_rows(path: Path) -> list[tuple[object, ...]]:
    return list(load_workbook(path).worksheets[0].iter_rows(values_only=True))


def test_sheet_codes_stored_and_not_repeated(work: Path) -> None:
    made = duban(work, "invite", "contact", "--all", "-o", "invites.xlsx")
    assert made.code == 0, made.err
    rows = sheet_rows(work / "invites.xlsx")
    assert rows[0] == ("单位", "单位类别", "身份", "联络员", "邀请码", "链接", "有效期至")
    assert len(rows) == 1 + UNITS
    codes = [str(r[4]) for r in rows[1:]]
    # Every printed code is stored (hashed) and works: no username yet, so "/start CODE".
    assert {hashlib.sha256(c.encode()).hexdigest() for c in codes} == stored_hashes(work)
    assert all(r[5] == f"/start {r[4]}" for r in rows[1:])
    assert "用户名" in made.out

    # A second run makes none: every unit still holds an unused code.
    again = duban(work, "invite", "contact", "--all", "-o", "again.xlsx")
    assert again.code == 0 and "13 个单位已有未使用的邀请码" in again.out
    assert not (work / "again.xlsx").exists()

    # --renew withdraws them and prints new ones; --kind narrows to one kind.
    renewed = duban(
        work, "invite", "contact", "--all", "--renew", "--kind", "industry", "-o", "r.xlsx"
    )
    assert renewed.code == 0, renewed.err
    new_rows = sheet_rows(work / "r.xlsx")[1:]
    assert 0 < len(new_rows) < UNITS and {r[1] for r in new_rows} == {"产业工会"}
    hashes = stored_hashes(work)
    assert len(hashes) == UNITS
    assert all(hashlib.sha256(str(r[4]).encode()).hexdigest() in hashes for r in new_rows)


def test_bad_invocations_are_one_line(work: Path) -> None:
    for args, text in [
        (("invite", "office", "--all", "-o", "x.xlsx"), "has no unit"),
        (("invite", "contact", "--all"), "-o"),
        (("invite", "contact", "--all", "-o", "x.txt"), ".xlsx or .pdf"),
        (("invite", "contact", "--all", "--kind", "nope", "-o", "x.xlsx"), "unknown unit kind"),
    ]:
        result = duban(work, *args)
        assert result.code != 0 and "Traceback" not in result.err
        assert text in result.err, result.err
        assert len(result.err.strip().splitlines()) == 1


def test_pdf_cards_show_chinese_and_their_qr_codes_decode_to_the_links(work: Path) -> None:
    set_username(work, "duban_test_bot")
    made = duban(work, "invite", "head", "--all", "-o", "cards.pdf")
    assert made.code == 0, made.err
    reader = pypdf.PdfReader(work / "cards.pdf")
    assert len(reader.pages) == 4  # 13 cards, four to a page
    text = "".join(page.extract_text() for page in reader.pages)
    # pypdf reads fpdf2's embedded Identity encoding one byte at a time: drop the NULs.
    flat = re.sub(r"[\s\x00]+", "", text)
    assert "甲县总工会" in flat and "负责人" in flat
    links = re.findall(r"https://t\.me/duban_test_bot\?start=[A-Za-z0-9_\-]+", flat)
    assert len(links) == UNITS
    decoded = []
    for page in reader.pages:
        for image in page.images:
            results = zxingcpp.read_barcodes(image.image)
            assert len(results) == 1
            decoded.append(results[0].text)
    assert decoded == links
    codes = {link.rsplit("=", 1)[1] for link in links}
    with sqlite3.connect(work / "duban.db") as con:
        stored = {r[0] for r in con.execute("SELECT code_hash FROM invites WHERE role = 'head'")}
    assert {hashlib.sha256(c.encode()).hexdigest() for c in codes} == stored


MINIMAL = """[campaign]
key = "survey-2027"
title = "基层工会建设质量提升年"
timezone = "Asia/Shanghai"

[[phases]]
key = "p1"
name = "调查摸底"
start = 2027-03-01
end = 2027-03-31

  [[phases.tasks]]
  key = "t1"
  title = "摸底表"
  due = 2027-03-20
"""


def test_contact_names_come_from_the_roster(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(MINIMAL, encoding="utf-8")
    imported = duban(tmp_path, "units", "import", str(ROSTER), "--into", str(plan))
    assert imported.code == 0, imported.err
    assert "10" in imported.out
    text = plan.read_text(encoding="utf-8")
    assert "138" not in text and "赵一" not in text  # no phone, no contact in the plan
    assert text.index("[[units]]") < text.index("[[phases]]")
    assert duban(tmp_path, "plan", "check", str(plan)).code == 0
    assert duban(tmp_path, "plan", "load", str(plan)).code == 0
    made = duban(tmp_path, "invite", "contact", "--all", "--roster", str(ROSTER), "-o", "i.xlsx")
    assert made.code == 0, made.err
    rows = {r[0]: r for r in sheet_rows(tmp_path / "i.xlsx")[1:]}
    assert len(rows) == 10
    assert rows["甲县总工会"][3] == "赵一" and rows["市公交集团工会"][3] == "陈十"
    assert all("138" not in str(cell) for r in rows.values() for cell in r)
