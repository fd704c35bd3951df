"""Albums: several files sent at once (one `media_group_id`) become one version.

Telegram delivers each part of an album as its own update, a few milliseconds apart, and in
webhook mode with several processes the parts may reach different processes. So the parts
are gathered in the database, never in process memory (SPEC §4.4):

1. each part is stored (`album_parts`, one row per message, a repeat is ignored);
2. the one confirm prompt is an outbox row keyed by the album, sent after a quiet moment
   (`QUIET`): every part re-writes its payload to name all parts stored so far and pushes the
   moment back, under the row's lock, so the last part's writer names them all;
3. a part that arrives after the prompt went out queues a new prompt naming every part;
4. the contact's confirm takes every part of the album as one version, with the caption.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.services.outbox import enqueue
from bot.services.submissions import Content, FileRef

# How long after the last part the confirm prompt goes out. Telegram delivers an album's
# parts within a fraction of a second; the prompt waits for the last one.
QUIET = timedelta(seconds=2)


def prompt_key(chat_id: int, media_group_id: str) -> str:
    """Return the outbox key of an album's confirm prompt."""
    return f"album:{chat_id}:{media_group_id}"


async def add_part(
    session: AsyncSession,
    *,
    chat_id: int,
    media_group_id: str,
    message_id: int,
    file: FileRef,
    caption: str | None,
    now: datetime,
) -> None:
    """Store one part of an album (a part delivered twice is stored once)."""
    values = {
        "chat_id": chat_id,
        "media_group_id": media_group_id,
        "message_id": message_id,
        "content": {"file": file.to_json(), "caption": caption},
        "received_at": now,
    }
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(m.AlbumPart).on_conflict_do_nothing(
            index_elements=["chat_id", "message_id"]
        )
    elif dialect == "sqlite":
        stmt = sqlite.insert(m.AlbumPart).on_conflict_do_nothing(
            index_elements=["chat_id", "message_id"]
        )
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        stmt = insert(m.AlbumPart)
    await session.execute(stmt.values(values))


async def gathered(session: AsyncSession, chat_id: int, media_group_id: str) -> Content | None:
    """Return every part of an album stored so far as one content (files in sent order)."""
    parts = list(
        await session.scalars(
            select(m.AlbumPart)
            .where(m.AlbumPart.chat_id == chat_id, m.AlbumPart.media_group_id == media_group_id)
            .order_by(m.AlbumPart.message_id)
        )
    )
    if not parts:
        return None
    files = [FileRef.from_json(p.content["file"]) for p in parts]
    captions = [str(p.content["caption"]) for p in parts if p.content.get("caption")]
    return Content.of_files(files, "\n".join(captions) or None)


async def forget(session: AsyncSession, chat_id: int, media_group_id: str) -> None:
    """Drop an album's parts (taken into a version, or cancelled)."""
    await session.execute(
        delete(m.AlbumPart).where(
            m.AlbumPart.chat_id == chat_id, m.AlbumPart.media_group_id == media_group_id
        )
    )


async def prompt(
    session: AsyncSession,
    *,
    person_id: int,
    chat_id: int,
    media_group_id: str,
    build: Callable[[Content], dict[str, Any]],
    now: datetime,
) -> None:
    """Queue (or re-write) the album's one confirm prompt, naming every part stored so far.

    `build` turns the gathered content into the prompt's payload. Call after `add_part`, in
    the same transaction.
    """
    key = prompt_key(chat_id, media_group_id)
    when = now + QUIET
    first = await gathered(session, chat_id, media_group_id)
    assert first is not None, "add_part first"
    await enqueue(
        session,
        key=key,
        chat_id=chat_id,
        person_id=person_id,
        kind="reply",
        payload=build(first),
        now=now,
        not_before=when,
    )
    # Lock the prompt, then read the parts again: a part stored by another process that
    # held the lock before us is committed and seen now, so the last writer names them all.
    query = select(m.Outbox).where(m.Outbox.key == key)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    row = await session.scalar(query)
    assert row is not None
    content = await gathered(session, chat_id, media_group_id)
    assert content is not None
    payload = build(content)
    if row.status == "pending" and row.lease_owner is None:
        row.payload = payload
        row.not_before = max(row.not_before, when)
        return
    if row.payload == payload:
        return
    # The prompt already went out (or is going): a late part gets a prompt of its own that
    # names the whole album; pressing either confirms every part.
    await enqueue(
        session,
        key=f"{key}:{len(content.files)}",
        chat_id=chat_id,
        person_id=person_id,
        kind="reply",
        payload=payload,
        now=now,
        not_before=when,
    )
