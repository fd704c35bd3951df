"""The dashboard: Telegram's login data checked, the session cookie, pages equal to the chat."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from telegram import Bot

from bot.config import load_config
from bot.db import models as m
from bot.db.engine import Database
from bot.services.access import load_caller
from bot.services.notices import create_notice, receive
from dashboard.auth import (
    MAX_AGE,
    BadLogin,
    Sessions,
    check_init_data,
    check_login_widget,
)
from sandbox.botapi import Limits, LocalBotAPI
from tests.harness import BOT_USERNAME, T0, TOKEN, Harness
from tests.reliability import record
from tests.webapp import dashboard_server, logged_in, sign_init_data, sign_widget

OTHER_TOKEN = "999111:ANOTHER-BOT"
GROUP: dict[str, Any] = {"id": -1001234, "type": "supergroup", "title": "领导小组群"}


@pytest.fixture
async def h(sqlite_db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(sqlite_db, T0)
    yield harness
    await harness.close()


# -- login data ----------------------------------------------------------------------------


def test_init_data_valid_forged_expired_and_other_bot(h: Harness) -> None:
    user = h.user("领导")
    good = sign_init_data(TOKEN, user, T0 - timedelta(hours=23))
    assert check_init_data(good, TOKEN, T0).telegram_id == user.id
    cases = {
        # Another person's id put into data signed for someone else.
        "forged user": good.replace(str(user.id), str(user.id + 1)),
        "no hash": re.sub(r"&?hash=[0-9a-f]+", "", good),
        "hash of zeros": re.sub(r"hash=[0-9a-f]+", "hash=" + "0" * 64, good),
        "expired": sign_init_data(TOKEN, user, T0 - MAX_AGE - timedelta(seconds=1)),
        "from the future": sign_init_data(TOKEN, user, T0 + timedelta(hours=1)),
        "another bot's data": sign_init_data(OTHER_TOKEN, user, T0),
        "widget signature as initData": "&".join(
            f"{k}={v}" for k, v in sign_widget(TOKEN, user, T0).items()
        ),
        "empty": "",
        "huge": "a=" + "x" * 10_000,
    }
    for name, data in cases.items():
        with pytest.raises(BadLogin):
            check_init_data(data, TOKEN, T0)
            pytest.fail(name)
    record(
        "abuse",
        "dashboard Mini App initData: forged, expired, other bot",
        len(cases),
        "refused",
    )


def test_login_widget_valid_forged_expired_and_other_bot(h: Harness) -> None:
    user = h.user("办公室")
    good = sign_widget(TOKEN, user, T0 - timedelta(hours=1))
    assert check_login_widget(good, TOKEN, T0).telegram_id == user.id
    cases = {
        "forged id": {**good, "id": str(user.id + 1)},
        "no hash": {k: v for k, v in good.items() if k != "hash"},
        "expired": sign_widget(TOKEN, user, T0 - MAX_AGE - timedelta(minutes=1)),
        "another bot's data": sign_widget(OTHER_TOKEN, user, T0),
        # The Mini App key is not the widget key: initData's hash must not pass here.
        "extra field": {**good, "username": "intruder"},
    }
    for name, fields in cases.items():
        with pytest.raises(BadLogin):
            check_login_widget(fields, TOKEN, T0)
            pytest.fail(name)
    record(
        "abuse", "dashboard Login Widget hash: forged, expired, other bot", len(cases), "refused"
    )


def test_session_cookie_signed_and_expiring() -> None:
    sessions = Sessions(TOKEN)
    value, session = sessions.issue(42, T0)
    assert sessions.check(value, T0) == session
    body, signature = value.split(".")
    forged = [
        f"{body}.{signature[:-2]}AA",
        f"{body[:-2]}AA.{signature}",
        Sessions(OTHER_TOKEN).issue(42, T0)[0],
        "",
        "x" * 600,
        "a.b.c",
    ]
    for bad in forged:
        assert sessions.check(bad, T0) is None, bad
    assert sessions.check(value, session.expires) is None
    assert sessions.check(value, session.expires - timedelta(seconds=1)) is not None
    record(
        "abuse",
        "dashboard session cookie: tampered, other bot, expired",
        len(forged) + 1,
        "refused",
    )


# -- over HTTP -----------------------------------------------------------------------------


def status_totals(text: str) -> tuple[int, int, int, int]:
    """Return (total, submitted, accepted, overdue) from /status's total line."""
    found = re.search(r"已报 (\d+)/(\d+) · 已审 (\d+) · 逾期 (\d+)", text.split("合计")[1])
    assert found, text
    submitted, total, accepted, overdue = map(int, found.groups())
    return total, submitted, accepted, overdue


def page_figures(html: str) -> dict[str, int]:
    """Return the figures a page marks with data-figure."""
    return {k: int(v) for k, v in re.findall(r'data-figure="(\w+)">(\d+)<', html)}


async def test_overview_equals_status_and_cookie_flags(h: Harness) -> None:
    leader = await h.register("leader")
    contact = await h.register("contact", "甲县")
    await h.send(contact, "/submit")
    buttons = h.last_buttons(contact)
    await h.press(contact, buttons[0][1])
    await h.send_document(contact)
    await h.press(contact, "sc:ok")
    h.now += timedelta(days=40)  # most things overdue now
    status = "\n".join(await h.send(leader, "/status"))
    total, submitted, accepted, overdue = status_totals(status)
    async with dashboard_server(h) as (server, _):
        base = f"http://127.0.0.1:{server.port}"
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as anon, anon.get(f"{base}/dash/") as r:
            assert r.status == 401
            assert "登录督办看板" in await r.text()
        data = sign_init_data(TOKEN, leader, h.now)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            async with client.post(f"{base}/dash/auth/webapp", data={"init_data": data}) as r:
                assert r.status == 200
                cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert "Max-Age=43200" in cookie and "Path=/dash" in cookie
            async with client.get(f"{base}/dash/") as response:
                assert response.status == 200
                html = await response.text()
                assert "no-store" in response.headers["Cache-Control"]
                assert "frame-ancestors" in response.headers["Content-Security-Policy"]
        figures = page_figures(html)
        assert (figures["total"], figures["submitted"], figures["accepted"]) == (
            total,
            submitted,
            accepted,
        )
        assert figures["overdue"] == overdue and overdue > 0
        # The units most behind, as /status lists them.
        for name in re.findall(r"\d+\. (\S+?) · 逾期", status):
            assert f'data-laggard="{name}"' in html
        # A fragment (the 30-second refresh) carries the same figures without the frame.
        client = await logged_in(base, TOKEN, leader, h.now)
        headers = {"X-Duban-Fragment": "1"}
        async with client, client.get(f"{base}/dash/", headers=headers) as r:
            fragment = await r.text()
        assert "<html" not in fragment and page_figures(fragment) == figures


async def test_refused_login_and_no_session(h: Harness) -> None:
    leader = await h.register("leader")
    async with dashboard_server(h) as (server, _):
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            for data in (
                sign_init_data(OTHER_TOKEN, leader, h.now),
                sign_init_data(TOKEN, leader, h.now - timedelta(days=2)),
            ):
                async with client.post(f"{base}/dash/auth/webapp", data={"init_data": data}) as r:
                    assert r.status == 401
                    assert "Set-Cookie" not in r.headers
            async with client.get(f"{base}/dash/auth/widget", params={"id": "1", "hash": "0"}) as r:
                assert r.status == 401
            widget = sign_widget(TOKEN, leader, h.now)
            async with client.get(f"{base}/dash/auth/widget", params=widget) as r:
                assert r.status == 200 and "Set-Cookie" in r.headers
            async with client.get(f"{base}/dash/") as r:
                assert r.status == 200 and 'data-figure="total"' in await r.text()


async def test_stranger_is_told_to_register(h: Harness) -> None:
    stranger = h.user("路人")
    async with dashboard_server(h) as (server, _):
        base = f"http://127.0.0.1:{server.port}"
        client = await logged_in(base, TOKEN, stranger, h.now)
        async with client, client.get(f"{base}/dash/") as response:
            assert response.status == 403
            assert "还没有登记" in await response.text()


# -- opening it from the chat --------------------------------------------------------------


def _markup(h: Harness, chat_id: int) -> dict[str, Any]:
    for call in reversed(h.request.calls):
        if call.method == "sendMessage" and int(call.params.get("chat_id", 0)) == chat_id:
            markup = call.params.get("reply_markup")
            return dict(markup if isinstance(markup, dict) else json.loads(markup or "{}"))
    raise AssertionError("no message")


async def test_dashboard_command_buttons(h: Harness) -> None:
    leader = await h.register("leader", name="李组长")
    [off] = await h.send(leader, "/dashboard")
    assert "还没有开启" in off
    runtime = h.app.bot_data["runtime"]
    runtime.config = load_config(
        env={"DUBAN_TELEGRAM_TOKEN": TOKEN, "DUBAN_HTTP_PUBLIC_URL": "https://bot.example.org"}
    )
    [private] = await h.send(leader, "/dashboard")
    assert "督办看板" in private
    [[button]] = _markup(h, leader.id)["inline_keyboard"]
    assert button["web_app"] == {"url": "https://bot.example.org/dash/"}
    # In a registered group: a login button (Mini App buttons are for private chats).
    code = await h.invite("leader")
    await h.send(leader, f"/start@{BOT_USERNAME} {code}", chat=GROUP)
    [group] = await h.send(leader, "/dashboard", chat=GROUP)
    assert "登录" in group
    [[button]] = _markup(h, GROUP["id"])["inline_keyboard"]
    assert button["login_url"]["url"] == "https://bot.example.org/dash/auth/widget"
    # A stranger is told to register, as for every command.
    [stranger] = await h.send(h.user("路人"), "/dashboard")
    assert "还没有登记" in stranger
    # Without HTTPS (a first try on a LAN) the button is a plain link.
    runtime.config = load_config(
        env={"DUBAN_TELEGRAM_TOKEN": TOKEN, "DUBAN_HTTP_PUBLIC_URL": "http://10.0.0.5:8080"}
    )
    await h.send(leader, "/dashboard")
    [[button]] = _markup(h, leader.id)["inline_keyboard"]
    assert button["url"] == "http://10.0.0.5:8080/dash/"


async def test_english_and_escaping(h: Harness) -> None:
    office = await h.register("office", name="王主任")
    contact = await h.register("contact", "甲县", name="<b>甲县</b>联络员")
    await h.send(contact, "/submit")
    await h.press(contact, h.last_buttons(contact)[0][1])
    await h.send_document(contact)
    await h.press(contact, "sc:ok")
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    async with h.db.write() as session:
        submission = await session.scalar(select(m.Submission))
        assert submission is not None
        submission.text = hostile
        unit_id = (await session.get_one(m.Assignment, submission.assignment_id)).unit_id
    await h.send(office, "/lang en")
    async with dashboard_server(h) as (server, _):
        base = f"http://127.0.0.1:{server.port}"
        client = await logged_in(base, TOKEN, office, h.now)
        async with client:
            async with client.get(f"{base}/dash/unit/{unit_id}") as response:
                page = await response.text()
            async with client.get(f"{base}/dash/review") as response:
                queue = await response.text()
    for html in (page, queue):
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html and "&lt;b&gt;甲县&lt;/b&gt;联络员" in html
    # The person chose English in the chat: the pages are English too.
    assert "Submitted versions" in page and "Awaiting review (1)" in queue
    record("bad input", "HTML in captions and names shown on dashboard pages", 2, "escaped")


async def test_task_page_filters_agree_with_task_command(h: Harness) -> None:
    leader = await h.register("leader", name="李组长")
    contact = await h.register("contact", "甲县", name="甲县联络员")
    await h.send(contact, "/submit")
    data = next(d for label, d in h.last_buttons(contact) if "调研报告" in label)
    await h.press(contact, data)
    await h.send_document(contact)
    await h.press(contact, "sc:ok")
    h.now += timedelta(days=5)
    chat = "\n".join(await h.send(leader, "/task 书面调研报告"))
    found = re.search(r"未报送（(\d+)）", chat)
    assert found, chat
    missing = int(found.group(1))
    async with h.db.read() as session:
        task_id = await session.scalar(select(m.Task.id).where(m.Task.key == "research-report"))
    async with dashboard_server(h) as (server, _):
        base = f"http://127.0.0.1:{server.port}"
        client = await logged_in(base, TOKEN, leader, h.now)
        shown: dict[str, str] = {}
        async with client:
            for show in ("all", "missing", "submitted", "overdue", "bogus"):
                async with client.get(f"{base}/dash/task/{task_id}?show={show}") as response:
                    assert response.status == 200
                    shown[show] = await response.text()
    rows = {k: len(re.findall(r"<tr class=\"state-", html)) for k, html in shown.items()}
    assert rows["missing"] == missing and rows["submitted"] == 1
    assert rows["all"] == rows["missing"] + rows["submitted"] == rows["bogus"]
    # Due 5月10日 18:00, now 5月13日: every unit still missing is overdue.
    assert rows["overdue"] == missing > 0


async def test_files_stream_from_telegram_or_say_open_in_chat(h: Harness) -> None:
    office = await h.register("office", name="王主任")
    contact = await h.register("contact", "甲县", name="甲县联络员")
    await h.send(contact, "/submit")
    await h.press(contact, h.last_buttons(contact)[0][1])
    await h.send_document(contact, name="调研 报告.pdf")
    await h.press(contact, "sc:ok")
    content = bytes(range(256)) * 1000  # 256 KB: several chunks
    async with LocalBotAPI(token=TOKEN, limits=Limits.off()) as srv:
        uploader = srv.add_user("上传者", started=True)
        small = srv.send_document(uploader, "a.pdf", content)["message"]["document"]["file_id"]
        huge = srv.send_document(uploader, "b.zip", b"x" * (20 * 1024 * 1024 + 1))
        huge_id = huge["message"]["document"]["file_id"]
        photo = srv.send_photo(uploader, b"\xff\xd8photo")["message"]["photo"][-1]["file_id"]
        async with h.db.write() as session:
            stored = await session.scalar(select(m.SubmissionFile))
            assert stored is not None
            stored.file_id = small
            sid = stored.submission_id
            # An album: a photo came with the document in the same version.
            session.add(
                m.SubmissionFile(submission_id=sid, position=2, kind="photo", file_id=photo)
            )
        bot = Bot(TOKEN, base_url=srv.base_url, base_file_url=srv.base_file_url)
        async with bot, dashboard_server(h, bot=bot) as (server, _):
            base = f"http://127.0.0.1:{server.port}"
            client = await logged_in(base, TOKEN, office, h.now)
            async with client:
                async with client.get(f"{base}/dash/unit/{await _unit_of(h, sid)}") as response:
                    unit_page = await response.text()
                    assert f'href="/dash/file/{sid}/1"' in unit_page
                    assert f'href="/dash/file/{sid}/2"' in unit_page
                async with client.get(f"{base}/dash/file/{sid}/2") as response:
                    assert await response.read() == b"\xff\xd8photo"
                    assert response.headers["Content-Type"] == "image/jpeg"
                    assert response.headers["Content-Disposition"].startswith("inline;")
                async with client.get(f"{base}/dash/file/{sid}/1") as response:
                    assert response.status == 200
                    assert await response.read() == content
                    disposition = response.headers["Content-Disposition"]
                    assert disposition.startswith("attachment;")
                    assert "filename*=UTF-8''%E8%B0%83%E7%A0%94%20" in disposition
                    assert response.headers["Content-Type"] == "application/pdf"
                # The stored size is unknown, Telegram refuses: open it in the chat.
                async with h.db.write() as session:
                    found = await session.scalar(select(m.SubmissionFile))
                    assert found is not None
                    found.file_id, found.file_size = huge_id, None
                async with client.get(f"{base}/dash/file/{sid}/1") as response:
                    assert "请在聊天中查看" in await response.text()
                # A file_id Telegram no longer knows: one line, no traceback, no token.
                async with h.db.write() as session:
                    found = await session.scalar(select(m.SubmissionFile))
                    assert found is not None
                    found.file_id = "gone"
                async with client.get(f"{base}/dash/file/{sid}/1") as response:
                    text = await response.text()
                    assert response.status == 502 and "暂时取不到" in text
                    assert TOKEN not in text


async def _unit_of(h: Harness, submission_id: int) -> int:
    async with h.db.read() as session:
        submission = await session.get_one(m.Submission, submission_id)
        return (await session.get_one(m.Assignment, submission.assignment_id)).unit_id


async def test_notice_receipts_agree_with_the_notice_command(h: Harness) -> None:
    office = await h.register("office", name="王主任")
    contact = await h.register("contact", "甲县", name="<b>甲县</b>联络员")
    hostile = '<script>alert("x")</script>通知'
    async with h.db.write() as session:
        caller = await load_caller(session, office.id)
        own = await load_caller(session, contact.id)
        assert caller is not None and own is not None
        units = list(
            await session.scalars(select(m.Unit).where(m.Unit.campaign_id == caller.campaign.id))
        )
        notice, _ = await create_notice(
            session,
            caller,
            text=hostile,
            file=None,
            units=units,
            deadline_at=None,
            now=h.now,
            default_language="zh",
        )
        await receive(session, own, notice.id, own.unit_ids[0], now=h.now)
        session.add(
            m.Report(
                campaign_id=caller.campaign.id,
                unit_id=own.unit_ids[0],
                person_id=own.person.id,
                text=hostile,
                created_at=h.now,
            )
        )
    chat = "\n".join(await h.send(office, "/notice"))
    found = re.search(r"已收到 (\d+)/(\d+)", chat)
    assert found, chat
    async with dashboard_server(h) as (server, _):
        base = f"http://127.0.0.1:{server.port}"
        client = await logged_in(base, TOKEN, office, h.now)
        pages: dict[str, str] = {}
        async with client:
            for path in (
                "/dash/notices",
                "/dash/notices?show=open",
                f"/dash/notice/{notice.id}",
                f"/dash/notice/{notice.id}?show=received",
                f"/dash/notice/{notice.id}?show=missing",
                f"/dash/unit/{own.unit_ids[0]}",
            ):
                async with client.get(f"{base}{path}") as response:
                    assert response.status == 200, path
                    pages[path] = await response.text()
    received, total = int(found.group(1)), int(found.group(2))
    assert (received, total) == (1, len(units))
    assert f"已收到 {received}/{total}" in pages["/dash/notices"]
    assert f"已收到 {received}/{total}" in pages["/dash/notices?show=open"]
    rows = {
        show: len(re.findall(r"<tr class=\"state-", pages[f"/dash/notice/{notice.id}{show}"]))
        for show in ("", "?show=received", "?show=missing")
    }
    assert rows == {"": total, "?show=received": received, "?show=missing": total - received}
    assert "&lt;b&gt;甲县&lt;/b&gt;联络员" in pages[f"/dash/notice/{notice.id}?show=received"]
    unit_page = pages[f"/dash/unit/{own.unit_ids[0]}"]
    assert "收到的通知" in unit_page and "待审" in unit_page
    for html in pages.values():
        assert "<script>alert" not in html
    assert "&lt;script&gt;" in unit_page
    record("bad input", "HTML in notices and reports shown on dashboard pages", 2, "escaped")
