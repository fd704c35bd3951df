"""Write push messages to the outbox, in the caller's transaction, exactly once per key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m

# Payload methods the sender knows how to deliver.
METHODS = ("sendMessage", "copyMessage", "sendDocument", "sendPhoto")


def message(text: str, buttons: list[list[dict[str, str]]] | None = None) -> dict[str, Any]:
    """Return a sendMessage payload (HTML) with optional inline buttons.

    `buttons` is rows of {"text": ..., "callback_data": ...} (or "url").
    """
    payload: dict[str, Any] = {
        "method": "sendMessage",
        "text": text,
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
    }
    if buttons:
        payload["reply_markup"] = {"inline_keyboard": buttons}
    return payload


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    chat_id: int,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
    person_id: int | None = None,
    campaign_id: int | None = None,
    assignment_id: int | None = None,
    planned_due_at: datetime | None = None,
    not_before: datetime | None = None,
) -> bool:
    """Add one outbox row unless a row with this key exists; return whether it was added.

    The key names what the message is for (e.g. `nudge:<assignment>:<stage>:<due>:<person>`),
    so planning the same thing twice, in any process, inserts it once.
    """
    if payload.get("method") not in METHODS:
        raise ValueError(f"unknown outbox method {payload.get('method')!r}")
    values = {
        "key": key,
        "campaign_id": campaign_id,
        "person_id": person_id,
        "chat_id": chat_id,
        "kind": kind,
        "payload": payload,
        "status": "pending",
        "not_before": not_before or now,
        "attempts": 0,
        "assignment_id": assignment_id,
        "planned_due_at": planned_due_at,
        "created_at": now,
    }
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    stmt: Any
    if dialect == "postgresql":
        stmt = (
            postgresql.insert(m.Outbox)
            .values(values)
            .on_conflict_do_nothing(index_elements=["key"])
        )
    elif dialect == "sqlite":
        stmt = sqlite.insert(m.Outbox).values(values).on_conflict_do_nothing(index_elements=["key"])
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        stmt = insert(m.Outbox).values(values)
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))
