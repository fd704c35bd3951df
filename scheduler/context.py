"""What the planner knows of a campaign during one tick, and helpers shared by its parts."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.domain.calendar import WorkCalendar
from bot.domain.policy import ReminderPolicy
from bot.domain.reminders import Timetable, timetable
from bot.i18n import format_date, t
from bot.messages import limits
from bot.messages.limits import TEXT_LIMIT
from bot.services.notify import Addressee, language_of

CHUNK = 5000  # ids per IN (...) list, well below the drivers' parameter limits


@lru_cache(maxsize=64)
def _calendar(country: str | None, off: tuple[str, ...], on: tuple[str, ...]) -> WorkCalendar:
    # Kept: a calendar caches the holiday data it has looked up.
    return WorkCalendar(
        country,
        frozenset(date.fromisoformat(d) for d in off),
        frozenset(date.fromisoformat(d) for d in on),
    )


def calendar_of(settings: dict[str, Any]) -> WorkCalendar:
    """Return the working-day calendar stored in a campaign's settings."""
    cal = settings.get("calendar") or {}
    return _calendar(
        cal.get("country") or None,
        tuple(cal.get("extra_holidays") or ()),
        tuple(cal.get("extra_workdays") or ()),
    )


@lru_cache(maxsize=1024)
def _policy(text: str) -> ReminderPolicy:
    return ReminderPolicy.from_json(json.loads(text))


def policy_of(data: dict[str, Any]) -> ReminderPolicy:
    """Return the reminder policy stored as plain data (parsed once per distinct policy)."""
    return _policy(json.dumps(data, sort_keys=True))


@dataclass(frozen=True)
class TaskInfo:
    """What the planner needs of a task."""

    id: int
    title: str
    phase_id: int
    position: int
    policy: ReminderPolicy


@dataclass(frozen=True)
class PhaseInfo:
    """What the planner needs of a phase."""

    id: int
    name: str
    description: str
    start: date
    end: date
    position: int


class CampaignContext:
    """One campaign's time zone, calendar, phases and tasks, for one tick."""

    def __init__(self, campaign: m.Campaign, phases: Sequence[m.Phase]) -> None:
        self.id = campaign.id
        self.key = campaign.key
        self.title = campaign.title
        self.timezone = campaign.timezone
        self.settings: dict[str, Any] = campaign.settings or {}
        self.calendar = calendar_of(self.settings)
        self.phases = [
            PhaseInfo(p.id, p.name, p.description, p.start_date, p.end_date, p.position)
            for p in sorted(phases, key=lambda p: p.position)
        ]
        self.first_start = min((p.start for p in self.phases), default=None)
        self.last_end = max((p.end for p in self.phases), default=None)
        self._timetables: dict[int, tuple[ReminderPolicy, Timetable]] = {}
        # The campaign-wide policy decides when campaign-wide notices may go out.
        self.base = self.timetable(policy_of(self.settings["reminders"]))
        self._tasks: dict[int, TaskInfo] | None = None

    def timetable(self, policy: ReminderPolicy) -> Timetable:
        """Return the timetable of a policy in this campaign."""
        # Asked once per due assignment: kept by the policy object's identity, since hashing
        # a policy (its nested durations) for `timetable`'s cache costs more than the lookup.
        kept = self._timetables.get(id(policy))
        if kept is None or kept[0] is not policy:
            kept = (policy, timetable(policy, self.calendar, self.timezone, self.last_end))
            self._timetables[id(policy)] = kept
        return kept[1]

    def local_date(self, moment: datetime) -> date:
        """Return the campaign's local date of a moment."""
        return moment.astimezone(self.base.zone).date()

    def in_campaign(self, day: date, *, grace_days: int = 0) -> bool:
        """Return whether a local day lies within the campaign's phases (plus grace days)."""
        if self.first_start is None or self.last_end is None:
            return False
        return self.first_start <= day <= self.last_end + timedelta(days=grace_days)

    async def tasks(self, session: AsyncSession) -> dict[int, TaskInfo]:
        """Return the campaign's live tasks by id (read once per tick)."""
        if self._tasks is None:
            rows = await session.execute(
                select(m.Task.id, m.Task.title, m.Task.phase_id, m.Task.position, m.Task.policy)
                .where(m.Task.campaign_id == self.id, m.Task.archived_at.is_(None))
                .order_by(m.Task.position)
            )
            self._tasks = {
                r.id: TaskInfo(r.id, r.title, r.phase_id, r.position, policy_of(r.policy))
                for r in rows
            }
        return self._tasks


async def load_contexts(
    session: AsyncSession, campaign_ids: Iterable[int] | None = None
) -> dict[int, CampaignContext]:
    """Return the live campaigns (or the given ones) with their live phases."""
    query = select(m.Campaign)
    if campaign_ids is None:
        query = query.where(m.Campaign.archived_at.is_(None))
    else:
        query = query.where(m.Campaign.id.in_(list(campaign_ids)))
    campaigns = list(await session.scalars(query))
    if not campaigns:
        return {}
    phases: dict[int, list[m.Phase]] = defaultdict(list)
    for phase in await session.scalars(
        select(m.Phase).where(
            m.Phase.campaign_id.in_([c.id for c in campaigns]), m.Phase.archived_at.is_(None)
        )
    ):
        phases[phase.campaign_id].append(phase)
    return {c.id: CampaignContext(c, phases[c.id]) for c in campaigns}


async def unit_names(session: AsyncSession, unit_ids: Iterable[int]) -> dict[int, tuple[str, int]]:
    """Return (name, position) of each unit."""
    out: dict[int, tuple[str, int]] = {}
    for chunk in chunked(sorted(unit_ids)):
        rows = await session.execute(
            select(m.Unit.id, m.Unit.name, m.Unit.position).where(m.Unit.id.in_(chunk))
        )
        out.update({r.id: (r.name, r.position) for r in rows})
    return out


@dataclass(frozen=True, slots=True)
class Recipient:
    """The columns of a Person a pushed message needs (an `Addressee`), read without the ORM's
    identity map: the planner reads them for thousands of contacts a tick."""

    id: int
    telegram_id: int
    name: str
    username: str | None
    language: str | None
    is_group: bool


async def unit_people(
    session: AsyncSession, unit_ids: Iterable[int], roles: tuple[str, ...]
) -> dict[tuple[int, str], list[Addressee]]:
    """Return the reachable holders of unit roles, per (unit, role), for many units at once.

    The same rule as `people.holders(..., unit_id=...)`, in one query instead of one per unit;
    each holder once per (unit, role), in the order of their person id.
    """
    p = m.Person
    out: dict[tuple[int, str], list[Addressee]] = defaultdict(list)
    seen: set[tuple[int, str, int]] = set()
    for chunk in chunked(sorted(unit_ids)):
        rows = await session.execute(
            select(
                m.Role.unit_id,
                m.Role.role,
                p.id,
                p.telegram_id,
                p.name,
                p.username,
                p.language,
                p.is_group,
            )
            .join(p, p.id == m.Role.person_id)
            .where(
                m.Role.unit_id.in_(chunk),
                m.Role.role.in_(roles),
                m.Role.revoked_at.is_(None),
                p.reachable.is_(True),
            )
            .order_by(p.id)
        )
        for row in rows:
            # The IN (...) above leaves no unit-less role.
            key = (cast(int, row.unit_id), row.role)
            if (*key, row.id) not in seen:
                seen.add((*key, row.id))
                out[key].append(
                    Recipient(
                        row.id, row.telegram_id, row.name, row.username, row.language, row.is_group
                    )
                )
    return out


def chunked(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    """Cut a list of ids into IN (...) lists of at most CHUNK."""
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def languages(people: Sequence[m.Person], default_language: str) -> set[str]:
    """Return the languages a message to these people must be written in."""
    return {language_of(p, default_language) for p in people}


def day_text(day: date, lang: str) -> str:
    """Write a calendar date the way people read it (`5月10日`)."""
    return format_date(datetime.combine(day, time(12), tzinfo=UTC), "UTC", lang)


def pack(title: str, lines: Sequence[str], lang: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Join lines under a title into as few messages as fit Telegram's limits (see limits.pack)."""
    return limits.pack(title, lines, f"{title} {t('reminders.continued', lang)}", limit)
