"""Record every change of state with who and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import AuditLog


def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    campaign_id: int | None = None,
    object_type: str | None = None,
    object_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit entry to the session's transaction."""
    session.add(
        AuditLog(
            at=at,
            actor=actor,
            action=action,
            campaign_id=campaign_id,
            object_type=object_type,
            object_id=object_id,
            details=details or {},
        )
    )
