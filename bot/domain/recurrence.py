"""Recurring deliverables: the dates on which a `repeat` rule falls (SPEC §3).

A rule is weekly (`on` = weekday names), monthly (`on` = days of the month) or daily. A day
that does not exist in a month (31 in April) falls on that month's last day; with
`workdays_only` an occurrence on a non-working day moves to the working day before it (and
two occurrences that land on one day are one).
"""

from __future__ import annotations

import calendar as _stdcal
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from bot.domain.calendar import WorkCalendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY = ("day", "week", "month")
# More occurrences than this in one task is a mistake in the plan (a daily rule over years).
MAX_OCCURRENCES = 400


class RepeatError(ValueError):
    """A `repeat` rule that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Repeat:
    """A recurrence rule: `every` day/week/month, `on` weekdays (0 = Monday) or month days."""

    every: str
    on: tuple[int, ...] = ()

    @classmethod
    def parse(cls, every: object, on: object) -> Repeat:
        """Read `every` and `on` as written in a plan file.

        Raises RepeatError naming the wrong value.
        """
        if every not in EVERY:
            raise RepeatError(f"every must be one of {', '.join(EVERY)}, got {every!r}")
        items: list[object] = [] if on is None else on if isinstance(on, list) else [on]
        if every == "day":
            if items:
                raise RepeatError('a daily rule takes no "on"')
            return cls("day")
        if not items:
            raise RepeatError(f'a {every}ly rule needs "on"')
        days: list[int] = []
        for item in items:
            if every == "week":
                if not isinstance(item, str) or item.lower() not in WEEKDAYS:
                    raise RepeatError(f"on: {item!r} is not a weekday ({', '.join(WEEKDAYS)})")
                days.append(WEEKDAYS.index(item.lower()))
            else:
                if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 31:
                    raise RepeatError(f"on: {item!r} is not a day of the month (1-31)")
                days.append(item)
        return cls(every, tuple(sorted(set(days))))

    def dates(self, start: date, end: date, calendar: WorkCalendar | None = None) -> list[date]:
        """Return the occurrence dates between start and end (both included), in order.

        With a calendar, an occurrence on a non-working day moves to the working day before
        it (never before `start`: then it stays). Raises RepeatError past MAX_OCCURRENCES.
        """
        raw: Iterable[date]
        if self.every == "day":
            raw = _span(start, end)
        elif self.every == "week":
            raw = (d for d in _span(start, end) if d.weekday() in self.on)
        else:
            raw = _month_days(start, end, self.on)
        out: list[date] = []
        seen: set[date] = set()
        for day in raw:
            moved = day
            if calendar is not None:
                earlier = calendar.previous_working_day(day)
                moved = earlier if earlier >= start else day
            if moved not in seen:
                seen.add(moved)
                out.append(moved)
            if len(out) > MAX_OCCURRENCES:
                raise RepeatError(
                    f"more than {MAX_OCCURRENCES} occurrences between {start} and {end}"
                )
        return sorted(out)


def _span(start: date, end: date) -> Iterable[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def _month_days(start: date, end: date, on: tuple[int, ...]) -> Iterable[date]:
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        last = _stdcal.monthrange(year, month)[1]
        for day in sorted({min(d, last) for d in on}):
            found = date(year, month, day)
            if start <= found <= end:
                yield found
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
