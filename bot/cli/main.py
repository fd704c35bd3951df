"""Entry point of the `duban` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from bot.cli import commands, intake
from bot.config import ConfigError
from bot.errors import DubanError
from bot.i18n import plain
from bot.plan import PlanInvalid

log = logging.getLogger("duban")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="config file (default ./config.toml)")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    campaign = argparse.ArgumentParser(add_help=False)
    campaign.add_argument("--campaign", metavar="KEY", help="campaign key (if there are several)")

    parser = argparse.ArgumentParser(
        prog="duban", description="督办 duban: run a phased work plan across many units."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="run the bot")
    run.add_argument("--plan", metavar="PLAN", help="load or update this plan first")
    run.add_argument(
        "--sandbox",
        action="store_true",
        help="no Telegram: a local Bot API server, a page to play every role, a movable clock",
    )
    run.set_defaults(func=commands.run)

    plan = sub.add_parser("plan", help="check or load a plan file")
    plan_sub = plan.add_subparsers(dest="plan_command", required=True, metavar="ACTION")
    check = plan_sub.add_parser("check", parents=[common], help="validate a plan file")
    check.add_argument("plan", metavar="PLAN")
    check.set_defaults(func=commands.plan_check)
    load = plan_sub.add_parser("load", parents=[common], help="create or update the campaign")
    load.add_argument("plan", metavar="PLAN")
    load.set_defaults(func=commands.plan_load)
    draft = plan_sub.add_parser(
        "draft", parents=[common], help="draft a plan from a notice (.txt, .docx, .pdf)"
    )
    draft.add_argument("notice", metavar="NOTICE")
    draft.add_argument("--year", type=int, help="the campaign's year, when the notice lacks it")
    draft.add_argument("--units", metavar="ROSTER", help="fill [[units]] from this roster")
    draft.add_argument("--kind", metavar="K", help="with --units: kind of units without one")
    draft.add_argument("-o", "--output", metavar="PLAN", required=True, help="plan file")
    draft.set_defaults(func=intake.plan_draft)

    invite = sub.add_parser(
        "invite", parents=[common, campaign], help="make or manage invite codes"
    )
    invite.add_argument("role", nargs="?", help="contact, head, office, leader or admin")
    invite.add_argument("unit", nargs="?", help="the unit (for contact and head)")
    invite.add_argument("--uses", type=int, default=1, help="how many people may use it")
    invite.add_argument("--expires", default="7d", help="validity, e.g. 7d (default), 12h")
    invite.add_argument("--revoke", metavar="CODE", help="withdraw a code")
    invite.add_argument("--list", action="store_true", help="list the campaign's invites")
    invite.add_argument("--all", action="store_true", help="one invite per unit (contact, head)")
    invite.add_argument("--kind", metavar="K", help="with --all: only units of this kind")
    invite.add_argument(
        "--renew", action="store_true", help="with --all: replace unused codes with new ones"
    )
    invite.add_argument("-o", "--output", metavar="FILE", help="with --all: .xlsx or .pdf")
    invite.add_argument(
        "--roster", metavar="ROSTER", help="with --all: the roster, for the contacts' names"
    )
    invite.set_defaults(func=commands.invite)

    units = sub.add_parser("units", help="unit rosters")
    units_sub = units.add_subparsers(dest="units_command", required=True, metavar="ACTION")
    units_import = units_sub.add_parser(
        "import", parents=[common], help="read a roster (.xlsx, .csv) into plan TOML"
    )
    units_import.add_argument("roster", metavar="ROSTER")
    units_import.add_argument("--into", metavar="PLAN", help="replace the units of this plan")
    units_import.add_argument("-o", "--output", metavar="FILE", help="write the TOML here")
    units_import.add_argument("--kind", metavar="K", help="the kind of units whose row has none")
    units_import.set_defaults(func=intake.units_import)

    status = sub.add_parser("status", parents=[common, campaign], help="progress table")
    status.add_argument("--unit", metavar="NAME", help="one unit's tasks")
    status.add_argument("--task", metavar="NAME", help="one task's units")
    status.set_defaults(func=commands.status)

    export = sub.add_parser("export", parents=[common, campaign], help="every assignment")
    export.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    export.add_argument("-o", "--output", metavar="FILE", help="output file")
    export.set_defaults(func=commands.export)

    report = sub.add_parser("report", help="render a report picture")
    report_sub = report.add_subparsers(dest="report_command", required=True, metavar="REPORT")
    for name, help_text in (
        ("bulletin", "the weekly bulletin (units ranked) as a PNG"),
        ("chart", "the progress chart (tasks, unit kinds) as a PNG"),
    ):
        picture = report_sub.add_parser(name, parents=[common, campaign], help=help_text)
        picture.add_argument("-o", "--output", metavar="FILE", required=True, help="PNG file")
        picture.add_argument("--at", metavar="T", help="as of this moment (default now)")
        picture.set_defaults(func=commands.report, picture=name)

    calendar = sub.add_parser(
        "calendar", parents=[common, campaign], help="a unit's deadlines as an iCalendar file"
    )
    calendar.add_argument("unit", metavar="UNIT", help="unit name, alias or key")
    calendar.add_argument("-o", "--output", metavar="FILE", help="output file (default UNIT.ics)")
    calendar.add_argument(
        "--revoke-links", action="store_true", help="stop every subscription link to this unit"
    )
    calendar.set_defaults(func=commands.calendar)

    task = sub.add_parser("task", help="tasks added outside the plan file")
    task_sub = task.add_subparsers(dest="task_command", required=True)
    add = task_sub.add_parser(
        "add", parents=[common, campaign], help="add a task of the current phase (as /assign)"
    )
    add.add_argument("title", metavar="TITLE")
    add.add_argument(
        "--due", required=True, metavar="WHEN", help="5月20日 17:00, 24小时内, 3天内, 3个工作日内"
    )
    add.add_argument("--evidence", choices=("file", "text", "any", "none"), default="file")
    add.add_argument("--kind", metavar="KIND", help="only the units of this kind (key or name)")
    add.add_argument("--unit", metavar="UNIT", action="append", help="only this unit (repeatable)")
    add.add_argument("--instructions", metavar="TEXT", default="", help="instructions text")
    add.set_defaults(func=commands.task_add)

    remind = sub.add_parser(
        "remind", parents=[common, campaign], help="preview the reminders the bot will send"
    )
    remind.add_argument("--dry-run", action="store_true", help="list, send nothing")
    remind.add_argument("--at", metavar="T", help="the tick ending at T (default now)")
    remind.add_argument("--until", metavar="T2", help="every message from T to T2")
    remind.set_defaults(func=commands.remind)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", parents=[common], help="apply migrations")
    upgrade.set_defaults(func=commands.db_upgrade)
    backup = db_sub.add_parser("backup", parents=[common], help="copy a SQLite database safely")
    backup.add_argument("-o", "--output", metavar="FILE", required=True)
    backup.set_defaults(func=commands.db_backup)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `duban` command; return its exit code."""
    args = _parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not debug:
        # httpx logs every request URL, and the URL holds the bot token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
    func: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = args.func
    try:
        return asyncio.run(func(args))
    except PlanInvalid as exc:
        print(plain("plan.errors", None, count=len(exc.errors)), file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    except (ConfigError, DubanError) as exc:
        message = str(exc) if isinstance(exc, ConfigError) else _render(exc)
        print(f"duban: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            raise
        print(
            f"duban: {type(exc).__name__}: {_one_line(exc)} (run with --debug for details)",
            file=sys.stderr,
        )
        return 1


def _render(error: DubanError) -> str:
    try:
        return plain(error.key, None, detail=error.detail, **error.params)
    except KeyError:
        return error.detail or error.key


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


if __name__ == "__main__":
    sys.exit(main())
