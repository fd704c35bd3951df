"""Every kind of message people really send (issue 11): edits, long lists, place names.

Handler depth: the real Application with every handler, updates as Telegram sends them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from bot.db import models as m
from bot.db.engine import Database
from bot.services.delivery import claim
from bot.services.export import build_workbook
from sandbox.botapi.htmlcheck import parse_html
from tests.conftest import EXAMPLE
from tests.harness import BOT_USERNAME, T0, Harness, User, texts
from tests.reliability import message_kind


@pytest.fixture
async def h(sqlite_db: Database) -> AsyncIterator[Harness]:
    harness = await Harness.create(sqlite_db, T0)
    yield harness
    await harness.close()


def _plan_with_units(extra: str) -> str:
    return EXAMPLE.read_text(encoding="utf-8") + "\n" + extra


# ---------------------------------------------------------------------- case 5: edits


async def test_an_edited_command_is_not_run_again(h: Harness) -> None:
    office = await h.register("office", name="主任")
    first = h._message(office, None, text="/invite contact 甲县")
    first["entities"] = [{"type": "bot_command", "offset": 0, "length": 7}]
    calls = await h._feed({"message": first})
    assert any("邀请码" in c.params.get("text", "") for c in calls)
    edited = {**first, "edit_date": int(h.now.timestamp()) + 5}
    replies = [c.params.get("text", "") for c in await h._feed({"edited_message": edited})]
    assert replies == ["修改过的消息不会再次执行，也不会作为新的报送。如需更正，请重新发送。"]
    async with h.db.read() as session:
        codes = await session.scalar(select(func.count()).select_from(m.Invite))
    # One code for the office's own registration, one for /invite: the edit made none.
    assert codes == 2
    message_kind(
        "edited_message (a command edited)",
        "not run again; a registered person is told in one line, groups hear nothing",
    )


async def test_an_edited_text_is_not_a_second_submission(h: Harness) -> None:
    contact = await h.register("contact", "甲县")
    await h.send(contact, "/submit")
    _label, data = next(b for b in h.last_buttons(contact) if "工作部署" in b[0])
    await h.press(contact, data)
    text = h._message(contact, None, text="已召开部署会议")
    await h._feed({"message": text})
    assert any(d == "sc:ok" for _, d in h.last_buttons(contact))
    await h.press(contact, "sc:ok")
    await h._feed({"edited_message": {**text, "text": "已召开部署会议（修改）", "edit_date": 1}})
    async with h.db.read() as session:
        versions = list(await session.scalars(select(m.Submission.text)))
        conversations = await session.scalar(select(func.count()).select_from(m.Conversation))
    assert versions == ["已召开部署会议"] and conversations == 0
    message_kind(
        "edited_message (a submitted text edited)",
        "not a second version, no new confirm; one line says to send again",
    )


# ---------------------------------------------------------------------- case 6: entities


async def test_overdue_for_400_units_splits_on_entities(sqlite_db: Database) -> None:
    units = "\n".join(
        f'[[units]]\nkey = "u-{i:03d}"\nname = "{i:03d}号"\nkind = "county"\n' for i in range(400)
    )
    h = await Harness.create(sqlite_db, T0, _plan_with_units(units))
    try:
        office = await h.register("office", name="主任")
        parts = await h.send(office, "/overdue")
    finally:
        await h.close()
    counts = [len(parse_html(p).entities) for p in parts]
    # The harness refuses a message over 100 entities, as the fake server flags it.
    assert counts and max(counts) <= 100
    joined = "".join(parts)
    assert all(f"{i:03d}号" in joined for i in range(400))
    message_kind(
        "a long answer with many formatted names (/overdue, 400 units)",
        f"split on entities as on length: {len(parts)} messages of at most 100 entities",
    )


# ---------------------------------------------------------------------- case 8: place names


async def test_unit_by_pinyin_of_a_polyphonic_place_name(sqlite_db: Database) -> None:
    unit = (
        '[[units]]\nkey = "changzhi"\nname = "长治市总工会"\nkind = "county"\naliases = ["长治"]\n'
    )
    h = await Harness.create(sqlite_db, T0, _plan_with_units(unit))
    try:
        office = await h.register("office", name="主任")
        [by_initials] = await h.send(office, "/unit cz")
        [by_full] = await h.send(office, "/unit changzhi")
    finally:
        await h.close()
    assert "长治市总工会" in by_initials and "长治市总工会" in by_full


# ---------------------------------------------------------------------- cases 1-3: files


CAPTION = "说明：附件第3页数据为初步统计，正式数据5月12日前补报。"
ALBUM = [
    ("document", "调研报告.docx"),
    ("document", "台账.xlsx"),
    ("document", "典型案例.pdf"),
]


async def _open_submission(h: Harness, task_words: str) -> User:
    contact = await h.register("contact", "甲县", name="甲县联络员")
    await h.send(contact, "/submit")
    _label, data = next(b for b in h.last_buttons(contact) if task_words in b[0])
    await h.press(contact, data)
    return contact


async def _workbook_cells(h: Harness) -> str:
    async with h.db.read() as session:
        campaign = await session.scalar(select(m.Campaign))
        assert campaign is not None
        book = await build_workbook(session, campaign, h.now, "zh")
    return "\n".join(str(cell.value) for sheet in book.sheets for row in sheet.rows for cell in row)


@pytest.mark.parametrize("order", ["as sent", "reversed"])
async def test_an_album_is_one_version_with_every_file_and_the_caption(
    db: Database, order: str
) -> None:
    h = await Harness.create(db, T0)
    try:
        office = await h.register("office", name="主任")
        contact = await _open_submission(h, "书面调研报告")
        parts = [
            h.file_message(
                contact, kind, name, CAPTION if i == 0 else None, media_group_id="13570001"
            )
            for i, (kind, name) in enumerate(ALBUM)
        ]
        if order == "reversed":
            parts.reverse()  # the updates may run in any order (several processes)
        for part in parts:
            # No answer per part: the one confirm prompt waits for the album's last part.
            assert texts(await h._feed({"message": part})) == []
        [prompt] = [r for r in await h.outbox("reply") if r.chat_id == contact.id]
        assert prompt.not_before > h.now  # after a quiet moment
        text = str(prompt.payload["text"])
        assert "3 个文件" in text and CAPTION in text
        assert text.index("调研报告.docx") < text.index("台账.xlsx") < text.index("典型案例.pdf")
        await h.press(contact, "sc:ok")
        async with h.db.read() as session:
            [version] = list(await session.scalars(select(m.Submission)))
            files = list(
                await session.scalars(
                    select(m.SubmissionFile.file_name).order_by(m.SubmissionFile.position)
                )
            )
            left = await session.scalar(select(func.count()).select_from(m.AlbumPart))
        assert version.kind == "album" and version.text == CAPTION
        assert files == [name for _, name in ALBUM] and left == 0
        to_office = [r for r in await h.outbox("review") if r.chat_id == office.id]
        assert [r.payload["method"] for r in to_office] == ["sendDocument"] * 3 + ["sendMessage"]
        notice = str(to_office[-1].payload["text"])
        assert CAPTION in notice and all(name in notice for _, name in ALBUM)
        [unit] = await h.send(office, "/unit 甲县")
        assert CAPTION in unit and all(name in unit for _, name in ALBUM)
        cells = await _workbook_cells(h)
        assert CAPTION in cells and all(name in cells for _, name in ALBUM)
    finally:
        await h.close()
    message_kind(
        "an album (several files, one media_group_id, any order)",
        "one version with every file and the caption; one confirm naming all; the office "
        "gets every file, /unit and the export list them",
    )


@pytest.mark.parametrize(
    ("kind", "name", "shown"),
    [
        ("video", "工作会议录像.mp4", "工作会议录像.mp4"),
        ("audio", "座谈会录音.mp3", "座谈会录音.mp3"),
        ("voice", None, "语音"),
        ("photo", None, "照片"),
    ],
)
async def test_video_audio_voice_and_photo_are_files(
    h: Harness, kind: str, name: str | None, shown: str
) -> None:
    office = await h.register("office", name="主任")
    contact = await _open_submission(h, "书面调研报告")
    [confirm] = await h.send_file(contact, kind, name, size=30 * 1024 * 1024)
    assert shown in confirm and "书面调研报告" in confirm
    await h.press(contact, "sc:ok")
    [row] = [r for r in await h.outbox("review") if r.chat_id == office.id]
    assert row.payload["method"] == f"send{kind.capitalize()}" and kind in row.payload
    message_kind(
        f"{kind} during an open submission",
        "a file like a document: confirmed, stored, sent to the office",
    )


@pytest.mark.parametrize("kind", ["sticker", "location", "contact", "poll"])
async def test_anything_else_gets_one_line_saying_what_is_expected(h: Harness, kind: str) -> None:
    contact = await _open_submission(h, "书面调研报告")
    [answer] = await h.send_file(contact, kind)
    assert "请发送文档、照片、视频、音频或语音" in answer
    # And outside a submission: still answered, never silence.
    await h.press(contact, "sc:no") if h.last_buttons(contact) else None
    async with h.db.write() as session:
        await session.execute(delete(m.Conversation))
    [later] = await h.send_file(contact, kind)
    assert later
    message_kind(
        f"{kind} from a registered person in a private chat",
        "one line saying what is expected (during a submission) or how to ask; never silence",
    )


async def test_the_caption_reaches_the_office_unit_and_export(h: Harness) -> None:
    office = await h.register("office", name="主任")
    contact = await _open_submission(h, "书面调研报告")
    [confirm] = await h.send_file(contact, "document", "调研报告.docx", CAPTION)
    assert CAPTION in confirm
    await h.press(contact, "sc:ok")
    rows = [r for r in await h.outbox("review") if r.chat_id == office.id]
    assert [r.payload["method"] for r in rows] == ["sendDocument", "sendMessage"]
    assert CAPTION in str(rows[-1].payload["text"])
    [unit] = await h.send(office, "/unit 甲县")
    assert CAPTION in unit and "调研报告.docx" in unit
    assert CAPTION in await _workbook_cells(h)
    message_kind(
        "a document with a caption",
        "the caption is the version's text: in the office's notice, /unit and the export",
    )


# ---------------------------------------------------------------------- case 4: topics


FORUM: dict[str, Any] = {
    "id": -1005550042,
    "type": "supergroup",
    "title": "办公室工作群",
    "is_forum": True,
}


async def test_answers_go_to_the_topic_they_were_asked_in(h: Harness) -> None:
    office = await h.register("office", name="主任")
    code = await h.invite("office")
    topic = {"message_thread_id": 42, "is_topic_message": True}
    for text in (f"/start@{BOT_USERNAME} {code}", f"/status@{BOT_USERNAME}", "/chart"):
        calls = [
            c
            for c in await h.send_calls_extra(office, text, chat=FORUM, **topic)
            if c.method.startswith("send")
        ]
        assert calls, text
        assert all(int(c.params.get("message_thread_id", 0)) == 42 for c in calls), text
    # In General (no topic) the answer carries no thread.
    calls = await h.send_calls_extra(office, "/status", chat=FORUM)
    assert [c.params.get("message_thread_id") for c in calls if c.method == "sendMessage"] == [None]
    # What the group receives as the office goes to the topic where it registered.
    async with h.db.read() as session:
        group = await session.scalar(select(m.Person).where(m.Person.telegram_id == FORUM["id"]))
    assert group is not None and group.thread_id == 42
    contact = await _open_submission(h, "书面调研报告")
    await h.send_file(contact, "document", "调研报告.docx")
    await h.press(contact, "sc:ok")
    claimed = await claim(h.db, owner="t", now=h.now, limit=100)
    to_group = [c for c in claimed if c.chat_id == FORUM["id"]]
    assert to_group and all(c.thread_id == 42 for c in to_group)
    assert all(c.thread_id is None for c in claimed if c.chat_id != FORUM["id"])
    message_kind(
        "a command in a forum topic (message_thread_id)",
        "every answer goes to that topic; what the group receives as a role goes to the topic "
        "where it registered",
    )


async def test_a_second_album_replaces_one_not_confirmed(h: Harness) -> None:
    contact = await _open_submission(h, "书面调研报告")
    for group, names in (("g1", ["旧稿.docx", "旧表.xlsx"]), ("g2", ["新稿.docx", "新表.xlsx"])):
        for name in names:
            part = h.file_message(contact, "document", name, media_group_id=group)
            await h._feed({"message": part})
    await h.press(contact, "sc:ok")
    async with h.db.read() as session:
        files = list(await session.scalars(select(m.SubmissionFile.file_name)))
        left = await session.scalar(select(func.count()).select_from(m.AlbumPart))
    assert sorted(files) == ["新稿.docx", "新表.xlsx"] and left == 0


async def test_a_part_later_than_the_prompt_gets_a_prompt_naming_the_whole_album(
    h: Harness,
) -> None:
    contact = await _open_submission(h, "书面调研报告")
    for kind, name in ALBUM[:2]:
        await h._feed({"message": h.file_message(contact, kind, name, media_group_id="g")})
    # The sender took the first prompt already (two files named).
    async with h.db.write() as session:
        await session.execute(
            update(m.Outbox).where(m.Outbox.kind == "reply").values(status="sent")
        )
    kind, name = ALBUM[2]
    await h._feed({"message": h.file_message(contact, kind, name, media_group_id="g")})
    prompts = [r for r in await h.outbox("reply") if r.chat_id == contact.id]
    assert len(prompts) == 2 and "3 个文件" in str(prompts[-1].payload["text"])
    await h.press(contact, "sc:ok")
    async with h.db.read() as session:
        files = list(await session.scalars(select(m.SubmissionFile.file_name)))
    assert sorted(files) == sorted(name for _, name in ALBUM)


async def test_the_office_sees_every_file_of_a_version_again(h: Harness) -> None:
    office = await h.register("office", name="主任")
    contact = await _open_submission(h, "书面调研报告")
    for i, (kind, name) in enumerate(ALBUM):
        caption = CAPTION if i == 0 else None
        part = h.file_message(contact, kind, name, caption, media_group_id="g")
        await h._feed({"message": part})
    await h.press(contact, "sc:ok")
    async with h.db.read() as session:
        version = await session.scalar(select(m.Submission.id))
    calls = await h.press(office, f"ver:{version}")
    assert [c.method for c in calls if c.method.startswith("send")] == [
        "sendDocument",
        "sendDocument",
        "sendDocument",
        "sendMessage",
    ]
    assert CAPTION in texts(calls)[-1]
