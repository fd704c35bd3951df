"""duban's own web server: health check, calendar feeds, dashboard (`[http]` in config.toml).

bot/app.py starts it beside the bot::

    http_server = await start_http(config, db)   # None when [http] is not configured
    ...
    await stop_http(http_server)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiohttp import web
from sqlalchemy import text

from bot.config import Config
from bot.db.engine import Database
from bot.reports.ics import unit_calendar
from bot.runtime import Clock, system_clock
from bot.services.feeds import resolve_feed

log = logging.getLogger(__name__)

DB_KEY = web.AppKey("db", Database)
CLOCK_KEY: web.AppKey[Clock] = web.AppKey("clock")
LANGUAGE_KEY = web.AppKey("language", str)
# A token is URL-safe base64; anything else is not worth a database query.
TOKEN_PATTERN = r"[A-Za-z0-9_-]{16,64}"


async def healthz(request: web.Request) -> web.Response:
    """Answer 200 while the database answers, 503 otherwise."""
    try:
        async with request.app[DB_KEY].read() as session:
            await session.execute(text("SELECT 1"))
    except Exception:
        log.warning("health check: the database does not answer", exc_info=True)
        return web.Response(status=503, text="database unavailable\n")
    return web.Response(text="ok\n")


async def calendar_feed(request: web.Request) -> web.Response:
    """Serve a unit's deadlines to a subscribed calendar, while the link's holder may see them."""
    token = request.match_info["token"]
    app = request.app
    now = app[CLOCK_KEY]()
    async with app[DB_KEY].read() as session:
        feed = await resolve_feed(session, token)
        if feed is None:
            raise web.HTTPNotFound(text="no such calendar\n")
        lang = feed.person.language or app[LANGUAGE_KEY]
        data, _ = await unit_calendar(session, feed.campaign, feed.unit, now, lang)
    return web.Response(
        body=data,
        content_type="text/calendar",
        charset="utf-8",
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Disposition": f'inline; filename="{feed.unit.key}.ics"',
        },
    )


def make_app(
    db: Database,
    *,
    clock: Clock = system_clock,
    default_language: str = "zh",
    routes: Sequence[web.RouteDef] = (),
    mounts: Sequence[Callable[[web.Application], None]] = (),
) -> web.Application:
    """Build the web application; `routes` adds more (the webhook endpoint, say), and each
    of `mounts` adds a part of its own (the dashboard's routes, keys and middleware)."""
    app = web.Application()
    app[DB_KEY] = db
    app[CLOCK_KEY] = clock
    app[LANGUAGE_KEY] = default_language
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get(f"/calendar/{{token:{TOKEN_PATTERN}}}.ics", calendar_feed),
            *routes,
        ]
    )
    for setup in mounts:
        setup(app)
    return app


class HttpServer:
    """A running web server; `port` is the one actually bound (useful with port 0)."""

    def __init__(self, runner: web.AppRunner, site: web.TCPSite) -> None:
        self.runner = runner
        self.site = site

    @property
    def port(self) -> int:
        """Return the bound TCP port."""
        addresses = self.runner.addresses
        return int(addresses[0][1]) if addresses else 0

    async def stop(self) -> None:
        """Stop serving and close open connections."""
        await self.runner.cleanup()


async def start_http(
    config: Config,
    db: Database,
    clock: Clock = system_clock,
    *,
    routes: Sequence[web.RouteDef] = (),
    mounts: Sequence[Callable[[web.Application], None]] = (),
) -> HttpServer | None:
    """Start the server on `[http] listen:port`; return None when `[http]` is not configured."""
    if config.http is None:
        return None
    app = make_app(
        db,
        clock=clock,
        default_language=config.ui.default_language,
        routes=routes,
        mounts=mounts,
    )
    # No access log: a feed's URL is its secret, and access logs would keep every one.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.http.listen, config.http.port)
    await site.start()
    server = HttpServer(runner, site)
    log.info("serving HTTP on %s:%s", config.http.listen, server.port)
    return server


async def stop_http(server: HttpServer | None) -> None:
    """Stop the server started by `start_http`, if any."""
    if server is not None:
        await server.stop()
