"""Pictures the outbox sends, drawn at send time so they show the state of that moment."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.db import models as m
from bot.db.engine import Database
from bot.reports.bulletin import render_bulletin

# Outbox payloads carry {"render": {"kind": ..., ...}} instead of a file (rows are JSON).
KINDS = ("bulletin",)


class RenderError(ValueError):
    """The payload asks for a picture that cannot be drawn (unknown kind, campaign gone)."""


async def render_attachment(db: Database, spec: dict[str, Any], now: datetime) -> tuple[bytes, str]:
    """Return (PNG bytes, file name) for a payload's `render` spec."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise RenderError(f"unknown picture {kind!r}")
    async with db.read() as session:
        campaign = await session.get(m.Campaign, int(spec.get("campaign_id", 0)))
        if campaign is None:
            raise RenderError("campaign not found")
        data = await render_bulletin(session, campaign, now, str(spec.get("lang") or "zh"))
    return data, f"{campaign.key}-bulletin.png"
