"""Dates typed by people, in the forms Chinese offices write them."""

from __future__ import annotations

from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.dates import parse_day

TODAY = date(2017, 5, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2017-05-20", (date(2017, 5, 20), None)),
        ("2017/5/20", (date(2017, 5, 20), None)),
        ("2017年5月20日", (date(2017, 5, 20), None)),
        ("5月20日", (date(2017, 5, 20), None)),
        ("５月２０日", (date(2017, 5, 20), None)),  # full-width digits
        ("5月20号 17:30", (date(2017, 5, 20), time(17, 30))),
        ("5/20 9:00", (date(2017, 5, 20), time(9, 0))),
        ("5月20日17点", (date(2017, 5, 20), time(17, 0))),
        ("4月2日", (date(2018, 4, 2), None)),  # already past this year: next year
        ("5月\u200b20日", (date(2017, 5, 20), None)),  # a zero-width space pasted in
    ],
)
def test_forms(text: str, expected: tuple[date, time | None]) -> None:
    assert parse_day(text, TODAY) == expected


@pytest.mark.parametrize("text", ["", "明天", "2月30日", "13月1日", "5月20日 25:00", "20170520x"])
def test_rejects(text: str) -> None:
    assert parse_day(text, TODAY) is None


@given(st.text(max_size=30))
def test_never_crashes(text: str) -> None:
    result = parse_day(text, TODAY)
    assert result is None or isinstance(result[0], date)
