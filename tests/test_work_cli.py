"""`duban task add`: a task added outside the plan file, from the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli import Result, clean_env, run_duban

PLAN = """
[campaign]
key = "cli-work"
title = "命令行督办"
timezone = "Asia/Shanghai"

[[unit_kinds]]
key = "county"
name = "县级工会"

[[unit_kinds]]
key = "industry"
name = "产业工会"

[[units]]
key = "a"
name = "甲县总工会"
kind = "county"

[[units]]
key = "b"
name = "乙县总工会"
kind = "county"

[[units]]
key = "c"
name = "市教育工会"
kind = "industry"

[[phases]]
key = "now"
name = "当前阶段"
start = START
end = END
"""


def duban(work: Path, *args: str) -> Result:
    env = clean_env(DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{work / 'duban.db'}")
    return run_duban(*args, cwd=work, env=env)


def test_task_add_from_the_command_line(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    plan = tmp_path / "plan.toml"
    text = PLAN.replace("START", (today - timedelta(days=3)).isoformat())
    plan.write_text(text.replace("END", (today + timedelta(days=30)).isoformat()), "utf-8")
    assert duban(tmp_path, "plan", "load", str(plan)).code == 0
    added = duban(tmp_path, "task", "add", "一页纸小结", "--due", "3天内", "--kind", "county")
    assert added.code == 0, added.err
    assert "一页纸小结" in added.out and "2 个单位" in added.out
    # A deadline in the past, or after the campaign, is one line and stores nothing.
    for when, words in (("2001-01-01 10:00", "已经过去"), ("100天内", "专项工作期间")):
        refused = duban(tmp_path, "task", "add", "另一项", "--due", when)
        assert refused.code == 1 and "Traceback" not in refused.err
        assert words in refused.err and len(refused.err.strip().splitlines()) == 1
    status = duban(tmp_path, "status", "--task", "一页纸小结")
    assert status.code == 0 and "甲县总工会" in status.out and "市教育工会" not in status.out
    assert "另一项" not in duban(tmp_path, "status").out
    # A reload of the plan keeps the task.
    assert duban(tmp_path, "plan", "load", str(plan)).code == 0
    assert "一页纸小结" in duban(tmp_path, "status").out
