"""`duban units import`, `duban invite ROLE --all` and `duban plan draft`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bot.botapi import fetch_username
from bot.cli.commands import _config, _open_existing_db, now, out
from bot.config import ConfigError
from bot.domain.timespec import TimespecError, parse_duration
from bot.i18n import format_moment, plain
from bot.intake.roster import Roster, RosterError, read_roster
from bot.intake.units_toml import replace_units, units_toml
from bot.reports.invite_cards import InviteLine, write_invites
from bot.services.bulk_invites import invite_units
from bot.services.campaigns import pick_campaign
from bot.services.invites import cached_username, invite_link, remember_username
from bot.textfile import TextFileError, read_text


def _read_text(path: Path) -> str:
    try:
        return read_text(path)
    except TextFileError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None


def _existing_kinds(plan_text: str) -> dict[str, str]:
    """Return the plan's unit kinds, name -> key (read leniently: the plan may be a draft)."""
    import tomllib

    try:
        data = tomllib.loads(plan_text)
    except tomllib.TOMLDecodeError:
        return {}
    kinds = data.get("unit_kinds", [])
    if not isinstance(kinds, list):
        return {}
    return {
        str(k["name"]): str(k["key"])
        for k in kinds
        if isinstance(k, dict) and isinstance(k.get("name"), str) and isinstance(k.get("key"), str)
    }


async def units_import(args: argparse.Namespace) -> int:
    """Read a roster; write its units as plan TOML (stdout, -o FILE, or into a plan)."""
    config = _config(args)
    lang = config.ui.default_language
    roster = read_roster(Path(args.roster), kind=args.kind)
    if args.into and args.output:
        raise ConfigError("units import: give --into PLAN or -o FILE, not both")
    if args.into:
        target = Path(args.into)
        text = _read_text(target)
        block = units_toml(roster, kind_keys=_existing_kinds(text))
        target.write_text(replace_units(text, block), encoding="utf-8")
        out(plain("intake.units_into", lang, count=len(roster.units), plan=str(target)))
    elif args.output:
        Path(args.output).write_text(units_toml(roster), encoding="utf-8")
        out(plain("intake.units_written", lang, count=len(roster.units), file=args.output))
    else:
        out(units_toml(roster).rstrip("\n"))
    _say_kinds(roster, lang)
    return 0


def _say_kinds(roster: Roster, lang: str) -> None:
    for kind in roster.kinds:
        count = sum(1 for u in roster.units if u.kind == kind)
        out(plain("intake.kind_line", lang, kind=kind, count=count))


async def invite_all(args: argparse.Namespace) -> int:
    """Make one invite per unit and write the sheet or the cards (codes stored first)."""
    config = _config(args)
    lang = config.ui.default_language
    if not args.output:
        raise ConfigError("invite --all: name the file with -o invites.xlsx or -o invites.pdf")
    output = Path(args.output)
    if output.suffix.lower() not in (".xlsx", ".pdf"):
        raise ConfigError(f"{output}: write invitations to an .xlsx or .pdf file")
    if args.unit:
        raise ConfigError("invite --all: name no unit (every unit gets its own code)")
    try:
        expires = parse_duration(args.expires)
    except TimespecError as exc:
        raise ConfigError(f"--expires: {exc}") from None
    contacts: dict[str, str] = {}
    if args.roster:
        try:
            roster = read_roster(Path(args.roster), kind="-")
        except RosterError as exc:
            raise ConfigError(str(exc.detail)) from None
        contacts = {u.name: u.contact for u in roster.units if u.contact}
    # The name for the links: configured, else getMe (a short wait), else what `run` cached.
    username = config.telegram.username or await fetch_username(config)
    db = await _open_existing_db(config)
    moment = now()
    try:
        async with db.write() as session:
            campaign = await pick_campaign(session, args.campaign)
            result = await invite_units(
                session,
                campaign,
                args.role,
                kind=args.kind,
                renew=args.renew,
                now=moment,
                actor="cli",
                expires_in=expires.to_timedelta(),
            )
            if username:
                await remember_username(session, username, moment)
            else:
                username = await cached_username(session)
            title = campaign.title
            zone = campaign.timezone
        # The codes are stored (committed) before the file is written.
        role_label = plain(f"role.{args.role}", lang)
        lines = [
            InviteLine(
                unit=made.unit_name,
                kind=made.kind_name,
                role=role_label,
                code=made.code,
                link=invite_link(username, made.code) if username else f"/start {made.code}",
                contact=contacts.get(made.unit_name, "") if args.role == "contact" else "",
                expires=format_moment(made.expires_at, zone, lang, with_year=True)
                if made.expires_at
                else "",
            )
            for made in result.made
        ]
    finally:
        await db.dispose()
    if lines:
        try:
            write_invites(output, title, lines, lang)
        except OSError as exc:
            raise ConfigError(
                f"{output}: {exc.strerror or exc} ({len(lines)} codes were made: "
                "run again with --renew to replace them)"
            ) from None
        out(plain("intake.invites_written", lang, count=len(lines), file=str(output)))
    else:
        out(plain("intake.invites_none", lang))
    if not username:
        out(plain("intake.invites_no_username", lang))
    if result.skipped:
        out(plain("intake.invites_skipped", lang, count=len(result.skipped)))
        for name in result.skipped:
            out(f"  {name}")
    return 0


async def plan_draft(args: argparse.Namespace) -> int:
    """Draft a plan from a notice; print what to check; write the plan file."""
    from bot.intake.draft import draft_plan, draft_toml
    from bot.intake.notice import read_notice

    config = _config(args)
    lang = config.ui.default_language
    notice = Path(args.notice)
    output = Path(args.output)
    if args.year is not None and not 2000 <= args.year <= 2099:
        raise ConfigError(f"--year: {args.year} is out of range (2000-2099)")
    draft = draft_plan(read_notice(notice), year=args.year, today=now().date())
    units = None
    if args.units:
        roster = read_roster(Path(args.units), kind=args.kind)
        units = units_toml(roster)
    output.write_text(
        draft_toml(draft, source=notice.name, lang=lang, units=units), encoding="utf-8"
    )
    tasks = sum(len(p.tasks) for p in draft.phases)
    out(
        plain("intake.draft_written", lang, file=str(output), phases=len(draft.phases), tasks=tasks)
    )
    for phase in draft.phases:
        out(f"  {phase.name}  {phase.start} – {phase.end}")
        for task in phase.tasks:
            when = str(task.due) if task.due else _rule_text(task.repeat)
            out(f"    · {task.title}  {when}")
    if draft.checks:
        out(plain("intake.draft_check_head", lang, count=len(draft.checks)))
        for check in draft.checks:
            out(plain("intake.draft_check_line", lang, text=check.render(lang)))
    return 0


def _rule_text(rule: dict[str, object] | None) -> str:
    if not rule:
        return ""
    on = rule.get("on")
    days = ",".join(str(x) for x in on) if isinstance(on, list) else ""
    return f"every {rule['every']} {days} {rule.get('at', '')}".strip()
