"""Counters of failed attempts per account and per hour, each one row read by its key (O(1)).

A counter counts within a fixed window of `WINDOW` that starts at its first failure; the
next failure after the window ended starts a new one. Both reading and counting cost one
row by primary key, whatever the size of the audit log (issue 14 case 5).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m

WINDOW = timedelta(hours=1)


def account_key(kind: str, telegram_id: int) -> str:
    """Return the counter key of one Telegram account (a person, never a group)."""
    return f"{kind}:tg:{telegram_id}"


def overall_key(kind: str) -> str:
    """Return the counter key of all accounts together."""
    return f"{kind}:all"


async def count(session: AsyncSession, key: str, *, now: datetime) -> int:
    """Return the failures counted under `key` in its current window (0 if it has ended)."""
    row = (
        await session.execute(
            select(m.AttemptCounter.count, m.AttemptCounter.window_start).where(
                m.AttemptCounter.key == key
            )
        )
    ).first()
    if row is None:
        return 0
    counted, started = row
    if started <= now - WINDOW:
        return 0
    return int(counted)


async def bump(session: AsyncSession, key: str, *, now: datetime) -> tuple[int, datetime]:
    """Count one failure under `key`; return the new count and when its window started.

    One upsert, safe against the same write from another transaction or process.
    """
    column = m.AttemptCounter.window_start
    bind = session.get_bind()
    stamp = literal(now, type_=column.type)
    expired = column <= literal(now - WINDOW, type_=column.type)
    values = {"key": key, "window_start": now, "count": 1}
    changes = {
        "count": case((expired, 1), else_=m.AttemptCounter.count + 1),
        "window_start": case((expired, stamp), else_=column),
    }
    upsert: Any
    if bind.dialect.name == "postgresql":
        pg = pg_insert(m.AttemptCounter).values(values)
        upsert = pg.on_conflict_do_update(index_elements=[m.AttemptCounter.key], set_=changes)
    else:
        lite = sqlite_insert(m.AttemptCounter).values(values)
        upsert = lite.on_conflict_do_update(index_elements=[m.AttemptCounter.key], set_=changes)
    counted, started = (
        await session.execute(upsert.returning(m.AttemptCounter.count, column))
    ).one()
    if started.tzinfo is None:  # SQLite's RETURNING may bypass the column's decorator
        started = started.replace(tzinfo=now.tzinfo)
    return int(counted), started
