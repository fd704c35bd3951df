"""Telegram's login data signed the way Telegram signs it, for dashboard tests."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.config import load_config
from bot.db.engine import Database
from bot.http import HttpServer, start_http
from dashboard import Dashboard, mount
from tests.harness import Harness, User


def sign_init_data(token: str, user: User | dict[str, Any], auth_date: datetime) -> str:
    """Return a Mini App initData query string signed for the bot with `token`."""
    person = user.as_dict() if isinstance(user, User) else user
    fields = {
        "query_id": "AAF-test",
        "user": json.dumps(person, ensure_ascii=False, separators=(",", ":")),
        "auth_date": str(int(auth_date.timestamp())),
    }
    check = "\n".join(f"{k}={fields[k]}" for k in sorted(fields))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


def sign_widget(token: str, user: User, auth_date: datetime) -> dict[str, str]:
    """Return the Login Widget's redirect fields signed for the bot with `token`."""
    fields = {
        "id": str(user.id),
        "first_name": user.first_name,
        "auth_date": str(int(auth_date.timestamp())),
    }
    check = "\n".join(f"{k}={fields[k]}" for k in sorted(fields))
    secret = hashlib.sha256(token.encode()).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return fields


@asynccontextmanager
async def dashboard_server(
    h: Harness, db: Database | None = None, **extra: Any
) -> AsyncIterator[tuple[HttpServer, Dashboard]]:
    """Start duban's web server with the dashboard on 127.0.0.1 and a random port."""
    config = load_config(
        env={
            "DUBAN_HTTP_LISTEN": "127.0.0.1",
            "DUBAN_HTTP_PORT": "0",
            "DUBAN_HTTP_PUBLIC_URL": "http://127.0.0.1",
        }
    )
    runtime = h.app.bot_data["runtime"]
    board = Dashboard(
        db=db or h.db,
        token=h.app.bot.token,
        public_url="http://127.0.0.1",
        clock=lambda: h.now,
        default_language="zh",
        bot=extra.get("bot"),
        poke=runtime.poke_sender,
        refresh_seconds=extra.get("refresh_seconds", 30),
    )
    server = await start_http(config, db or h.db, lambda: h.now, mounts=[mount(board)])
    assert server is not None
    try:
        yield server, board
    finally:
        await server.stop()


async def logged_in(base: str, token: str, user: User, now: datetime) -> aiohttp.ClientSession:
    """Return an HTTP client holding the session cookie of `user` (signed initData)."""
    client = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with client.post(
        f"{base}/dash/auth/webapp", data={"init_data": sign_init_data(token, user, now)}
    ) as response:
        assert response.status == 200, await response.text()
    return client
