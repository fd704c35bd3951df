"""Loading a plan into SQLite and PostgreSQL: idempotent, re-dating, archiving, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.db import models as m
from bot.db.engine import Database
from bot.db.migrate import HEAD, current_revision, head_revision, upgrade
from bot.plan import parse_plan
from bot.services import plan_load
from bot.services.plan_load import load_plan_into
from tests.conftest import EXAMPLE
from tests.reliability import record

T0 = datetime(2017, 3, 20, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=1)
TEXT = EXAMPLE.read_text(encoding="utf-8")


def plan_of(text: str) -> Any:
    return parse_plan(text, str(EXAMPLE))


async def dump(
    db: Database, skip: tuple[str, ...] = ("audit_log",)
) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table, in primary-key order."""
    out = {}
    async with db.read() as session:
        for table in m.Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            rows = await session.execute(select(table).order_by(*table.primary_key.columns))
            out[table.name] = [tuple(row) for row in rows]
    return out


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_migrations_reach_head(db: Database) -> None:
    assert await current_revision(db) == head_revision()
    # `duban run` trusts HEAD to skip Alembic on a database already migrated: a new migration
    # must move it too.
    assert head_revision() == HEAD, "set bot.db.migrate.HEAD to the new migration's revision"
    assert await upgrade(db) == (HEAD, HEAD)


async def test_load_creates_everything(db: Database) -> None:
    report = await load_plan_into(db, plan_of(TEXT), now=T0)
    assert report.created_campaign
    assert report.created == {
        "unit_kinds": 3,
        "units": 13,
        "phases": 5,
        "tasks": 5,
        "assignments": 61,
    }
    async with db.read() as session:
        task = await session.scalar(select(m.Task).where(m.Task.key == "research-report"))
        assert task is not None
        # 2017-05-10 18:00 in Shanghai is 10:00 UTC.
        assert task.due_at == datetime(2017, 5, 10, 10, 0, tzinfo=UTC)
        assert task.policy["before"] == ["7d", "3d", "1d", "2h"]


async def test_loading_twice_changes_nothing(db: Database) -> None:
    await load_plan_into(db, plan_of(TEXT), now=T0)
    before = await dump(db)
    report = await load_plan_into(db, plan_of(TEXT), now=T1)
    assert not report.changed
    assert await dump(db) == before
    # ...but the second load is still in the audit log.
    assert await count(db, m.AuditLog, m.AuditLog.action == "plan.load") == 2
    record(
        "data safety", f"plan loaded twice ({db.dialect})", 1, "database unchanged, load audited"
    )


async def test_a_failed_load_leaves_the_database_as_it_was(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await load_plan_into(db, plan_of(TEXT), now=T0)
    before = await dump(db, skip=())
    moved = TEXT.replace("due = 2017-05-10", "due = 2017-05-08", 1).replace(
        "甲县总工会", "甲县工会"
    )

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the disk is full")

    # Units and tasks are already updated when the assignments fail: all must roll back.
    monkeypatch.setattr(plan_load, "_sync_assignments", broken)
    with pytest.raises(RuntimeError):
        await load_plan_into(db, plan_of(moved), now=T1)
    assert await dump(db, skip=()) == before
    record(
        "data safety", f"plan load failing midway ({db.dialect})", 1, "database exactly as before"
    )


async def test_changed_due_date_moves_assignments_without_approved_extension(db: Database) -> None:
    await load_plan_into(db, plan_of(TEXT), now=T0)
    async with db.write() as session:
        unit = await session.scalar(select(m.Unit).where(m.Unit.key == "county-a"))
        task = await session.scalar(select(m.Task).where(m.Task.key == "research-report"))
        assert unit and task
        extended = await session.scalar(
            select(m.Assignment).where(
                m.Assignment.unit_id == unit.id, m.Assignment.task_id == task.id
            )
        )
        assert extended is not None
        late_date = datetime(2017, 5, 20, 10, 0, tzinfo=UTC)
        session.add(
            m.Extension(
                assignment_id=extended.id,
                new_due_at=late_date,
                reason="人手不足",
                status="approved",
                created_at=T0,
            )
        )
        extended.due_at = late_date
        extended_id = extended.id
    moved = TEXT.replace("due = 2017-05-10", "due = 2017-05-08", 1)
    report = await load_plan_into(db, plan_of(moved), now=T1)
    assert report.updated["assignments"] == 13
    assert report.rescheduled == 12  # the extended one keeps its later date
    async with db.read() as session:
        rows = list(
            await session.scalars(
                select(m.Assignment).join(m.Task).where(m.Task.key == "research-report")
            )
        )
    new_due = datetime(2017, 5, 8, 10, 0, tzinfo=UTC)
    for row in rows:
        assert row.plan_due_at == new_due
        if row.id == extended_id:
            assert row.due_at == late_date
            assert row.due_set_at == T0
        else:
            assert row.due_at == new_due
            assert row.due_set_at == T1
    # A plan date later than the extension wins (SPEC §4.4).
    later = (
        TEXT.replace("due = 2017-05-10", "due = 2017-05-10T18:00:00", 1)
        .replace("end = 2017-05-10", "end = 2017-05-31", 1)
        .replace("due = 2017-05-10T18:00:00", "due = 2017-05-25", 1)
    )
    await load_plan_into(db, plan_of(later), now=T1 + timedelta(hours=1))
    async with db.read() as session:
        row = await session.get_one(m.Assignment, extended_id)
    assert row.due_at == datetime(2017, 5, 25, 10, 0, tzinfo=UTC)


def _without_unit(text: str, key: str) -> str:
    start = text.index(f'key = "{key}"')
    block_start = text.rindex("[[units]]", 0, start)
    block_end = text.index("[[", start)
    return text[:block_start] + text[block_end:]


async def test_removed_unit_is_archived_with_its_history_and_can_return(db: Database) -> None:
    await load_plan_into(db, plan_of(TEXT), now=T0)
    async with db.write() as session:
        unit = await session.scalar(select(m.Unit).where(m.Unit.key == "county-a"))
        assert unit is not None
        assignment = await session.scalar(
            select(m.Assignment).where(m.Assignment.unit_id == unit.id)
        )
        assert assignment is not None
        assignment.status = "submitted"
        session.add(
            m.Submission(
                assignment_id=assignment.id, version=1, kind="text", text="报告", submitted_at=T0
            )
        )
        unit_id = unit.id
    report = await load_plan_into(db, plan_of(_without_unit(TEXT, "county-a")), now=T1)
    assert report.archived["units"] == 1
    assert report.archived["assignments"] == 5
    async with db.read() as session:
        unit = await session.get_one(m.Unit, unit_id)
        assert unit.archived_at == T1
        rows = list(
            await session.scalars(select(m.Assignment).where(m.Assignment.unit_id == unit_id))
        )
        assert len(rows) == 5 and all(r.archived_at == T1 for r in rows)
    assert await count(db, m.Submission) == 1  # history kept
    report = await load_plan_into(db, plan_of(TEXT), now=T1 + timedelta(hours=1))
    assert report.restored["units"] == 1 and report.restored["assignments"] == 5
    async with db.read() as session:
        rows = list(
            await session.scalars(select(m.Assignment).where(m.Assignment.unit_id == unit_id))
        )
    assert all(r.archived_at is None for r in rows)
    assert sorted(r.status for r in rows).count("submitted") == 1


async def test_removed_task_is_archived(db: Database) -> None:
    await load_plan_into(db, plan_of(TEXT), now=T0)
    start = TEXT.index('key = "risk-ledger"')
    block_start = TEXT.rindex("[[phases.tasks]]", 0, start)
    block_end = TEXT.index("[[phases.tasks]]", start)
    report = await load_plan_into(db, plan_of(TEXT[:block_start] + TEXT[block_end:]), now=T1)
    assert report.archived["tasks"] == 1
    assert report.archived["assignments"] == 9
    assert await count(db, m.Task) == 5
    assert await count(db, m.Assignment, m.Assignment.archived_at.is_(None)) == 52


async def test_every_load_is_audited(db: Database) -> None:
    await load_plan_into(db, plan_of(TEXT), now=T0, actor="cli")
    await load_plan_into(db, plan_of(TEXT.replace("工作总结", "年度工作总结")), now=T1, actor="run")
    async with db.read() as session:
        entries = list(
            await session.scalars(
                select(m.AuditLog).where(m.AuditLog.action == "plan.load").order_by(m.AuditLog.id)
            )
        )
    assert [(e.actor, e.at) for e in entries] == [("cli", T0), ("run", T1)]
    assert entries[0].details["created"]["assignments"] == 61
    assert entries[1].details["updated"]["tasks"] == 1


async def test_due_time_and_offset_datetimes(db: Database, tmp_path: Path) -> None:
    text = TEXT.replace('due_time = "18:00"', 'due_time = "17:30"').replace(
        "due = 2017-04-10", "due = 2017-04-10T09:00:00+00:00"
    )
    plan = plan_of(text)
    dues = {t.key: t.due for t in plan.tasks}
    assert dues["arrangement"] == datetime(2017, 4, 10, 9, 0, tzinfo=UTC)
    assert dues["research-report"] == datetime(2017, 5, 10, 9, 30, tzinfo=UTC)
