"""The composition root: config -> database -> Application -> handlers -> run."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from telegram import Update
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest

import handlers
from bot.config import Config
from bot.db import models as m
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.http import start_http, stop_http
from bot.i18n import plain
from bot.logs import protect
from bot.plan import load_plan
from bot.runtime import Clock, Runtime, system_clock
from bot.services.invites import has_admin
from bot.services.plan_load import load_plan_into
from bot.webhook import MAX_CONNECTIONS, check_webhook_config, webhook_path, webhook_route
from dashboard import dashboard_for, mount
from handlers.dashboard import set_menu_button
from handlers.menu import set_commands
from scheduler.leader import Leadership, make_leader, setup_lock
from scheduler.limits import RateLimits, TelegramLimiter
from scheduler.tick import LIMITS_KEY, Scheduler, limits_of

log = logging.getLogger("duban")
BOT_USERNAME_SETTING = "bot_username"

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
    if request is not None:
        builder = builder.request(request).get_updates_request(request)
    app = builder.build()
    app.bot_data["runtime"] = runtime
    handlers.register(app)
    return app


async def remember_username(db: Database, username: str, clock: Clock) -> None:
    """Cache the bot's username so that `duban invite` can print deep links."""
    async with db.write() as session:
        setting = await session.get(m.Setting, BOT_USERNAME_SETTING)
        if setting is None:
            session.add(m.Setting(key=BOT_USERNAME_SETTING, value=username, updated_at=clock()))
        elif setting.value != username:
            setting.value = username
            setting.updated_at = clock()


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
    lang = config.ui.default_language
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
        async with db.read() as session:
            if not await has_admin(session) and on_started is None:
                log.warning("%s", plain("cli.no_admin", lang))
        app = build_application(config, db, clock)
        await _serve(app, db, leader, config, routes=routes, on_started=on_started)
    finally:
        await leader.release()
        await db.dispose()
    return 0


async def _load_plan(db: Database, plan_path: str, now: datetime) -> None:
    # Reading the plan before the bot serves anyone blocks nobody.
    plan_text = Path(plan_path).read_text(encoding="utf-8")  # noqa: ASYNC240
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
        await remember_username(db, app.bot.username, runtime.clock)
        log.info("connected as @%s", app.bot.username)
        await set_commands(app, runtime.default_language)
        await app.start()
        served = list(routes)
        if webhook:
            url, secret = check_webhook_config(config)
            served.append(webhook_route(app, webhook_path(url), secret))
        # The web server: /healthz, calendar feeds, the dashboard (with [http] public_url),
        # and in webhook mode the update endpoint.
        board = dashboard_for(runtime, app.bot)
        http_server = await start_http(
            config, db, runtime.clock, routes=served, mounts=[mount(board)] if board else []
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
        await scheduler.start()
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
