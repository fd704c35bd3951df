"""A campaign with a history for the report tests and the README pictures.

The example campaign at a moment in the research phase: some units handed in on time, some
late, some were returned and handed in again, some were accepted, the rest owe.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.db.engine import Database
from bot.plan import parse_plan
from bot.services.plan_load import load_plan_into
from tests.conftest import EXAMPLE

# Monday 15 May 2017, 10:00 in Shanghai: the first two deadlines have passed.
NOW = datetime(2017, 5, 15, 2, 0, tzinfo=UTC)


async def seed(db: Database, now: datetime = NOW) -> None:
    """Load the example campaign and give it submissions and reviews up to `now`."""
    plan = parse_plan(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    await load_plan_into(db, plan, now=now - timedelta(days=60))
    async with db.write() as session:
        office = m.Person(telegram_id=1, name="办公室主任", created_at=now)
        session.add(office)
        await session.flush()
        rows = list(
            await session.execute(
                select(m.Assignment, m.Unit, m.Task)
                .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
                .join(m.Task, m.Task.id == m.Assignment.task_id)
                .order_by(m.Task.position, m.Unit.position)
            )
        )
        contacts: dict[int, m.Person] = {}
        for assignment, unit, task in rows:
            if unit.id not in contacts:
                contacts[unit.id] = m.Person(
                    telegram_id=1000 + unit.id, name=f"{unit.aliases[0]}联络员", created_at=now
                )
                session.add(contacts[unit.id])
                await session.flush()
            who = contacts[unit.id]
            fate = (unit.position * 7 + task.position * 3) % 6
            if assignment.due_at < now:
                if fate == 0:
                    continue  # owes it: overdue
                early = assignment.due_at - timedelta(days=1 + fate)
                if fate == 1:  # handed in late, not reviewed yet
                    _hand_in(session, assignment, who, 1, assignment.due_at + timedelta(hours=20))
                    assignment.status = "submitted"
                elif fate == 2:  # returned with a reason, handed in again
                    first = _hand_in(session, assignment, who, 1, early)
                    await session.flush()
                    _review(session, first, office, "returned", early + timedelta(hours=3))
                    _hand_in(session, assignment, who, 2, early + timedelta(days=1))
                    assignment.status = "submitted"
                else:  # handed in on time and accepted
                    sub = _hand_in(session, assignment, who, 1, early)
                    await session.flush()
                    _review(session, sub, office, "accepted", early + timedelta(hours=5))
                    assignment.status = "accepted"
            elif fate == 3 and assignment.due_at < now + timedelta(days=40):
                _hand_in(session, assignment, who, 1, now - timedelta(days=1))  # early
                assignment.status = "submitted"


def _hand_in(
    session: AsyncSession, assignment: m.Assignment, who: m.Person, version: int, at: datetime
) -> m.Submission:
    sub = m.Submission(
        assignment_id=assignment.id,
        version=version,
        person_id=who.id,
        kind="document",
        file_id=f"F{assignment.id}-{version}",
        file_name=f"报告-v{version}.pdf",
        file_size=1024,
        late=at > assignment.due_at,
        submitted_at=at,
    )
    session.add(sub)
    return sub


def _review(
    session: AsyncSession, sub: m.Submission, office: m.Person, decision: str, at: datetime
) -> None:
    reason = "请补充典型案例" if decision == "returned" else None
    session.add(
        m.Review(
            submission_id=sub.id,
            reviewer_id=office.id,
            decision=decision,
            reason=reason,
            created_at=at,
        )
    )
