"""Working days: Chinese public holidays, 调休 make-up days, and the plan's extras."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.domain.calendar import WorkCalendar
from bot.plan import parse_plan

CN = WorkCalendar("CN")


def test_may_day_2017() -> None:
    # 2017: 4月29日–5月1日 off (Sat–Mon); no make-up day.
    assert not CN.is_working_day(date(2017, 4, 29))
    assert not CN.is_working_day(date(2017, 5, 1))
    assert CN.is_working_day(date(2017, 5, 2))
    assert CN.next_working_day(date(2017, 4, 29)) == date(2017, 5, 2)


def test_dragon_boat_2017_with_make_up_saturday() -> None:
    # 5月28日–30日 off; Saturday 5月27日 is a working day (调休).
    assert CN.is_working_day(date(2017, 5, 27))
    assert not CN.is_working_day(date(2017, 5, 29))
    assert not CN.is_working_day(date(2017, 5, 30))
    assert CN.is_working_day(date(2017, 5, 31))


def test_national_day_2026_and_its_make_up_saturday() -> None:
    for day in range(1, 8):
        assert not CN.is_working_day(date(2026, 10, day)), day
    assert CN.is_working_day(date(2026, 9, 20))  # Sunday make-up day
    assert CN.is_working_day(date(2026, 10, 10))  # Saturday make-up day
    assert not CN.is_working_day(date(2026, 10, 11))  # an ordinary Sunday
    assert CN.add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert CN.previous_working_day(date(2026, 10, 7)) == date(2026, 9, 30)


def test_extras_win_over_the_country_data() -> None:
    cal = WorkCalendar(
        "CN",
        extra_holidays=frozenset({date(2026, 11, 25)}),
        extra_workdays=frozenset({date(2026, 11, 28)}),
    )
    assert not cal.is_working_day(date(2026, 11, 25))
    assert cal.is_working_day(date(2026, 11, 28))


def test_no_country_means_weekends_only() -> None:
    cal = WorkCalendar(None)
    assert cal.is_working_day(date(2026, 10, 1))
    assert not cal.is_working_day(date(2026, 10, 3))


def test_years_without_decreed_days() -> None:
    assert CN.years_without_data([2017, 2026]) == []
    assert CN.years_without_data([2026, 2027, 2030]) == [2027, 2030]
    assert WorkCalendar("DE").years_without_data([2030]) == []


@pytest.mark.parametrize("year", [2027])
def test_plan_check_warns_for_a_year_without_data(year: int) -> None:
    text = (Path(__file__).parent / "plans" / "base.toml").read_text(encoding="utf-8")
    text = text.replace("2017-", f"{year}-")
    plan = parse_plan(text, "future.toml")
    assert len(plan.warnings) == 1
    assert str(year) in plan.warnings[0]
    assert "calendar.country" in plan.warnings[0]
