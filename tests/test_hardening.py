"""Abuse: refused attempts are audited, guessing is slowed, a removed contact stores nothing."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.db import models as m
from bot.db.engine import Database
from bot.services.invites import FAILED_PER_HOUR_OVERALL, new_code
from tests.harness import T0, Harness, assignment_id, texts
from tests.reliability import record


@pytest.fixture
async def h(sqlite_db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(sqlite_db, T0)
    yield harness
    await harness.close()


async def count(h: Harness, model: object, *where: object) -> int:
    async with h.db.read() as session:
        return int(
            await session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]
        )


async def test_every_refused_attempt_is_audited(h: Harness) -> None:
    stranger = h.user("路人")
    contact = await h.register("contact", "甲县")
    other = await assignment_id(h.db, "county-b", "research-report")
    attempts = [
        (stranger, "/status"),
        (stranger, "/nudge 书面调研报告"),
        (contact, "/nudge 书面调研报告"),
        (contact, "/unit 乙县"),
        (contact, "/people"),
    ]
    buttons = [(contact, f"sub:{other}"), (contact, "rev:ok:1"), (stranger, f"det:{other}")]
    for user, text in attempts:
        [answer] = await h.send(user, text)
        assert answer
    for user, data in buttons:
        assert texts(await h.press(user, data))
    async with h.db.read() as session:
        rows = list(
            await session.scalars(
                select(m.AuditLog)
                .where(m.AuditLog.action == "access.refused")
                .order_by(m.AuditLog.id)
            )
        )
    seen = [row.details["attempt"] for row in rows]
    assert seen == [text for _, text in attempts] + [data for _, data in buttons]
    assert all(row.details["reason"] for row in rows)
    record(
        "abuse",
        "refused commands and forged buttons audited",
        len(rows),
        "one line each, all audited",
    )


async def test_guessing_from_many_accounts_alerts_and_refuses_nobody(h: Harness) -> None:
    # Issue 14 case 4: the all-accounts count used to refuse the next person's valid code.
    assert len(new_code()) >= 22  # 128 random bits, URL-safe
    for i in range(FAILED_PER_HOUR_OVERALL):
        [answer] = await h.send(h.user(f"猜{i}"), f"/start guess{i}")
        assert "无效" in answer
    real = await h.invite("contact", "甲县")
    [ok] = await h.send(h.user("后来者"), f"/start {real}")
    assert "登记成功" in ok
    assert await count(h, m.Role) >= 1
    record(
        "abuse",
        "invite-code guessing from many accounts",
        FAILED_PER_HOUR_OVERALL + 1,
        "50 wrong codes an hour alert the admins; the next person's real code works",
    )


@pytest.mark.parametrize("change", ["removed", "moved"])
async def test_contact_removed_or_moved_mid_submission_stores_nothing(
    h: Harness, change: str
) -> None:
    contact = await h.register("contact", "甲县", name="甲县联络员")
    target = await assignment_id(h.db, "county-a", "research-report")
    await h.press(contact, f"sub:{target}")
    await h.send_document(contact, "报告.pdf")
    async with h.db.write() as session:
        role = await session.scalar(
            select(m.Role).join(m.Person).where(m.Person.telegram_id == contact.id)
        )
        assert role is not None
        role.revoked_at = h.now
        if change == "moved":
            unit = await session.scalar(select(m.Unit.id).where(m.Unit.key == "county-b"))
            session.add(
                m.Role(
                    person_id=role.person_id,
                    campaign_id=role.campaign_id,
                    role="contact",
                    unit_id=unit,
                    created_at=h.now,
                )
            )
    said = texts(await h.press(contact, "sc:ok"))
    assert said and not any("已报送" in x for x in said)
    assert await count(h, m.Submission) == 0
    assert await count(h, m.Outbox) == 0
    record("abuse", f"contact {change} in the middle of a submission", 1, "refused, nothing stored")


async def test_a_whole_conversation_leaves_a_complete_audit_trail(h: Harness) -> None:
    office = await h.register("office", name="主任")
    contact = await h.register("contact", "甲县", name="甲县联络员")
    target = await assignment_id(h.db, "county-a", "research-report")
    steps = []

    async def submit(name: str) -> None:
        await h.press(contact, f"sub:{target}")
        await h.send_document(contact, name)
        await h.press(contact, "sc:ok")
        steps.append("submission.create")

    await submit("v1.pdf")
    [notice] = await h.outbox("review")
    await h.press(office, notice.payload["reply_markup"]["inline_keyboard"][0][1]["callback_data"])
    await h.send(office, "缺少附件")
    steps.append("review.return")
    await submit("v2.pdf")
    second = (await h.outbox("review"))[-1]
    await h.press(office, second.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    steps.append("review.accept")
    await h.send(office, "/reopen 甲县 书面调研报告")
    steps.append("review.reopen")
    other = await assignment_id(h.db, "county-a", "work-summary")
    await h.press(contact, f"ext:{other}")
    await h.send(contact, "9月5日")
    await h.send(contact, "人手不足")
    steps.append("extension.request")
    [ext] = await h.outbox("extension")
    await h.press(office, ext.payload["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    steps.append("extension.approve")
    await h.send(office, "/received 乙县 工作总结")
    steps.append("review.received")
    await h.send(office, "/nudge 专项报告")
    data = next(d for _, d in h.last_buttons(office) if d.startswith("nd:") and d != "nd:no")
    await h.press(office, data)
    steps.append("nudge.manual")
    await h.send(office, "/revoke 甲县联络员")
    role = next(d for _, d in h.last_buttons(office) if d.startswith("rvk:"))
    await h.press(office, role)
    steps.append("role.revoke")
    async with h.db.read() as session:
        rows = list(
            await session.scalars(
                select(m.AuditLog)
                .where(m.AuditLog.action.not_in(("plan.load", "invite.create", "invite.redeem")))
                .order_by(m.AuditLog.id)
            )
        )
    assert [r.action for r in rows] == steps
    assert all(r.actor.startswith("person:") and r.at == h.now for r in rows)
    record(
        "data safety", "every state change of a whole conversation audited", len(steps), "complete"
    )


async def test_a_plan_of_fifty_thousand_units_loads_whole(sqlite_db: Database) -> None:
    from bench.bigplan import big_plan
    from bot.plan import parse_plan
    from bot.services.plan_load import load_plan_into

    plan = parse_plan(big_plan(50_000, 2), "huge.toml")
    expected = plan.assignment_count()
    report = await load_plan_into(sqlite_db, plan, now=T0)
    assert report.created["units"] == 50_000 and report.created["assignments"] == expected
    async with sqlite_db.read() as session:
        units = await session.scalar(select(func.count()).select_from(m.Unit))
        assignments = await session.scalar(select(func.count()).select_from(m.Assignment))
    assert (units, assignments) == (50_000, expected)
    record(
        "bad input", "a plan of 50,000 units", 1, "validated and loaded whole in one transaction"
    )


def test_invite_codes_carry_128_random_bits() -> None:
    codes = [new_code() for _ in range(10_000)]
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(set(codes)) == len(codes)
    # 16 random bytes in URL-safe base64: 22 characters of 6 bits (the last carries 2).
    assert all(len(c) == 22 and set(c) <= alphabet for c in codes)
    assert all(len(base64.urlsafe_b64decode(c + "==")) == 16 for c in codes)
    record("abuse", "invite codes generated", len(codes), "128 random bits each, all distinct")


async def test_backup_copies_a_database_in_use(tmp_path: Path, sqlite_db: Database) -> None:
    from bot.plan import parse_plan
    from bot.services.plan_load import load_plan_into
    from tests.cli import clean_env, run_duban
    from tests.conftest import EXAMPLE

    text = EXAMPLE.read_text(encoding="utf-8")
    await load_plan_into(sqlite_db, parse_plan(text, str(EXAMPLE)), now=T0)
    source = str(sqlite_db.url).split("///", 1)[1]
    env = clean_env(DUBAN_DATABASE_URL=str(sqlite_db.url))
    stop = asyncio.Event()

    async def keep_writing() -> int:
        # The office keeps working while the backup runs.
        written = 0
        while not stop.is_set():
            async with sqlite_db.write() as session:
                session.add(m.AuditLog(at=T0, actor="test", action="test.write", details={}))
            written += 1
            await asyncio.sleep(0.005)
        return written

    before = _counts(source)
    writer = asyncio.create_task(keep_writing())
    copy = tmp_path / "copy.db"
    result = await asyncio.to_thread(
        run_duban, "db", "backup", "-o", str(copy), cwd=tmp_path, env=env
    )
    stop.set()
    written = await writer
    assert result.code == 0, result.err
    after = _counts(source)
    copied = _counts(str(copy))
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # Every table is copied whole; the audit log as it stood at some moment of the backup.
    for table, n in before.items():
        if table != "audit_log":
            assert copied[table] == n == after[table], table
    assert before["audit_log"] <= copied["audit_log"] <= after["audit_log"]
    assert written > 0
    # A second backup never overwrites the first.
    again = await asyncio.to_thread(
        run_duban, "db", "backup", "-o", str(copy), cwd=tmp_path, env=env
    )
    assert again.code != 0 and "exists" in again.err and "Traceback" not in again.err
    record(
        "data safety",
        "duban db backup while the bot writes (SQLite online backup)",
        1,
        f"copy passes integrity_check, every table whole ({written} writes during the backup)",
    )


def _counts(path: str) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        tables = [
            name
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not name.startswith("sqlite_")
        ]
        return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}


async def test_nul_characters_are_dropped_before_the_database(db: Database) -> None:
    # PostgreSQL refuses NUL in text; a person's text must not turn into an error there.
    h = await Harness.create(db, T0)
    try:
        contact = await h.register("contact", "甲县", name="联络\x00员")
        office = await h.register("office")
        [unit] = await h.send(office, "/unit 甲\x00县")
        assert "甲县总工会" in unit
        [answer] = await h.send(office, "甲县\x00交了吗")
        assert "甲县总工会" in answer
        await h.send(contact, "/submit")
        [(_, data)] = [b for b in h.last_buttons(contact) if b[1].startswith("sub:")][:1]
        await h.press(contact, data)
        await h.send(contact, "调研\x00情况：已完成")
        await h.press(contact, "sc:ok")
        async with h.db.read() as session:
            stored = await session.scalar(select(m.Submission.text))
            name = await session.scalar(
                select(m.Person.name).where(m.Person.telegram_id == contact.id)
            )
        assert stored == "调研情况：已完成" and name == "联络员"
    finally:
        await h.close()
    record(
        "bad input",
        f"NUL characters in commands, questions and submissions ({db.dialect})",
        4,
        "dropped; answered and stored as on SQLite",
    )
