"""The dashboard: a second interface beside handlers/, served by duban's own web server.

Opened as a Telegram Mini App (the menu button, `/dashboard`) or in a browser (the Login
Widget); pages read the same use cases as the chat (bot.services), so a figure on a page is
the figure `/status` gives at that moment. Switched on by `[http] public_url`.

bot/app.py mounts it::

    board = dashboard_for(runtime, app.bot)       # None while public_url is not set
    http = await start_http(config, db, clock, mounts=[mount(board)] if board else [])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.runtime import Runtime

if TYPE_CHECKING:
    from telegram import Bot

    from dashboard.web import Dashboard, mount

__all__ = ["PREFIX", "Dashboard", "dashboard_for", "dashboard_url", "mount"]

# Where the dashboard is served; dashboard.web takes it from here.
PREFIX = "/dash"


def __getattr__(name: str) -> Any:
    # The pages (Jinja, the templates, 6 MB) are imported when the dashboard is switched on,
    # not by every `duban run` (issue 13's memory target).
    if name in ("Dashboard", "mount"):
        from dashboard import web

        return getattr(web, name)
    raise AttributeError(name)


def dashboard_url(public_url: str) -> str:
    """Return the dashboard's address under the public base URL (the Mini App's URL)."""
    return f"{public_url.rstrip('/')}{PREFIX}/"


def dashboard_for(runtime: Runtime, bot: Bot | None) -> Dashboard | None:
    """Return the dashboard for a running bot, or None when `[http] public_url` is not set."""
    http = runtime.config.http
    if http is None or not http.public_url:
        return None
    from dashboard.web import Dashboard

    return Dashboard(
        db=runtime.db,
        token=runtime.config.require_token(),
        public_url=http.public_url,
        clock=runtime.clock,
        default_language=runtime.default_language,
        bot=bot,
        poke=runtime.poke_sender,
    )
