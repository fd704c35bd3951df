"""How duban reaches the Bot API, and what it says when it cannot.

One place builds the request settings (base URL, `[telegram] proxy`, time-outs) for the
running bot and for the CLI's short `getMe`, and one place turns a failure to reach the
Bot API into a sentence: the host, what went wrong, what to check. The token is never part
of it (python-telegram-bot's own messages quote it, and request URLs contain it).
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx
from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.request import HTTPXRequest

from bot.config import Config
from bot.errors import DubanError
from bot.i18n import plain

# The CLI asks getMe only to print a link: it must not keep an operator waiting.
CLI_TIMEOUT = 5.0


class BotApiUnreachable(DubanError):
    """The Bot API could not be reached, or refused the token; told as one line."""

    key = "cli.botapi.unreachable"

    def render(self, lang: str | None) -> str:
        """Return the line in `lang`: host, what went wrong, what to check."""
        reason_key = self.params["reason_key"]
        reason = plain(f"cli.botapi.reason.{reason_key}", lang, status=self.params["status"])
        check = "cli.botapi.check_token" if reason_key == "token" else "cli.botapi.check_network"
        via = plain("cli.botapi.via_proxy", lang, proxy=self.params["proxy"])
        return plain(
            self.key,
            lang,
            host=self.params["host"],
            via=via if self.params["proxy"] else "",
            reason=reason,
            check=plain(check, lang),
        )


def api_host(config: Config) -> str:
    """Return the Bot API's host (and port), as the operator configured it."""
    parts = urlsplit(config.telegram.base_url)
    return parts.netloc or config.telegram.base_url


def proxy_of(config: Config) -> str | None:
    """Return the configured proxy URL, or None for a direct connection."""
    return config.telegram.proxy or None


def make_request(config: Config, *, timeout: float | None = None, polling: bool = False) -> Any:
    """Build python-telegram-bot's HTTPX request with duban's proxy and time-outs.

    `timeout` (seconds) bounds connecting, writing and reading; None keeps the library's
    defaults. `polling` sizes it for getUpdates, whose long poll must outlast the read.
    """
    kwargs: dict[str, Any] = {"proxy": proxy_of(config)}
    if timeout is not None:
        kwargs.update(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
    if polling:
        kwargs["connection_pool_size"] = 1
    return HTTPXRequest(**kwargs)


async def fetch_username(config: Config, *, seconds: float = CLI_TIMEOUT) -> str | None:
    """Ask getMe with the configured token; return the bot's username, or None on any failure.

    Used by the CLI to print invite links before the first `duban run`; a failure is not an
    error there (the cached name or the bare code still serve).
    """
    token = config.telegram.token.get_secret_value()
    if not token:
        return None
    bot = Bot(
        token,
        base_url=config.telegram.base_url,
        base_file_url=config.telegram.file_url,
        request=make_request(config, timeout=seconds),
    )
    try:
        async with bot:
            return bot.username
    except (TelegramError, httpx.HTTPError, OSError):
        return None


def _causes(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def failure_reason(error: BaseException) -> str:
    """Classify why the Bot API was not reached: a key under `cli.botapi.reason`.

    One of `token`, `dns`, `refused`, `tls`, `timeout`, `proxy`, `status`, `network`.
    """
    if isinstance(error, InvalidToken):
        return "token"
    chain = _causes(error)
    for cause in chain:
        if isinstance(cause, httpx.ProxyError):
            return "proxy"
        if isinstance(cause, ssl.SSLError) or "SSL" in type(cause).__name__:
            return "tls"
        if isinstance(cause, ConnectionRefusedError):
            return "refused"
    text = " ".join(str(c) for c in chain).lower()
    if "name or service not known" in text or "nodename nor servname" in text:
        return "dns"
    if "temporary failure in name resolution" in text or "getaddrinfo" in text:
        return "dns"
    if "certificate" in text or "ssl" in text or "tls" in text:
        return "tls"
    if "connection refused" in text or "connect call failed" in text:
        return "refused"
    if isinstance(error, TimedOut) or any(isinstance(c, httpx.TimeoutException) for c in chain):
        return "timeout"
    if isinstance(error, NetworkError) and not any(isinstance(c, httpx.HTTPError) for c in chain):
        # python-telegram-bot raises NetworkError for an HTTP error status (502, 500, ...).
        return "status"
    return "network"


def unreachable(config: Config, error: BaseException) -> BotApiUnreachable:
    """Return the one-line error for a Bot API that failed at start-up.

    The line names the host and, for a network failure, the proxy in use; it never quotes
    the library's message except an HTTP status phrase, and the token is never in it.
    """
    reason = failure_reason(error)
    status = ""
    if reason == "status":
        # "Bad Gateway", "Internal Server Error (500)": the server's words, without the token.
        status = str(error).splitlines()[0][:80] if str(error) else ""
    proxy = proxy_of(config)
    return BotApiUnreachable(
        reason,
        host=api_host(config),
        reason_key=reason,
        status=status,
        proxy=urlsplit(proxy).netloc if proxy else "",
    )
