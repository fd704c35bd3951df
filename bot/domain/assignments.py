"""Assignment states, when reminders run for one, and when it is overdue (SPEC §4).

An assignment is what a unit owes for one task. Its status is one of:

- `pending`: nothing handed in yet;
- `submitted`: a version was handed in and waits for the office's review;
- `returned`: the office sent the last version back with a reason;
- `accepted`: the office accepted it (or marked it received outside the bot).

Open statuses (`pending`, `returned`) are the owed ones: reminders run for them, and one is
overdue once its effective due moment has passed. Done statuses (`submitted`, `accepted`)
count as handed in. The SQL form of "open" and "overdue" is `bot.db.assignment_states`,
built from these same tuples.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

PENDING = "pending"
SUBMITTED = "submitted"
RETURNED = "returned"
ACCEPTED = "accepted"
STATUSES = (PENDING, SUBMITTED, RETURNED, ACCEPTED)

# Owed: reminders run, overdue after the due moment; an extension may be asked for.
OPEN = (PENDING, RETURNED)
# Handed in (waiting for review or accepted).
DONE = (SUBMITTED, ACCEPTED)
# A new version may be handed in (a submitted one may be replaced before review).
SUBMITTABLE = (PENDING, RETURNED, SUBMITTED)


class Tracked(Protocol):
    """The fields of an assignment that its state changes touch (the ORM row has them)."""

    status: str
    due_at: datetime
    due_set_at: datetime
    next_check_at: datetime | None
    updated_at: datetime


def is_open(status: str) -> bool:
    """Return whether an assignment in this status is still owed (reminders run)."""
    return status in OPEN


def is_overdue(status: str, due_at: datetime, now: datetime) -> bool:
    """Return whether an assignment is overdue at `now`: open and past its due moment."""
    return status in OPEN and due_at < now


def is_late(due_at: datetime, handed_in_at: datetime) -> bool:
    """Return whether a version handed in at `handed_in_at` is late: after the due moment in
    effect at that moment (SPEC §4.4)."""
    return handed_in_at > due_at


def check_after_change(status: str, now: datetime) -> datetime | None:
    """Return when the reminder planner next looks at an assignment just changed to `status`.

    The restart rule: an assignment that is (again) open is looked at `now`, so that its
    reminders resume from this moment; one that is handed in gets no look (None) until a
    change opens it again. (The planner itself also drops rows that are not open.)
    """
    return now if status in OPEN else None


def change_status(assignment: Tracked, status: str, now: datetime) -> None:
    """Move an assignment to `status` at `now`, restarting or stopping its reminders.

    Raises ValueError for a status that is not one of STATUSES.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown assignment status {status!r}")
    assignment.status = status
    assignment.updated_at = now
    assignment.next_check_at = check_after_change(status, now)


def deadline_fields(due_at: datetime, now: datetime) -> dict[str, datetime]:
    """Return the fields (column name -> value) that give an assignment a new due moment.

    Its reminders restart: the planner looks at it `now`, and stages planned before `now`
    (for the old deadline) are not sent (`due_set_at`, read by `bot.domain.reminders`).
    Bulk updates (plan load) use this dict; `move_deadline` applies it to one row.
    """
    return {"due_at": due_at, "due_set_at": now, "next_check_at": now, "updated_at": now}


def move_deadline(assignment: Tracked, due_at: datetime, now: datetime) -> None:
    """Give one assignment a new effective due moment at `now` (see `deadline_fields`)."""
    for name, value in deadline_fields(due_at, now).items():
        setattr(assignment, name, value)
