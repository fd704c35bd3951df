"""The sandbox: the movable clock, the moved example, the clock moves, the page end to end.

The end-to-end test runs `duban run --sandbox` as the README does and plays it in a real
headless chromium: a contact submits a file, the office accepts it, the clock moves to the
deadline (each unit still owing gets its nudge, once) and past it (the overdue contact is
nudged, its head told). It writes the README's screenshots to docs/images/.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.calendar import WorkCalendar
from bot.plan import parse_plan
from bot.plan.example import first_day, move_dates, moved_example
from bot.runtime import MovableClock
from sandbox.moves import next_workday_morning, working_days_later
from sandbox.web import entities_html
from tests.browser import chromium
from tests.cli import clean_env, duban_command

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"

# ---------------------------------------------------------------------- the clock


def test_movable_clock_runs_with_real_time_and_only_forward() -> None:
    real = [datetime(2026, 5, 1, 8, 0, tzinfo=UTC)]
    clock = MovableClock(base=lambda: real[0])
    assert clock() == real[0]
    clock.advance(timedelta(hours=1))
    real[0] += timedelta(seconds=30)  # between moves it keeps real time's pace
    assert clock() == datetime(2026, 5, 1, 9, 0, 30, tzinfo=UTC)
    target = datetime(2026, 5, 10, 18, 0, tzinfo=UTC)
    assert clock.move_to(target) == target
    assert clock.move_to(target - timedelta(days=1)) == target  # never back
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        clock.move_to(datetime(2026, 6, 1))  # a naive moment is refused
    started = MovableClock(datetime(2030, 1, 1, tzinfo=UTC), base=lambda: real[0])
    assert started() == datetime(2030, 1, 1, tzinfo=UTC)


def test_moved_example_starts_on_the_day_and_keeps_every_length() -> None:
    start = date(2026, 12, 1)
    original = (ROOT / "examples" / "campaign.toml").read_text(encoding="utf-8")
    text = moved_example(start)
    assert first_day(text) == start
    before, after = tomllib.loads(original), tomllib.loads(text)
    shift = start - date(2017, 3, 30)
    for old, new in zip(before["phases"], after["phases"], strict=True):
        assert (new["start"], new["end"]) == (old["start"] + shift, old["end"] + shift)
        for old_task, new_task in zip(old.get("tasks", []), new.get("tasks", []), strict=True):
            assert new_task["due"] == old_task["due"] + shift
    plan = parse_plan(text, "moved.toml")  # still a valid plan
    assert plan.key == "stability-2017"
    # Comment lines keep the plan document's dates; dates in values move.
    assert move_dates("# 2017-04-10\nd = 2017-04-10\n", 1) == "# 2017-04-10\nd = 2017-04-11\n"


def test_clock_moves_follow_the_working_day_calendar() -> None:
    tz = "Asia/Shanghai"
    # Friday 2026-05-08 15:00 local; Monday 05-11 declared a holiday by the plan.
    calendar = WorkCalendar(None, extra_holidays=frozenset({date(2026, 5, 11)}))
    friday = datetime(2026, 5, 8, 7, 0, tzinfo=UTC)
    assert next_workday_morning(friday, tz, calendar) == datetime(2026, 5, 12, 1, 0, tzinfo=UTC)
    # +3 working days: Tue 12, Wed 13, Thu 14, at the same local time of day.
    assert working_days_later(friday, tz, calendar, 3) == datetime(2026, 5, 14, 7, 0, tzinfo=UTC)
    # Just after midnight local the next working day is still the next one, not today.
    monday_night = datetime(2026, 5, 12, 16, 30, tzinfo=UTC)  # Wed 00:30 local
    assert next_workday_morning(monday_night, tz, calendar) == datetime(
        2026, 5, 14, 1, 0, tzinfo=UTC
    )


def test_entities_become_escaped_html() -> None:
    text = "😀 <b>逾期</b> 甲县 /help"
    entities = [
        {"type": "bold", "offset": 3, "length": 9},  # UTF-16: the emoji counts two
        {"type": "italic", "offset": 6, "length": 2},
        {"type": "bot_command", "offset": 16, "length": 5},
    ]
    assert entities_html(text, entities) == (
        '😀 <b>&lt;b&gt;<i>逾期</i>&lt;/b&gt;</b> 甲县 <a class="cmd" href="#">/help</a>'
    )
    link = [{"type": "text_link", "offset": 0, "length": 1, "url": "javascript:alert(1)"}]
    assert entities_html("x", link) == "x"  # an unsafe link is shown as plain text
    safe = [{"type": "text_link", "offset": 0, "length": 1, "url": 'https://e.org/"a'}]
    assert entities_html("x", safe) == (
        '<a href="https://e.org/&quot;a" target="_blank" rel="noopener noreferrer">x</a>'
    )
    assert entities_html("a\nb", None) == "a<br>b"


# ---------------------------------------------------------------------- the page, end to end


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    """Run `duban run --sandbox` (a free port) and yield its page's URL."""
    log_path = tmp_path / "sandbox.log"
    env = clean_env(DUBAN_HTTP_PORT="0")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*duban_command(), "run", "--sandbox"], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 90
            found = None
            while found is None:
                output = log_path.read_text(encoding="utf-8", errors="replace")
                found = re.search(r"http://127\.0\.0\.1:\d+/sandbox/", output)
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the sandbox did not start:\n{output[-3000:]}")
                time.sleep(0.2)
            yield found.group(0)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    output = log_path.read_text(encoding="utf-8", errors="replace")
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


def _wait(condition: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.2)


class Page:
    """The sandbox page as a person uses it; reads and clicks in one script each, since the
    page redraws a chat whenever it changes."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def keys(self) -> list[str]:
        return list(
            self.js(
                "return [...document.querySelectorAll('section.pane')].map(p => p.dataset.persona);"
            )
        )

    def bot_texts(self, key: str) -> list[str]:
        return list(
            self.js(
                "const pane = document.querySelector(`section[data-persona='${arguments[0]}']`);"
                "return pane ? [...pane.querySelectorAll('.row.bot .msg')].map(m => m.innerText)"
                " : [];",
                key,
            )
        )

    def type(self, key: str, text: str) -> None:
        box = self.driver.find_element("css selector", f'section[data-persona="{key}"] textarea')
        box.send_keys(text)
        self.driver.find_element("css selector", f'section[data-persona="{key}"] .send').click()

    def press(self, key: str, prefix: str) -> str:
        """Click the first button starting with `prefix` on the newest message that has one."""
        script = (
            "const pane = document.querySelector(`section[data-persona='${arguments[0]}']`);"
            "const rows = [...pane.querySelectorAll('.row')].reverse();"
            "for (const row of rows) {"
            "  const b = row.querySelector(`.kb button[data-data^='${arguments[1]}']`);"
            "  if (b) { b.scrollIntoView({block: 'center'}); b.click(); return b.dataset.data; }"
            "}"
            "return null;"
        )
        return str(_wait(lambda: self.js(script, key, prefix), what=f"{prefix} in {key}"))

    def upload(self, key: str, path: Path, caption: str) -> None:
        pane = f'section[data-persona="{key}"]'
        self.driver.find_element("css selector", f"{pane} textarea").send_keys(caption)
        self.driver.find_element("css selector", f"{pane} input.file").send_keys(str(path))

    def move(self, what: str) -> str:
        before = self.clock()
        self.driver.find_element("css selector", f'[data-move="{what}"]').click()
        _wait(lambda: self.clock() != before, what=f"the clock to move ({what})")
        return self.clock()

    def clock(self) -> str:
        return str(self.js("return document.getElementById('clock').textContent;"))

    def next_deadline(self) -> str:
        return str(self.js("return document.getElementById('deadline').textContent;"))

    def count(self, key: str, marker: str) -> int:
        return sum(marker in text for text in self.bot_texts(key))

    def width(self, key: str) -> float:
        return float(
            self.js(
                "const pane = document.querySelector(`section[data-persona='${arguments[0]}']`);"
                "pane.scrollIntoView({inline: 'center'});"
                "return pane.getBoundingClientRect().width;",
                key,
            )
        )


# What the Chinese catalog puts at the head of each message (bot/i18n/zh/reminders.toml).
DUE = "【截止提醒】"
OVERDUE = "【逾期提醒】"
ESCALATION = "【逾期督办】"
ACCEPTED = "已通过审核"


@pytest.mark.e2e
def test_sandbox_page_submit_accept_deadline_and_escalation(
    sandbox_url: str, tmp_path: Path
) -> None:
    report = tmp_path / "调研报告.docx"
    report.write_bytes(b"PK\x03\x04 a research report")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with chromium(1600, 900) as driver:
        page = Page(driver)
        driver.get(sandbox_url)
        # The office, a leader, and the contact and head of three units: registered by invite.
        keys = _wait(lambda: len(page.keys()) == 8 and page.keys(), what="eight panes")
        assert keys[:2] == ["office", "leader"]
        units = [k.removeprefix("contact-") for k in keys if k.startswith("contact-")]
        assert len(units) == 3 and all(f"head-{u}" in keys for u in units)
        for key in keys:
            _wait(lambda k=key: any("登记成功" in t for t in page.bot_texts(k)), what=key)
        done, late = units[0], units[1:]

        # The first unit's contact submits a file for the first task.
        page.type(f"contact-{done}", "/submit")
        task = page.press(f"contact-{done}", "sub:")
        # The bot asks for the file (a person reads the prompt before attaching one).
        _wait(lambda: page.count(f"contact-{done}", "请发送") == 1, what="the prompt for a file")
        page.upload(f"contact-{done}", report, "请审阅")
        page.press(f"contact-{done}", "sc:ok")
        # The office sees it with the file and accepts it; the contact is told.
        _wait(lambda: "调研报告.docx" in " ".join(page.bot_texts("office")), what="the file")
        page.press("office", "rev:ok:")
        _wait(
            lambda: page.count(f"contact-{done}", ACCEPTED) == 1,
            what="the contact told of the acceptance",
        )
        driver.save_screenshot(str(IMAGES / "sandbox-submit.png"))

        # To the deadline: each unit still owing gets its nudge, exactly once.
        deadline = page.next_deadline()
        assert page.move("deadline") == deadline
        for unit in late:
            _wait(lambda u=unit: page.count(f"contact-{u}", DUE) >= 1, what=f"{unit}'s nudge")
        page.move("hour")  # another tick, later: nothing is sent twice
        time.sleep(3)
        for unit in late:
            assert page.count(f"contact-{unit}", DUE) == 1, page.bot_texts(f"contact-{unit}")
        assert page.count(f"contact-{done}", DUE) == 0  # submitted and accepted: no nudge
        driver.save_screenshot(str(IMAGES / "sandbox-deadline.png"))

        # Past the deadline, working day by working day: the overdue contact is nudged and
        # its head told; the unit that submitted hears nothing.
        for _ in range(6):
            if all(
                page.count(f"contact-{u}", OVERDUE) and page.count(f"head-{u}", ESCALATION)
                for u in late
            ):
                break
            page.move("workday")
            time.sleep(2)
        for unit in late:
            _wait(lambda u=unit: page.count(f"contact-{u}", OVERDUE) >= 1, what=f"{unit} overdue")
            _wait(lambda u=unit: page.count(f"head-{u}", ESCALATION) >= 1, what=f"{unit} head")
        assert page.count(f"contact-{done}", OVERDUE) == 0
        assert page.count(f"head-{done}", ESCALATION) == 0
        assert task.startswith("sub:")
        driver.save_screenshot(str(IMAGES / "sandbox-escalation.png"))

    # The same page on a phone: one pane across the screen, the clock above.
    with chromium(390, 844) as phone:
        phone.get(sandbox_url)
        page = Page(phone)
        _wait(lambda: len(page.keys()) == 8, what="the panes on a phone")
        _wait(lambda: page.count(f"contact-{late[0]}", OVERDUE) >= 1, what="the chat drawn")
        assert 300 <= page.width(f"contact-{late[0]}") <= 390
        time.sleep(0.5)
        phone.save_screenshot(str(IMAGES / "sandbox-phone.png"))
    assert os.path.getsize(IMAGES / "sandbox-phone.png") > 10_000
