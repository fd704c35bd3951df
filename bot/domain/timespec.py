"""Parse the duration and send-window strings used in plan files."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^([0-9]+)([smhdw])$")
_CLOCK = re.compile(r"^([0-9]{2}):([0-9]{2})$")


class TimespecError(ValueError):
    """A duration, clock time or window that cannot be read."""


@dataclass(frozen=True)
class Duration:
    """A span written as an amount and a unit; `d` and `w` may mean working days."""

    amount: int
    unit: str

    @property
    def seconds(self) -> int:
        """Return the length in seconds, counting days as calendar days."""
        return self.amount * _UNITS[self.unit]

    @property
    def is_days(self) -> bool:
        """Return whether the unit is days or weeks (subject to working-day counting)."""
        return self.unit in ("d", "w")

    @property
    def days(self) -> int:
        """Return the number of days of a day or week duration."""
        return self.amount * (7 if self.unit == "w" else 1)

    def to_timedelta(self) -> timedelta:
        """Return the calendar length."""
        return timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(text: str) -> Duration:
    """Read a duration such as `90s`, `10m`, `2h`, `3d` or `1w`."""
    if not isinstance(text, str):
        raise TimespecError('expected a string such as "3d"')
    match = _DURATION.match(text.strip())
    if match is None:
        raise TimespecError(
            f'not a duration: {text!r} (use a number and s, m, h, d or w, e.g. "3d")'
        )
    digits = match.group(1).lstrip("0") or "0"
    # Nine digits are more than a year in any unit; int() refuses over 4,300 of them anyway.
    if len(digits) > 8:
        raise TimespecError(f"duration longer than a year: {text!r}")
    amount = int(digits)
    if amount <= 0:
        raise TimespecError(f"duration must be positive: {text!r}")
    if amount * _UNITS[match.group(2)] > 366 * 86400:
        raise TimespecError(f"duration longer than a year: {text!r}")
    return Duration(amount, match.group(2))


def parse_clock(text: str, *, allow_24: bool = False) -> time | None:
    """Read `HH:MM`; `24:00` (when allowed) is returned as None, meaning end of day."""
    if not isinstance(text, str):
        raise TimespecError('expected a time such as "09:00"')
    match = _CLOCK.match(text.strip())
    if match is None:
        raise TimespecError(f'not a time of day: {text!r} (use HH:MM, e.g. "09:00")')
    hour, minute = int(match.group(1)), int(match.group(2))
    if allow_24 and hour == 24 and minute == 0:
        return None
    if hour > 23 or minute > 59:
        raise TimespecError(f"not a time of day: {text!r}")
    return time(hour, minute)


@dataclass(frozen=True)
class Window:
    """Local hours in which nudges may go out; both ends included."""

    start_minute: int
    end_minute: int  # 1440 means midnight at the end of the day

    @property
    def always(self) -> bool:
        """Return whether the window covers the whole day."""
        return self.start_minute == 0 and self.end_minute == 1440

    def contains(self, moment: time) -> bool:
        """Return whether a local time of day lies inside the window (ends included)."""
        minute = moment.hour * 60 + moment.minute
        if minute < self.start_minute:
            return False
        # A moment within the end minute is inside only at its first second.
        if minute == self.end_minute:
            return moment.second == 0 and moment.microsecond == 0
        return minute < self.end_minute

    def __str__(self) -> str:
        def fmt(minute: int) -> str:
            return f"{minute // 60:02d}:{minute % 60:02d}"

        return f"{fmt(self.start_minute)}-{fmt(self.end_minute)}"


def parse_window(text: str) -> Window:
    """Read a window such as `09:00-18:00`; `00:00-24:00` means always."""
    if not isinstance(text, str):
        raise TimespecError('expected a window such as "09:00-18:00"')
    parts = text.strip().split("-")
    if len(parts) != 2:
        raise TimespecError(f'not a window: {text!r} (use HH:MM-HH:MM, e.g. "09:00-18:00")')
    start = parse_clock(parts[0])
    end = parse_clock(parts[1], allow_24=True)
    assert start is not None
    start_minute = start.hour * 60 + start.minute
    end_minute = 1440 if end is None else end.hour * 60 + end.minute
    if end_minute <= start_minute:
        raise TimespecError(f"window ends before it starts: {text!r}")
    return Window(start_minute, end_minute)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_weekly(text: str) -> tuple[int, time]:
    """Read a weekly moment such as `mon 09:00` as (weekday 0-6, time)."""
    if not isinstance(text, str):
        raise TimespecError('expected a weekday and a time such as "mon 09:00"')
    parts = text.strip().lower().split()
    if len(parts) != 2 or parts[0] not in WEEKDAYS:
        raise TimespecError(f'not a weekly time: {text!r} (use e.g. "mon 09:00")')
    clock = parse_clock(parts[1])
    assert clock is not None
    return WEEKDAYS.index(parts[0]), clock
