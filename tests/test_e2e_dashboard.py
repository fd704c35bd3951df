"""`duban run` serves the dashboard when `[http] public_url` is set, polling and webhook alike."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from sandbox.botapi import LocalBotAPI
from tests.cli import clean_env, duban_command
from tests.conftest import EXAMPLE
from tests.test_e2e_webhook import free_port
from tests.webapp import sign_init_data

pytestmark = pytest.mark.e2e

TOKEN = "880002:E2E-dashboard"
SECRET = "dashboard-e2e-secret"
PUBLIC = "https://dash.example.test"


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_run_serves_the_dashboard(tmp_path: Path, mode: str) -> None:
    port = free_port()
    async with LocalBotAPI(token=TOKEN, bot_username="duban_bot") as srv:
        extra = (
            {
                "DUBAN_TELEGRAM_MODE": "webhook",
                "DUBAN_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
                "DUBAN_TELEGRAM_WEBHOOK_SECRET_TOKEN": SECRET,
            }
            if mode == "webhook"
            else {}
        )
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_HTTP_LISTEN="127.0.0.1",
            DUBAN_HTTP_PORT=str(port),
            DUBAN_HTTP_PUBLIC_URL=PUBLIC,
            DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}",
            **extra,
        )
        log = (tmp_path / "run.log").open("wb")
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
            # The private chats' menu button opens the Mini App.
            await srv.wait_for(lambda s: s.calls("setChatMenuButton"), timeout=60)
            button = srv.menu_buttons[None]
            assert button["type"] == "web_app"
            assert button["web_app"]["url"] == f"{PUBLIC}/dash/"
            base = f"http://127.0.0.1:{port}"
            user = srv.add_user("看板用户", started=True)
            init = sign_init_data(
                TOKEN, {"id": user.id, "first_name": "看板用户"}, datetime.now(UTC)
            )
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                async with http.get(f"{base}/dash/") as response:
                    assert response.status == 401
                    assert "登录督办看板" in await response.text()
                async with http.post(f"{base}/dash/auth/webapp", data={"init_data": init}) as r:
                    assert r.status == 200
                    # public_url is https: the cookie travels over HTTPS only.
                    assert "Secure" in r.headers["Set-Cookie"]
                # The proxy speaks HTTPS to the browser; here the cookie is given by hand.
                cookie = r.cookies["duban_session"].value
                async with http.get(
                    f"{base}/dash/", headers={"Cookie": f"duban_session={cookie}"}
                ) as response:
                    assert response.status == 403
                    assert "还没有登记" in await response.text()
                forged = urlencode({"init_data": init.replace("hash=", "hash=0")})
                async with http.post(
                    f"{base}/dash/auth/webapp",
                    data=forged,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                ) as r:
                    assert r.status == 401
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
            log.close()
        assert proc.returncode == 0, (tmp_path / "run.log").read_text()
