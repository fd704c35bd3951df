"""`duban remind --dry-run`, run as a subprocess on the example campaign."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.cli import Result, clean_env, run_duban
from tests.conftest import EXAMPLE


def duban(work: Path, *args: str, **env: str) -> Result:
    return run_duban(*args, cwd=work, env=clean_env(**env))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example campaign with a contact for 甲县 and an office group."""
    path = tmp_path_factory.mktemp("remind")
    loaded = duban(path, "plan", "load", str(EXAMPLE))
    assert loaded.code == 0, loaded.err
    with sqlite3.connect(path / "duban.db") as conn:
        campaign, created = conn.execute("SELECT id, created_at FROM campaigns").fetchone()
        unit = conn.execute("SELECT id FROM units WHERE key = 'county-a'").fetchone()[0]
        for telegram_id, name, group, role, unit_id in (
            (11, "张联络员", False, "contact", unit),
            (-100, "办公室群", True, "office", None),
        ):
            person = conn.execute(
                "INSERT INTO people (telegram_id, is_group, name, reachable, created_at)"
                " VALUES (?, ?, ?, 1, ?)",
                (telegram_id, group, name, created),
            ).lastrowid
            conn.execute(
                "INSERT INTO roles (person_id, campaign_id, role, unit_id, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (person, campaign, role, unit_id, created),
            )
    return path


def lines_of(result: Result, needle: str) -> list[str]:
    return [line for line in result.out.splitlines() if needle in line]


def test_the_tick_ending_at_t(work: Path) -> None:
    result = duban(work, "remind", "--dry-run", "--at", "2017-05-08T09:00")
    assert result.code == 0, result.err
    # Sunday 5-7 18:00 was "3 days before" 5-10; it goes out Monday at the window's opening.
    [line] = lines_of(result, "甲县总工会")
    assert line.startswith("5月8日 09:00（周一）")
    assert "书面调研报告 · 甲县总工会 · 截止前 3 天提醒 → 张联络员" in line
    assert "原定 5月7日 18:00（周日），为非工作日" in line
    assert "乙县总工会 · 截止前 3 天提醒 → 无可联系的联络员" in result.out
    assert "每日简报 → 群「办公室群」（每个工作日 09:00）" in result.out
    assert "每周通报 → 群「办公室群」（每周一 09:00）" in result.out
    assert result.out.rstrip().endswith("共 15 条。")


def test_a_span_lists_every_message_with_why(work: Path) -> None:
    result = duban(
        work, "remind", "--dry-run", "--at", "2017-05-09T00:00", "--until", "2017-05-15T23:59"
    )
    assert result.code == 0, result.err
    mine = [line for line in lines_of(result, "书面调研报告 · 甲县总工会") if "张联络员" in line]
    assert [line.split("  ")[0] for line in mine] == [
        "5月9日 18:00（周二）",
        "5月10日 16:00（周三）",
        "5月10日 18:00（周三）",
        "5月11日 18:00（周四）",
        "5月12日 18:00（周五）",
        "5月15日 18:00（周一）",
    ]
    # 甲县 has no head: the first escalation goes to the office, and says why.
    [escalation] = lines_of(result, "甲县总工会 · 逾期 1 个工作日升级")
    assert "→ 群「办公室群」" in escalation and "单位没有负责人，改报办公室" in escalation
    assert "逾期 3 个工作日升级（领导小组和办公室） → 群「办公室群」" in result.out


def test_submitted_assignments_are_left_out(work: Path) -> None:
    copy = work / "submitted"
    copy.mkdir(exist_ok=True)
    with sqlite3.connect(work / "duban.db") as src, sqlite3.connect(copy / "duban.db") as dst:
        src.backup(dst)
        dst.execute(
            "UPDATE assignments SET status = 'submitted' WHERE unit_id ="
            " (SELECT id FROM units WHERE key = 'county-a')"
        )
    result = duban(copy, "remind", "--dry-run", "--at", "2017-05-08T09:00")
    assert result.code == 0, result.err
    assert "甲县总工会" not in result.out
    assert "共 14 条。" in result.out


def test_english_and_nothing_due(work: Path) -> None:
    result = duban(
        work, "remind", "--dry-run", "--at", "2017-05-07T03:00", DUBAN_UI_DEFAULT_LANGUAGE="en"
    )
    assert result.code == 0, result.err
    assert "Reminder preview:" in result.out
    assert "No messages in this period." in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dry-run", "--at", "next monday"), "--at：无法识别的时间 next monday"),
        (("--dry-run", "--at", "2017-05-09", "--until", "2017-05-08"), "--until 不能早于 --at"),
        (("--at", "2017-05-09"), "--dry-run"),
    ],
)
def test_bad_input_is_one_line(work: Path, args: tuple[str, ...], message: str) -> None:
    result = duban(work, "remind", *args)
    assert result.code == 1
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.err
