"""Durations, clock times and windows: examples and properties."""

from __future__ import annotations

from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.timespec import (
    TimespecError,
    parse_duration,
    parse_weekly,
    parse_window,
)

SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("2h", 7200), ("3d", 259200), ("1w", 604800)],
)
def test_duration_examples(text: str, seconds: int) -> None:
    duration = parse_duration(text)
    assert duration.seconds == seconds
    assert str(duration) == text


@pytest.mark.parametrize("text", ["", "3", "d", "3 days", "-1d", "0d", "1.5h", "3D", "1y", "400d"])
def test_duration_rejects(text: str) -> None:
    with pytest.raises(TimespecError):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=52), st.sampled_from(list(SECONDS)))
def test_duration_round_trips(amount: int, unit: str) -> None:
    text = f"{amount}{unit}"
    if amount * SECONDS[unit] > 366 * 86400:
        with pytest.raises(TimespecError):
            parse_duration(text)
        return
    duration = parse_duration(text)
    assert duration.seconds == amount * SECONDS[unit]
    assert parse_duration(str(duration)) == duration
    assert duration.to_timedelta().total_seconds() == duration.seconds


@given(st.text(max_size=12))
def test_duration_never_crashes(text: str) -> None:
    try:
        duration = parse_duration(text)
    except TimespecError:
        return
    assert duration.seconds > 0


def test_window_examples() -> None:
    window = parse_window("09:00-18:00")
    assert window.contains(time(9, 0))
    assert window.contains(time(18, 0))  # both ends included
    assert not window.contains(time(18, 0, 1))
    assert not window.contains(time(8, 59, 59))
    assert parse_window("00:00-24:00").always
    assert str(window) == "09:00-18:00"


@pytest.mark.parametrize(
    "text", ["", "9-18", "09:00", "18:00-09:00", "09:00-09:00", "09:00-24:01", "24:00-24:00", "a-b"]
)
def test_window_rejects(text: str) -> None:
    with pytest.raises(TimespecError):
        parse_window(text)


clock = st.integers(min_value=0, max_value=1440)


@given(clock, clock, st.integers(min_value=0, max_value=1439))
def test_window_contains_exactly_its_minutes(start: int, end: int, probe: int) -> None:
    def fmt(minute: int) -> str:
        return f"{minute // 60:02d}:{minute % 60:02d}"

    text = f"{fmt(start)}-{fmt(end)}"
    if start >= end or start == 1440:
        with pytest.raises(TimespecError):
            parse_window(text)
        return
    window = parse_window(text)
    assert str(window) == text
    assert window.contains(time(probe // 60, probe % 60)) == (start <= probe <= end)


def test_weekly() -> None:
    assert parse_weekly("mon 09:00") == (0, time(9, 0))
    assert parse_weekly("Sun 18:30") == (6, time(18, 30))
    for bad in ("monday 09:00", "mon", "mon 9", "xyz 09:00"):
        with pytest.raises(TimespecError):
            parse_weekly(bad)
