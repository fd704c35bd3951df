"""Deadlines typed in the chat (`24小时内`, `3天内`, `3个工作日内`, dates), property-tested."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import cn2an
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.calendar import WorkCalendar
from bot.domain.deadline_text import (
    MAX_DAYS,
    MAX_HOURS,
    MAX_WORKDAYS,
    Relative,
    parse_relative,
    resolve_deadline,
)
from tests.reliability import record

ZONE = "Asia/Shanghai"
CAL = WorkCalendar("CN", frozenset(), frozenset())
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

moments = st.datetimes(
    min_value=datetime(2018, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


def spellings(n: int) -> list[str]:
    """Return the ways a person writes the number n."""
    chinese = cn2an.an2cn(n)
    ways = [str(n), str(n).translate(FULL_WIDTH), chinese]
    if n == 2:
        ways.append("两")
    return ways


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, MAX_HOURS), st.sampled_from(["{}小时内", "{}个小时内", "{}小时", "in {} hours"])
)
def test_hours_in_every_form(n: int, form: str) -> None:
    for number in spellings(n) if "in" not in form else [str(n)]:
        assert parse_relative(form.format(number)) == Relative(n, "hours"), form.format(number)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, MAX_DAYS), st.sampled_from(["{}天内", "{}日内", "{}天", "{}天以内"]))
def test_days_in_every_form(n: int, form: str) -> None:
    for number in spellings(n):
        assert parse_relative(form.format(number)) == Relative(n, "days"), form.format(number)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, MAX_WORKDAYS),
    st.sampled_from(["{}个工作日内", "{}工作日内", "{}个工作日", "{} working days"]),
)
def test_working_days_in_every_form(n: int, form: str) -> None:
    for number in spellings(n) if "working" not in form else [str(n)]:
        assert parse_relative(form.format(number)) == Relative(n, "workdays"), form.format(number)


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(1, 500))
def test_hours_are_exact(now: datetime, n: int) -> None:
    due = resolve_deadline(f"{n}小时内", now=now, timezone=ZONE, due_time="18:00", calendar=CAL)
    assert due == now + timedelta(hours=n)


@settings(max_examples=200, deadline=None)
@given(moments, st.integers(1, 60), st.sampled_from(["17:00", "18:00", "09:30"]))
def test_days_end_at_the_due_time_n_days_on(now: datetime, n: int, due_time: str) -> None:
    due = resolve_deadline(f"{n}天内", now=now, timezone=ZONE, due_time=due_time, calendar=CAL)
    assert due is not None and due.tzinfo is not None
    local, today = due.astimezone(ZoneInfo(ZONE)), now.astimezone(ZoneInfo(ZONE)).date()
    assert local.date() == today + timedelta(days=n)
    assert local.time() == time.fromisoformat(due_time)


@settings(max_examples=150, deadline=None)
@given(moments, st.integers(1, 30))
def test_working_days_count_only_working_days(now: datetime, n: int) -> None:
    due = resolve_deadline(f"{n}个工作日内", now=now, timezone=ZONE, due_time="18:00", calendar=CAL)
    assert due is not None
    local = due.astimezone(ZoneInfo(ZONE))
    today = now.astimezone(ZoneInfo(ZONE)).date()
    assert local.time() == time(18, 0) and CAL.is_working_day(local.date())
    between = [today + timedelta(days=i) for i in range(1, (local.date() - today).days + 1)]
    assert sum(CAL.is_working_day(d) for d in between) == n


def test_working_days_skip_the_national_holiday() -> None:
    # Monday 2024-09-30, 10:00: 1 October to 7 October are off, and Sunday 29 September and
    # Saturday 12 October are make-up working days (调休).
    now = datetime(2024, 9, 30, 2, 0, tzinfo=UTC)
    due = resolve_deadline("3个工作日内", now=now, timezone=ZONE, due_time="18:00", calendar=CAL)
    assert due == datetime(2024, 10, 10, 10, 0, tzinfo=UTC)
    due = resolve_deadline("两个工作日内", now=now, timezone=ZONE, due_time="18:00", calendar=CAL)
    assert due == datetime(2024, 10, 9, 10, 0, tzinfo=UTC)


def test_dates_with_and_without_a_time() -> None:
    now = datetime(2017, 5, 8, 2, 0, tzinfo=UTC)
    kw = {"now": now, "timezone": ZONE, "due_time": "18:00", "calendar": CAL}
    assert resolve_deadline("5月20日 17:00", **kw) == datetime(2017, 5, 20, 9, 0, tzinfo=UTC)
    assert resolve_deadline("５月２０日", **kw) == datetime(2017, 5, 20, 10, 0, tzinfo=UTC)
    assert resolve_deadline("2017-05-20 17:00", **kw) == datetime(2017, 5, 20, 9, 0, tzinfo=UTC)
    assert resolve_deadline("2017-05-20", **{**kw, "due_time": "24:00"}) == datetime(
        2017, 5, 20, 16, 0, tzinfo=UTC
    )
    for nonsense in ("", "下周吧", "0天内", "-3天内", "3.5天内", "1000个工作日内", "十万小时内"):
        assert resolve_deadline(nonsense, **kw) is None, nonsense


def test_any_text_is_read_or_refused_never_raises() -> None:
    seen = 0

    @settings(max_examples=500, deadline=None)
    @given(st.text(max_size=40), moments)
    def run(text: str, now: datetime) -> None:
        nonlocal seen
        seen += 1
        due = resolve_deadline(text, now=now, timezone=ZONE, due_time="18:00", calendar=CAL)
        assert due is None or due.tzinfo is not None

    run()
    record("bad input", "typed deadlines (random text)", seen, "read or refused, never raised")


def test_same_day_relative_forms_agree() -> None:
    now = datetime(2017, 5, 8, 2, 0, tzinfo=UTC)
    kw = {"now": now, "timezone": ZONE, "due_time": "18:00", "calendar": CAL}
    assert resolve_deadline("24小时内", **kw) == resolve_deadline("二十四小时内", **kw)
    assert resolve_deadline("3天内", **kw) == resolve_deadline("三天内", **kw)
    assert resolve_deadline("1天内", **kw) == datetime.combine(
        date(2017, 5, 9), time(18, 0), tzinfo=ZoneInfo(ZONE)
    )
