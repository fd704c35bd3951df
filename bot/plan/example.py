"""The reference campaign (SPEC §1) moved to start on a given day: the quick start's plan.

`examples/campaign.toml` keeps the 2017 dates of the plan document; a campaign run today
would be years overdue. `moved_example(start)` returns the same file with every date moved
by the same number of days, so each phase keeps its length and each deadline its place in
its phase. Used by `duban run --sandbox` (and meant for `duban plan example`).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, timedelta
from pathlib import Path

from bot.errors import DubanError

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
