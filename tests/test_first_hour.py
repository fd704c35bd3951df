"""The first hour of a new office (issue 12): each trap a newcomer met, as the installed CLI.

Every test runs the `duban` console script as a subprocess in a fresh folder, the way an
operator does; the cases are instances of kinds (every text file, every code argument,
every printed result, every read-only command, every CLI message).
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.db.engine import Database
from bot.services import invites
from bot.services.campaigns import pick_campaign
from tests.cli import Result, clean_env, duban_command, run_duban
from tests.conftest import EXAMPLE

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def duban(work: Path, *args: str, **env: str) -> Result:
    return run_duban(*args, cwd=work, env=clean_env(**env))


def one_line_error(result: Result) -> str:
    assert result.code != 0, result.out
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    return lines[0]


# ----------------------------------------------------------------- 5. files from Windows


def test_text_files_with_a_bom_are_read_and_other_encodings_are_named(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    bom_plan = tmp_path / "notepad.toml"
    bom_plan.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    bom_config = tmp_path / "config.toml"
    bom_config.write_bytes(codecs.BOM_UTF8 + b'[ui]\ndefault_language = "en"\n')
    checked = duban(tmp_path, "plan", "check", "notepad.toml")  # ./config.toml, BOM and all
    assert checked.code == 0, checked.err
    assert "5 phases · 5 tasks · 13 units" in checked.out  # the BOM config was read too

    gbk_plan = tmp_path / "gbk.toml"
    gbk_plan.write_bytes(text.encode("gbk"))
    refused = duban(tmp_path, "plan", "load", "gbk.toml")
    assert refused.code == 1
    assert "gbk.toml: this file looks GBK-encoded; save it as UTF-8" in refused.err
    assert "Traceback" not in refused.err and "codec" not in refused.err
    assert not (tmp_path / "duban.db").exists()  # nothing was half-loaded

    gbk_config = tmp_path / "gbk-config.toml"
    gbk_config.write_bytes('[ui]\ndefault_language = "zh"  # 中文界面\n'.encode("gbk"))
    line = one_line_error(
        duban(tmp_path, "plan", "check", "notepad.toml", "--config", str(gbk_config))
    )
    assert "gbk-config.toml: this file looks GBK-encoded; save it as UTF-8" in line


# ----------------------------------------------------- 6. codes that begin with "-"


def test_generated_codes_never_begin_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter(["-jvUxyABCDEFGHIJKLMNOP", "_kwVyzABCDEFGHIJKLMNOP"])
    monkeypatch.setattr(invites.secrets, "token_urlsafe", lambda n: next(draws))
    assert invites.new_code() == "_kwVyzABCDEFGHIJKLMNOP"
    monkeypatch.undo()
    assert not any(invites.new_code().startswith("-") for _ in range(2000))


def _store_invite(db_path: Path, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store an invite with a given code (as older versions could draw), in-process."""
    monkeypatch.setattr(invites, "new_code", lambda: code)

    async def store() -> None:
        db = Database(f"sqlite+aiosqlite:///{db_path}")
        try:
            async with db.write() as session:
                campaign = await pick_campaign(session)
                now = datetime.now(UTC)
                await invites.create_invite(session, campaign, "office", None, now=now, actor="t")
        finally:
            await db.dispose()

    asyncio.run(store())
    monkeypatch.undo()


def test_a_code_or_name_beginning_with_a_dash_is_an_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert duban(tmp_path, "plan", "load", str(EXAMPLE)).code == 0
    _store_invite(tmp_path / "duban.db", "-jvUxyOldDashCode0000", monkeypatch)
    revoked = duban(tmp_path, "invite", "--revoke", "-jvUxyOldDashCode0000")
    assert revoked.code == 0, revoked.err
    # The hint names the invite by its hash: nothing of a code is stored (issue 14).
    assert invites.hint_of(invites.hash_code("-jvUxyOldDashCode0000")) in revoked.out
    # An unknown one is the service's answer, not argparse's "expected one argument".
    line = one_line_error(duban(tmp_path, "invite", "--revoke", "-nosuchcode"))
    assert "没有这个邀请码：-nosuchcode" in line
    # The same for a positional value: a unit name that begins with "-".
    line = one_line_error(duban(tmp_path, "invite", "contact", "-甲县"))
    assert "找不到单位：-甲县" in line
    line = one_line_error(duban(tmp_path, "status", "--unit", "-甲县"))
    assert "找不到单位：-甲县" in line


# ------------------------------------------------ 7. a printed code that was never stored


def test_a_closed_pipe_ends_quietly_after_the_code_is_stored(tmp_path: Path) -> None:
    assert duban(tmp_path, "plan", "load", str(EXAMPLE)).code == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -1` that has already gone: the first write fails
    try:
        proc = subprocess.run(
            [*duban_command(), "invite", "contact", "甲县"],
            cwd=tmp_path,
            # Unbuffered: every line is written at once, as to a terminal.
            env=clean_env(PYTHONUNBUFFERED="1"),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert proc.stderr == ""  # quietly: no BrokenPipeError, no "Exception ignored"
    assert proc.returncode == 141
    listed = duban(tmp_path, "invite", "--list")
    assert "甲县总工会" in listed.out and "可用" in listed.out  # the code exists


# ----------------------------------------------------------- 13. one language at a time


def test_cli_messages_follow_the_default_language(tmp_path: Path) -> None:
    version = duban(tmp_path, "--version")
    assert version.code == 0 and re.fullmatch(r"duban \d+\.\d+\.\d+\S*\n", version.out)

    zh = duban(tmp_path, "plan", "load", str(EXAMPLE))
    assert zh.code == 0
    assert "新建" in zh.out and "单位 13 个" in zh.out
    assert not re.search(r"created|units|assignments", zh.out)
    listed = duban(tmp_path, "invite", "--list")
    assert listed.out.split()[:6] == ["邀请码", "身份", "单位", "已用", "有效至", "状态"]
    line = one_line_error(duban(tmp_path, "invite", "contact"))
    assert "联络员须指明单位" in line and "needs" not in line
    line = one_line_error(duban(tmp_path, "invite", "admin", "甲县"))
    assert "管理员不属于某个单位" in line
    assert "请指明身份" in one_line_error(duban(tmp_path, "invite"))

    en = tmp_path / "en"
    en.mkdir()
    english = {"DUBAN_UI_DEFAULT_LANGUAGE": "en"}
    loaded = duban(en, "plan", "load", str(EXAMPLE), **english)
    assert "created" in loaded.out and "units 13" in loaded.out
    assert not CHINESE.search(loaded.out.replace("职工队伍稳定调研排查化解专项工作", ""))
    line = one_line_error(duban(en, "invite", "contact", **english))
    assert "a contact needs a unit" in line and not CHINESE.search(line)


# ------------------------------------------------------------------ 8. stray databases


def test_reading_commands_never_create_a_database(tmp_path: Path) -> None:
    for args in (
        ("status",),
        ("export", "-o", "x.xlsx"),
        ("remind", "--dry-run"),
        ("report", "chart", "-o", "x.png"),
        ("calendar", "甲县"),
        ("campaign", "list"),
        ("invite", "--list"),
    ):
        line = one_line_error(duban(tmp_path, *args))
        assert f"找不到数据库 duban.db ({tmp_path / 'duban.db'})" in line, args
        assert "duban plan load" in line
    assert list(tmp_path.iterdir()) == []  # no duban.db, no x.xlsx, nothing
    # A database without any campaign is named too (here: created by `db upgrade`).
    assert duban(tmp_path, "db", "upgrade").code == 0
    line = one_line_error(duban(tmp_path, "status"))
    assert "数据库 duban.db" in line and "还没有专项工作" in line and "duban plan load" in line


# ------------------------------------------- 9. the quick start's campaign starts today


def test_plan_example_moves_the_reference_campaign(tmp_path: Path) -> None:
    made = duban(tmp_path, "plan", "example", "--start", "2026-03-02", "-o", "campaign.toml")
    assert made.code == 0, made.err
    assert "2026年3月2日 – 2026年8月3日" in made.out
    text = (tmp_path / "campaign.toml").read_text(encoding="utf-8")
    assert "start = 2026-03-02" in text and "2017-" not in text.split("\n\n", 1)[1]
    assert 'key = "stability-2026"' in text
    checked = duban(tmp_path, "plan", "check", "campaign.toml")
    assert checked.code == 0, checked.err
    # Each phase keeps its length; the dated original is untouched.
    assert "最早截止：2026年3月13日 18:00" in checked.out
    assert "最晚截止：2026年8月3日 18:00" in checked.out
    refused = one_line_error(duban(tmp_path, "plan", "example", "-o", "campaign.toml"))
    assert "campaign.toml 已存在" in refused
    assert "--start 3月2日" in one_line_error(
        duban(tmp_path, "plan", "example", "--start", "3月2日", "-o", "other.toml")
    )

    # Loaded, nothing is years overdue: today is inside the first phase.
    today = duban(tmp_path, "plan", "example", "-o", "today.toml")
    assert today.code == 0
    assert duban(tmp_path, "plan", "load", "today.toml").code == 0
    status = duban(tmp_path, "status")
    assert status.code == 0 and "逾期 0" in status.out and "逾期 3" not in status.out


def test_packaged_reference_is_the_example_file() -> None:
    from bot.plan.example import reference_text

    assert reference_text() == EXAMPLE.read_text(encoding="utf-8")


def test_status_at_a_past_moment(tmp_path: Path) -> None:
    assert duban(tmp_path, "plan", "load", str(EXAMPLE)).code == 0
    _submit(tmp_path / "duban.db", "county-a", "arrangement", "2017-04-08T10:00:00+08:00")
    before = duban(tmp_path, "status", "--at", "2017-04-07T09:00")
    assert before.code == 0, before.err
    assert "截至 2017年4月7日 09:00（周五）" in before.out
    assert "合计：已报 0/61 · 已审 0 · 逾期 0" in before.out
    after = duban(tmp_path, "status", "--at", "2017-04-11T09:00", "--task", "工作部署情况报告")
    assert "合计：已报 1/13 · 已审 0 · 逾期 12" in after.out
    assert "已报送" in after.out and after.out.count("已逾期") == 12
    now = duban(tmp_path, "status")
    assert "合计：已报 1/61 · 已审 0 · 逾期 60" in now.out
    assert "--at" in one_line_error(duban(tmp_path, "status", "--at", "yesterday"))


def _submit(db_path: Path, unit: str, task: str, at: str) -> None:
    """Record a submission at a given moment, as the bot would have (in-process)."""
    from sqlalchemy import select

    from bot.db import models as m

    async def store() -> None:
        db = Database(f"sqlite+aiosqlite:///{db_path}")
        moment = datetime.fromisoformat(at)
        try:
            async with db.write() as session:
                assignment = await session.scalar(
                    select(m.Assignment)
                    .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
                    .join(m.Task, m.Task.id == m.Assignment.task_id)
                    .where(m.Unit.key == unit, m.Task.key == task)
                )
                assert assignment is not None
                assignment.status = "submitted"
                session.add(
                    m.Submission(
                        assignment_id=assignment.id,
                        version=1,
                        kind="text",
                        text="报告",
                        submitted_at=moment,
                    )
                )
        finally:
            await db.dispose()

    asyncio.run(store())


# ------------------------------------------------------------- 10. campaigns pile up


def test_campaign_list_and_archive(tmp_path: Path) -> None:
    assert duban(tmp_path, "plan", "example", "--start", "2026-03-02", "-o", "new.toml").code == 0
    assert duban(tmp_path, "plan", "load", "new.toml").code == 0
    assert duban(tmp_path, "plan", "load", str(EXAMPLE)).code == 0
    assert "请用 --campaign 指明" in one_line_error(duban(tmp_path, "status"))
    listed = duban(tmp_path, "campaign", "list")
    assert listed.code == 0
    rows = listed.out.splitlines()[2:]
    assert [row.split()[0] for row in rows] == ["stability-2026", "stability-2017"]
    assert "2017年3月30日 – 2017年8月31日" in rows[1] and "13" in rows[1]

    archived = duban(tmp_path, "campaign", "archive", "stability-2017")
    assert archived.code == 0 and "已归档专项工作 stability-2017" in archived.out
    # The only active campaign is the default again; the archived one stays readable.
    assert "stability-2026" not in one_line_error(duban(tmp_path, "campaign", "archive", "nope"))
    default = duban(tmp_path, "status")
    assert default.code == 0 and "2026年" not in default.out.splitlines()[0]
    assert "3月13日" in default.out
    old = duban(tmp_path, "status", "--campaign", "stability-2017")
    assert old.code == 0 and "4月10日" in old.out
    listed = duban(tmp_path, "campaign", "list").out.splitlines()[2:]
    assert "进行中（默认）" in listed[0] and "已归档" in listed[1]
