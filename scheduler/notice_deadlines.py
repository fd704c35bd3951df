"""Notices with a deadline: units that have not pressed 收到 by then are nudged (SPEC §4.6, §5).

Like an assignment's, a notice's stages are the due moment and then one every
`overdue_every` of the campaign's policy (working days when `workdays_only`), inside the
window, stopping when the campaign's last phase ends. Each stage goes out once per unit
(its outbox key); after downtime only the latest missed stage is sent. A notice is looked
at only when its `next_check_at` has come, so a tick with nothing due reads one index.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.db import models as m
from bot.db.engine import Database
from bot.domain.reminders import Timetable
from bot.services.notices import notice_payload
from bot.services.notify import push
from bot.services.people import holders
from scheduler.context import CampaignContext

MAX_STAGES = 2000  # overdue stages looked through for one notice (years of daily nudges)


def latest_stage(
    table: Timetable, deadline: datetime, now: datetime
) -> tuple[int, datetime | None]:
    """Return the latest stage of a deadline due by `now` and when the next one goes out.

    Stage 0 is the due moment, n the n-th overdue nudge, -1 none yet; the next moment is
    None when no stage is left (the campaign ends first, or no `overdue_every`).
    """
    due_at = table.send_moment(deadline)[0]
    if due_at > now:
        return -1, due_at
    n = 0
    nxt: datetime | None = None
    if table.policy.overdue_every is not None:
        for i in range(1, MAX_STAGES):
            at = table.overdue(deadline, i).at
            if table.end_moment is not None and at >= table.end_moment:
                break
            if at > now:
                nxt = at
                break
            n = i
    return n, nxt


def _builder(notice: m.Notice, unit: m.Unit, tz: str) -> Callable[[str], dict[str, Any]]:
    def build(lang: str) -> dict[str, Any]:
        return notice_payload(notice, unit, lang, tz, heading="work.notice_overdue")

    return build


async def plan_notice_deadlines(
    db: Database, contexts: dict[int, CampaignContext], now: datetime, default_language: str
) -> int:
    """Write the nudges of notices whose deadline stages have come; return how many rows."""
    async with db.read() as session:
        waiting = await session.scalar(
            select(m.Notice.next_check_at)
            .where(m.Notice.next_check_at <= now)
            .order_by(m.Notice.next_check_at)
            .limit(1)
        )
    if waiting is None:
        return 0
    written = 0
    async with db.write() as session:
        notices = list(
            await session.scalars(
                select(m.Notice).where(m.Notice.next_check_at <= now).order_by(m.Notice.id)
            )
        )
        for notice in notices:
            ctx = contexts.get(notice.campaign_id)
            if ctx is None or notice.deadline_at is None:  # an archived campaign: stop
                notice.next_check_at = None
                continue
            stage, nxt = latest_stage(ctx.base, notice.deadline_at, now)
            missing = list(
                await session.execute(
                    select(m.Unit)
                    .join(m.NoticeReceipt, m.NoticeReceipt.unit_id == m.Unit.id)
                    .where(
                        m.NoticeReceipt.notice_id == notice.id,
                        m.NoticeReceipt.received_at.is_(None),
                        m.Unit.archived_at.is_(None),
                    )
                    .order_by(m.Unit.position)
                )
            )
            if stage >= 0:
                for (unit,) in missing:
                    contacts = await holders(session, ctx.id, ("contact",), unit_id=unit.id)
                    written += await push(
                        session,
                        contacts,
                        key=f"notice-due:{notice.id}:{stage}:{unit.id}",
                        kind="nudge",
                        build=_builder(notice, unit, ctx.timezone),
                        now=now,
                        default_language=default_language,
                        campaign_id=ctx.id,
                    )
            notice.next_check_at = nxt if missing else None
    return written
