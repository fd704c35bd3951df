"""The SQL forms of `bot.domain.assignments`: "open" and "overdue" as column expressions.

Every query that counts or filters open or overdue assignments uses these, so that the SQL
and the Python rule (`bot.domain.assignments.is_overdue`) cannot drift apart. Both read the
(campaign, status, due) index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_

from bot.db import models as m
from bot.domain.assignments import OPEN


def is_open(status: Any = m.Assignment.status) -> ColumnElement[bool]:
    """Return `status` (default `assignments.status`) in the open statuses (owed)."""
    return status.in_(OPEN)  # type: ignore[no-any-return]


def is_overdue(
    now: datetime, status: Any = m.Assignment.status, due_at: Any = m.Assignment.due_at
) -> ColumnElement[bool]:
    """Return "open and past its effective due moment at `now`" (default: `assignments`).

    `status` and `due_at` may be the columns of another table keeping assignments' states
    (the kept counts per task, status and due moment).
    """
    return and_(status.in_(OPEN), due_at < now)
