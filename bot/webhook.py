"""Receive Telegram updates over HTTPS (webhook mode): check the secret, queue the update."""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.config import Config, ConfigError

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's rule for secret tokens.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")
# How many connections Telegram may open to one process at once (its default is 40).
MAX_CONNECTIONS = 40


def check_webhook_config(config: Config) -> tuple[str, str]:
    """Return (url, secret) of a usable webhook configuration, or fail naming the key."""
    hook = config.telegram.webhook
    secret = hook.secret_token.get_secret_value()
    if not hook.url:
        raise ConfigError('telegram.webhook.url is not set (mode = "webhook" needs it)')
    if not secret:
        raise ConfigError('telegram.webhook.secret_token is not set (mode = "webhook" needs it)')
    if config.http is None:
        raise ConfigError('[http] is not configured (mode = "webhook" serves updates there)')
    if not SECRET_PATTERN.fullmatch(secret):
        raise ConfigError(
            "telegram.webhook.secret_token: use 1-256 characters A-Z, a-z, 0-9, _ and -"
        )
    return hook.url, secret


def webhook_path(url: str) -> str:
    """Return the path of the public webhook URL that duban's server answers."""
    return urlsplit(url).path or "/"


def webhook_route(
    app: Application[Any, Any, Any, Any, Any, Any], path: str, secret: str
) -> web.RouteDef:
    """Return the POST route that feeds verified updates to the Application."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        # A wrong or missing token gets 403 and nothing is processed.
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook call with a wrong secret token from %s", request.remote)
            return web.Response(status=403, text="forbidden\n")
        update = await _read_update(request, app)
        if update is None:
            return web.Response(status=400, text="bad update\n")
        await app.update_queue.put(update)
        return web.Response(text="ok\n")

    return web.post(path, receive)


async def _read_update(
    request: web.Request, app: Application[Any, Any, Any, Any, Any, Any]
) -> Update | None:
    """Return the update in the body, or None for anything that is not one (no traceback).

    Only a JSON object with an integer `update_id` is an update: `[]`, `"x"` or a body nested
    deeper than the parser goes are refused with 400 (issue 14).
    """
    try:
        data = await request.json(loads=json.loads)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
        return None
    try:
        return Update.de_json(data, app.bot)
    except Exception as exc:  # a shape PTB cannot read: the sender's mistake, not ours
        log.info("webhook body is not an update: %s", type(exc).__name__)
        return None
