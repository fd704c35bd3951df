"""`duban run` in webhook mode: updates arrive by POST with the secret token, or not at all."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import aiohttp
import pytest

from sandbox.botapi import LocalBotAPI
from tests.cli import clean_env, duban_command
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.e2e

TOKEN = "880001:E2E-webhook"
SECRET = "s3cret-Token_for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode(tmp_path: Path) -> None:
    port = free_port()
    async with LocalBotAPI(token=TOKEN, bot_username="duban_bot") as srv:
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_TELEGRAM_MODE="webhook",
            DUBAN_TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/hook",
            DUBAN_TELEGRAM_WEBHOOK_SECRET_TOKEN=SECRET,
            DUBAN_HTTP_LISTEN="127.0.0.1",
            DUBAN_HTTP_PORT=str(port),
            DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}",
        )
        log_path = tmp_path / "run.log"
        log = log_path.open("wb")
        proc = await asyncio.create_subprocess_exec(
            *duban_command(),
            "run",
            "--plan",
            str(EXAMPLE),
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            await srv.wait_for(lambda s: s.calls("setWebhook"), timeout=60)
            [hook] = srv.calls("setWebhook")
            assert hook.params["secret_token"] == SECRET
            assert int(hook.params["max_connections"]) == 40
            user = srv.add_user("联络员")
            srv.send_text(user, "/start")
            await srv.wait_for(lambda s: s.texts_to(user.id), timeout=20)
            assert "邀请码" in srv.texts_to(user.id)[0]
            assert srv.webhook_deliveries and not srv.calls("getUpdates")

            base = f"http://127.0.0.1:{port}"
            update = {
                "update_id": 1,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": user.id, "type": "private"},
                    "from": {"id": user.id, "is_bot": False, "first_name": "x"},
                    "text": "/start",
                    "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                },
            }
            async with aiohttp.ClientSession() as http:
                for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                    async with http.post(
                        f"{base}/telegram/hook", json=update, headers=headers
                    ) as r:
                        assert r.status == 403
                async with http.get(f"{base}/healthz") as r:
                    assert r.status == 200
            await asyncio.sleep(1.5)
            # Nothing was processed from the forged posts: still one answer.
            assert len(srv.texts_to(user.id)) == 1
            assert srv.rejected == []
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=30)
            log.close()
        output = log_path.read_text(encoding="utf-8", errors="replace")
        assert proc.returncode == 0, output[-3000:]
        assert "receiving updates by webhook" in output
        assert SECRET not in output and TOKEN not in output
