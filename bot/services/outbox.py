"""Write push messages to the outbox, in the caller's transaction, exactly once per key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m

# Payload methods the sender knows how to deliver.
METHODS = (
    "sendMessage",
    "copyMessage",
    "sendDocument",
    "sendPhoto",
    "sendVideo",
    "sendAudio",
    "sendVoice",
)


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


def file_message(
    kind: str,
    file_id: str,
    caption: str | None = None,
    buttons: list[list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """Return the payload that sends a file Telegram already has (its `file_id`) again.

    `kind` is the file's kind as Telegram gave it (document, photo, video, audio, voice): the
    method is `send<Kind>` and the file goes in the field of that name. The caption is HTML.
    """
    payload: dict[str, Any] = {"method": f"send{kind.capitalize()}", kind: file_id}
    if caption:
        payload |= {"caption": caption, "parse_mode": "HTML"}
    if buttons:
        payload["reply_markup"] = {"inline_keyboard": buttons}
    return payload


@dataclass(frozen=True)
class Outgoing:
    """One message for `enqueue_many`: the arguments of `enqueue`, without `now`."""

    key: str
    chat_id: int
    kind: str
    payload: dict[str, Any]
    person_id: int | None = None
    campaign_id: int | None = None
    assignment_id: int | None = None
    planned_due_at: datetime | None = None
    not_before: datetime | None = None


def _values(item: Outgoing, now: datetime) -> dict[str, Any]:
    if item.payload.get("method") not in METHODS:
        raise ValueError(f"unknown outbox method {item.payload.get('method')!r}")
    return {
        "key": item.key,
        "campaign_id": item.campaign_id,
        "person_id": item.person_id,
        "chat_id": item.chat_id,
        "kind": item.kind,
        "payload": item.payload,
        "status": "pending",
        "not_before": item.not_before or now,
        "attempts": 0,
        "assignment_id": item.assignment_id,
        "planned_due_at": item.planned_due_at,
        "created_at": now,
    }


async def _insert_new(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose key is new; return how many were added."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(m.Outbox).on_conflict_do_nothing(index_elements=["key"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(m.Outbox).on_conflict_do_nothing(index_elements=["key"])
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        stmt = insert(m.Outbox)
    if len(rows) == 1:
        result = await session.execute(stmt.values(rows[0]))
        return int(getattr(result, "rowcount", 0) or 0)
    # One statement compiled once for many rows (SQLAlchemy sends them as multi-row
    # INSERTs); RETURNING counts the rows a conflict did not skip, on both databases.
    returned = await session.execute(stmt.returning(m.Outbox.id), rows)
    return len(returned.all())


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
    item = Outgoing(
        key,
        chat_id,
        kind,
        payload,
        person_id,
        campaign_id,
        assignment_id,
        planned_due_at,
        not_before,
    )
    return bool(await _insert_new(session, [_values(item, now)]))


async def enqueue_many(session: AsyncSession, items: Iterable[Outgoing], *, now: datetime) -> int:
    """Add many outbox rows as `enqueue` does, in few statements; return how many were new.

    For the reminder planner, whose ticks may write thousands of nudges at once.
    """
    rows = [_values(item, now) for item in items]
    return await _insert_new(session, rows) if rows else 0
