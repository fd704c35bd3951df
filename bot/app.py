"""The composition root: config -> database -> Application -> handlers -> run."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

from telegram import Update
from telegram.ext import Application, ApplicationBuilder

import handlers
from bot.config import Config, ConfigError
from bot.db import models as m
from bot.db.engine import Database
from bot.db.migrate import upgrade
from bot.i18n import plain
from bot.logs import protect
from bot.plan import load_plan
from bot.runtime import Clock, Runtime, system_clock
from bot.services.invites import has_admin
from bot.services.plan_load import load_plan_into
from handlers.menu import set_commands

log = logging.getLogger("duban")
BOT_USERNAME_SETTING = "bot_username"


def build_application(
    config: Config, db: Database, clock: Clock = system_clock
) -> Application[Any, Any, Any, Any, Any, Any]:
    """Build the python-telegram-bot Application with every handler registered."""
    token = config.require_token()
    app = (
        ApplicationBuilder()
        .token(token)
        .base_url(config.telegram.base_url)
        .base_file_url(config.telegram.file_url)
        .concurrent_updates(True)
        .build()
    )
    app.bot_data["runtime"] = Runtime(config=config, db=db, clock=clock)
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


async def run_bot(config: Config, plan_path: str | None = None) -> int:
    """Migrate, load the plan if given, and serve Telegram updates until stopped."""
    protect(config.require_token())
    if config.telegram.mode == "webhook":
        raise ConfigError(
            'telegram.mode = "webhook" is not supported by this version yet; use "polling"'
        )
    lang = config.ui.default_language
    db = Database(config.database.url)
    try:
        before, after = await upgrade(db)
        if before != after:
            log.info("database migrated from %s to %s", before or "empty", after)
        if plan_path:
            # Reading the plan before the bot serves anyone blocks nobody.
            plan_text = Path(plan_path).read_text(encoding="utf-8")  # noqa: ASYNC240
            plan = load_plan(plan_path)
            for warning in plan.warnings:
                log.warning("%s", warning)
            report = await load_plan_into(
                db,
                plan,
                now=system_clock(),
                actor="run",
                plan_text=plan_text,
            )
            log.info("plan %s loaded (%s)", plan.key, "changed" if report.changed else "no change")
        async with db.read() as session:
            if not await has_admin(session):
                log.warning("%s", plain("cli.no_admin", lang))
        app = build_application(config, db)
        await _serve(app, db)
    finally:
        await db.dispose()
    return 0


async def _serve(app: Application[Any, Any, Any, Any, Any, Any], db: Database) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with app:
        await remember_username(db, app.bot.username, system_clock)
        log.info("connected as @%s", app.bot.username)
        await set_commands(app, app.bot_data["runtime"].default_language)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(
            allowed_updates=Update.ALL_TYPES, drop_pending_updates=False
        )
        log.info("polling for updates")
        await stop.wait()
        log.info("stopping")
        await app.updater.stop()
        await app.stop()
