"""The dashboard in a real browser: headless Chromium from the distribution's packages.

Signs in with initData as Telegram hands it to a Mini App (in the URL's fragment), checks
that the overview shows the figures of /status, opens a unit, accepts a submission and sees
the contact told (by the real outbox sender), and checks that a contact sees only their own
unit. Writes the README's screenshots at phone (390×844) and desktop (1440×900) widths to
build/docs/images/ (docs/images/ too with `pytest --publish-docs`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from bot.db import models as m
from bot.db.engine import Database
from bot.services.access import load_caller
from bot.services.notices import create_notice, receive
from scheduler.limits import RateLimits
from scheduler.sender import Sender
from tests import outputs
from tests.browser import chromium
from tests.harness import T0, TOKEN, Harness, User, texts
from tests.test_dashboard import page_figures, status_totals
from tests.webapp import dashboard_server, sign_init_data

PHONE = (390, 844)
DESKTOP = (1440, 900)


async def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking WebDriver call in a thread: the web server lives on this event loop."""
    return await asyncio.to_thread(fn, *args)


def wait_for(driver: WebDriver, css: str, seconds: float = 20) -> Any:
    """Wait until an element matching `css` is on the page and return it."""
    return WebDriverWait(driver, seconds).until(lambda d: d.find_element(By.CSS_SELECTOR, css))


async def open_as(driver: WebDriver, base: str, user: User, now: Any, path: str = "/dash/") -> None:
    """Open the dashboard the way Telegram opens a Mini App: initData in the URL fragment."""
    data = sign_init_data(TOKEN, user, now)
    await off_loop(driver.get, f"{base}{path}#tgWebAppData={quote(data)}&tgWebAppVersion=8.0")
    await off_loop(wait_for, driver, "main[data-refresh]")


SETTLED = """
return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)
    && !document.querySelector('[data-load] > p > a');
"""


async def screenshot(driver: WebDriver, name: str) -> None:
    """Keep what the browser shows as images/<name> among the run's outputs.

    Taken once the pictures have arrived and the sections that load later have loaded.
    """
    await off_loop(WebDriverWait(driver, 20).until, lambda d: d.execute_script(SETTLED))
    outputs.write_bytes(f"images/{name}", await off_loop(driver.get_screenshot_as_png))


def figures_on(driver: WebDriver) -> dict[str, int]:
    """Return the figures the page shows (its data-figure elements)."""
    return page_figures(driver.page_source)


@pytest.fixture
async def h(sqlite_db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(sqlite_db, T0)
    yield harness
    await harness.close()


async def submit_document(h: Harness, contact: User, task_label: str) -> None:
    """Let a contact hand in a document for the task whose button names `task_label`."""
    await h.send(contact, "/submit")
    data = next(d for label, d in h.last_buttons(contact) if task_label in label)
    await h.press(contact, data)
    await h.send_document(contact, name="调研报告.pdf")
    await h.press(contact, "sc:ok")


async def test_dashboard_in_chromium(h: Harness) -> None:
    office = await h.register("office", name="办公室王主任")
    leader = await h.register("leader", name="李组长")
    contact_a = await h.register("contact", "甲县", name="甲县联络员")
    contact_b = await h.register("contact", "乙县", name="乙县联络员")
    await submit_document(h, contact_a, "调研报告")
    await submit_document(h, contact_b, "调研报告")
    h.now += timedelta(days=12)  # some deadlines have passed: overdue figures are not zero
    status = "\n".join(await h.send(leader, "/status"))
    total, submitted, accepted, overdue = status_totals(status)
    runtime = h.app.bot_data["runtime"]
    sender = Sender(
        h.app.bot,
        h.db,
        RateLimits(30),
        clock=lambda: h.now,
        default_language="zh",
        ready=runtime.outbox_ready,
        poll_seconds=0.2,
    )
    sending = asyncio.create_task(sender.run())
    try:
        async with dashboard_server(h) as (server, board):
            base = f"http://127.0.0.1:{server.port}"
            # A leader on a phone: the overview equals /status.
            with chromium(*PHONE) as phone:
                await open_as(phone, base, leader, h.now)
                shown = figures_on(phone)
                assert (shown["total"], shown["submitted"], shown["accepted"]) == (
                    total,
                    submitted,
                    accepted,
                )
                assert shown["overdue"] == overdue > 0
                await screenshot(phone, "dashboard-phone.png")
                # The figures refresh by themselves: a new submission shows up unasked
                # (every second here instead of every 30 s).
                board.refresh_seconds = 1
                await off_loop(phone.get, f"{base}/dash/")
                await off_loop(wait_for, phone, "main[data-refresh='1']")
                board.refresh_seconds = 30
                await submit_document(h, contact_a, "工作部署")
                await off_loop(
                    WebDriverWait(phone, 20).until,
                    lambda d: figures_on(d)["submitted"] == submitted + 1,
                )
                submitted += 1
                # Open a unit from the search box, as a leader would.
                box = await off_loop(wait_for, phone, "input[name=q]")
                await off_loop(box.send_keys, "甲县\n")
                await off_loop(wait_for, phone, "[data-figure=unit]")
                assert "甲县" in phone.title and "调研报告.pdf" in phone.page_source
                await screenshot(phone, "dashboard-phone-unit.png")
            # The office on a wide screen: the overview, then the review queue.
            with chromium(*DESKTOP) as desk:
                await open_as(desk, base, office, h.now)
                assert figures_on(desk)["total"] == total
                await screenshot(desk, "dashboard-desktop.png")
                await off_loop(desk.get, f"{base}/dash/overdue")
                await off_loop(wait_for, desk, "h1[data-figure=overdue]")
                await screenshot(desk, "dashboard-overdue.png")
                await off_loop(desk.get, f"{base}/dash/review")
                await off_loop(wait_for, desk, "button[data-action=accept]")
                await screenshot(desk, "dashboard-review.png")
                item = await off_loop(
                    desk.find_element,
                    By.XPATH,
                    "//li[@data-submission][.//a[contains(., '甲县')]]",
                )
                accept = await off_loop(
                    item.find_element, By.CSS_SELECTOR, "button[data-action=accept]"
                )
                await off_loop(accept.click)
                flash = await off_loop(wait_for, desk, ".flash")
                assert "已通过" in flash.text and "甲县" in flash.text
            # The contact is told by the real sender, through the outbox.
            for _ in range(100):
                told = [
                    text
                    for call in h.request.calls
                    if str(call.params.get("chat_id")) == str(contact_a.id)
                    for text in texts([call])
                    if "已通过审核" in text
                ]
                if told:
                    break
                await asyncio.sleep(0.1)
            assert told, "the contact was not told"
            after = "\n".join(await h.send(leader, "/status"))
            assert status_totals(after)[2] == accepted + 1
            # A contact sees only their own unit; another unit's page is refused.
            with chromium(*PHONE) as phone:
                await open_as(phone, base, contact_b, h.now)
                await screenshot(phone, "dashboard-phone-contact.png")
                source = phone.page_source
                assert "乙县" in source and "甲县" not in source
                own = re.search(r'href="/dash/unit/(\d+)"', source)
                assert own is not None
                other_id = int(own.group(1)) - 1  # 甲县 comes just before 乙县 in the plan
                await off_loop(phone.get, f"{base}/dash/unit/{other_id}")
                refusal = await off_loop(wait_for, phone, ".refusal")
                assert "只能查看本单位" in refusal.text
                assert "甲县" not in phone.page_source
    finally:
        sender.stop()
        await asyncio.wait_for(sending, 30)


async def told(h: Harness, user: User, words: str) -> list[str]:
    """Wait until the outbox sender has delivered a message with `words` to `user`."""
    for _ in range(100):
        found = [
            text
            for call in h.request.calls
            if str(call.params.get("chat_id")) == str(user.id)
            for text in texts([call])
            if words in text
        ]
        if found:
            return found
        await asyncio.sleep(0.1)
    return []


async def test_remind_again_in_chromium(h: Harness) -> None:
    """The office opens a notice's receipts and presses "remind again": the unit that has not
    received it is sent the notice again, the one that has is not.
    """
    office = await h.register("office", name="办公室王主任")
    contact_a = await h.register("contact", "甲县", name="甲县联络员")
    contact_b = await h.register("contact", "乙县", name="乙县联络员")
    async with h.db.write() as session:
        caller = await load_caller(session, office.id)
        assert caller is not None
        units = list(
            await session.scalars(
                select(m.Unit).where(m.Unit.key.in_(("county-a", "county-b"))).order_by(m.Unit.id)
            )
        )
        notice, _ = await create_notice(
            session,
            caller,
            text="关于开展安全生产自查的通知\n请于周五前完成。",
            file=None,
            units=units,
            deadline_at=None,
            now=h.now,
            default_language="zh",
        )
        own = await load_caller(session, contact_a.id)
        assert own is not None
        await receive(session, own, notice.id, units[0].id, now=h.now)
    h.now += timedelta(hours=1)
    runtime = h.app.bot_data["runtime"]
    sender = Sender(
        h.app.bot,
        h.db,
        RateLimits(30),
        clock=lambda: h.now,
        default_language="zh",
        ready=runtime.outbox_ready,
        poll_seconds=0.2,
    )
    sending = asyncio.create_task(sender.run())
    try:
        async with dashboard_server(h) as (server, _):
            base = f"http://127.0.0.1:{server.port}"
            with chromium(*DESKTOP) as desk:
                await open_as(desk, base, office, h.now, "/dash/notices")
                link = await off_loop(wait_for, desk, f"li[data-notice='{notice.id}'] a")
                assert "1/2" in desk.page_source
                await off_loop(link.click)
                remind = await off_loop(wait_for, desk, "button[data-action=remind]")
                assert "甲县联络员" in desk.page_source  # who received it
                await screenshot(desk, "dashboard-notice.png")
                await off_loop(remind.click)
                flash = await off_loop(wait_for, desk, ".flash")
                assert "1 个未收到的单位" in flash.text
            assert await told(h, contact_b, "再次提醒"), "the unit was not reminded"
            assert not [
                call
                for call in h.request.calls
                if str(call.params.get("chat_id")) == str(contact_a.id)
                and "再次提醒" in "".join(texts([call]))
            ]
    finally:
        sender.stop()
        await asyncio.wait_for(sending, 30)
