"""Read a deadline typed in the chat: a date and time, or relative (`24小时内`, `3个工作日内`).

Relative forms (SPEC §4.6), with Arabic, full-width or Chinese numerals (`三天内`, `两个工作日内`):

- `N小时内` / `N hours`: exactly N hours from now;
- `N天内` / `N日内` / `N days`: the N-th calendar day after today, at the campaign's due time;
- `N个工作日内` / `N working days`: the N-th working day after today (by the campaign's
  calendar: weekends, public holidays, 调休), at the campaign's due time.

A date (`5月20日 17:00`, `2017-05-20`) without a time takes the campaign's due time.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.calendar import WorkCalendar
from bot.domain.dates import parse_day

# The longest relative deadline accepted: a year, in each unit.
MAX_HOURS = 366 * 24
MAX_DAYS = 366
MAX_WORKDAYS = 260

_RELATIVE = re.compile(
    r"^(?:在|于)?\s*(?P<n>[0-9零〇一二两三四五六七八九十百千万]+)\s*"
    r"(?P<unit>个?小时|个?钟头|天|日|个?工作日|h|hours?|d|days?|working\s*days?|workdays?|wd)"
    r"\s*(?:内|之内|以内)?$",
    re.IGNORECASE,
)
_EN_PREFIX = re.compile(r"^(?:within|in)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Relative:
    """A relative deadline: an amount of hours, calendar days or working days."""

    amount: int
    unit: str  # hours | days | workdays


def _clean(text: str) -> str:
    cleaned = unicodedata.normalize("NFKC", text).strip()
    return "".join(ch for ch in cleaned if unicodedata.category(ch) != "Cf")


def _number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    import cn2an  # 4 MB of tables: loaded when a notice is first read, not by `duban run`

    try:
        # cn2an reads 二 but not 两 (两天, 两个工作日) in its strict mode.
        value = cn2an.cn2an(text.replace("两", "二"), "strict")
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return int(value) if float(value).is_integer() else None


def parse_relative(text: str) -> Relative | None:
    """Return the relative deadline a text names, or None if it names none."""
    cleaned = _EN_PREFIX.sub("", _clean(text)).strip()
    match = _RELATIVE.match(cleaned)
    if match is None:
        return None
    amount = _number(match["n"])
    if amount is None or amount <= 0:
        return None
    word = match["unit"].lower()
    if "工作日" in word or word.startswith(("working", "workday", "wd")):
        unit, limit = "workdays", MAX_WORKDAYS
    elif "时" in word or "钟头" in word or word.startswith("h"):
        unit, limit = "hours", MAX_HOURS
    else:
        unit, limit = "days", MAX_DAYS
    if amount > limit:
        return None
    return Relative(amount, unit)


def _at(day: date, clock: time | None, zone: ZoneInfo) -> datetime:
    """Return the aware moment of a local day at a time (None: the end of that day)."""
    if clock is None:
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return datetime.combine(day, clock, tzinfo=zone)


def due_clock(due_time: str) -> time | None:
    """Return a campaign's `due_time` (`HH:MM`) as a time; `24:00` is None (end of day)."""
    hour, minute = (int(x) for x in due_time.split(":"))
    return None if hour == 24 else time(hour, minute)


def resolve_deadline(
    text: str, *, now: datetime, timezone: str, due_time: str, calendar: WorkCalendar
) -> datetime | None:
    """Return the deadline a person typed, as an aware UTC moment, or None if unreadable.

    `now` is aware; `timezone` and `due_time` are the campaign's; working days come from
    `calendar`. Whether the moment is in the future or inside the campaign is the caller's
    rule to check.
    """
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    today = local_now.date()
    clock = due_clock(due_time)
    relative = parse_relative(text)
    if relative is not None:
        if relative.unit == "hours":
            return (now + timedelta(hours=relative.amount)).astimezone(UTC)
        if relative.unit == "days":
            day = today + timedelta(days=relative.amount)
        else:
            day = calendar.add_working_days(today, relative.amount)
        return _at(day, clock, zone).astimezone(UTC)
    found = parse_day(_clean(text), today)
    if found is None:
        return None
    day, typed = found
    return _at(day, typed if typed is not None else clock, zone).astimezone(UTC)
