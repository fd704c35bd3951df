"""`duban run --sandbox`: the real bot against the local Bot API server, a page, a clock.

The same `run_bot` as a live run (Application, handlers, scheduler, sender, web server),
with three differences only:

- the Bot API is duban's own local server (`sandbox.botapi`, 127.0.0.1, no token needed);
- the product's clock is a `MovableClock` the page moves forward;
- the database is a throwaway SQLite file unless `[database]` names one.

Once the bot serves, the office, a leader and the contact and head of a few units are
registered the way people are: an invite made by the invite service, then `/start CODE`
sent from their simulated Telegram account.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import select

from bot.app import AnyApplication, run_bot
from bot.config import Config, DatabaseConfig, HttpConfig
from bot.db import models as m
from bot.db.engine import Database
from bot.domain.reminders import timetable
from bot.i18n import plain
from bot.plan import Plan, load_plan, parse_plan
from bot.plan.example import example_plan, reference_text
from bot.runtime import MovableClock, Runtime, system_clock
from bot.services.campaigns import pick_campaign
from bot.services.invites import create_invite
from sandbox.botapi import FakeUser, LocalBotAPI
from sandbox.moves import target
from scheduler.tick import Scheduler

log = logging.getLogger("duban.sandbox")

TOKEN = "424242:duban-sandbox-local-token"
BOT_USERNAME = "duban_sandbox_bot"
DEFAULT_PORT = 8080
UNITS = 3  # units whose contact and head the page plays
REGISTER_TIMEOUT = 30.0


@dataclass
class Persona:
    """One simulated person on the page: a Telegram account holding one role."""

    key: str  # "office", "leader", "contact-<unit key>", "head-<unit key>"
    role: str
    user: FakeUser
    unit: str | None = None  # the unit's name


@dataclass
class Sandbox:
    """The running sandbox: what the page's routes read and move."""

    srv: LocalBotAPI
    clock: MovableClock
    language: str
    personas: list[Persona] = field(default_factory=list)
    runtime: Runtime | None = None
    scheduler: Scheduler | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    timezone: str = "Asia/Shanghai"  # the campaign's, for the times shown on the page
    # Callback query id -> persona key, for the answers (toasts) shown in the right pane.
    queries: dict[str, str] = field(default_factory=dict)
    _moving: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def db(self) -> Database:
        """Return the bot's database (once started)."""
        assert self.runtime is not None, "the sandbox has not started"
        return self.runtime.db

    def persona(self, key: str) -> Persona | None:
        """Return the persona with this key, if any."""
        return next((p for p in self.personas if p.key == key), None)

    async def started(self, app: AnyApplication, scheduler: Scheduler) -> None:
        """Register the personas through real invites, then announce the page."""
        self.runtime = app.bot_data["runtime"]
        self.scheduler = scheduler
        await self.register_personas()
        # What is due for the people just registered (the current phase's announcement) goes
        # now, as a live bot's next tick would send it within a minute.
        await self.tick()
        self.ready.set()
        # Printed, not only logged: it is what the person who ran the command looks for.
        print(plain("sandbox.ready", self.language, url=self.url), flush=True)

    async def register_personas(self) -> None:
        """Invite the office, a leader, and the contact and head of a few units; redeem each."""
        now = self.clock()
        lang = self.language
        wanted: list[tuple[str, str, m.Unit | None]] = []
        async with self.db.write() as session:
            campaign = await pick_campaign(session, None)
            self.timezone = campaign.timezone
            units = await _sample_units(session, campaign.id, UNITS)
            wanted.append(("office", "office", None))
            wanted.append(("leader", "leader", None))
            for unit in units:
                wanted.append((f"contact-{unit.key}", "contact", unit))
                wanted.append((f"head-{unit.key}", "head", unit))
            codes = []
            for key, role, whose in wanted:
                made = await create_invite(session, campaign, role, whose, now=now, actor="sandbox")
                codes.append((key, role, whose.name if whose else None, made.code))
        for key, role, unit_name, code in codes:
            name = (
                plain("sandbox.persona.unit_name", lang, unit=unit_name, role=_role(role, lang))
                if unit_name
                else plain(f"sandbox.persona.{role}", lang)
            )
            user = self.srv.add_user(first_name=name, language_code=lang)
            self.personas.append(Persona(key, role, user, unit_name))
            self.srv.send_text(user, f"/start {code}")
            # One at a time, so each chat opens with its own welcome before anything else.
            await self.srv.wait_for(_answered(user), timeout=REGISTER_TIMEOUT)

    async def move(self, move: str) -> datetime | None:
        """Move the clock (see `sandbox.moves`) and tick at once; return the new moment.

        None when the move has nowhere to go (no deadline left). Moves run one at a time.
        """
        async with self._moving:
            moment = await target(self.db, move, self.clock())
            if moment is None:
                return None
            self.clock.move_to(moment)
            await self.tick()
            return self.clock()

    async def tick(self) -> None:
        """Run the scheduler's tick now (on the moved clock) rather than at its next turn."""
        assert self.scheduler is not None
        await self.scheduler.tick()


def _answered(user: FakeUser) -> Callable[[LocalBotAPI], bool]:
    return lambda srv: bool(srv.texts_to(user))


def _role(role: str, lang: str) -> str:
    return plain(f"role.{role}", lang)


async def _sample_units(session: Any, campaign_id: int, count: int) -> list[m.Unit]:
    """Return up to `count` live units, one of each kind first (in plan order)."""
    units = list(
        await session.scalars(
            select(m.Unit)
            .where(m.Unit.campaign_id == campaign_id, m.Unit.archived_at.is_(None))
            .order_by(m.Unit.position, m.Unit.id)
        )
    )
    chosen: list[m.Unit] = []
    kinds: set[Any] = set()
    for unit in units:
        if unit.kind_id not in kinds:
            kinds.add(unit.kind_id)
            chosen.append(unit)
    chosen += [u for u in units if u not in chosen]
    return sorted(chosen[:count], key=lambda u: (u.position, u.id))


def sandbox_config(config: Config, srv: LocalBotAPI, folder: Path, port: int) -> Config:
    """Return `config` pointed at the local server, polling, a page port, and a database.

    The database is a SQLite file in `folder` unless `[database]` (or DUBAN_DATABASE_URL)
    names another than the built-in default.
    """
    local: dict[str, Any] = {
        "token": SecretStr(srv.token),
        "base_url": srv.base_url,
        "base_file_url": srv.base_file_url,
        "mode": "polling",
    }
    # The way to Telegram (a proxy) and the live bot's name do not apply to the local server.
    for name in ("proxy", "bot_username"):
        if name in type(config.telegram).model_fields:
            local[name] = ""
    telegram = config.telegram.model_copy(update=local)
    database = config.database
    if database.url == DatabaseConfig().url:
        database = DatabaseConfig(url=f"sqlite+aiosqlite:///{folder / 'sandbox.db'}")
    listen = config.http.listen if config.http is not None else "127.0.0.1"
    public_url = config.http.public_url if config.http is not None else ""
    http = HttpConfig(listen=listen, port=port, public_url=public_url)
    return config.model_copy(update={"telegram": telegram, "database": database, "http": http})


def free_port(listen: str, wanted: int) -> int:
    """Return `wanted` if it can be bound on `listen`, else a free port chosen by the system."""
    for port in (wanted, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((listen, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or port == 0:
                    raise
                continue
            return int(sock.getsockname()[1])
    raise OSError(errno.EADDRINUSE, "no free port")


def first_moment(plan: Plan, now: datetime) -> datetime:
    """Return where the sandbox's clock starts: `now`, or the reminder window's next opening.

    At night or on a day off nothing would go out before the window opens (SPEC §5), and the
    first thing a visitor would do is move the clock there; so the sandbox starts there.
    """
    rules = timetable(plan.policy, plan.calendar, plan.timezone, None)
    return rules.send_moment(now)[0]


async def run_sandbox(config: Config, plan_path: str | None = None) -> int:
    """Run `duban run --sandbox` until stopped (Ctrl-C); return the exit code."""
    from sandbox.web import routes

    lang = config.ui.default_language
    example = plan_path is None
    plan = parse_plan(reference_text(), "reference.toml") if example else load_plan(plan_path or "")
    clock = MovableClock(first_moment(plan, system_clock()))
    async with LocalBotAPI(
        token=TOKEN,
        bot_username=BOT_USERNAME,
        bot_first_name="督办 duban",
        clock=lambda: clock().timestamp(),
    ) as srv:
        with tempfile.TemporaryDirectory(prefix="duban-sandbox-") as tmp:
            folder = Path(tmp)
            if plan_path is None:
                # What `duban plan example` writes: the packaged reference campaign, moved to
                # start on the clock's day in its time zone.
                today = clock().astimezone(ZoneInfo(plan.timezone)).date()
                plan_file = folder / "campaign.toml"
                plan_file.write_text(example_plan(today).text, encoding="utf-8")
                plan_path = str(plan_file)
            listen = config.http.listen if config.http is not None else "127.0.0.1"
            wanted = config.http.port if config.http is not None else DEFAULT_PORT
            port = free_port(listen, wanted)
            cfg = sandbox_config(config, srv, folder, port)
            sandbox = Sandbox(srv, clock, lang)
            host = "127.0.0.1" if listen in ("0.0.0.0", "") else listen
            sandbox.url = f"http://{host}:{port}/sandbox/"
            log.info("%s", plain("sandbox.starting", lang, db=cfg.database.url))
            return await run_bot(
                cfg, plan_path, clock=clock, routes=routes(sandbox), on_started=sandbox.started
            )
