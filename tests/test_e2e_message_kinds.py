"""Albums and forum topics end to end: `duban run` against the local Bot API server.

- An album in webhook mode with two `duban run` processes on one PostgreSQL database, its
  parts posted to different processes: one confirm naming every file, one version.
- A forum supergroup: answers go to the topic a command came from; what the group receives
  as the office goes to the topic where it registered.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.db import models as m
from bot.db.engine import Database
from bot.services.invites import create_invite
from sandbox.botapi import FakeUser, LocalBotAPI
from tests.cli import clean_env, run_duban
from tests.conftest import EXAMPLE
from tests.reliability import message_kind
from tests.test_e2e_delivery import Bot, eventually
from tests.test_e2e_failover import pg_url  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e

TOKEN = "770001:E2E-kinds"
SECRET = "kinds-secret-token"
CAPTION = "说明：附件第3页数据为初步统计，正式数据5月12日前补报。"
ALBUM = [
    ("document", "调研报告.docx", b"PK docx"),
    ("document", "台账.xlsx", b"PK xlsx"),
    ("document", "典型案例.pdf", b"%PDF-1.4"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _people(db: Database, contact: FakeUser, office: FakeUser) -> None:
    """The contact of 甲县 and an office member, as if they had redeemed invites."""
    now = datetime.now(UTC)
    async with db.write() as session:
        campaign = await session.scalar(select(m.Campaign.id))
        unit = await session.scalar(select(m.Unit.id).where(m.Unit.key == "county-a"))
        for user, role, unit_id in ((contact, "contact", unit), (office, "office", None)):
            person = m.Person(telegram_id=user.id, name=user.first_name, created_at=now)
            session.add(person)
            await session.flush()
            session.add(
                m.Role(
                    person_id=person.id,
                    campaign_id=campaign,
                    role=role,
                    unit_id=unit_id,
                    created_at=now,
                )
            )


async def _open_submission(srv: LocalBotAPI, contact: FakeUser, bot: Bot) -> None:
    """/submit, then the research report's button, then wait for "send the file"."""
    srv.send_text(contact, "/submit")

    async def offered() -> bool:
        return any(m.get("reply_markup") for m in srv.sent_to(contact))

    await eventually(offered, 30, "the pick-a-task buttons", bot)
    pick = next(m for m in srv.sent_to(contact) if m.get("reply_markup"))
    data = next(
        b["callback_data"]
        for row in pick["reply_markup"]["inline_keyboard"]
        for b in row
        if "书面调研报告" in b["text"]
    )
    before = len(srv.sent_to(contact))
    srv.press_button(contact, pick, data)

    async def asked() -> bool:
        return len(srv.sent_to(contact)) > before

    await eventually(asked, 30, "the request for the file", bot)


@pytest.mark.postgres
async def test_album_parts_reaching_two_webhook_processes_make_one_version(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    async with LocalBotAPI(token=TOKEN, bot_username="duban_bot") as srv:
        base = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=pg_url,
            DUBAN_SCHEDULER_TICK_SECONDS="1",
            DUBAN_TELEGRAM_MODE="webhook",
            DUBAN_TELEGRAM_WEBHOOK_SECRET_TOKEN=SECRET,
            DUBAN_HTTP_LISTEN="127.0.0.1",
        )
        loaded = await asyncio.to_thread(
            run_duban, "plan", "load", str(EXAMPLE), cwd=tmp_path, env=base
        )
        assert loaded.code == 0, loaded.err
        contact = srv.add_user("甲县联络员", started=True)
        office = srv.add_user("主任", started=True)
        db = Database(pg_url)
        await _people(db, contact, office)
        bots, hooks = [], []
        for i in range(2):
            port = free_port()
            hooks.append(f"http://127.0.0.1:{port}/hook")
            env = {**base, "DUBAN_HTTP_PORT": str(port), "DUBAN_TELEGRAM_WEBHOOK_URL": hooks[-1]}
            bots.append(Bot(tmp_path, env, f"p{i}"))
        try:
            for bot in bots:
                await bot.start()
            await srv.wait_for(lambda s: len(s.calls("setWebhook")) >= 2, timeout=90)
            await _open_submission(srv, contact, bots[0])
            parts = srv.send_album(contact, ALBUM, caption=CAPTION, deliver=False)
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with aiohttp.ClientSession() as http:
                # The first part to one process, the other two to the other, at once.
                posts = [
                    http.post(hooks[0 if i == 0 else 1], json=part, headers=headers)
                    for i, part in enumerate(parts)
                ]
                for response in await asyncio.gather(*posts):
                    assert response.status == 200
                    response.release()

            def prompts() -> list[dict[str, Any]]:
                return [m for m in srv.sent_to(contact) if "个文件" in m.get("text", "")]

            async def prompted() -> bool:
                return bool(prompts())

            await eventually(prompted, 30, "the album's confirm prompt", bots[0])
            await asyncio.sleep(3)  # a second prompt would have come by now
            [prompt] = prompts()
            assert "3 个文件" in prompt["text"] and CAPTION in prompt["text"]
            assert all(name in prompt["text"] for _, name, _ in ALBUM)
            srv.press_button(contact, prompt, "sc:ok")

            async def delivered() -> bool:
                return len(srv.sent_to(office)) >= 4

            await eventually(delivered, 30, "every file and the notice at the office", bots[0])
        finally:
            codes = [await bot.stop() for bot in bots if bot.proc is not None]
        async with db.read() as session:
            versions = list(await session.scalars(select(m.Submission)))
            files = list(
                await session.scalars(
                    select(m.SubmissionFile.file_name).order_by(m.SubmissionFile.position)
                )
            )
        await db.dispose()
        assert all(code == 0 for code in codes), [b.log[-2000:] for b in bots]
        assert len(versions) == 1 and versions[0].text == CAPTION
        assert files == [name for _, name, _ in ALBUM]
        at_office = srv.sent_to(office)
        names = [m["document"]["file_name"] for m in at_office if "document" in m]
        assert names == [name for _, name, _ in ALBUM]
        assert CAPTION in at_office[-1]["text"] and at_office[-1].get("reply_markup")
        assert srv.rejected == []
    message_kind(
        "an album in webhook mode, its parts posted to two `duban run` processes",
        "gathered through the database: one confirm naming all three files, one version",
    )


async def test_forum_topics_end_to_end(tmp_path: Path) -> None:
    async with LocalBotAPI(token=TOKEN, bot_username="duban_bot") as srv:
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}",
            DUBAN_SCHEDULER_TICK_SECONDS="1",
        )
        loaded = await asyncio.to_thread(
            run_duban, "plan", "load", str(EXAMPLE), cwd=tmp_path, env=env
        )
        assert loaded.code == 0, loaded.err
        contact = srv.add_user("甲县联络员", started=True)
        office = srv.add_user("主任", started=True)
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}")
        await _people(db, contact, office)
        async with db.write() as session:
            campaign = await session.scalar(select(m.Campaign))
            assert campaign is not None
            code = (
                await create_invite(
                    session, campaign, "office", None, now=datetime.now(UTC), actor="test"
                )
            ).code
        forum = srv.add_group("办公室工作群", forum=True, members=[office])
        topic = srv.create_topic(forum, "督办", thread_id=42)
        bot = Bot(tmp_path, env, "run")
        try:
            await bot.start()
            for text in (f"/start@duban_bot {code}", "/status@duban_bot", "/chart@duban_bot"):
                before = len(srv.sent_to(forum))
                srv.send_text(office, text, chat=forum, thread_id=topic)

                async def answered(before: int = before) -> bool:
                    return len(srv.sent_to(forum)) > before

                await eventually(answered, 60, f"the answer to {text}", bot)
            answers = srv.sent_to(forum)
            assert answers and all(a.get("message_thread_id") == 42 for a in answers)
            # A submission reaches the group in the topic where it registered.
            await _open_submission(srv, contact, bot)
            srv.send_document(contact, "调研报告.docx", b"PK", caption=CAPTION)

            async def confirm_shown() -> bool:
                return any("调研报告.docx" in m.get("text", "") for m in srv.sent_to(contact))

            await eventually(confirm_shown, 30, "the confirm prompt", bot)
            prompt = next(m for m in srv.sent_to(contact) if "调研报告.docx" in m.get("text", ""))
            count = len(srv.sent_to(forum))
            srv.press_button(contact, prompt, "sc:ok")

            async def notified() -> bool:
                return len(srv.sent_to(forum)) >= count + 2

            await eventually(notified, 30, "the submission in the group", bot)
        finally:
            code_run = await bot.stop()
        await db.dispose()
        assert code_run == 0, bot.log[-2000:]
        pushed = srv.sent_to(forum)[count:]
        assert pushed and all(p.get("message_thread_id") == 42 for p in pushed)
        assert any(CAPTION in p.get("text", "") for p in pushed)
        assert srv.rejected == []
    message_kind(
        "commands in a forum topic, end to end (`duban run`, local Bot API server)",
        "answers in topic 42; the group's submissions arrive in the topic it registered in",
    )
