"""The `duban` command line, run as a subprocess on a fresh SQLite database."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.services.invites import hash_code, hint_of
from tests.cli import Result, clean_env, run_duban
from tests.conftest import EXAMPLE, ROOT

TOKEN = "987654:CLI-secret-token"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path


def duban(work: Path, *args: str, **env: str) -> Result:
    return run_duban(*args, cwd=work, env=clean_env(**env))


def one_line_error(result: Result) -> str:
    assert result.code != 0
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    return lines[0]


def test_plan_check_prints_the_summary(work: Path) -> None:
    result = duban(work, "plan", "check", str(EXAMPLE))
    assert result.code == 0, result.err
    assert "5 个阶段 · 5 项任务 · 13 个单位 · 61 项单位任务" in result.out
    assert "最早截止：2017年4月10日 18:00（周一）" in result.out
    assert "最晚截止：2017年8月31日 18:00（周四）" in result.out
    assert "截止日落在非工作日的任务：1 项" in result.out
    assert "专项报告及典型经验材料" in result.out


def test_plan_check_in_english(work: Path) -> None:
    result = duban(work, "plan", "check", str(EXAMPLE), DUBAN_UI_DEFAULT_LANGUAGE="en")
    assert result.code == 0
    assert "5 phases · 5 tasks · 13 units · 61 assignments" in result.out
    assert "tasks due on a non-working day: 1" in result.out


def test_plan_check_lists_every_error(work: Path) -> None:
    broken = ROOT / "tests" / "plans" / "broken" / "03_due_outside_phase.toml"
    result = duban(work, "plan", "check", str(broken))
    assert result.code == 1
    assert f"{broken}:24: phases[0].tasks[0].due:" in result.err
    assert "Traceback" not in result.err


def test_load_status_export_invite(work: Path) -> None:
    load = duban(work, "plan", "load", str(EXAMPLE))
    assert load.code == 0, load.err
    assert "stability-2017" in load.out
    again = duban(work, "plan", "load", str(EXAMPLE))
    assert "没有变化" in again.out

    status = duban(work, "status")
    assert status.code == 0, status.err
    for title, total in [
        ("工作部署情况报告", 13),
        ("书面调研报告", 13),
        ("问题清单和工作台账", 9),
        ("专项报告及典型经验材料", 13),
        ("工作总结", 13),
    ]:
        assert re.search(rf"{title}\s+\S+ 18:00（周.）\s+0/{total}\s", status.out), title
    assert "督促检查" in status.out
    assert "合计：已报 0/61" in status.out

    unit = duban(work, "status", "--unit", "甲县")
    assert unit.code == 0
    assert unit.out.count("甲县总工会") == 5

    xlsx = work / "x.xlsx"
    exported = duban(work, "export", "--format", "xlsx", "-o", str(xlsx))
    assert exported.code == 0, exported.err
    book = load_workbook(xlsx)
    assert book.sheetnames[0] == "汇总" and "调查研究" in book.sheetnames
    sheet = book["全部单位任务"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("阶段", "任务", "单位", "状态")
    assert len(rows) == 62
    assert {r[2] for r in rows[1:]} >= {"甲县总工会", "市石化公司工会"}
    assert sheet.freeze_panes == "A2"

    csv_path = work / "x.csv"
    assert duban(work, "export", "--format", "csv", "-o", str(csv_path)).code == 0
    with csv_path.open(encoding="utf-8-sig") as fh:
        assert len(list(csv.reader(fh))) == 62

    made = duban(work, "invite", "contact", "甲县", "--uses", "2")
    assert made.code == 0, made.err
    code = re.search(r"邀请码：(\S+)", made.out)
    assert code and len(code.group(1)) >= 22  # 128 random bits
    assert "/start " + code.group(1) in made.out  # no username cached yet: the plain form
    listed = duban(work, "invite", "--list")
    assert hint_of(hash_code(code.group(1))) in listed.out and "甲县总工会" in listed.out
    assert code.group(1)[:6] not in listed.out  # nothing of a code is stored
    revoked = duban(work, "invite", "--revoke", code.group(1))
    assert revoked.code == 0
    assert "已撤销" in duban(work, "invite", "--list").out

    assert "联络员须指明单位" in one_line_error(duban(work, "invite", "contact"))
    assert "找不到单位" in one_line_error(duban(work, "invite", "head", "不存在的县"))
    assert "找不到单位" in one_line_error(duban(work, "status", "--unit", "不存在"))

    backup = duban(work, "db", "backup", "-o", str(work / "copy.db"))
    assert backup.code == 0, backup.err
    assert (work / "copy.db").stat().st_size > 0
    assert "已是最新" in duban(work, "db", "upgrade").out


def test_status_before_any_plan_is_one_line(work: Path) -> None:
    line = one_line_error(duban(work, "status"))
    assert "找不到数据库 duban.db" in line and "duban plan load" in line


def test_run_without_token_names_the_key(work: Path) -> None:
    assert "telegram.token" in one_line_error(duban(work, "run"))


def test_run_never_prints_the_token(work: Path) -> None:
    # Nothing listens on port 9: the bot cannot connect and must say so without the token.
    result = duban(
        work,
        "run",
        DUBAN_TELEGRAM_TOKEN=TOKEN,
        DUBAN_TELEGRAM_BASE_URL="http://127.0.0.1:9/bot",
    )
    assert result.code != 0
    assert TOKEN not in result.err + result.out
    assert "Traceback" not in result.err
    debug = run_duban(
        "run",
        "--debug",
        cwd=work,
        env=clean_env(DUBAN_TELEGRAM_TOKEN=TOKEN, DUBAN_TELEGRAM_BASE_URL="http://127.0.0.1:9/bot"),
    )
    assert TOKEN not in debug.err + debug.out


def test_bad_config_is_one_line(work: Path) -> None:
    (work / "config.toml").write_text("[database]\nulr = 'x'\n", encoding="utf-8")
    assert "database.ulr: unknown key" in one_line_error(duban(work, "status"))


def test_report_pictures_and_calendar(work: Path) -> None:
    from icalendar import Calendar
    from PIL import Image

    assert duban(work, "plan", "load", str(EXAMPLE)).code == 0
    for name in ("bulletin", "chart"):
        png = work / f"{name}.png"
        result = duban(work, "report", name, "-o", str(png), "--at", "2017-05-15T10:00")
        assert result.code == 0, result.err
        assert "1080×" in result.out
        with Image.open(png) as image:
            assert image.format == "PNG" and image.size[0] == 1080

    ics = work / "jia.ics"
    result = duban(work, "calendar", "甲县", "-o", str(ics))
    assert result.code == 0, result.err
    assert "5 项" in result.out
    events = list(Calendar.from_ical(ics.read_bytes()).walk("VEVENT"))
    assert len(events) == 5
    assert {e.decoded("dtstart").hour for e in events} == {10}  # 18:00 in Shanghai, in UTC
    assert "找不到单位" in one_line_error(duban(work, "calendar", "不存在的县"))
    revoked = duban(work, "calendar", "甲县", "--revoke-links")
    assert revoked.code == 0 and "0 个" in revoked.out


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({}, "telegram.webhook.url"),
        ({"DUBAN_TELEGRAM_WEBHOOK_URL": "https://x.example/hook"}, "telegram.webhook.secret_token"),
        (
            {
                "DUBAN_TELEGRAM_WEBHOOK_URL": "https://x.example/hook",
                "DUBAN_TELEGRAM_WEBHOOK_SECRET_TOKEN": "abc",
            },
            "[http]",
        ),
    ],
)
def test_webhook_mode_needs_its_settings(work: Path, extra: dict[str, str], key: str) -> None:
    line = one_line_error(
        duban(work, "run", DUBAN_TELEGRAM_TOKEN=TOKEN, DUBAN_TELEGRAM_MODE="webhook", **extra)
    )
    assert key in line
