"""Small facts kept across runs (the `settings` table), written safely by any process."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m


async def put_setting(session: AsyncSession, key: str, value: str, *, now: datetime) -> None:
    """Insert or replace one setting in one statement (an upsert).

    Safe against the same write from another process at the same moment: several `duban run`
    starting together all write the bot's username (issue 14 case 7).
    """
    bind = session.get_bind()
    insert: Any = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
    statement = insert(m.Setting).values(key=key, value=value, updated_at=now)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[m.Setting.key],
            set_={"value": statement.excluded.value, "updated_at": now},
            where=m.Setting.value != statement.excluded.value,
        )
    )
