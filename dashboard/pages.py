"""What each page shows, read through the same use cases as the chat (bot.services).

Each function takes the open read transaction, the visitor and the moment, and returns the
template's context; a refusal is the same typed error the chat answers with (NotAllowed,
OtherUnit, ...), which the web layer turns into a 403 page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.assignments import ACCEPTED, DONE, SUBMITTED, is_open
from bot.domain.deadlines import days_left, days_overdue
from bot.errors import UnknownTask, UnknownUnit
from bot.reports.figures import most_overdue, unit_ranking
from bot.services.access import Caller, OtherUnit
from bot.services.lookup import live_units, resolve_unit
from bot.services.notices import REMIND_GAP, list_notices, notice_state, notices_of_unit
from bot.services.progress import AssignmentView, assignment_views, campaign_progress
from bot.services.unit_reports import reports_of_unit
from bot.services.versions import Version, may_open_files, review_queue, unit_versions
from dashboard.charts import Span

# Telegram's getFile limit for bots (SPEC §8): larger files are opened in the chat.
MAX_FILE = 20 * 1024 * 1024
# How many units the ranking shows at each end.
RANKING_ENDS = 10
FILTERS = ("all", "missing", "submitted", "overdue")
# The notices list: every notice, or those some unit has not received yet.
NOTICE_LIST_FILTERS = ("all", "open")
# One notice's units: all, those that received it, those that have not.
NOTICE_FILTERS = ("all", "received", "missing")
# How many notices the list shows (the chat's /notice shows 20).
NOTICES_SHOWN = 50


@dataclass
class Visitor:
    """A signed-in person: their roles as in the chat, their language, the CSRF token."""

    caller: Caller
    lang: str
    csrf: str

    @property
    def overseer(self) -> bool:
        """Return whether the visitor sees the whole campaign (office, admin, leader)."""
        return self.caller.is_office or self.caller.is_leader


def when(view: AssignmentView, now: datetime) -> tuple[str, int] | None:
    """Return ("overdue", days) or ("left", days) for an open assignment, else None."""
    if not is_open(view.status):
        return None
    if view.overdue:
        return "overdue", days_overdue(view.due_at, now)
    return "left", days_left(view.due_at, now)


def spans(progress_phases: list[Any]) -> list[Span]:
    """Return the phases as timeline spans."""
    return [Span(p.name, p.start, p.end) for p in progress_phases]


async def overview(session: AsyncSession, visitor: Visitor, now: datetime) -> dict[str, Any]:
    """The campaign as /status shows it: overseers see every unit, units their own."""
    caller = visitor.caller
    campaign = caller.campaign
    if visitor.overseer:
        # The figures of /status, read by the same use cases; the ranking (every unit
        # aggregated) is a page of its own that the overview loads after it shows.
        progress = await campaign_progress(session, campaign, now)
        laggards = await most_overdue(session, campaign, now)
        return {
            "page": "overview",
            "progress": progress,
            "totals": progress.totals(),
            "laggards": laggards,
            "today": now.astimezone(ZoneInfo(campaign.timezone)).date(),
        }
    caller.require_unit()
    units = await live_units(session, caller.campaign.id, only=caller.unit_ids)
    views = await assignment_views(session, campaign, now, unit_ids=caller.unit_ids)
    grouped = [(u, [v for v in views if v.unit_key == u.key]) for u in units]
    progress = await campaign_progress(session, campaign, now, unit_ids=caller.unit_ids)
    return {
        "page": "mine",
        "progress": progress,
        "totals": progress.totals(),
        "grouped": grouped,
        "today": now.astimezone(ZoneInfo(campaign.timezone)).date(),
    }


async def ranking_page(session: AsyncSession, visitor: Visitor, now: datetime) -> dict[str, Any]:
    """The units ranked as the bulletin ranks them: the best and the worst ends."""
    visitor.caller.require_overseer()
    ranking = await unit_ranking(session, visitor.caller.campaign.id, now, with_late=False)
    top = ranking[:RANKING_ENDS]
    bottom = ranking[RANKING_ENDS:][-RANKING_ENDS:]
    return {
        "page": "ranking",
        "top": top,
        "bottom": bottom,
        "skipped": max(len(ranking) - len(top) - len(bottom), 0),
    }


async def task_page(
    session: AsyncSession, visitor: Visitor, now: datetime, task_id: int, show: str
) -> dict[str, Any]:
    """Who submitted a task and who not, as /task shows it; contacts see their own units."""
    caller = visitor.caller
    task = await session.get(m.Task, task_id)
    if task is None or task.campaign_id != caller.campaign.id or task.archived_at is not None:
        raise UnknownTask(name=str(task_id))
    unit_ids = None if caller.sees_all else caller.unit_ids
    if unit_ids is not None:
        caller.require_unit()
    views = await assignment_views(
        session, caller.campaign, now, unit_ids=unit_ids, task_ids=[task.id]
    )
    submitted = [v for v in views if v.status in DONE]
    missing = sorted((v for v in views if is_open(v.status)), key=_due)
    counts = {
        "all": len(views),
        "missing": len(missing),
        "submitted": len(submitted),
        "overdue": sum(1 for v in missing if v.overdue),
    }
    show = show if show in FILTERS else "all"
    shown = {
        "all": missing + submitted,
        "missing": missing,
        "submitted": submitted,
        "overdue": [v for v in missing if v.overdue],
    }[show]
    unit_ids_by_key = await _unit_ids(session, caller.campaign.id, {v.unit_key for v in shown})
    return {
        "page": "task",
        "task": task,
        "views": shown,
        "counts": counts,
        "accepted": sum(1 for v in views if v.status == ACCEPTED),
        "show": show,
        "filters": FILTERS,
        "unit_ids": unit_ids_by_key,
    }


def _due(view: AssignmentView) -> datetime:
    return view.due_at


async def _unit_ids(session: AsyncSession, campaign_id: int, keys: set[str]) -> dict[str, int]:
    if not keys:
        return {}
    rows = await session.execute(
        select(m.Unit.key, m.Unit.id).where(m.Unit.campaign_id == campaign_id, m.Unit.key.in_(keys))
    )
    return {key: uid for key, uid in rows}


async def unit_page(
    session: AsyncSession, visitor: Visitor, now: datetime, unit_id: int
) -> dict[str, Any]:
    """One unit as /unit shows it, with its versions (captions and files)."""
    caller = visitor.caller
    unit = await session.get(m.Unit, unit_id)
    if unit is None or unit.campaign_id != caller.campaign.id or unit.archived_at is not None:
        if caller.sees_all:
            raise UnknownUnit(name=str(unit_id))
        # A contact learns nothing about other ids, existing or not.
        raise OtherUnit()
    if not caller.may_see_unit(unit.id):
        raise OtherUnit()
    views = await assignment_views(session, caller.campaign, now, unit_ids=[unit.id])
    versions = await unit_versions(session, caller, unit)
    by_task: dict[str, list[Version]] = defaultdict(list)
    for version in versions:
        by_task[version.task_title].append(version)
    # As /unit in the chat: the unit's reports outside any task; and the notices it was sent,
    # with its receipt (its own contacts received them in the chat anyway).
    reports = await reports_of_unit(session, caller.campaign.id, unit.id)
    notices = await notices_of_unit(session, caller.campaign.id, unit.id)
    return {
        "page": "unit",
        "unit": unit,
        "views": views,
        "reports": reports,
        "notices": notices,
        "done": sum(1 for v in views if v.status in DONE),
        "versions": by_task,
        "files": may_open_files(caller, unit.id),
        "max_file": MAX_FILE,
        "reviewable": {
            v.submission_id
            for v in versions
            if caller.is_office and v.status == SUBMITTED and v is by_task[v.task_title][-1]
        },
    }


async def overdue_page(session: AsyncSession, visitor: Visitor, now: datetime) -> dict[str, Any]:
    """Every overdue assignment as /overdue lists it, the unit with most first."""
    caller = visitor.caller
    if visitor.overseer:
        views = await assignment_views(session, caller.campaign, now)
    else:
        caller.require_unit()
        views = await assignment_views(session, caller.campaign, now, unit_ids=caller.unit_ids)
    overdue = [v for v in views if v.overdue]
    by_unit: dict[str, list[AssignmentView]] = defaultdict(list)
    for view in overdue:
        by_unit[view.unit_key].append(view)
    groups = sorted(by_unit.values(), key=lambda items: -len(items))
    return {
        "page": "overdue",
        "count": len(overdue),
        "groups": [sorted(items, key=_due) for items in groups],
        "unit_ids": await _unit_ids(session, caller.campaign.id, set(by_unit)),
    }


async def review_page(session: AsyncSession, visitor: Visitor, now: datetime) -> dict[str, Any]:
    """The office's review queue: the latest version of every submitted assignment."""
    queue = await review_queue(session, visitor.caller)
    return {"page": "review", "queue": queue, "max_file": MAX_FILE}


async def find_unit_page(
    session: AsyncSession, visitor: Visitor, now: datetime, text: str
) -> tuple[m.Unit | None, dict[str, Any]]:
    """Resolve a typed unit name as /unit does: (the unit, {}) or (None, the choices)."""
    caller = visitor.caller
    only = None if caller.sees_all else caller.unit_ids
    found, close = await resolve_unit(session, caller.campaign.id, text[:100], only)
    if found is not None:
        return found, {}
    return None, {"page": "find", "query": text[:100], "close": close}


async def notices_page(
    session: AsyncSession, visitor: Visitor, now: datetime, show: str
) -> dict[str, Any]:
    """The campaign's notices with received / total, as /notice lists them (overseers)."""
    caller = visitor.caller
    caller.require_overseer()
    every = await list_notices(session, caller.campaign.id, limit=NOTICES_SHOWN)
    show = show if show in NOTICE_LIST_FILTERS else "all"
    open_ = [s for s in every if s.received < s.total]
    return {
        "page": "notices",
        "notices": open_ if show == "open" else every,
        "counts": {"all": len(every), "open": len(open_)},
        "show": show,
        "filters": NOTICE_LIST_FILTERS,
    }


async def notice_page(
    session: AsyncSession, visitor: Visitor, now: datetime, notice_id: int, show: str
) -> dict[str, Any]:
    """One notice's receipts as the chat's notice button shows them: who received it (who,
    when) and which units have not; "remind again" for the office.
    """
    caller = visitor.caller
    state = await notice_state(session, caller, notice_id)
    show = show if show in NOTICE_FILTERS else "all"
    Row = tuple[m.Unit, str | None, datetime | None]
    received: list[Row] = [(unit, who, at) for unit, who, at in state.received]
    missing: list[Row] = [(unit, None, None) for unit in state.missing]
    shown = {"all": received + missing, "received": received, "missing": missing}[show]
    reminded = state.notice.reminded_at
    return {
        "page": "notices",
        "notice": state.notice,
        "rows": sorted(shown, key=lambda row: row[0].position),
        "counts": {
            "all": len(received) + len(missing),
            "received": len(received),
            "missing": len(missing),
        },
        "show": show,
        "filters": NOTICE_FILTERS,
        "may_remind": caller.is_office and bool(missing),
        "remind_from": reminded + REMIND_GAP if reminded is not None else None,
    }
