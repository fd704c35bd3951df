"""Every command and button × every role × own/other unit: what is shown, what is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.db import models as m
from bot.db.engine import Database
from tests.harness import T0, Harness, User, texts
from tests.reliability import record

ROLES = ("stranger", "contact", "head", "office", "leader", "admin")

NOT_REGISTERED = "还没有登记"
ONLY_OFFICE = "只供办公室使用"
ONLY_OVERSEERS = "只供办公室和领导小组使用"
ONLY_UNITS = "只供各单位联络员和负责人"
ONLY_ADMIN = "只有管理员"
OTHER_UNIT = "只能查看本单位"
OWN = "甲县总工会"
OTHER = "乙县总工会"

# command -> role -> (must appear, must not appear); a refusal is the only line expected.
ALLOWED = "allowed"
MATRIX: dict[str, dict[str, tuple[str, str | None]]] = {
    "/mine": {
        "contact": (OWN, OTHER),
        "head": (OWN, OTHER),
        "office": (ONLY_UNITS, None),
        "leader": (ONLY_UNITS, None),
        "admin": (ONLY_UNITS, None),
    },
    "/submit": {
        "contact": ("请选择要报送的任务", None),
        "head": ("请选择要报送的任务", None),
        "office": (ONLY_UNITS, None),
        "leader": (ONLY_UNITS, None),
        "admin": (ONLY_UNITS, None),
    },
    "/extend": {
        "contact": ("延期", None),
        "head": ("延期", None),
        "office": ("批准或驳回", None),
        "leader": (ONLY_UNITS, None),
        "admin": ("批准或驳回", None),
    },
    "/status": {
        "contact": (OWN, OTHER),
        "head": (OWN, OTHER),
        "office": ("合计", None),
        "leader": ("合计", None),
        "admin": ("合计", None),
    },
    "/unit 甲县": {r: (OWN, None) for r in ("contact", "head", "office", "leader", "admin")},
    "/unit 乙县": {
        "contact": (OTHER_UNIT, OTHER),
        "head": (OTHER_UNIT, OTHER),
        "office": (OTHER, None),
        "leader": (OTHER, None),
        "admin": (OTHER, None),
    },
    "/task 书面调研报告": {
        "contact": (OWN, OTHER),
        "head": (OWN, OTHER),
        "office": (OTHER, None),
        "leader": (OTHER, None),
        "admin": (OTHER, None),
    },
    "/overdue": {
        "contact": (OWN, OTHER),
        "head": (OWN, OTHER),
        "office": (OTHER, None),
        "leader": (OTHER, None),
        "admin": (OTHER, None),
    },
    "/nudge 书面调研报告": {
        "contact": (ONLY_OFFICE, None),
        "head": (ONLY_OFFICE, None),
        "office": ("催报", None),
        "leader": (ONLY_OFFICE, None),
        "admin": ("催报", None),
    },
    "/invite contact 甲县": {
        "contact": (ONLY_OFFICE, None),
        "head": (ONLY_OFFICE, None),
        "office": ("邀请码已生成", None),
        "leader": (ONLY_OFFICE, None),
        "admin": ("邀请码已生成", None),
    },
    "/invite office": {
        "contact": (ONLY_OFFICE, None),
        "head": (ONLY_OFFICE, None),
        "office": (ONLY_ADMIN, "邀请码已生成"),
        "leader": (ONLY_OFFICE, None),
        "admin": ("邀请码已生成", None),
    },
    "/people": {
        "contact": (ONLY_OFFICE, None),
        "head": (ONLY_OFFICE, None),
        "office": ("人员名单", None),
        "leader": (ONLY_OFFICE, None),
        "admin": ("人员名单", None),
    },
    "/revoke 甲县联络员": {
        "contact": (ONLY_OFFICE, None),
        "head": (ONLY_OFFICE, None),
        "office": ("请选择要撤销的身份", None),
        "leader": (ONLY_OFFICE, None),
        "admin": ("请选择要撤销的身份", None),
    },
    "/reopen 甲县 书面调研报告": {
        "contact": (ONLY_OFFICE, None),
        "head": (ONLY_OFFICE, None),
        "office": ("尚未通过审核", None),
        "leader": (ONLY_OFFICE, None),
        "admin": ("尚未通过审核", None),
    },
    "/received 乙县 工作总结": {
        "contact": (ONLY_OFFICE, None),
        "head": (ONLY_OFFICE, None),
        "office": ("线下收到", None),
        "leader": (ONLY_OFFICE, None),
        "admin": ("线下收到", None),
    },
    "/chart": {
        "contact": (ONLY_OVERSEERS, None),
        "head": (ONLY_OVERSEERS, None),
        "office": ("进度图", None),
        "leader": ("进度图", None),
        "admin": ("进度图", None),
    },
    "/export": {
        "contact": (ONLY_OVERSEERS, None),
        "head": (ONLY_OVERSEERS, None),
        "office": ("导出", None),
        "leader": ("导出", None),
        "admin": ("导出", None),
    },
    "/calendar": {
        "contact": (OWN, OTHER),
        "head": (OWN, OTHER),
        "office": ("/calendar 甲县", None),
        "leader": ("/calendar 甲县", None),
        "admin": ("/calendar 甲县", None),
    },
    "/calendar 乙县": {
        "contact": (OTHER_UNIT, OTHER),
        "head": (OTHER_UNIT, OTHER),
        "office": (OTHER, None),
        "leader": (OTHER, None),
        "admin": (OTHER, None),
    },
    "/assign": {
        "contact": (ONLY_OFFICE, None),
        "head": (ONLY_OFFICE, None),
        "office": ("任务名称", None),
        "leader": (ONLY_OFFICE, None),
        "admin": ("任务名称", None),
    },
    "/notice": {
        "contact": (ONLY_OVERSEERS, None),
        "head": (ONLY_OVERSEERS, None),
        "office": ("还没有发过通知", None),
        "leader": ("还没有发过通知", None),
        "admin": ("还没有发过通知", None),
    },
    "/notice 请各单位自查": {
        "contact": (ONLY_OVERSEERS, None),
        "head": (ONLY_OVERSEERS, None),
        "office": ("发给哪些单位", None),
        "leader": (ONLY_OFFICE, None),
        "admin": ("发给哪些单位", None),
    },
    "/report": {
        "contact": ("请发送情况报告", None),
        "head": ("请发送情况报告", None),
        "office": (ONLY_UNITS, None),
        "leader": (ONLY_UNITS, None),
        "admin": (ONLY_UNITS, None),
    },
    "/campaign": {
        r: ("当前专项工作", None) for r in ("contact", "head", "office", "leader", "admin")
    },
    "/help": {
        "contact": ("/submit", "/nudge"),
        "head": ("/submit", "/nudge"),
        "office": ("/nudge", "/submit —"),
        "leader": ("/status", "/nudge"),
        "admin": ("/invite admin", None),
    },
}


@pytest.fixture
async def h(sqlite_db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(sqlite_db, T0)
    yield harness
    await harness.close()


async def person_for(h: Harness, role: str) -> User:
    if role == "stranger":
        return h.user("路人")
    unit = "甲县" if role in ("contact", "head") else None
    # The contact of 甲县 is named so that /revoke can find them.
    name = "甲县联络员" if role == "contact" else f"{role}-person"
    return await h.register(role, unit, name=name)


@pytest.mark.parametrize("role", ROLES)
async def test_every_command_for_a_role(h: Harness, role: str) -> None:
    if role != "contact":
        await h.register("contact", "甲县", name="甲县联络员")  # someone for /revoke to find
    me = await person_for(h, role)
    failures = []
    for command, expectations in MATRIX.items():
        answers = await h.send(me, command)
        joined = "\n".join(answers)
        if role == "stranger":
            expected: tuple[str, str | None] = (NOT_REGISTERED, OWN)
            if command == "/help":
                expected = ("邀请码", None)
        else:
            expected = expectations[role]
        must, must_not = expected
        if must not in joined or (must_not is not None and must_not in joined):
            failures.append(
                f"{command} as {role}: wanted {must!r} without {must_not!r}, got {joined!r}"
            )
        if not answers:
            failures.append(f"{command} as {role}: silence")
    assert not failures, "\n".join(failures)
    record(
        "abuse",
        f"every command as {role} (own and other unit)",
        len(MATRIX),
        "shown or refused exactly as the README's role table",
    )


async def _ids(h: Harness) -> dict[str, int]:
    async with h.db.read() as session:
        other = await session.scalar(
            select(m.Assignment.id)
            .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
            .where(m.Unit.key == "county-b")
            .limit(1)
        )
        task = await session.scalar(select(m.Task.id).where(m.Task.key == "research-report"))
        unit = await session.scalar(select(m.Unit.id).where(m.Unit.key == "county-b"))
    assert other and task and unit
    return {"other_assignment": other, "task": task, "other_unit": unit}


@pytest.mark.parametrize("role", ROLES)
async def test_forged_buttons_change_nothing(h: Harness, role: str) -> None:
    me = await person_for(h, role)
    ids = await _ids(h)
    # A real submission from 乙县 so that review buttons point at something.
    other_contact = await h.register("contact", "乙县")
    await h.press(other_contact, f"sub:{ids['other_assignment']}")
    await h.send_document(other_contact)
    await h.press(other_contact, "sc:ok")
    async with h.db.read() as session:
        submission = await session.scalar(select(m.Submission.id))
    before = await h.outbox()
    forged = [
        f"sub:{ids['other_assignment']}",
        f"ext:{ids['other_assignment']}",
        f"det:{ids['other_assignment']}",
        f"pick:u:{ids['other_unit']}",
        "sc:ok",
        "nd:no",
        "sub:999999",
        "sub:abc",
        "rev:ok:999999",
        "exa:999999",
        "rvk:999999",
        f"nr:1:{ids['other_unit']}",
        "nv:999999",
        "nrm:999999",
        "rp:ok:999999",
        "rp:ret:999999",
        "wc:ok",
        "wu:all",
        "we:file",
        "zzz:1",
    ]
    overseer_allowed = {f"det:{ids['other_assignment']}", f"pick:u:{ids['other_unit']}"}
    office_allowed = {
        f"rev:ok:{submission}",
        f"rev:ret:{submission}",
        f"ver:{submission}",
        f"nd:{ids['task']}:1",
    }
    forged += sorted(office_allowed)
    for data in forged:
        calls = await h.press(me, data)
        said = "\n".join(texts(calls))
        assert any(c.method == "answerCallbackQuery" for c in calls), data
        if role in ("office", "admin") and data in office_allowed | overseer_allowed:
            continue
        if role == "leader" and data in overseer_allowed:
            continue
        assert OTHER not in said or "只能" in said, (role, data, said)
    after = await h.outbox()
    if role not in ("office", "admin"):
        # Nothing was sent on anybody's behalf and no review happened.
        assert [r.key for r in after] == [r.key for r in before]
        async with h.db.read() as session:
            reviews = list(await session.scalars(select(m.Review)))
        assert reviews == []
    record(
        "abuse",
        f"forged and stale buttons pressed as {role}",
        len(forged),
        "nothing leaked or changed",
    )
