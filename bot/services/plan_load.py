"""Create or update a campaign from a validated plan, in one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.db.engine import Database
from bot.domain.assignments import PENDING, deadline_fields
from bot.plan.model import Plan
from bot.services.audit import record
from bot.services.matching import spell_many

BATCH = 5000
INSERT_BATCH = 3000
# A load creating at least this many assignments refreshes PostgreSQL's statistics.
ANALYZE_AFTER = 10_000


@dataclass
class LoadReport:
    """What a load changed, per kind of object."""

    campaign_key: str
    created_campaign: bool = False
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    archived: dict[str, int] = field(default_factory=dict)
    restored: dict[str, int] = field(default_factory=dict)
    rescheduled: int = 0

    @property
    def changed(self) -> bool:
        """Return whether anything in the database changed."""
        counts = (self.created, self.updated, self.archived, self.restored)
        return self.created_campaign or any(any(c.values()) for c in counts)

    def as_json(self) -> dict[str, Any]:
        """Return the report as plain data for the audit log."""
        return {
            "created_campaign": self.created_campaign,
            "created": self.created,
            "updated": self.updated,
            "archived": self.archived,
            "restored": self.restored,
            "rescheduled": self.rescheduled,
        }


def plan_settings(plan: Plan) -> dict[str, Any]:
    """Return the campaign-wide settings stored beside the campaign."""
    weekly = plan.digest.weekly
    return {
        "office": plan.office,
        "calendar": {
            "country": plan.calendar.country,
            "extra_holidays": sorted(d.isoformat() for d in plan.calendar.extra_holidays),
            "extra_workdays": sorted(d.isoformat() for d in plan.calendar.extra_workdays),
        },
        "reminders": plan.policy.to_json(),
        "digest": {
            "daily": plan.digest.daily.strftime("%H:%M") if plan.digest.daily else None,
            "weekly": [weekly[0], weekly[1].strftime("%H:%M")] if weekly else None,
        },
    }


def _unit_spellings(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Return the pinyin a person may type for each unit (for the unit-name index)."""
    groups = [(values["name"], *values["aliases"]) for values in rows]
    spelled = spell_many({name for group in groups for name in group})
    return [sorted(set().union(*(spelled[name] for name in group))) for group in groups]


def _diff(row: Any, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if getattr(row, k) != v}


class _Sync:
    """Upsert one kind of keyed child object of the campaign; archive the missing ones."""

    def __init__(self, session: AsyncSession, report: LoadReport, now: datetime) -> None:
        self.session = session
        self.report = report
        self.now = now

    async def sync(
        self,
        model: Any,
        label: str,
        campaign_id: int,
        wanted: Sequence[tuple[str, dict[str, Any]]],
        derive: tuple[str, Callable[[list[dict[str, Any]]], list[Any]]] | None = None,
        where: Sequence[Any] = (),
    ) -> dict[str, Any]:
        """Create, update, restore and archive rows; return them by key.

        `derive` is (column, function of a list of rows' plan values returning the column's
        value for each, in order): a column computed only for a row that is new, changed or
        lacks it, all such rows in one call (it may be costly: pinyin for 100,000 unit names).
        """
        rows = {
            r.key: r
            for r in await self.session.scalars(
                select(model).where(model.campaign_id == campaign_id, *where)
            )
        }
        out: dict[str, Any] = {}
        created = updated = restored = archived = 0
        # Each wanted row with its existing row and what changed in it; the derived column
        # of every row that needs it is computed in one call (the pinyin of a national
        # roster is spread over every core), then handed out in order.
        todo = [
            (key, values, row, {} if row is None else _diff(row, values))
            for key, values in wanted
            for row in [rows.get(key)]
        ]
        needing = [
            values
            for _, values, row, changes in todo
            if derive and (row is None or changes or getattr(row, derive[0]) is None)
        ]
        derived = iter(derive[1](needing) if derive and needing else [])
        for key, values, row, changes in todo:
            if row is None:
                extra = {derive[0]: next(derived)} if derive else {}
                row = model(campaign_id=campaign_id, key=key, **values, **extra)
                self.session.add(row)
                created += 1
            else:
                if derive and (changes or getattr(row, derive[0]) is None):
                    changes |= _diff(row, {derive[0]: next(derived)})
                for name, value in changes.items():
                    setattr(row, name, value)
                updated += bool(changes)
                if row.archived_at is not None:
                    row.archived_at = None
                    restored += 1
            out[key] = row
        for key, row in rows.items():
            if key not in out and row.archived_at is None:
                row.archived_at = self.now
                archived += 1
        await self.session.flush()
        self.report.created[label] = created
        self.report.updated[label] = updated
        self.report.restored[label] = restored
        self.report.archived[label] = archived
        return out


async def _approved_extensions(session: AsyncSession, ids: Iterable[int]) -> dict[int, datetime]:
    """Return the latest approved extension per assignment."""
    out: dict[int, datetime] = {}
    id_list = list(ids)
    for i in range(0, len(id_list), BATCH):
        chunk = id_list[i : i + BATCH]
        result = await session.execute(
            select(m.Extension.assignment_id, func.max(m.Extension.new_due_at))
            .where(m.Extension.status == "approved", m.Extension.assignment_id.in_(chunk))
            .group_by(m.Extension.assignment_id)
        )
        for assignment_id, due in result:
            out[assignment_id] = (
                due if due.tzinfo else due.replace(tzinfo=datetime.now().astimezone().tzinfo)
            )
    return out


async def apply_plan(
    session: AsyncSession, plan: Plan, *, now: datetime, actor: str, plan_text: str = ""
) -> LoadReport:
    """Bring the stored campaign in line with the plan, in the caller's transaction."""
    report = LoadReport(plan.key)
    campaign = await session.scalar(select(m.Campaign).where(m.Campaign.key == plan.key))
    values = {
        "title": plan.title,
        "timezone": plan.timezone,
        "due_time": plan.due_time.strftime("%H:%M"),
        "units_see_all": plan.units_see_all,
        "settings": plan_settings(plan),
        "plan_file": str(plan.source),
        "plan_hash": hashlib.sha256(plan_text.encode()).hexdigest() if plan_text else "",
    }
    if campaign is None:
        campaign = m.Campaign(key=plan.key, created_at=now, updated_at=now, **values)
        session.add(campaign)
        await session.flush()
        report.created_campaign = True
    else:
        changes = _diff(campaign, values)
        # The file's path and hash alone are not a change of the campaign.
        meaningful = set(changes) - {"plan_file", "plan_hash"}
        for name, value in changes.items():
            setattr(campaign, name, value)
        if meaningful:
            campaign.updated_at = now
        report.updated["campaign"] = int(bool(meaningful))
        if campaign.archived_at is not None:
            campaign.archived_at = None
            report.restored["campaign"] = 1
            # Archiving stopped its reminders; the planner looks at every assignment again.
            await session.execute(
                update(m.Assignment)
                .where(m.Assignment.campaign_id == campaign.id, m.Assignment.archived_at.is_(None))
                .values(next_check_at=now)
            )

    sync = _Sync(session, report, now)
    cid = campaign.id
    kinds = await sync.sync(
        m.UnitKind,
        "unit_kinds",
        cid,
        [(k.key, {"name": k.name, "position": i}) for i, k in enumerate(plan.unit_kinds)],
    )
    units = await sync.sync(
        m.Unit,
        "units",
        cid,
        [
            (
                u.key,
                {
                    "name": u.name,
                    "kind_id": kinds[u.kind].id,
                    "aliases": list(u.aliases),
                    "position": i,
                },
            )
            for i, u in enumerate(plan.units)
        ],
        derive=("spellings", _unit_spellings),
    )
    phases = await sync.sync(
        m.Phase,
        "phases",
        cid,
        [
            (
                p.key,
                {
                    "name": p.name,
                    "description": p.description,
                    "start_date": p.start,
                    "end_date": p.end,
                    "position": i,
                },
            )
            for i, p in enumerate(plan.phases)
        ],
    )
    task_values = []
    position = 0
    for phase in plan.phases:
        for task in phase.tasks:
            task_values.append(
                (
                    task.key,
                    {
                        "phase_id": phases[phase.key].id,
                        "title": task.title,
                        "description": task.description,
                        "due_at": task.due,
                        "evidence": task.evidence,
                        "allow_outside_phase": task.allow_outside_phase,
                        "policy": task.policy.to_json(),
                        "position": position,
                        "series": task.series,
                        "series_title": task.series_title,
                        "occurrence": task.occurrence,
                    },
                )
            )
            position += 1
    # Tasks added in chat are not the plan's to change or archive (SPEC §4.6).
    tasks = await sync.sync(m.Task, "tasks", cid, task_values, where=[m.Task.origin == "plan"])

    await _sync_assignments(session, plan, report, cid, units, tasks, now)

    record(
        session,
        at=now,
        actor=actor,
        action="plan.load",
        campaign_id=cid,
        object_type="campaign",
        object_id=cid,
        details={"file": str(plan.source), **report.as_json()},
    )
    return report


async def _sync_assignments(
    session: AsyncSession,
    plan: Plan,
    report: LoadReport,
    campaign_id: int,
    units: dict[str, Any],
    tasks: dict[str, Any],
    now: datetime,
) -> None:
    """Create, re-date, archive and restore the (unit, task) pairs the plan implies."""
    wanted: dict[tuple[int, int], datetime] = {}
    for task in plan.tasks:
        task_id = tasks[task.key].id
        for unit in plan.units_for(task):
            wanted[(units[unit.key].id, task_id)] = task.due
    existing = {
        (row.unit_id, row.task_id): row
        for row in (
            await session.execute(
                select(
                    m.Assignment.id,
                    m.Assignment.unit_id,
                    m.Assignment.task_id,
                    m.Assignment.due_at,
                    m.Assignment.plan_due_at,
                    m.Assignment.archived_at,
                )
                .join(m.Task, m.Task.id == m.Assignment.task_id)
                .where(m.Assignment.campaign_id == campaign_id, m.Task.origin == "plan")
            )
        )
    }
    new_rows = []
    redated: list[tuple[int, datetime]] = []
    restore_ids: list[int] = []
    for pair, due in wanted.items():
        row = existing.get(pair)
        if row is None:
            new_rows.append(
                {
                    "campaign_id": campaign_id,
                    "unit_id": pair[0],
                    "task_id": pair[1],
                    "status": PENDING,
                    "plan_due_at": due,
                    **deadline_fields(due, now),
                }
            )
            continue
        if row.plan_due_at != due:
            redated.append((row.id, due))
        if row.archived_at is not None:
            restore_ids.append(row.id)
    archive_ids = [
        row.id for pair, row in existing.items() if pair not in wanted and row.archived_at is None
    ]

    if new_rows:
        await _insert_assignments(session, new_rows)

    if len(new_rows) >= ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # PostgreSQL plans from table statistics, which autovacuum refreshes only a while after
        # a big load; until then `/unit` chose a scan of the whole campaign's index (18 ms
        # instead of 6 ms at 500,000). ANALYZE counts this transaction's own rows.
        await session.execute(text("ANALYZE assignments"))

    if redated:
        extensions = await _approved_extensions(session, (aid for aid, _ in redated))
        current = {row.id: row.due_at for row in existing.values()}
        changes = []
        for aid, plan_due in redated:
            # An approved extension stands unless the plan now gives a later date (SPEC §4.4).
            effective = max(plan_due, extensions[aid]) if aid in extensions else plan_due
            change: dict[str, Any] = {"id": aid, "plan_due_at": plan_due, "updated_at": now}
            if effective != current[aid]:
                change |= deadline_fields(effective, now)
                report.rescheduled += 1
            changes.append(change)
        for i in range(0, len(changes), BATCH):
            await session.execute(update(m.Assignment), changes[i : i + BATCH])

    # An archived assignment has nothing left to send; a restored one is looked at anew.
    for ids, archived_at, check_at in ((archive_ids, now, None), (restore_ids, None, now)):
        for i in range(0, len(ids), BATCH):
            await session.execute(
                update(m.Assignment)
                .where(m.Assignment.id.in_(ids[i : i + BATCH]))
                .values(archived_at=archived_at, updated_at=now, next_check_at=check_at)
            )
    report.created["assignments"] = len(new_rows)
    report.updated["assignments"] = len(redated)
    report.archived["assignments"] = len(archive_ids)
    report.restored["assignments"] = len(restore_ids)


async def _insert_assignments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert new assignments (dicts of column -> value, every column but id and archived_at).

    PostgreSQL: one COPY in the load's transaction (asyncpg's binary COPY, the driver's own
    bulk path: a national plan's two million rows in seconds, not minutes); the kept counts'
    statement trigger fires once for it, as for an INSERT. SQLite: RETURNING makes SQLAlchemy
    send "insertmanyvalues" batches (one multi-row INSERT per INSERT_BATCH rows, compiled
    once); `.values(rows)` would compile each statement anew (0.5 ms a row).
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "asyncpg":
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        columns = list(rows[0])
        table = cast(Table, m.Assignment.__table__)
        await driver.copy_records_to_table(
            table.name,
            columns=columns,
            # Moments are aware (UTCDateTime refuses naive ones); asyncpg writes an aware
            # moment as the instant it is, whatever its zone, as UTCDateTime stores it.
            records=[tuple(row.values()) for row in rows],
        )
        return
    await connection.execute(
        insert(m.Assignment)
        .returning(m.Assignment.id)
        .execution_options(insertmanyvalues_page_size=INSERT_BATCH),
        rows,
    )


async def load_plan_into(
    db: Database, plan: Plan, *, now: datetime, actor: str = "cli", plan_text: str = ""
) -> LoadReport:
    """Apply a plan in one transaction and record it in the audit log."""
    async with db.write() as session:
        return await apply_plan(session, plan, now=now, actor=actor, plan_text=plan_text)
