"""Assignment states: which are open, when one is overdue or late, and when reminders restart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.assignments import (
    ACCEPTED,
    DONE,
    OPEN,
    PENDING,
    RETURNED,
    STATUSES,
    SUBMITTABLE,
    SUBMITTED,
    change_status,
    check_after_change,
    is_late,
    is_open,
    is_overdue,
    move_deadline,
)

NOW = datetime(2026, 5, 10, 10, 0, tzinfo=UTC)


@dataclass
class Row:
    status: str
    due_at: datetime
    due_set_at: datetime
    next_check_at: datetime | None
    updated_at: datetime


def row(status: str = PENDING) -> Row:
    before = NOW - timedelta(days=3)
    return Row(status, NOW + timedelta(days=1), before, before, before)


def test_every_status_is_open_or_done_and_never_both() -> None:
    assert set(OPEN) | set(DONE) == set(STATUSES)
    assert not set(OPEN) & set(DONE)
    assert set(SUBMITTABLE) == {PENDING, RETURNED, SUBMITTED}


@pytest.mark.parametrize("status", STATUSES)
def test_overdue_only_when_open_and_past_due(status: str) -> None:
    past, future = NOW - timedelta(seconds=1), NOW + timedelta(seconds=1)
    assert is_overdue(status, past, NOW) is is_open(status)
    assert is_overdue(status, future, NOW) is False
    assert is_overdue(status, NOW, NOW) is False  # due this very moment: not yet overdue


def test_late_means_after_the_due_moment() -> None:
    assert is_late(NOW, NOW + timedelta(seconds=1))
    assert not is_late(NOW, NOW)


@pytest.mark.parametrize(
    ("status", "check"), [(PENDING, NOW), (RETURNED, NOW), (SUBMITTED, None), (ACCEPTED, None)]
)
def test_reminders_restart_when_open_and_stop_when_handed_in(
    status: str, check: datetime | None
) -> None:
    assert check_after_change(status, NOW) == check
    item = row(SUBMITTED if status in OPEN else PENDING)
    change_status(item, status, NOW)
    assert (item.status, item.next_check_at, item.updated_at) == (status, check, NOW)


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="done"):
        change_status(row(), "done", NOW)


def test_a_moved_deadline_restarts_reminders_from_now() -> None:
    item = row(RETURNED)
    later = NOW + timedelta(days=5)
    move_deadline(item, later, NOW)
    assert (item.due_at, item.due_set_at, item.next_check_at, item.updated_at) == (
        later,
        NOW,
        NOW,
        NOW,
    )
