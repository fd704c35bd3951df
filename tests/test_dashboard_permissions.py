"""Every dashboard page and action × every role × own/other unit: shown, refused, never leaked.

The roles and unit scope are the chat's (tests/test_permissions.py): a contact or head sees
their own unit only, leaders see everything but act on nothing, the office and admins review.
A leak is the other unit's name or file bytes in any answer to someone who may not see it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select, update
from telegram import Bot

from bot.db import models as m
from bot.db.engine import Database
from sandbox.botapi import Limits, LocalBotAPI
from tests.harness import T0, TOKEN, Harness, User
from tests.reliability import record
from tests.webapp import dashboard_server, sign_init_data

ROLES = ("stranger", "contact", "head", "office", "leader", "admin")
OWN, OTHER = "甲县总工会", "乙县总工会"
OWN_FILE, OTHER_FILE = b"%PDF-own-unit-report", b"%PDF-other-unit-report"
NOTICE_TEXT = "关于开展安全生产自查的通知"
OWN_REPORT = "本单位本周工作情况报告"
OVERSEERS = ("office", "leader", "admin")
OFFICE = ("office", "admin")
UNIT_ROLES = ("contact", "head")


@dataclass
class World:
    """The ids the pages are asked about."""

    own_unit: int
    other_unit: int
    task: int
    own_sub: int
    other_sub: int
    big_sub: int
    notice: int


@pytest.fixture
async def h(sqlite_db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(sqlite_db, T0)
    yield harness
    await harness.close()


async def submit(h: Harness, contact: User) -> None:
    await h.send(contact, "/submit")
    data = next(d for label, d in h.last_buttons(contact) if "调研报告" in label)
    await h.press(contact, data)
    await h.send_document(contact, name="报告.pdf")
    await h.press(contact, "sc:ok")


async def build_world(h: Harness, srv: LocalBotAPI) -> World:
    """Both units hand in the research report; their files live on the local Bot API server."""
    own_contact = await h.register("contact", "甲县", name="甲县联络员")
    other_contact = await h.register("contact", "乙县", name="乙县联络员")
    await submit(h, own_contact)
    await submit(h, other_contact)
    sender = srv.add_user("上传者", started=True)
    own_id = srv.send_document(sender, "own.pdf", OWN_FILE)["message"]["document"]["file_id"]
    other_id = srv.send_document(sender, "other.pdf", OTHER_FILE)["message"]["document"]["file_id"]
    async with h.db.write() as session:
        rows = {
            key: (unit_id, sub_id)
            for key, unit_id, sub_id in await session.execute(
                select(m.Unit.key, m.Unit.id, m.Submission.id)
                .join(m.Assignment, m.Assignment.unit_id == m.Unit.id)
                .join(m.Submission, m.Submission.assignment_id == m.Assignment.id)
            )
        }
        own_unit, own_sub = rows["county-a"]
        other_unit, other_sub = rows["county-b"]
        for sub_id, file_id in ((own_sub, own_id), (other_sub, other_id)):
            await session.execute(
                update(m.SubmissionFile)
                .where(m.SubmissionFile.submission_id == sub_id)
                .values(file_id=file_id)
            )
        # A third version of the own unit, too big for getFile.
        big = m.Submission(
            assignment_id=(await session.get_one(m.Submission, own_sub)).assignment_id,
            version=2,
            person_id=None,
            kind="document",
            file_id=own_id,
            file_name="big.zip",
            file_size=25 * 1024 * 1024,
            late=False,
            submitted_at=h.now,
        )
        session.add(big)
        await session.flush()
        session.add(
            m.SubmissionFile(
                submission_id=big.id,
                position=1,
                kind="document",
                file_id=own_id,
                file_name="big.zip",
                file_size=25 * 1024 * 1024,
            )
        )
        task = await session.scalar(select(m.Task.id).where(m.Task.key == "research-report"))
        # A notice to both units, received by the own unit only; a report from each unit
        # (the other's names its unit, so showing it to the wrong person is a leak).
        campaign = await session.scalar(select(m.Unit.campaign_id).where(m.Unit.id == own_unit))
        receiver = await session.scalar(
            select(m.Person.id).where(m.Person.telegram_id == own_contact.id)
        )
        assert campaign is not None
        notice = m.Notice(campaign_id=campaign, text=NOTICE_TEXT, created_at=h.now)
        session.add(notice)
        await session.flush()
        session.add_all(
            [
                m.NoticeReceipt(
                    notice_id=notice.id, unit_id=own_unit, received_by=receiver, received_at=h.now
                ),
                m.NoticeReceipt(notice_id=notice.id, unit_id=other_unit),
                m.Report(campaign_id=campaign, unit_id=own_unit, text=OWN_REPORT, created_at=h.now),
                m.Report(
                    campaign_id=campaign, unit_id=other_unit, text=f"{OTHER}情况", created_at=h.now
                ),
            ]
        )
    assert task is not None
    return World(own_unit, other_unit, task, own_sub, other_sub, big.id, notice.id)


async def person_for(h: Harness, role: str) -> User:
    if role == "stranger":
        return h.user("路人")
    unit = "甲县" if role in UNIT_ROLES else None
    return await h.register(role, unit, name=f"{role}-person")


def expectations(w: World) -> list[tuple[str, str, dict[str, tuple[int, str | None]]]]:
    """Return (method, path, role -> (status, text that must be in the answer))."""
    everyone_own = {r: (200, OWN) for r in ("contact", "head", *OVERSEERS)}
    overseers_other = {r: (200, OTHER) for r in OVERSEERS}
    units_refused = {r: (403, "只能查看本单位") for r in UNIT_ROLES}
    only_office = {r: (403, "只供办公室使用") for r in ("contact", "head", "leader")}
    only_overseers = {r: (403, "只供办公室和领导小组使用") for r in UNIT_ROLES}
    return [
        ("GET", "/dash/", {**everyone_own, **{r: (200, "data-figure") for r in OVERSEERS}}),
        (
            "GET",
            "/dash/ranking",
            {**{r: (403, "只供办公室和领导小组使用") for r in UNIT_ROLES}, **overseers_other},
        ),
        ("GET", "/dash/overdue", {**everyone_own, **overseers_other}),
        ("GET", f"/dash/task/{w.task}", {**everyone_own, **overseers_other}),
        ("GET", f"/dash/task/{w.task}?show=submitted", {**everyone_own, **overseers_other}),
        ("GET", f"/dash/unit/{w.own_unit}", everyone_own),
        # The unit's reports and the notices it received (with its receipt), as in /unit.
        (
            "GET",
            f"/dash/unit/{w.own_unit}",
            {r: (200, OWN_REPORT) for r in ("contact", "head", *OVERSEERS)},
        ),
        (
            "GET",
            f"/dash/unit/{w.own_unit}",
            {r: (200, NOTICE_TEXT) for r in ("contact", "head", *OVERSEERS)},
        ),
        # Notices and their receipts: the office and leaders, as /notice in the chat.
        ("GET", "/dash/notices", {**only_overseers, **{r: (200, NOTICE_TEXT) for r in OVERSEERS}}),
        (
            "GET",
            "/dash/notices?show=open",
            {**only_overseers, **{r: (200, "1/2") for r in OVERSEERS}},
        ),
        ("GET", f"/dash/notice/{w.notice}", {**only_overseers, **overseers_other}),
        (
            "GET",
            f"/dash/notice/{w.notice}?show=missing",
            {**only_overseers, **overseers_other},
        ),
        (
            "GET",
            f"/dash/notice/{w.notice}?show=received",
            {**only_overseers, **{r: (200, OWN) for r in OVERSEERS}},
        ),
        ("GET", "/dash/notice/999999", {**only_overseers, **{r: (404, None) for r in OVERSEERS}}),
        ("GET", f"/dash/unit/{w.other_unit}", {**units_refused, **overseers_other}),
        ("GET", "/dash/unit/999999", {**units_refused, **{r: (404, None) for r in OVERSEERS}}),
        # /unit's rule: a unit member's search is among their own units only.
        (
            "GET",
            "/dash/units?q=乙县总工会",
            {
                **{r: (303, f"/dash/unit/{w.own_unit}") for r in UNIT_ROLES},
                **{r: (303, f"/dash/unit/{w.other_unit}") for r in OVERSEERS},
            },
        ),
        ("GET", "/dash/review", {**only_office, **{r: (200, OTHER) for r in OFFICE}}),
        ("GET", "/dash/timeline.svg", {r: (200, "<svg") for r in ("contact", "head", *OVERSEERS)}),
        (
            "GET",
            f"/dash/file/{w.own_sub}/1",
            {
                **{r: (200, OWN_FILE.decode()) for r in ("contact", "head", *OFFICE)},
                "leader": (403, "只能查看本单位"),
            },
        ),
        (
            "GET",
            f"/dash/file/{w.other_sub}/1",
            {
                **{r: (403, "只能查看本单位") for r in ("contact", "head", "leader")},
                **{r: (200, OTHER_FILE.decode()) for r in OFFICE},
            },
        ),
        (
            "GET",
            f"/dash/file/{w.big_sub}/1",
            {
                **{r: (200, "请在聊天中查看") for r in ("contact", "head", *OFFICE)},
                "leader": (403, None),
            },
        ),
        ("GET", "/dash/file/999999/1", {r: (404, None) for r in ("contact", "head", *OVERSEERS)}),
        (
            "GET",
            f"/dash/file/{w.own_sub}/2",
            {**{r: (404, None) for r in ("contact", "head", *OFFICE)}, "leader": (403, None)},
        ),
    ]


@pytest.mark.parametrize("role", ROLES)
async def test_every_page_for_a_role(h: Harness, role: str) -> None:
    async with LocalBotAPI(token=TOKEN, limits=Limits.off()) as srv:
        world = await build_world(h, srv)
        me = await person_for(h, role)
        h.now += timedelta(days=40)  # overdue items in both units
        bot = Bot(TOKEN, base_url=srv.base_url, base_file_url=srv.base_file_url)
        async with bot, dashboard_server(h, bot=bot) as (server, _):
            base = f"http://127.0.0.1:{server.port}"
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as client:
                login = sign_init_data(TOKEN, me, h.now)
                async with client.post(f"{base}/dash/auth/webapp", data={"init_data": login}):
                    pass
                failures, leaks = await _walk(client, base, role, expectations(world))
    assert not failures, "\n".join(failures)
    assert leaks == 0
    record(
        "abuse",
        f"every dashboard page as {role} (own and other unit)",
        len(expectations(world)),
        "shown or refused as in the chat; 0 leaks",
        losses=leaks,
    )


async def _walk(
    client: aiohttp.ClientSession,
    base: str,
    role: str,
    pages: list[tuple[str, str, dict[str, tuple[int, str | None]]]],
) -> tuple[list[str], int]:
    failures: list[str] = []
    leaks = 0
    for method, path, wanted in pages:
        async with client.request(method, f"{base}{path}", allow_redirects=False) as response:
            body = (await response.read()).decode("utf-8", "replace")
            body += response.headers.get("Location", "")
            status = response.status
        if role == "stranger":
            expected: tuple[int, str | None] = (403, "还没有登记")
        else:
            expected = wanted.get(role, (200, None))
        code, must = expected
        if status != code or (must is not None and must not in body):
            failures.append(f"{method} {path} as {role}: wanted {code} {must!r}, got {status}")
        may_see_other = role in OVERSEERS and not (role == "leader" and "/file/" in path)
        if not may_see_other and (OTHER in body or OTHER_FILE.decode() in body):
            leaks += 1
            failures.append(f"{method} {path} as {role}: the other unit leaked")
    return failures, leaks


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.mark.parametrize("role", ROLES)
async def test_every_action_for_a_role(h: Harness, role: str) -> None:
    async with LocalBotAPI(token=TOKEN, limits=Limits.off()) as srv:
        world = await build_world(h, srv)
    me = await person_for(h, role)
    async with dashboard_server(h) as (server, _):
        base = f"http://127.0.0.1:{server.port}"
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as client:
            login = sign_init_data(TOKEN, me, h.now)
            async with client.post(f"{base}/dash/auth/webapp", data={"init_data": login}):
                pass
            async with client.get(f"{base}/dash/") as response:
                page = await response.text()
            csrf = csrf_of(page) if role != "stranger" else "nothing"
            accept_other = f"{base}/dash/review/{world.other_sub}/accept"
            return_own = f"{base}/dash/review/{world.big_sub}/return"
            remind = f"{base}/dash/notice/{world.notice}/remind"
            remind_unknown = f"{base}/dash/notice/999999/remind"
            attempts = [
                # No CSRF token, a wrong one, a foreign Origin: refused for everybody.
                (accept_other, {}, {}, 403),
                (accept_other, {"csrf": "x" * 32}, {}, 403),
                (accept_other, {"csrf": csrf}, {"Origin": "https://evil.example"}, 403),
                (return_own, {"csrf": csrf, "reason": ""}, {}, 404 if role in OFFICE else 403),
                (remind, {}, {}, 403),
                (remind, {"csrf": csrf}, {"Origin": "https://evil.example"}, 403),
                (remind_unknown, {"csrf": csrf}, {}, 404 if role in OFFICE else 403),
            ]
            allowed = 303 if role in OFFICE else 403
            attempts += [
                (accept_other, {"csrf": csrf}, {}, allowed),
                (return_own, {"csrf": csrf, "reason": "请补充数据"}, {}, allowed),
                # Decided already: the same press again changes nothing.
                (accept_other, {"csrf": csrf}, {}, 404 if role in OFFICE else 403),
                # Remind again: the office; a second press within 5 minutes sends nothing.
                (remind, {"csrf": csrf}, {}, allowed),
                (remind, {"csrf": csrf}, {}, allowed),
            ]
            failures = []
            for url, form, headers, code in attempts:
                async with client.post(
                    url, data=form, headers=headers, allow_redirects=False
                ) as response:
                    body = await response.text()
                    if response.status != code:
                        failures.append(f"{url} {form} {headers} as {role}: {response.status}")
                    if role not in OVERSEERS and OTHER in body:
                        failures.append(f"{url} as {role}: the other unit leaked")
    async with h.db.read() as session:
        reviews = list(await session.scalars(select(m.Review).order_by(m.Review.id)))
        audit = list(
            await session.scalars(select(m.AuditLog).where(m.AuditLog.action.like("review.%")))
        )
        refused = list(
            await session.scalars(select(m.AuditLog).where(m.AuditLog.action == "access.refused"))
        )
        reminds = list(
            await session.scalars(select(m.AuditLog).where(m.AuditLog.action == "notice.remind"))
        )
    assert not failures, "\n".join(failures)
    if role in OFFICE:
        assert [r.decision for r in reviews] == ["accepted", "returned"]
        assert [a.action for a in audit] == ["review.accept", "review.return"]
        assert reviews[1].reason == "请补充数据"
        outbox = await h.outbox("review_result")
        assert any("已通过审核" in str(row.payload) for row in outbox)
        assert any("请补充数据" in str(row.payload) for row in outbox)
        # One reminder, to the unit that has not received the notice, audited as in the chat.
        assert len(reminds) == 1 and reminds[0].details == {"units": 1, "messages": 1}
        again = [r for r in await h.outbox("notice") if "再次提醒" in str(r.payload)]
        assert len(again) == 1 and OTHER in str(again[0].payload)
    else:
        assert reviews == [] and audit == [] and reminds == []
        assert await h.outbox("notice") == []
    # Every refused action is audited, as refused buttons are in the chat.
    assert len(refused) >= 3
    record(
        "abuse",
        f"every dashboard action as {role} (CSRF, origin, own and other unit)",
        len(attempts),
        "done or refused as in the chat; nothing changed when refused",
    )
