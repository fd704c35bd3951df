"""The composition root: config -> database -> Application -> handlers -> run."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest

import handlers
from bot.botapi import proxy_of, unreachable
from bot.config import Config
from bot.db import models as m
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.http import start_http, stop_http
from bot.i18n import format_moment, plain
from bot.logs import protect
from bot.plan import load_plan
from bot.runtime import Clock, Runtime, system_clock
from bot.services import invites
from bot.services.invites import has_admin, open_admin_invites
from bot.services.plan_load import load_plan_into
from bot.textfile import read_text
from bot.webhook import MAX_CONNECTIONS, check_webhook_config, webhook_path, webhook_route
from dashboard import dashboard_for
from handlers.dashboard import set_menu_button
from handlers.menu import set_commands
from scheduler.leader import Leadership, make_leader, setup_lock
from scheduler.limits import RateLimits, TelegramLimiter
from scheduler.tick import LIMITS_KEY, Scheduler, limits_of

log = logging.getLogger("duban")

AnyApplication = Application[Any, Any, Any, Any, Any, Any]
# Called once the bot serves updates and the scheduler runs (the sandbox populates its world).
OnStarted = Callable[[AnyApplication, Scheduler], Awaitable[None]]


def build_application(
    config: Config,
    db: Database,
    clock: Clock = system_clock,
    *,
    request: BaseRequest | None = None,
    limits: RateLimits | None = None,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Build the python-telegram-bot Application with every handler registered.

    `request` replaces PTB's HTTP layer (the handler tests answer the Bot API offline with
    it); `limits` replaces the flood limits made from the config (tests that must not wait).
    Everything else is what `duban run` serves with.
    """
    token = config.require_token()
    runtime = Runtime(config=config, db=db, clock=clock)
    if limits is not None:
        runtime.extras[LIMITS_KEY] = limits
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(config.telegram.base_url)
        .base_file_url(config.telegram.file_url)
        .concurrent_updates(True)
        # Replies and the outbox sender share one view of Telegram's flood limits.
        .rate_limiter(TelegramLimiter(limits_of(runtime)))
    )
    proxy = proxy_of(config)
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    elif proxy:
        # python-telegram-bot's own request settings: every call, long polls included.
        builder = builder.proxy(proxy).get_updates_proxy(proxy)
    app = builder.build()
    app.bot_data["runtime"] = runtime
    handlers.register(app)
    return app


async def remember_username(db: Database, username: str, clock: Clock) -> None:
    """Cache the bot's username so that `duban invite` can print deep links.

    An upsert: every process starting at the same moment writes it (issue 14 case 7).
    """
    async with db.write() as session:
        await invites.remember_username(session, username, clock())


async def run_bot(
    config: Config,
    plan_path: str | None = None,
    *,
    clock: Clock = system_clock,
    routes: Sequence[web.RouteDef] = (),
    on_started: OnStarted | None = None,
) -> int:
    """Migrate, load the plan if given, and serve Telegram updates until stopped.

    `clock` is the product's clock for everything (the sandbox passes a movable one);
    `routes` are added to duban's web server; `on_started` runs once everything serves.
    """
    protect(config.require_token())
    if config.telegram.mode == "webhook":
        protect(check_webhook_config(config)[1])
    # SQLite: the file lock is taken here, so a second run is refused before touching anything.
    leader = make_leader(config.database.url)
    db = Database(config.database.url)
    try:
        # PostgreSQL: one process at a time migrates and loads the plan.
        async with setup_lock(config.database.url):
            before, after = await upgrade(db)
            if before != after:
                log.info("database migrated from %s to %s", before or "empty", after)
            if plan_path:
                await _load_plan(db, plan_path, clock())
        app = build_application(config, db, clock)
        try:
            await _serve(app, db, leader, config, routes=routes, on_started=on_started)
        except TelegramError as exc:
            # One line naming the host and what to check; never the library's words,
            # which quote the token.
            raise unreachable(config, exc) from None
    finally:
        await leader.release()
        await db.dispose()
    return 0


async def _load_plan(db: Database, plan_path: str, now: datetime) -> None:
    # Reading the plan before the bot serves anyone blocks nobody.
    plan_text = read_text(plan_path)
    plan = load_plan(plan_path)
    for warning in plan.warnings:
        log.warning("%s", warning)
    report = await load_plan_into(
        db,
        plan,
        now=now,
        actor="run",
        plan_text=plan_text,
    )
    log.info("plan %s loaded (%s)", plan.key, "changed" if report.changed else "no change")


async def _tell_admin_state(db: Database, username: str, lang: str, clock: Clock) -> None:
    """Log the bot's link, and how the first admin registers while there is none."""
    log.info("%s", plain("cli.start.bot", lang, username=username, link=f"https://t.me/{username}"))
    now = clock()
    async with db.read() as session:
        if await has_admin(session):
            return
        waiting = await open_admin_invites(session, now)
        if not waiting:
            log.warning("%s", plain("cli.no_admin", lang))
            return
        invite = waiting[0]
        campaign = await session.get_one(m.Campaign, invite.campaign_id)
        tz = campaign.timezone
    log.warning(
        "%s",
        plain(
            "cli.start.admin_waiting",
            lang,
            hint=invite.hint,
            expires=format_moment(invite.expires_at, tz, lang, with_year=True)
            if invite.expires_at
            else "—",
            link=f"https://t.me/{username}?start=",
            username=username,
        ),
    )


async def _serve(
    app: AnyApplication,
    db: Database,
    leader: Leadership,
    config: Config,
    *,
    routes: Sequence[web.RouteDef] = (),
    on_started: OnStarted | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runtime: Runtime = app.bot_data["runtime"]
    webhook = config.telegram.mode == "webhook"
    async with app:
        username = app.bot.username
        await remember_username(db, username, runtime.clock)
        log.info("connected as @%s", username)
        if on_started is None:  # the sandbox registers its own people
            await _tell_admin_state(db, username, runtime.default_language, runtime.clock)
        await set_commands(app, runtime.default_language)
        await app.start()
        served = list(routes)
        if webhook:
            url, secret = check_webhook_config(config)
            served.append(webhook_route(app, webhook_path(url), secret))
        # The web server: /healthz, calendar feeds, the dashboard (with [http] public_url),
        # and in webhook mode the update endpoint.
        board = dashboard_for(runtime, app.bot)
        mounts = []
        if board is not None:
            from dashboard.web import mount  # the pages load only when switched on

            mounts.append(mount(board))
        http_server = await start_http(
            config,
            db,
            runtime.clock,
            routes=served,
            mounts=mounts,
        )
        await set_menu_button(app, config)
        if webhook:
            url, secret = check_webhook_config(config)
            await app.bot.set_webhook(
                url,
                secret_token=secret,
                allowed_updates=Update.ALL_TYPES,
                max_connections=MAX_CONNECTIONS,
            )
            log.info("receiving updates by webhook")
        else:
            assert app.updater is not None
            await app.updater.start_polling(
                allowed_updates=Update.ALL_TYPES, drop_pending_updates=False
            )
            log.info("polling for updates")
        scheduler = Scheduler(runtime, app.bot, leader)
        # The tick is a job on the Application's JobQueue, started by app.start().
        assert app.job_queue is not None
        await scheduler.start(app.job_queue)
        if on_started is not None:
            await on_started(app, scheduler)
        await stop.wait()
        log.info("stopping")
        # The sender first: what is in flight still needs the bot, and is recorded as sent.
        await scheduler.stop()
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        await stop_http(http_server)
        await app.stop()
