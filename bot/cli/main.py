"""Entry point of the `duban` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bot.cli import commands, intake
from bot.config import ConfigError
from bot.errors import DubanError
from bot.i18n import plain
from bot.logs import install_redaction, protect
from bot.plan import PlanInvalid

log = logging.getLogger("duban")


class _Parser(argparse.ArgumentParser):
    """argparse, except that a word beginning with "-" that names no option is a value.

    Invite codes, unit names and file names may begin with "-" (`-jvUxy`); stock argparse
    takes every such word for an unknown option and fails with "expected one argument".
    """

    def _parse_optional(self, arg_string: str) -> Any:
        found = super()._parse_optional(arg_string)
        if found is None:
            return None
        # Python 3.12.7+ returns a list of candidates, earlier versions one tuple.
        first = found[0] if isinstance(found, list) else found
        return None if first[0] is None else found


def _value_options(parser: argparse.ArgumentParser) -> set[str]:
    """Return every option string, in any subcommand, that takes exactly one value."""
    names: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                names |= _value_options(child)
        elif action.option_strings and action.nargs is None:
            names.update(action.option_strings)
    return names


def _join_values(argv: list[str], options: set[str]) -> list[str]:
    """Write `--opt VALUE` as `--opt=VALUE`, so that a value beginning with "-" stays one."""
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            out.append(word)
            out.extend(words)
            break
        if word in options:
            value = next(words, None)
            out.append(word if value is None else f"{word}={value}")
        else:
            out.append(word)
    return out


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--config", metavar="PATH", help="config file (default ./config.toml)")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    campaign = _Parser(add_help=False)
    campaign.add_argument("--campaign", metavar="KEY", help="campaign key (if there are several)")

    parser = _Parser(
        prog="duban", description="督办 duban: run a phased work plan across many units."
    )
    parser.add_argument("--version", action="version", version=f"duban {_version()}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

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
    example = plan_sub.add_parser(
        "example", parents=[common], help="write the reference campaign, moved to start today"
    )
    example.add_argument("--start", metavar="DATE", help="its first day (default today)")
    example.add_argument("-o", "--output", metavar="FILE", required=True, help="plan file")
    example.set_defaults(func=commands.plan_example)

    campaign_cmd = sub.add_parser("campaign", help="list or archive campaigns")
    campaign_sub = campaign_cmd.add_subparsers(
        dest="campaign_command", required=True, metavar="ACTION"
    )
    listing = campaign_sub.add_parser("list", parents=[common], help="the campaigns")
    listing.set_defaults(func=commands.campaign_list)
    archive = campaign_sub.add_parser(
        "archive", parents=[common], help="stop a campaign's reminders; its data stays readable"
    )
    archive.add_argument("key", metavar="KEY")
    archive.set_defaults(func=commands.campaign_archive)

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
    status.add_argument("--at", metavar="T", help="as of this moment (default now)")
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
    """Run one `duban` command; return its exit code.

    Everything written to stdout and stderr passes through the secret filter (the bot
    token never shows, whatever prints it); a reader that goes away (`duban … | head -1`)
    ends the command quietly with exit code 141, as a pipe's writer killed by SIGPIPE.
    """
    install_redaction()
    protect(os.environ.get("DUBAN_TELEGRAM_TOKEN", ""))
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
    except BrokenPipeError:
        # Output is printed only after what it reports was stored, so nothing is lost;
        # the interpreter must not complain at exit while flushing the closed pipe again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return PIPE_CLOSED
    return code


PIPE_CLOSED = 141


def _main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(_join_values(argv, _value_options(parser)))
    debug = bool(getattr(args, "debug", False))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Library warnings go through the logging handlers (and their secret filter) too.
    logging.captureWarnings(True)
    if not debug:
        # httpx logs every request URL, and the URL holds the bot token.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
    func: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = args.func
    try:
        return asyncio.run(func(args))
    except PlanInvalid as exc:
        lang = commands.language()
        print(plain("plan.errors", lang, count=len(exc.errors)), file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    except (ConfigError, DubanError) as exc:
        message = str(exc) if isinstance(exc, ConfigError) else _render(exc)
        print(f"duban: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:
        if debug:
            traceback.print_exc(file=sys.stderr)
        else:
            print(
                f"duban: {type(exc).__name__}: {_one_line(exc)} (run with --debug for details)",
                file=sys.stderr,
            )
        return 1


def _version() -> str:
    try:
        return version("duban")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _render(error: DubanError) -> str:
    render = getattr(error, "render", None)
    if render is not None:
        return str(render(commands.language()))
    try:
        lang = commands.language()
        office = plain("office.default", lang)
        return plain(error.key, lang, detail=error.detail, **{"office": office, **error.params})
    except KeyError:
        return error.detail or error.key


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


if __name__ == "__main__":
    sys.exit(main())
