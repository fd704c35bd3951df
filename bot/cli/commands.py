"""The `duban` subcommands: thin wrappers from arguments to services to output."""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.botapi import fetch_username
from bot.cli.table import render_table
from bot.config import Config, ConfigError, load_config
from bot.db import models as m
from bot.db.engine import Database
from bot.db.migrate import current_revision, upgrade
from bot.domain.assignments import is_open
from bot.domain.deadlines import days_left, days_overdue
from bot.domain.timespec import TimespecError, parse_duration
from bot.errors import InviteUnknown, NoDatabase
from bot.i18n import DEFAULT_LANGUAGE, LANGUAGES, format_moment, plain, progress_bar
from bot.logs import protect
from bot.plan import load_plan
from bot.plan.summary import summarize
from bot.services import invites as invite_service
from bot.services.campaigns import archive_campaign, list_campaigns, pick_campaign
from bot.services.export import build_export, build_workbook, write_csv, xlsx_bytes
from bot.services.history import progress_at, views_at
from bot.services.lookup import find_task, find_unit
from bot.services.plan_load import load_plan_into
from bot.services.progress import assignment_views, campaign_progress
from bot.textfile import read_text


def now() -> datetime:
    """Return the current moment (the CLI is the one place that reads the clock)."""
    return datetime.now(UTC)


_state: dict[str, str] = {}
# "Today" for `plan example` is the reference campaign's day (its time zone).
EXAMPLE_ZONE = "Asia/Shanghai"


def language() -> str:
    """Return the language of the CLI's messages: the loaded config's `ui.default_language`.

    Before a config is loaded (or when it cannot be), `DUBAN_UI_DEFAULT_LANGUAGE` if it names
    a language, else Chinese.
    """
    if "lang" in _state:
        return _state["lang"]
    env = os.environ.get("DUBAN_UI_DEFAULT_LANGUAGE", "")
    return env if env in LANGUAGES else DEFAULT_LANGUAGE


def _config(args: argparse.Namespace) -> Config:
    """Load the configuration; register its secrets before anything can print them."""
    config = load_config(args.config)
    protect(config.telegram.token.get_secret_value())
    protect(config.telegram.webhook.secret_token.get_secret_value())
    _state["lang"] = config.ui.default_language
    return config


async def _open_db(config: Config) -> Database:
    """Open the configured database, migrated to the newest schema."""
    db = Database(config.database.url)
    await upgrade(db)
    return db


def database_name(url: str) -> str:
    """Return how to name a database to a person: its file (and where that is), or its URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        name = parsed.database or ":memory:"
        if name == ":memory:":
            return name
        where = Path(name).resolve()
        return name if str(where) == name else f"{name} ({where})"
    return parsed.render_as_string(hide_password=True)


async def _open_existing_db(config: Config) -> Database:
    """Open a database that exists and holds a campaign; never create one.

    Raises `NoDatabase` naming the database looked at, for a missing SQLite file or a
    database without duban's tables or without any campaign. An existing database of an
    older schema is migrated, as every command does.
    """
    url = config.database.url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if not path or path == ":memory:" or not Path(path).exists():
            raise NoDatabase(name=database_name(url), state="missing")
    db = Database(url)
    try:
        if await current_revision(db) is None:
            raise NoDatabase(name=database_name(url), state="empty")
        await upgrade(db)
        async with db.read() as session:
            if await session.scalar(select(m.Campaign.id).limit(1)) is None:
                raise NoDatabase(name=database_name(url), state="empty")
    except BaseException:
        await db.dispose()
        raise
    return db


@asynccontextmanager
async def _database(config: Config, *, fresh: bool = False) -> AsyncIterator[Database]:
    """Open the database for one command and dispose of it after, whatever happens.

    `fresh`: the command may create the database (`_open_db`); otherwise it must exist and
    hold a campaign (`_open_existing_db`).
    """
    db = await (_open_db(config) if fresh else _open_existing_db(config))
    try:
        yield db
    finally:
        await db.dispose()


def out(text: str = "") -> None:
    """Print a line of output."""
    print(text)


async def run(args: argparse.Namespace) -> int:
    """Run the bot until it is stopped (`--sandbox`: against the local Bot API server)."""
    from bot.app import run_bot

    config = _config(args)
    if getattr(args, "sandbox", False):
        from sandbox.runner import run_sandbox

        return await run_sandbox(config, args.plan)
    config.require_token()
    return await run_bot(config, plan_path=args.plan)


async def plan_check(args: argparse.Namespace) -> int:
    """Validate a plan file and print its summary."""
    config = _config(args)
    lang = config.ui.default_language
    plan = load_plan(args.plan)
    for line in summarize(plan, lang):
        out(line)
    return 0


async def plan_load(args: argparse.Namespace) -> int:
    """Create or update the campaign from a plan file."""
    config = _config(args)
    lang = config.ui.default_language
    plan = load_plan(args.plan)
    for warning in plan.warnings:
        print(plain("plan.warning", lang, text=warning), file=sys.stderr)
    async with _database(config, fresh=True) as db:
        report = await load_plan_into(
            db, plan, now=now(), actor="cli", plan_text=read_text(args.plan)
        )
    if not report.changed:
        out(plain("plan.unchanged", lang, key=plan.key))
        return 0
    parts = []
    for label, counts in (
        ("created", report.created),
        ("updated", report.updated),
        ("archived", report.archived),
        ("restored", report.restored),
    ):
        changed = {k: v for k, v in counts.items() if v}
        if changed:
            things = plain("cli.load.separator", lang).join(
                _counted(k, v, lang) for k, v in changed.items()
            )
            parts.append(plain(f"cli.load.{label}", lang, things=things))
    if report.rescheduled:
        parts.append(plain("cli.load.rescheduled", lang, count=report.rescheduled))
    out(
        plain("plan.loaded", lang, key=plan.key, summary=plain("cli.load.joiner", lang).join(parts))
    )
    return 0


def _counted(kind: str, count: int, lang: str) -> str:
    """Write "单位 13 个" for a kind of object the load report counts (its key if unknown)."""
    try:
        return plain(f"cli.load.kind.{kind}", lang, count=count)
    except KeyError:  # a kind added to the load report before the catalogs learnt it
        return f"{kind} {count}"


async def plan_example(args: argparse.Namespace) -> int:
    """Write the reference campaign moved to start on --start (default today)."""
    from bot.plan.example import example_plan

    config = _config(args)
    lang = config.ui.default_language
    target = Path(args.output)
    if args.start:
        try:
            start = date.fromisoformat(args.start.strip())
        except ValueError:
            raise ConfigError(plain("cli.example.bad_start", lang, value=args.start)) from None
    else:
        start = now().astimezone(ZoneInfo(EXAMPLE_ZONE)).date()
    if target.exists():
        raise ConfigError(plain("cli.example.exists", lang, file=str(target)))
    made = example_plan(start)
    target.write_text(made.text, encoding="utf-8")
    plan = made.plan
    out(
        plain(
            "cli.example.written",
            lang,
            file=str(target),
            title=plan.title,
            start=format_day(min(p.start for p in plan.phases), lang),
            end=format_day(max(p.end for p in plan.phases), lang),
            phases=len(plan.phases),
            units=len(plan.units),
        )
    )
    out(plain("cli.example.next", lang, file=str(target)))
    return 0


def format_day(day: date, lang: str) -> str:
    """Write a date with its year (`2026年11月30日` / `30 Nov 2026`)."""
    if lang == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {day:%b} {day.year}"


async def campaign_list(args: argparse.Namespace) -> int:
    """List the campaigns in the database."""
    config = _config(args)
    lang = config.ui.default_language
    async with _database(config) as db, db.read() as session:
        rows = await list_campaigns(session)
    active = [row for row in rows if row.archived_at is None]
    table = []
    for row in rows:
        if row.archived_at is not None:
            state = plain(
                "cli.campaign.archived_on",
                lang,
                date=format_day(row.archived_at.astimezone(ZoneInfo(row.timezone)).date(), lang),
            )
        elif len(active) == 1:
            state = plain("cli.campaign.default", lang)
        else:
            state = plain("cli.campaign.active", lang)
        dates = (
            f"{format_day(row.start, lang)} – {format_day(row.end, lang)}"
            if row.start and row.end
            else "—"
        )
        table.append([row.key, row.title, dates, str(row.units), state])
    header = [
        plain(f"cli.campaign.col.{name}", lang)
        for name in ("key", "title", "dates", "units", "state")
    ]
    out(render_table(header, table, {3}))
    return 0


async def campaign_archive(args: argparse.Namespace) -> int:
    """Archive a campaign: its reminders stop, its data stays readable."""
    config = _config(args)
    lang = config.ui.default_language
    async with _database(config) as db, db.write() as session:
        campaign, withdrawn = await archive_campaign(session, args.key, now=now(), actor="cli")
        key = campaign.key
    out(plain("cli.campaign.archived", lang, key=key, count=withdrawn))
    return 0


async def invite(args: argparse.Namespace) -> int:
    """Make, list or revoke invite codes (`--all`: one per unit, into a sheet or cards)."""
    if getattr(args, "all", False):
        from bot.cli.intake import invite_all

        return await invite_all(args)
    config = _config(args)
    lang = config.ui.default_language
    moment = now()
    async with _database(config) as db:
        if args.revoke:
            try:
                async with db.write() as session:
                    revoked = await invite_service.revoke_invite(
                        session, args.revoke, now=moment, actor="cli"
                    )
            except InviteUnknown:
                raise ConfigError(plain("cli.invite.unknown", lang, code=args.revoke)) from None
            out(plain("cli.invite_revoked", lang, hint=revoked.hint))
            return 0
        if args.list:
            async with db.read() as session:
                campaign = await pick_campaign(session, args.campaign)
                rows = await invite_service.list_invites(session, campaign)
                table = [
                    [
                        inv.hint + "…",
                        plain(f"role.{inv.role}", lang),
                        unit or "",
                        f"{inv.used}/{inv.max_uses}",
                        format_moment(inv.expires_at, campaign.timezone, lang, with_year=True)
                        if inv.expires_at
                        else "—",
                        plain("cli.invite.state." + invite_service.invite_state(inv, moment), lang),
                    ]
                    for inv, unit in rows
                ]
            header = [
                plain(f"cli.invite.col.{name}", lang)
                for name in ("code", "role", "unit", "used", "expires", "state")
            ]
            out(render_table(header, table, {3}))
            return 0
        if not args.role:
            raise ConfigError(plain("cli.invite.name_role", lang))
        try:
            expires = parse_duration(args.expires)
        except TimespecError as exc:
            raise ConfigError(f"--expires: {exc}") from None
        # The name for the link: configured, else getMe (a short wait), else what `run` cached.
        username = config.telegram.username or await fetch_username(config)
        async with db.write() as session:
            campaign = await pick_campaign(session, args.campaign)
            unit = await find_unit(session, campaign.id, args.unit) if args.unit else None
            made = await invite_service.create_invite(
                session,
                campaign,
                args.role,
                unit,
                now=moment,
                actor="cli",
                uses=args.uses,
                expires_in=expires.to_timedelta(),
            )
            if username:
                await invite_service.remember_username(session, username, moment)
            else:
                username = await invite_service.cached_username(session)
            tz = campaign.timezone
        # Printed only now that the invite is committed: a code shown is a code stored.
        expires_at = made.invite.expires_at
        assert expires_at is not None
        out(plain("cli.invite_code", lang, code=made.code))
        if username:
            out(
                plain("cli.invite_link", lang, link=invite_service.invite_link(username, made.code))
            )
        else:
            out(plain("cli.invite_send", lang, code=made.code))
        out(
            plain(
                "cli.invite_for",
                lang,
                role=plain(f"role.{args.role}", lang),
                unit=f" · {made.unit_name}" if made.unit_name else "",
                uses=args.uses,
                expires=format_moment(expires_at, tz, lang, with_year=True),
            )
        )
        return 0


async def status(args: argparse.Namespace) -> int:
    """Print the progress table."""
    config = _config(args)
    lang = config.ui.default_language
    moment = now()
    async with _database(config) as db, db.read() as session:
        campaign = await pick_campaign(session, args.campaign)
        if args.at:
            moment = _moment(args.at, "--at", campaign.timezone, lang)
        unit_ids = task_ids = None
        if args.unit:
            unit_ids = [(await find_unit(session, campaign.id, args.unit)).id]
        if args.task:
            task_ids = [(await find_task(session, campaign.id, args.task)).id]
        progress = await campaign_progress(
            session, campaign, moment, unit_ids=unit_ids, task_ids=task_ids
        )
        views = (
            await assignment_views(session, campaign, moment, unit_ids=unit_ids, task_ids=task_ids)
            if unit_ids or task_ids
            else []
        )
        if args.at:
            # As of a moment: what was submitted, reviewed and overdue then.
            progress, states = await progress_at(
                session, progress, campaign, moment, unit_ids=unit_ids
            )
            views = views_at(views, states, moment)
    tz = campaign.timezone
    out(progress.title)
    out(plain("status.as_of", lang, moment=format_moment(moment, tz, lang, with_year=True)))
    out()

    def col(name: str) -> str:
        return plain(f"status.{name}", lang)

    header = [
        col(n)
        for n in (
            "col_phase",
            "col_task",
            "col_due",
            "col_submitted",
            "col_accepted",
            "col_overdue",
            "col_progress",
        )
    ]
    rows = []
    for phase in progress.phases:
        if not phase.tasks:
            if not (unit_ids or task_ids):
                rows.append([phase.name, "—", "", "", "", "", plain("status.no_tasks", lang)])
            continue
        for i, task in enumerate(phase.tasks):
            rows.append(
                [
                    phase.name if i == 0 else "",
                    task.title,
                    format_moment(task.due_at, tz, lang),
                    f"{task.submitted}/{task.total}",
                    str(task.accepted),
                    str(task.overdue),
                    progress_bar(task.submitted, task.total),
                ]
            )
    out(render_table(header, rows, {3, 4, 5}))
    total, submitted, accepted, overdue = progress.totals()
    out()
    out(
        plain(
            "status.total",
            lang,
            total=total,
            submitted=submitted,
            accepted=accepted,
            overdue=overdue,
        )
    )
    if views:
        out()
        detail = [
            [
                v.unit_name,
                v.task_title,
                plain("state.overdue" if v.overdue else f"state.{v.status}", lang),
                format_moment(v.due_at, tz, lang),
                _days(v.due_at, moment, v.overdue, lang) if is_open(v.status) else "",
            ]
            for v in views
        ]
        header = [col(n) for n in ("col_unit", "col_task", "col_status", "col_due", "col_days")]
        out(render_table(header, detail, set()))
    return 0


def _days(due: datetime, moment: datetime, overdue: bool, lang: str) -> str:
    if overdue:
        return plain("status.days_overdue", lang, days=days_overdue(due, moment))
    days = days_left(due, moment)
    return (
        plain("status.due_today", lang) if days == 0 else plain("status.days_left", lang, days=days)
    )


async def export(args: argparse.Namespace) -> int:
    """Write every assignment to an XLSX or CSV file."""
    config = _config(args)
    lang = config.ui.default_language
    async with _database(config) as db, db.read() as session:
        campaign = await pick_campaign(session, args.campaign)
        if args.format == "csv":
            table = await build_export(session, campaign, now(), lang)
        else:
            book = await build_workbook(session, campaign, now(), lang)
    path = Path(args.output or f"{campaign.key}.{args.format}")
    if args.format == "csv":
        write_csv(table, path)
        count = len(table.rows)
    else:
        path.write_bytes(xlsx_bytes(book))
        count = book.assignments
    out(plain("cli.exported", lang, count=count, file=str(path)))
    return 0


async def report(args: argparse.Namespace) -> int:
    """Render the bulletin or the progress chart to a PNG file."""
    from bot.reports.bulletin import bulletin_data, draw_bulletin
    from bot.reports.chart import draw_chart
    from bot.reports.figures import chart_data

    config = _config(args)
    lang = config.ui.default_language
    async with _database(config) as db, db.read() as session:
        campaign = await pick_campaign(session, args.campaign)
        at = _moment(args.at, "--at", campaign.timezone, lang) if args.at else now()
        if args.picture == "bulletin":
            picture = draw_bulletin(await bulletin_data(session, campaign, at), lang)
        else:
            picture = draw_chart(await chart_data(session, campaign, at), lang)
    path = Path(args.output)
    path.write_bytes(picture.png)
    out(
        plain(
            "reports.cli.bulletin" if args.picture == "bulletin" else "reports.cli.chart",
            lang,
            file=str(path),
            width=picture.width_px,
            height=picture.height_px,
        )
    )
    return 0


async def calendar(args: argparse.Namespace) -> int:
    """Write a unit's deadlines as an iCalendar file, or revoke its subscription links."""
    from bot.reports.ics import unit_calendar
    from bot.services.feeds import revoke_unit_feeds

    config = _config(args)
    lang = config.ui.default_language
    moment = now()
    async with _database(config) as db:
        if args.revoke_links:
            async with db.write() as session:
                campaign = await pick_campaign(session, args.campaign)
                unit = await find_unit(session, campaign.id, args.unit)
                count = await revoke_unit_feeds(session, campaign, unit, moment, actor="cli")
            out(plain("reports.cli.revoked", lang, unit=unit.name, count=count))
            return 0
        async with db.read() as session:
            campaign = await pick_campaign(session, args.campaign)
            unit = await find_unit(session, campaign.id, args.unit)
            data, count = await unit_calendar(session, campaign, unit, moment, lang)
    path = Path(args.output or f"{unit.key}.ics")
    path.write_bytes(data)
    out(plain("reports.cli.calendar", lang, file=str(path), count=count))
    return 0


def _moment(text: str, option: str, tz: str, lang: str) -> datetime:
    """Read an ISO date-time; without an offset it is in the campaign's time zone."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            plain("reminders.dry.bad_moment", lang, option=option, value=text)
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(UTC)


async def remind(args: argparse.Namespace) -> int:
    """Preview the messages the schedule sends in one tick, or between two moments."""
    # Imported here, like the bot itself in `run`: the scheduler package is the bot's runtime.
    from scheduler.preview import preview

    config = _config(args)
    lang = config.ui.default_language
    if not args.dry_run:
        raise ConfigError(plain("reminders.dry.only_dry_run", lang))
    async with _database(config) as db, db.read() as session:
        campaign = await pick_campaign(session, args.campaign)
        tz = campaign.timezone
        at = _moment(args.at, "--at", tz, lang) if args.at else now()
        if args.until:
            start, end = at, _moment(args.until, "--until", tz, lang)
            if end < start:
                raise ConfigError(plain("reminders.dry.until_before_at", lang))
            one_tick = False
        else:
            # The tick ending at T covers what fell due since the tick before it.
            start = at - timedelta(seconds=config.scheduler.tick_seconds)
            end, one_tick = at, True
        first = start + timedelta(microseconds=1) if one_tick else start
        lines = await preview(session, campaign, first, end, lang=lang, one_tick=one_tick)

    def moment(value: datetime) -> str:
        return format_moment(value, tz, lang, with_year=True)

    key = "reminders.dry.tick" if one_tick else "reminders.dry.range"
    out(plain(key, lang, campaign=campaign.title, start=moment(start), end=moment(end)))
    for line in lines:
        at_text = format_moment(line.at, tz, lang)
        if line.task is None:
            text = plain(
                "reminders.dry.notice_line",
                lang,
                at=at_text,
                stage=line.stage,
                recipient=line.recipient,
                why=line.why,
            )
        else:
            text = plain(
                "reminders.dry.line",
                lang,
                at=at_text,
                task=line.task,
                unit=line.unit,
                stage=line.stage,
                recipient=line.recipient,
                why=line.why,
            )
        out(text)
    out(
        plain("reminders.dry.count", lang, count=len(lines))
        if lines
        else plain("reminders.dry.none", lang)
    )
    return 0


async def task_add(args: argparse.Namespace) -> int:
    """Add a task of the current phase, as /assign does in the chat (audited as `cli`)."""
    from bot.services.adhoc import NoUnits, add_task, read_deadline, target_units

    config = _config(args)
    lang = config.ui.default_language
    moment = now()
    async with _database(config, fresh=True) as db, db.write() as session:
        campaign = await pick_campaign(session, args.campaign)
        due = await read_deadline(session, campaign, args.due, now=moment)
        if args.unit:
            chosen = [(await find_unit(session, campaign.id, name)).id for name in args.unit]
            units = await target_units(session, campaign.id, "units", chosen)
        elif args.kind:
            wanted = args.kind.strip()
            kind = await session.scalar(
                select(m.UnitKind).where(
                    m.UnitKind.campaign_id == campaign.id,
                    m.UnitKind.archived_at.is_(None),
                    (m.UnitKind.key == wanted) | (m.UnitKind.name == wanted),
                )
            )
            if kind is None:
                raise NoUnits()
            units = await target_units(session, campaign.id, f"kind:{kind.id}")
        else:
            units = await target_units(session, campaign.id, "all")
        added = await add_task(
            session,
            campaign,
            title=args.title,
            due_at=due,
            evidence=args.evidence,
            units=units,
            description=args.instructions,
            actor="cli",
            now=moment,
            default_language=lang,
        )
        tz = campaign.timezone
    out(
        plain(
            "work.assign_done",
            lang,
            title=added.task.title,
            due=format_moment(added.task.due_at, tz, lang),
            count=added.units,
        )
    )
    return 0


async def db_upgrade(args: argparse.Namespace) -> int:
    """Apply the database migrations."""
    config = _config(args)
    lang = config.ui.default_language
    db = Database(config.database.url)
    try:
        before, after = await upgrade(db)
    finally:
        await db.dispose()
    key = "cli.up_to_date" if before == after else "cli.migrated"
    out(plain(key, lang, revision=after or "-"))
    return 0


async def db_backup(args: argparse.Namespace) -> int:
    """Copy a SQLite database consistently, even while the bot writes to it."""
    config = _config(args)
    url = make_url(config.database.url)
    if url.get_backend_name() != "sqlite":
        raise ConfigError(
            "db backup: only for SQLite; back up PostgreSQL with pg_dump (see docs/deploy.md)"
        )
    source = url.database or ""
    if not source or source == ":memory:" or not Path(source).exists():
        raise ConfigError(f"db backup: database file not found: {source or '(none)'}")
    target = Path(args.output)
    if target.exists():
        raise ConfigError(f"db backup: {target} exists; choose a new file")
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        # The online backup API copies a consistent snapshot while writers go on.
        src.backup(dst)
    out(str(target))
    return 0
