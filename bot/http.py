"""duban's own web server: health check, calendar feeds, dashboard (`[http]` in config.toml).

bot/app.py starts it beside the bot::

    http_server = await start_http(config, db)   # None when [http] is not configured
    ...
    await stop_http(http_server)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
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
    app = web.Application(middlewares=[_mark_done])
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


# A request's headers must be complete this long after its first byte (seconds); the whole
# request, body and answer included, this long. A connection idle between requests is
# closed after IDLE_TIMEOUT. Half-sent requests otherwise held a connection for an hour
# (aiohttp's keep-alive default; issue 14).
HEADERS_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
IDLE_TIMEOUT = 15.0
_HEADER_END = b"\r\n\r\n"


class _Deadline(asyncio.Protocol):
    """aiohttp's protocol for one connection, closed when a request is too slow to arrive."""

    def __init__(self, inner: asyncio.Protocol) -> None:
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head = b""  # the last bytes of headers not complete yet
        self._started = 0.0  # when the current request's first byte arrived
        self._in_request = False
        self._in_head = False
        self._in_head = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _GUARDS[transport] = self
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        if not self._in_request:
            self._in_request = self._in_head = True
            self._started = loop.time()
            self._head = b""
            self._arm(HEADERS_TIMEOUT)
        if self._in_head:
            # Only the last few bytes matter for finding the end of the headers.
            self._head = (self._head + data)[-(len(data) + 3) :]
            if _HEADER_END in self._head:
                self._in_head = False
                self._arm(REQUEST_TIMEOUT)
        self.inner.data_received(data)

    def request_done(self) -> None:
        """The answer was written: the next bytes start a new request."""
        self._in_request = self._in_head = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(self._started + seconds, self._too_slow)

    def _too_slow(self) -> None:
        self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            log.info("closing a connection whose request did not arrive in time")
            self.transport.abort()

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            _GUARDS.pop(self.transport, None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


_GUARDS: dict[asyncio.BaseTransport, _Deadline] = {}


class _GuardedRunner(web.AppRunner):
    """An AppRunner whose connections are closed when a request is too slow to arrive."""

    @property
    def server(self) -> Any:
        """Return the protocol factory the sites serve with."""
        inner = super().server
        if inner is None:
            return None
        return lambda: _Deadline(inner())


@web.middleware
async def _mark_done(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    finally:
        guard = _GUARDS.get(request.transport) if request.transport is not None else None
        if guard is not None:
            guard.request_done()


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
    runner = _GuardedRunner(app, access_log=None, keepalive_timeout=IDLE_TIMEOUT)
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
