"""The reference campaign moved to start on a given day: the quick start's plan.

`examples/campaign.toml` keeps the 2017 dates of the plan document; a campaign run today
would be years overdue. `moved_example(start)` returns the same file with every date moved
by the same number of days, so each phase keeps its length and each deadline its place in
its phase. Used by `duban run --sandbox` and `duban plan example`. The packaged copy
(`reference.toml`, read by `reference_text`) is the example file itself (a test keeps them
identical), so `plan example` works from any installation.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path

from bot.errors import DubanError
from bot.plan.model import Plan
from bot.plan.parse import parse_plan

# The repository's examples/ folder (an editable install, as the README's quick start makes).
EXAMPLE_PATH = Path(__file__).resolve().parents[2] / "examples" / "campaign.toml"
# A TOML local date (alone or as the date part of a date-time), never part of a longer word.
_DATE = re.compile(r"(?<![\w.-])(\d{4})-(\d{2})-(\d{2})(?![\w-])")


class ExampleMissing(DubanError):
    """The reference campaign's file is not where the installation put it."""

    key = "error.example_missing"


def example_text(path: Path = EXAMPLE_PATH) -> str:
    """Return the reference campaign's TOML text; ExampleMissing when the file is absent."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise ExampleMissing(str(path), path=str(path)) from None


def first_day(text: str) -> date:
    """Return the earliest phase start of a plan's TOML text (ValueError without phases)."""
    data = tomllib.loads(text)
    starts: list[date] = [
        p["start"] for p in data.get("phases", []) if isinstance(p.get("start"), date)
    ]
    if not starts:
        raise ValueError("the plan has no dated phase")
    return min(starts)


def move_dates(text: str, days: int) -> str:
    """Return TOML text with every date outside comment lines moved by `days` days."""
    shift = timedelta(days=days)

    def moved(match: re.Match[str]) -> str:
        day = date(int(match[1]), int(match[2]), int(match[3])) + shift
        return day.isoformat()

    lines = []
    for line in text.splitlines(keepends=True):
        # Comment lines keep their text (they may quote the plan document's dates).
        lines.append(line if line.lstrip().startswith("#") else _DATE.sub(moved, line))
    return "".join(lines)


def moved_example(start: date, path: Path = EXAMPLE_PATH) -> str:
    """Return the reference campaign's TOML text moved so that its first phase starts on `start`.

    Every phase keeps its length and every deadline its distance from the start (calendar
    days; a deadline may so fall on a weekend, which the reminder rules handle as in any
    plan). Raises ExampleMissing when the file is not installed.
    """
    text = example_text(path)
    return move_dates(text, (start - first_day(text)).days)


def reference_text() -> str:
    """Return the reference campaign's plan file as packaged with duban (any installation)."""
    return files("bot.plan").joinpath("reference.toml").read_text(encoding="utf-8")


_KEY = re.compile(r'^(key\s*=\s*")stability-\d{4}(")', re.MULTILINE)


@dataclass(frozen=True)
class Example:
    """A generated example plan: its text and the plan it validates to."""

    text: str
    plan: Plan
    shift: timedelta


def example_plan(start: date) -> Example:
    """Return `duban plan example`'s file: the reference campaign starting on `start`.

    The dates move as in `moved_example` (every phase keeps its length); the campaign key
    names the new start's year (`stability-2026`), so that the dated original loaded beside
    it stays a campaign of its own; a header says what the file is. The result is validated
    as any plan is (raises `PlanInvalid` only for a start outside the years plans accept).
    """
    original = reference_text()
    shift = start - first_day(original)
    body = _KEY.sub(rf"\g<1>stability-{start.year}\g<2>", move_dates(original, shift.days), 1)
    header = (
        f"# Written by `duban plan example --start {start.isoformat()}`: the reference\n"
        f"# campaign (examples/campaign.toml) moved by {shift.days} days so that it starts on\n"
        f"# {start.isoformat()}. Edit it freely, or write your own plan (README: Plan files).\n\n"
    )
    text = header + body
    return Example(text, parse_plan(text, "example.toml"), shift)
