"""The counts the database keeps (assignment_counts, units_version) always equal a recount."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, delete, func, select, update

from bot.db import models as m
from bot.db.engine import Database
from bot.plan import parse_plan
from bot.services.plan_load import load_plan_into
from bot.services.progress import campaign_progress
from tests.conftest import EXAMPLE

T0 = datetime(2017, 3, 20, 9, 0, tzinfo=UTC)
STATUSES = ("pending", "submitted", "returned", "accepted")


async def recount(db: Database, now: datetime) -> dict[int, tuple[int, int, int, int]]:
    """Count (total, submitted, accepted, overdue) per task from the assignments themselves."""
    a = m.Assignment
    async with db.read() as session:
        rows = await session.execute(
            select(
                a.task_id,
                func.count(),
                func.sum(case((a.status.in_(("submitted", "accepted")), 1), else_=0)),
                func.sum(case((a.status == "accepted", 1), else_=0)),
                func.sum(
                    case((and_(a.status.in_(("pending", "returned")), a.due_at < now), 1), else_=0)
                ),
            )
            .where(a.archived_at.is_(None))
            .group_by(a.task_id)
        )
        return {r[0]: (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}


async def kept(db: Database, now: datetime) -> dict[int, tuple[int, int, int, int]]:
    """Return the figures `/status` shows, per task with any assignment."""
    async with db.read() as session:
        campaign = await session.scalar(select(m.Campaign))
        assert campaign is not None
        progress = await campaign_progress(session, campaign, now)
    return {t.id: (t.total, t.submitted, t.accepted, t.overdue) for t in progress.tasks if t.total}


async def test_counts_follow_every_kind_of_change(db: Database) -> None:
    await load_plan_into(db, parse_plan(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE)), now=T0)
    rng = random.Random(7)
    async with db.read() as session:
        ids = list(await session.scalars(select(m.Assignment.id)))
        tasks = list(await session.scalars(select(m.Task.id)))
    now = T0 + timedelta(days=60)
    assert await kept(db, now) == await recount(db, now)
    for step in range(40):
        chosen = rng.sample(ids, k=rng.randint(1, 12))
        a = m.Assignment
        async with db.write() as session:
            match step % 5:
                case 0:  # statuses, in one statement (a bulk update) or one by one (ORM)
                    await session.execute(
                        update(a).where(a.id.in_(chosen)).values(status=rng.choice(STATUSES))
                    )
                case 1:
                    for row in await session.scalars(select(a).where(a.id.in_(chosen))):
                        row.status = rng.choice(STATUSES)
                case 2:  # deadlines moved (extensions, plan reloads)
                    shift = timedelta(days=rng.randint(-20, 20))
                    if rng.random() < 0.5:
                        for row in await session.scalars(select(a).where(a.id.in_(chosen))):
                            row.due_at = row.due_at + shift
                    else:
                        await session.execute(
                            update(a).where(a.id.in_(chosen)).values(due_at=now + shift)
                        )
                case 3:  # archived and back
                    value = None if rng.random() < 0.4 else T0
                    await session.execute(
                        update(a).where(a.id.in_(chosen)).values(archived_at=value)
                    )
                case 4:  # nothing counted changes: the planner's bookkeeping
                    await session.execute(
                        update(a).where(a.id.in_(chosen)).values(next_check_at=now)
                    )
        if step == 20:
            async with db.write() as session:
                await session.execute(delete(m.Outbox))
                gone = ids.pop()
                await session.execute(
                    delete(m.Submission).where(m.Submission.assignment_id == gone)
                )
                await session.execute(delete(a).where(a.id == gone))
        for moment in (T0, now):
            assert await kept(db, moment) == await recount(db, moment), f"after step {step}"
    assert tasks


async def test_units_version_moves_with_every_unit_change(db: Database) -> None:
    await load_plan_into(db, parse_plan(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE)), now=T0)

    async def version() -> int:
        async with db.read() as session:
            return int(await session.scalar(select(m.Campaign.units_version)) or 0)

    first = await version()
    assert first > 0
    async with db.write() as session:
        unit = await session.scalar(select(m.Unit).order_by(m.Unit.id))
        assert unit is not None
        unit.aliases = [*unit.aliases, "新别名"]
    second = await version()
    assert second > first
    # Loading the same plan again changes no unit, so the stamp stays.
    await load_plan_into(db, parse_plan(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE)), now=T0)
    third = await version()
    assert third > second  # the reload restored the alias list
    await load_plan_into(db, parse_plan(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE)), now=T0)
    assert await version() == third
