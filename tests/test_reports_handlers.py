"""/chart, /export and /calendar through the real Application: what each role receives."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from icalendar import Calendar
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import select, update

from bot.config import HttpConfig
from bot.db import models as m
from bot.db.engine import Database
from tests.harness import T0, Call, Harness, texts

ONLY_OVERSEERS = "只供办公室和领导小组使用"


@pytest.fixture
async def h(db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(db, T0)
    yield harness
    await harness.close()


def upload(calls: list[Call], method: str) -> tuple[str, bytes, str]:
    """Return the one file the bot uploaded with this method."""
    sent = [c for c in calls if c.method == method]
    assert len(sent) == 1, [c.method for c in calls]
    field = "photo" if method == "sendPhoto" else "document"
    return sent[0].files[field]


def events(data: bytes) -> list[object]:
    return list(Calendar.from_ical(data).walk("VEVENT"))


async def test_office_gets_the_chart_as_a_photo(h: Harness) -> None:
    office = await h.register("office")
    calls = await h.send_calls(office, "/chart")
    name, data, mime = upload(calls, "sendPhoto")
    assert name.endswith(".png") and mime == "image/png"
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size[0] == 1080
    [caption] = texts(calls)
    assert "职工队伍稳定调研排查化解专项工作" in caption and "进度图" in caption


async def test_leader_gets_the_export_as_a_document(h: Harness) -> None:
    leader = await h.register("leader")
    calls = await h.send_calls(leader, "/export")
    name, data, _ = upload(calls, "sendDocument")
    assert name.endswith(".xlsx") and "stability-2017" in name
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames[0] == "汇总"
    flat = list(book["全部单位任务"].iter_rows(values_only=True))
    assert len(flat) == 62


@pytest.mark.parametrize("command", ["/chart", "/export"])
async def test_contacts_are_refused_reports_in_one_line(h: Harness, command: str) -> None:
    contact = await h.register("contact", "甲县")
    calls = await h.send_calls(contact, command)
    assert [c.method for c in calls] == ["sendMessage"]
    assert ONLY_OVERSEERS in texts(calls)[0]


async def test_contact_gets_the_units_calendar(h: Harness) -> None:
    contact = await h.register("contact", "甲县")
    calls = await h.send_calls(contact, "/calendar")
    name, data, _ = upload(calls, "sendDocument")
    assert name == "county-a.ics"
    async with h.db.read() as session:
        owed = list(
            await session.execute(
                select(m.Assignment, m.Task)
                .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
                .join(m.Task, m.Task.id == m.Assignment.task_id)
                .where(m.Unit.key == "county-a")
            )
        )
    found = events(data)
    assert len(found) == len(owed) == 5
    by_title = {str(e.get("summary")): e for e in found}  # type: ignore[attr-defined]
    for assignment, task in owed:
        [event] = [e for title, e in by_title.items() if task.title in title]
        start = event.decoded("dtstart")  # type: ignore[attr-defined]
        assert start == assignment.due_at and start.tzinfo is not None
        assert start.utcoffset() == timedelta(0)
        [alarm] = event.walk("VALARM")  # type: ignore[attr-defined]
        assert alarm.decoded("trigger") == timedelta(days=-1)
    [caption] = texts(calls)
    assert "甲县总工会" in caption and "5" in caption
    # Without [http] there is no subscription link.
    assert "订阅" not in caption


async def test_calendar_names_units_for_overseers_only(h: Harness) -> None:
    contact = await h.register("contact", "甲县")
    office = await h.register("office")
    refused = await h.send_calls(contact, "/calendar 乙县")
    assert [c.method for c in refused] == ["sendMessage"]
    assert "只能查看本单位" in texts(refused)[0]
    calls = await h.send_calls(office, "/calendar 乙县")
    name, data, _ = upload(calls, "sendDocument")
    assert name == "county-b.ics" and len(events(data)) == 5
    [usage] = await h.send(office, "/calendar")
    assert "/calendar 甲县" in usage


async def test_a_finished_task_stays_marked_done_without_alarm(h: Harness) -> None:
    contact = await h.register("contact", "甲县")
    async with h.db.write() as session:
        await session.execute(
            update(m.Assignment)
            .where(
                m.Assignment.unit_id
                == select(m.Unit.id).where(m.Unit.key == "county-a").scalar_subquery(),
                m.Assignment.task_id
                == select(m.Task.id).where(m.Task.key == "arrangement").scalar_subquery(),
            )
            .values(status="accepted")
        )
    _, data, _ = upload(await h.send_calls(contact, "/calendar"), "sendDocument")
    found = events(data)
    assert len(found) == 5
    done = [e for e in found if "已通过" in str(e.get("summary"))]  # type: ignore[attr-defined]
    assert len(done) == 1 and done[0].walk("VALARM") == []  # type: ignore[attr-defined]


async def test_subscription_link_renew_and_revoke(h: Harness) -> None:
    from bot.http import make_app

    runtime = h.app.bot_data["runtime"]
    runtime.config = runtime.config.model_copy(
        update={"http": HttpConfig(public_url="https://bot.example.org")}
    )
    contact = await h.register("contact", "甲县")
    calls = await h.send_calls(contact, "/calendar")
    link_text = texts(calls)[-1]
    assert "https://bot.example.org/calendar/" in link_text
    token = link_text.split("/calendar/")[1].split(".ics")[0]
    assert len(token) >= 32
    [(_, data)] = h.last_buttons(contact)
    assert data.startswith("cal:new:")
    # The same link each time: a calendar subscribed once keeps working.
    again = texts(await h.send_calls(contact, "/calendar"))[-1]
    assert token in again

    from aiohttp.test_utils import TestClient, TestServer

    app = make_app(h.db, clock=lambda: h.now)
    async with TestClient(TestServer(app)) as client:
        response = await client.get(f"/calendar/{token}.ics")
        assert response.status == 200
        assert response.content_type == "text/calendar"
        assert len(events(await response.read())) == 5

        renewed = await h.press(contact, data)
        new_text = next(c.params["text"] for c in renewed if c.method == "editMessageText")
        new_token = new_text.split("/calendar/")[1].split(".ics")[0]
        assert new_token != token
        assert (await client.get(f"/calendar/{token}.ics")).status == 404
        assert (await client.get(f"/calendar/{new_token}.ics")).status == 200

        # A contact whose role is revoked loses the feed at once.
        async with h.db.write() as session:
            await session.execute(update(m.Role).values(revoked_at=h.now.astimezone(UTC)))
        assert (await client.get(f"/calendar/{new_token}.ics")).status == 404


async def test_a_group_gets_the_file_but_never_a_link(h: Harness) -> None:
    runtime = h.app.bot_data["runtime"]
    runtime.config = runtime.config.model_copy(
        update={"http": HttpConfig(public_url="https://bot.example.org")}
    )
    office = await h.register("office")
    group = {"id": -100777, "type": "supergroup", "title": "办公室群"}
    code = await h.invite("office")
    await h.send(office, f"/start@duban_test_bot {code}", chat=group)
    calls = await h.send_calls(office, "/calendar 甲县", chat=group)
    upload(calls, "sendDocument")
    assert not any("/calendar/" in x for x in texts(calls))


async def test_status_is_short_with_more_buttons(h: Harness) -> None:
    office = await h.register("office")
    [status] = await h.send(office, "/status")
    # The current phase in full, a future one in one line, the units most behind.
    assert "书面调研报告" in status and "⏳ 总结落实" in status
    assert "工作总结" not in status
    assert "最需督促" in status and "1. 甲县总工会 · 逾期 1" in status
    assert "合计" in status and len(status.splitlines()) <= 25
    buttons = dict((data, label) for label, data in h.last_buttons(office))
    assert set(buttons) == {"st:full", "st:overdue", "st:chart"}
    full = texts(await h.press(office, "st:full"))
    assert any("工作总结" in x and "督促检查" in x for x in full)
    late = texts(await h.press(office, "st:overdue"))
    assert any("逾期未报" in x for x in late)
    chart_calls = await h.press(office, "st:chart")
    upload(chart_calls, "sendPhoto")
    contact = await h.register("contact", "甲县")
    refused = texts(await h.press(contact, "st:full"))
    assert any(ONLY_OVERSEERS in x for x in refused)
