"""The whole path (issue 15): the office's Word notice and Excel roster to a running campaign.

sample notice → `plan draft` → `units import` → `plan check` → `plan load` → `invite contact
--all` → a contact redeems the code printed in the sheet → the contact is nudged on time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from bot.db.engine import Database
from scheduler.planner import plan_tick
from tests.cli import clean_env, run_duban
from tests.harness import Harness

SAMPLES = Path(__file__).parent / "fixtures" / "intake"
SH = ZoneInfo("Asia/Shanghai")


async def test_notice_and_roster_to_a_nudge(tmp_path: Path) -> None:
    env = clean_env(DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}")

    def duban(*args: str) -> str:
        result = run_duban(*args, cwd=tmp_path, env=env)
        assert result.code == 0, result.err
        assert "Traceback" not in result.err
        return result.out

    plan = tmp_path / "plan.toml"
    # --year moves the campaign into the future, so that this test does not age: 2094 has
    # 2027's calendar (3-20 is a Saturday, 3-15 a Monday). The codes below are made today.
    notice = SAMPLES / "notice-grassroots-survey-2027.docx"
    drafted = duban("plan", "draft", str(notice), "--year", "2094", "-o", str(plan))
    assert "5 个阶段" in drafted and "请核对以下 1 处" in drafted and "交流评估" in drafted
    # Without units the draft says how to add them; the roster fills them in.
    assert "duban units import" in plan.read_text(encoding="utf-8")
    duban("units", "import", str(SAMPLES / "roster-grassroots-2027.xlsx"), "--into", str(plan))
    text = plan.read_text(encoding="utf-8")
    assert "甲县总工会" in text and "13800000001" not in text

    checked = duban("plan", "check", str(plan))
    assert "5 个阶段 · 6 项任务 · 10 个单位" in checked
    duban("plan", "load", str(plan))
    duban(
        "invite",
        "contact",
        "--all",
        "--roster",
        str(SAMPLES / "roster-grassroots-2027.xlsx"),
        "-o",
        "invites.xlsx",
    )
    rows = list(load_workbook(tmp_path / "invites.xlsx").worksheets[0].iter_rows(values_only=True))
    by_unit = {r[0]: r for r in rows[1:]}
    assert len(by_unit) == 10 and by_unit["甲县总工会"][3] == "赵一"
    code = str(by_unit["甲县总工会"][4])
    assert by_unit["甲县总工会"][5] == f"/start {code}"

    # The contact redeems the code from the sheet in the real Application, the day it was
    # made (the CLI made it with the real clock), then the clock moves to the campaign.
    db = Database(env["DUBAN_DATABASE_URL"])
    h = await Harness.create(db, datetime.now(UTC), plan_text=text)
    try:
        contact = h.user("赵一")
        replies = await h.send(contact, f"/start {code}")
        assert any("登记成功" in r and "甲县总工会" in r for r in replies), replies

        # 活动方案 is due 2094-03-20 (a Saturday) at 18:00; its 7-day nudge falls on Saturday
        # 3-13 and goes out when the window opens on the next working day, Monday 09:00.
        before = datetime(2094, 3, 15, 8, 59, tzinfo=SH)
        await plan_tick(db, before.astimezone(UTC), default_language="zh")
        early = [r for r in await h.outbox("nudge") if r.chat_id == contact.id]
        assert not early, [(r.key, r.not_before, r.payload["text"][:80]) for r in early]
        on_time = datetime(2094, 3, 15, 9, 0, tzinfo=SH)
        await plan_tick(db, on_time.astimezone(UTC), default_language="zh")
        nudges = [r for r in await h.outbox("nudge") if r.chat_id == contact.id]
        assert len(nudges) == 1
        assert nudges[0].not_before == on_time.astimezone(UTC)
        assert "活动方案" in nudges[0].payload["text"]
        assert "3月20日" in nudges[0].payload["text"]
    finally:
        await h.close()
        await db.dispose()
