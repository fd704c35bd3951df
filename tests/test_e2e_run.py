"""`duban run` as a process against the local Bot API server: /start answered, invite redeemed."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import pytest

from sandbox.botapi import LocalBotAPI
from tests.cli import clean_env, duban_command, run_duban
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.e2e

TOKEN = "424242:E2E-secret-token-value"


async def test_run_answers_start_and_redeems_an_invite(tmp_path: Path) -> None:
    async with LocalBotAPI(token=TOKEN, bot_username="duban_test_bot") as srv:
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}",
        )
        # Debug logs are long: a file, unlike a pipe nobody reads yet, never fills up.
        log_path = tmp_path / "run.log"
        log = log_path.open("wb")
        proc = await asyncio.create_subprocess_exec(
            *duban_command(),
            "run",
            "--debug",  # debug logs include every request URL: the token must still not show
            "--plan",
            str(EXAMPLE),
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            await srv.wait_for(lambda s: s.calls("getUpdates"), timeout=60)
            stranger = srv.add_user(first_name="张", language_code="en")
            srv.send_text(stranger, "/start")
            await srv.wait_for(lambda s: s.texts_to(stranger.id), timeout=20)
            greeting = srv.texts_to(stranger.id)[0]
            # Chinese first: a Telegram client set to English still gets the default language.
            assert "邀请码" in greeting
            assert "甲县" not in greeting  # a stranger learns nothing about the campaign

            made = await asyncio.to_thread(
                run_duban, "invite", "contact", "甲县", cwd=tmp_path, env=env
            )
            assert made.code == 0, made.err
            link = re.search(r"https://t\.me/duban_test_bot\?start=(\S+)", made.out)
            assert link, made.out  # `run` cached the username from getMe

            contact = srv.add_user(first_name="联络员")
            srv.send_text(contact, f"/start {link.group(1)}")
            await srv.wait_for(lambda s: s.texts_to(contact.id), timeout=20)
            answer = srv.texts_to(contact.id)[0]
            assert "登记成功" in answer and "甲县总工会" in answer and "联络员" in answer

            # The code was single-use: a second person is refused, distinctly.
            other = srv.add_user(first_name="他人")
            srv.send_text(other, f"/start {link.group(1)}")
            await srv.wait_for(lambda s: s.texts_to(other.id), timeout=20)
            assert "已被使用" in srv.texts_to(other.id)[0]
            assert srv.rejected == []
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=30)
            log.close()
        output = log_path.read_text(encoding="utf-8", errors="replace")
        assert proc.returncode == 0, output[-3000:]
        assert TOKEN not in output
        assert "polling for updates" in output
