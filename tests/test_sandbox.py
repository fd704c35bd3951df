"""The sandbox: the movable clock, the moved example, the clock moves, the page end to end.

The end-to-end test runs `duban run --sandbox` as the README does and plays it in a real
headless chromium: a contact submits a file, the office accepts it, the clock moves to the
deadline (each unit still owing gets its nudge, once) and past it (the overdue contact is
nudged, its head told). It writes the README's screenshots to build/docs/images/ (docs/images/
too with `pytest --publish-docs`).
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
from tests import outputs
from tests.browser import chromium
from tests.cli import clean_env, duban_command

ROOT = Path(__file__).resolve().parents[1]


def _screenshot(driver: Any, name: str) -> Path:
    """Save the page as images/<name> of the test outputs; return the build copy."""
    return outputs.write_bytes(f"images/{name}", driver.get_screenshot_as_png())[0]


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


def test_the_clock_starts_when_the_window_is_open() -> None:
    from sandbox.runner import first_moment

    plan = parse_plan((ROOT / "examples" / "campaign.toml").read_text(encoding="utf-8"))
    # Window 09:00-18:00 on working days (Asia/Shanghai, UTC+8).
    monday_10 = datetime(2026, 3, 16, 2, 0, tzinfo=UTC)
    assert first_moment(plan, monday_10) == monday_10  # open: the real moment
    friday_night = datetime(2026, 3, 13, 12, 0, tzinfo=UTC)  # Friday 20:00 local
    assert first_moment(plan, friday_night) == datetime(2026, 3, 16, 1, 0, tzinfo=UTC)


async def test_sandbox_config_points_at_the_local_server(tmp_path: Path) -> None:
    from bot.config import load_config
    from sandbox.botapi import LocalBotAPI
    from sandbox.runner import free_port, sandbox_config

    live = load_config(
        None,
        env={
            "DUBAN_TELEGRAM_TOKEN": "123:live-token",
            "DUBAN_TELEGRAM_MODE": "webhook",
            "DUBAN_UI_DEFAULT_LANGUAGE": "en",
        },
    )
    async with LocalBotAPI() as srv:
        cfg = sandbox_config(live, srv, tmp_path, 8123)
        # Never the live token or Telegram: the local server, polling.
        assert cfg.telegram.token.get_secret_value() == srv.token
        assert cfg.telegram.base_url == srv.base_url and cfg.telegram.mode == "polling"
        assert cfg.database.url == f"sqlite+aiosqlite:///{tmp_path / 'sandbox.db'}"
        assert cfg.http is not None and (cfg.http.listen, cfg.http.port) == ("127.0.0.1", 8123)
        assert cfg.ui.default_language == "en"
        # A proxy (the way to Telegram) and the live bot's name never apply to it.
        proxied = load_config(
            None,
            env={"DUBAN_TELEGRAM_PROXY": "http://proxy:3128", "DUBAN_TELEGRAM_BOT_USERNAME": "x"},
        )
        local = sandbox_config(proxied, srv, tmp_path, 0).telegram
        assert (local.proxy, local.bot_username) == ("", "")
        # A database named in the configuration is the one used.
        named = load_config(None, env={"DUBAN_DATABASE_URL": "sqlite+aiosqlite:///mine.db"})
        assert sandbox_config(named, srv, tmp_path, 0).database.url.endswith("/mine.db")
    # A port in use gives way to a free one.
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        other = free_port("127.0.0.1", taken)
        assert other != taken and other > 0


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


async def test_page_refuses_bad_requests_in_one_clear_line() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from sandbox.botapi import LocalBotAPI
    from sandbox.runner import Sandbox
    from sandbox.web import routes

    async with LocalBotAPI() as srv:
        sandbox = Sandbox(srv, MovableClock(), "zh")
        app = web.Application()
        app.add_routes(routes(sandbox))
        async with TestClient(TestServer(app)) as client:
            page = await client.get("/sandbox/")
            assert page.status == 200 and 'lang="zh-CN"' in await page.text()
            assert "<title>督办 · 沙盒</title>" in await page.text()
            assert (await client.get("/sandbox/static/app.js")).status == 200
            assert (await client.get("/sandbox/static/secret.py")).status == 404
            assert (await client.get("/sandbox/api/file/nope")).status == 404
            state = await (await client.get("/sandbox/api/state")).json()
            assert state["ready"] is False and state["personas"] == []
            assert state["labels"]["move_deadline"] == "到下一个截止时间"
            # Without the page's header (a form on another site): refused.
            plain = await client.post("/sandbox/api/clock", json={"move": "hour"})
            assert plain.status == 403
            assert "请求头" in (await plain.json())["error"]
            header = {"X-Sandbox": "1"}
            bad = await client.post("/sandbox/api/clock", json={"move": "back"}, headers=header)
            assert bad.status == 400 and (await bad.json())["error"] == "未知的时钟操作。"
            junk = await client.post("/sandbox/api/send", data=b"{", headers=header)
            assert junk.status == 400 and (await junk.json())["error"] == "请求格式不正确。"
            nobody = await client.post(
                "/sandbox/api/send", json={"persona": "x", "text": "hi"}, headers=header
            )
            assert (await nobody.json())["error"] == "没有这个人员。"
        assert srv.requests == []  # nothing reached the bot


async def test_page_acts_as_the_persona_s_telegram_client() -> None:
    from aiohttp import FormData, web
    from aiohttp.test_utils import TestClient, TestServer

    from sandbox.botapi import LocalBotAPI
    from sandbox.runner import Persona, Sandbox
    from sandbox.web import routes

    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    async with LocalBotAPI() as srv:
        sandbox = Sandbox(srv, MovableClock(), "zh")
        user = srv.add_user(first_name="甲县联络员")
        sandbox.personas.append(Persona("contact-a", "contact", user, "甲县"))
        sandbox.ready.set()
        app = web.Application()
        app.add_routes(routes(sandbox))
        header = {"X-Sandbox": "1"}
        async with TestClient(TestServer(app)) as client:
            sent = await client.post(
                "/sandbox/api/send", json={"persona": "contact-a", "text": "/mine"}, headers=header
            )
            assert sent.status == 200
            for name, kind, photo in (("图.png", "image/png", "1"), ("报告.pdf", None, "0")):
                form = FormData(quote_fields=False)  # as a browser sends names
                form.add_field("persona", "contact-a")
                form.add_field("caption", "附件")
                form.add_field("as_photo", photo)
                form.add_field("file", png, filename=name, content_type=kind)
                posted = await client.post("/sandbox/api/upload", data=form, headers=header)
                assert posted.status == 200
            history = srv.history(user)
            assert history[0]["text"] == "/mine" and history[0]["entities"][0]["type"]
            assert "photo" in history[1] and history[1]["caption"] == "附件"
            assert history[2]["document"]["file_name"] == "报告.pdf"
            # Pictures are shown (a photo is a JPEG for Telegram); anything else is a download.
            picture = await client.get(f"/sandbox/api/file/{history[1]['photo'][-1]['file_id']}")
            assert picture.content_type == "image/jpeg" and await picture.read() == png
            doc = await client.get(f"/sandbox/api/file/{history[2]['document']['file_id']}")
            assert doc.content_type == "application/octet-stream"
            assert doc.headers["Content-Disposition"].startswith("attachment;")
            # A button that is not on the message is refused; nothing is injected.
            pressed = await client.post(
                "/sandbox/api/press",
                json={"persona": "contact-a", "message_id": 1, "data": "rev:ok:1"},
                headers=header,
            )
            assert pressed.status == 400
            assert (await pressed.json())["error"] == "这条消息上没有这个按钮。"
        assert len(srv.pending_updates) == 3


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
                # The address ends its line, so that a terminal or a script takes it whole.
                found = re.search(r"http://127\.0\.0\.1:\d+/sandbox/$", output, re.MULTILINE)
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

    def show(self, key: str) -> None:
        """Scroll the row of panes so that `key`'s pane comes first."""
        self.js(
            "const pane = document.querySelector(`section[data-persona='${arguments[0]}']`);"
            "const row = document.getElementById('panes');"
            "row.scrollLeft = pane.offsetLeft - row.offsetLeft - 12;",
            key,
        )
        time.sleep(0.3)

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
        _screenshot(driver, "sandbox-submit.png")

        # To the deadline: each unit still owing gets its nudge, exactly once.
        deadline = page.next_deadline()  # "12月11日 18:00（周五） · 工作部署情况报告"
        assert "·" in deadline and deadline.startswith(page.move("deadline"))
        for unit in late:
            _wait(lambda u=unit: page.count(f"contact-{u}", DUE) >= 1, what=f"{unit}'s nudge")
        page.move("hour")  # another tick, later: nothing is sent twice
        time.sleep(3)
        for unit in late:
            assert page.count(f"contact-{unit}", DUE) == 1, page.bot_texts(f"contact-{unit}")
        assert page.count(f"contact-{done}", DUE) == 0  # submitted and accepted: no nudge
        page.show(f"contact-{late[0]}")
        _screenshot(driver, "sandbox-deadline.png")

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
        page.show(f"contact-{late[0]}")
        _screenshot(driver, "sandbox-escalation.png")

    # The same page on a phone: one pane across the screen, the clock above.
    with chromium(390, 844) as phone:
        phone.get(sandbox_url)
        page = Page(phone)
        _wait(lambda: len(page.keys()) == 8, what="the panes on a phone")
        _wait(lambda: page.count(f"contact-{late[0]}", OVERDUE) >= 1, what="the chat drawn")
        assert 300 <= page.width(f"contact-{late[0]}") <= 390
        time.sleep(0.5)
        shot = _screenshot(phone, "sandbox-phone.png")
    assert os.path.getsize(shot) > 10_000
