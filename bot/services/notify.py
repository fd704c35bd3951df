"""Push a message to several people through the outbox, each in their own language."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.services.outbox import enqueue


class Addressee(Protocol):
    """Whom a pushed message goes to: a Person row, or the few columns of one that the
    planner reads for thousands of contacts at once (`scheduler.context.Recipient`)."""

    @property
    def id(self) -> int: ...
    @property
    def telegram_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def language(self) -> str | None: ...
    @property
    def is_group(self) -> bool: ...


def language_of(person: Addressee, default: str) -> str:
    """Return the language a person reads (groups use the default)."""
    if person.is_group or not person.language:
        return default
    return person.language


async def push(
    session: AsyncSession,
    people: Sequence[m.Person],
    *,
    key: str,
    kind: str,
    build: Callable[[str], dict[str, Any]],
    now: datetime,
    default_language: str,
    campaign_id: int | None = None,
    assignment_id: int | None = None,
    planned_due_at: datetime | None = None,
) -> int:
    """Write one outbox row per person (`key:<person id>`); return how many were new."""
    added = 0
    for person in people:
        payload = build(language_of(person, default_language))
        added += await enqueue(
            session,
            key=f"{key}:{person.id}",
            chat_id=person.telegram_id,
            person_id=person.id,
            kind=kind,
            payload=payload,
            now=now,
            campaign_id=campaign_id,
            assignment_id=assignment_id,
            planned_due_at=planned_due_at,
        )
    return added
