"""Count days left before, or overdue after, a deadline."""

from __future__ import annotations

from datetime import datetime


def days_overdue(due: datetime, now: datetime) -> int:
    """Return how many days (at least one) a deadline has passed."""
    return max(1, (now - due).days)


def days_left(due: datetime, now: datetime) -> int:
    """Return the whole days left before a deadline (0 on its last day)."""
    return max(0, (due - now).days)
