"""The outbox: one row per key, whatever happens twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from bot.db import models as m
from bot.db.engine import Database
from bot.services.outbox import Outgoing, enqueue, enqueue_many, message

NOW = datetime(2017, 5, 1, 2, 0, tzinfo=UTC)


async def test_same_key_is_inserted_once(db: Database) -> None:
    for _ in range(2):
        async with db.write() as session:
            added = await enqueue(
                session,
                key="nudge:1:due:1494410400:7",
                chat_id=7,
                kind="nudge",
                payload=message("<b>提醒</b>"),
                now=NOW,
            )
    assert added is False  # the second time
    async with db.read() as session:
        rows = list(await session.scalars(select(m.Outbox)))
    assert len(rows) == 1
    assert rows[0].payload["text"] == "<b>提醒</b>"
    assert rows[0].not_before == NOW and rows[0].status == "pending"


async def test_unknown_method_is_refused(db: Database) -> None:
    async with db.write() as session:
        with pytest.raises(ValueError):
            await enqueue(session, key="k", chat_id=1, kind="x", payload={"method": "ban"}, now=NOW)
        count = await session.scalar(select(func.count()).select_from(m.Outbox))
    assert count == 0


async def test_many_rows_at_once_skip_existing_keys(db: Database) -> None:
    items = [
        Outgoing(key=f"nudge:{i}", chat_id=i, kind="nudge", payload=message(f"#{i}"))
        for i in range(1500)
    ]
    async with db.write() as session:
        assert await enqueue_many(session, items[:400], now=NOW) == 400
    async with db.write() as session:
        assert await enqueue_many(session, items, now=NOW) == 1100
        assert await enqueue_many(session, [], now=NOW) == 0
    async with db.read() as session:
        rows = list(await session.scalars(select(m.Outbox).order_by(m.Outbox.id)))
    assert [r.key for r in rows] == [f"nudge:{i}" for i in range(1500)]
    assert rows[-1].payload["text"] == "#1499" and rows[-1].not_before == NOW
