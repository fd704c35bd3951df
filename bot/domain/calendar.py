"""Decide which days are working days: public holidays, 调休 make-up days, extras."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

import holidays


class UnknownCountry(ValueError):
    """The holiday data knows no such country code."""


def _country_holidays(country: str, years: Iterable[int]) -> Any:
    try:
        return holidays.country_holidays(country.upper(), years=list(years))
    except NotImplementedError as exc:
        raise UnknownCountry(country) from exc


def decreed_years(country: str) -> frozenset[int] | None:
    """Return the years whose adjusted working days are known, or None if the country has none.

    Countries such as China decree their make-up working days (调休) year by year;
    the `holidays` package keeps them in a `<Country>StaticHolidays` class.
    """
    cls = type(_country_holidays(country, []))
    module = sys.modules[cls.__module__]
    # The alias class (CN) subclasses the named one (China), which names the static data.
    static = None
    for klass in cls.__mro__:
        static = getattr(module, f"{klass.__name__}StaticHolidays", None)
        if static is not None:
            break
    if static is None:
        return None
    years = getattr(static, "special_public_holidays", None) or {}
    # Substitutions are stored as (month, day, from_month, from_day); other countries keep
    # one-off holidays there, which say nothing about decreed working days.
    decreed = frozenset(int(year) for year, entries in years.items() if _has_substitution(entries))
    return decreed or None


def _has_substitution(entries: Any) -> bool:
    items = (
        entries
        if isinstance(entries, tuple) and entries and isinstance(entries[0], tuple)
        else (entries,)
    )
    return any(
        isinstance(item, tuple) and len(item) == 4 and all(isinstance(x, int) for x in item)
        for item in items
    )


@dataclass(frozen=True)
class WorkCalendar:
    """Working days of one campaign: the country's calendar plus the plan's extras."""

    country: str | None = "CN"
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    @cached_property
    def _cache(self) -> dict[int, Any]:
        return {}

    def _year(self, year: int) -> Any:
        cache = self._cache
        if year not in cache:
            cache[year] = None if self.country is None else _country_holidays(self.country, [year])
        return cache[year]

    def is_working_day(self, day: date) -> bool:
        """Return whether people work on this day."""
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        data = self._year(day.year)
        if data is None:
            return day.weekday() < 5
        return bool(data.is_working_day(day))

    def holiday_name(self, day: date) -> str | None:
        """Return the public holiday's name on this day, if any."""
        if day in self.extra_holidays:
            return "extra holiday"
        data = self._year(day.year)
        if data is None:
            return None
        name = data.get(day)
        return None if name is None else str(name)

    def next_working_day(self, day: date) -> date:
        """Return this day if it is a working day, else the next one."""
        for _ in range(400):
            if self.is_working_day(day):
                return day
            day += timedelta(days=1)
        raise ValueError("no working day within a year")

    def previous_working_day(self, day: date) -> date:
        """Return this day if it is a working day, else the last one before it."""
        for _ in range(400):
            if self.is_working_day(day):
                return day
            day -= timedelta(days=1)
        raise ValueError("no working day within a year")

    def add_working_days(self, day: date, count: int) -> date:
        """Return the day that lies `count` working days after `day`."""
        while count > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count -= 1
        return day

    def years_without_data(self, years: Iterable[int]) -> list[int]:
        """Return those years for which the adjusted working days are not known."""
        if self.country is None:
            return []
        known = decreed_years(self.country)
        if known is None:
            return []
        return sorted({year for year in years if year not in known})
