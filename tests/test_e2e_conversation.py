"""End to end: `duban run` and people talking to it through the local Bot API server.

Invites redeemed -> contact /mine -> /submit a document -> the office accepts -> the leader's
/status shows 1/N -> the leader's free text "甲县" shows the unit. The conversation is written
to transcript.md (tests/outputs.py: build/docs/, and docs/ with --publish-docs) so that a
newcomer can see what using duban looks like.
"""

from __future__ import annotations

import asyncio
import re
import signal
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.botapi import FakeUser, LocalBotAPI
from tests import outputs
from tests.cli import clean_env, duban_command, run_duban
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.e2e

TOKEN = "777001:E2E-conversation"
TRANSCRIPT = "transcript.md"
# The fake server enforces one message a second per chat: people type slower than that.
PAUSE = 1.1


def shifted_plan(days_until_report: int) -> str:
    """Return the example campaign moved in time so that the research report is due soon."""
    text = EXAMPLE.read_text(encoding="utf-8")
    today = datetime.now(UTC).astimezone().date()
    shift = (today + timedelta(days=days_until_report)) - date(2017, 5, 10)

    def move(match: re.Match[str]) -> str:
        return (date.fromisoformat(match.group(0)) + shift).isoformat()

    return re.sub(r"\b2017-\d\d-\d\d\b", move, text)


class Transcript:
    """What each person said and what the bot answered, in order."""

    def __init__(self, srv: LocalBotAPI) -> None:
        self.srv = srv
        self.lines: list[str] = []
        self.seen = 0

    def person(self, who: str, what: str) -> None:
        self.flush()
        # Invite codes are random: shown as a placeholder so the transcript reads the same.
        what = re.sub(r"^/start \S+", "/start 〈邀请码〉", what)
        self.lines.append(f"**{who}**: {what}\n")

    def flush(self) -> None:
        """Add what the bot sent (or edited) since the last flush, in the order it happened."""
        shown = ("sendMessage", "sendDocument", "sendPhoto", "editMessageText")
        for request in self.srv.requests[self.seen :]:
            if (
                not request.ok
                or request.method not in shown
                or not isinstance(request.result, dict)
            ):
                continue
            message = request.result
            chat = message["chat"]
            name = chat.get("title") or chat.get("first_name") or str(chat["id"])
            body = message.get("text") or message.get("caption") or ""
            if message.get("document"):
                body = f"📎 {message['document'].get('file_name', '')}\n{body}"
            elif message.get("photo"):
                body = f"🖼\n{body}"
            buttons = [
                b["text"]
                for row in (message.get("reply_markup") or {}).get("inline_keyboard", [])
                for b in row
            ]
            quoted = "\n".join(f"> {line}" if line else ">" for line in body.strip().split("\n"))
            extra = f"\n>\n> [{'] ['.join(buttons)}]" if buttons else ""
            edited = "（修改了上一条）" if request.method == "editMessageText" else ""
            self.lines.append(f"*duban → {name}*{edited}\n\n{quoted}{extra}\n")
        self.seen = len(self.srv.requests)

    def write(self, relative: str) -> None:
        self.flush()
        header = (
            "# What using duban looks like\n\n"
            "This transcript is written by `tests/test_e2e_conversation.py` from a real run of\n"
            "`duban run` against the local Bot API server: the reference campaign, moved in time\n"
            "so that its research report is due in three days. Bold lines are what people sent;\n"
            "quoted blocks are what the bot answered, with its buttons in brackets.\n\n"
        )
        outputs.write(relative, header + "\n".join(self.lines))


def last_with_button(
    srv: LocalBotAPI, chat_id: int, prefix: str, label: str
) -> tuple[dict[str, Any], str]:
    """Find the newest message with a button `prefix…` whose text holds `label`."""
    for message in reversed(srv.sent_to(chat_id)):
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for button in row:
                data = str(button.get("callback_data", ""))
                if data.startswith(prefix) and label in button["text"]:
                    return message, data
    raise AssertionError(f"no button {prefix!r} in chat {chat_id}: {srv.texts_to(chat_id)}")


async def test_contact_submits_office_accepts_leader_sees(tmp_path: Path) -> None:
    plan = tmp_path / "campaign.toml"
    plan.write_text(shifted_plan(3), encoding="utf-8")
    async with LocalBotAPI(token=TOKEN, bot_username="duban_bot") as srv:
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}",
            DUBAN_SCHEDULER_TICK_SECONDS="2",
        )
        log_path = tmp_path / "run.log"
        log = log_path.open("wb")
        proc = await asyncio.create_subprocess_exec(
            *duban_command(),
            "run",
            "--plan",
            str(plan),
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=log,
        )
        script = Transcript(srv)
        try:
            await srv.wait_for(lambda s: s.calls("getUpdates"), timeout=60)

            async def invite(*args: str) -> str:
                made = await asyncio.to_thread(run_duban, "invite", *args, cwd=tmp_path, env=env)
                assert made.code == 0, made.err
                found = re.search(r"start=(\S+)", made.out)
                assert found, made.out
                return found.group(1)

            async def say(user: FakeUser, who: str, text: str, expect: str) -> str:
                """Send a text and return the first new message to that person holding `expect`.

                Pushed messages (announcements, nudges) may arrive in between.
                """
                before = len(srv.sent_to(user.id))
                script.person(who, text)
                srv.send_text(user, text)

                def answered(s: LocalBotAPI) -> str | None:
                    return next((x for x in s.texts_to(user.id)[before:] if expect in x), None)

                found = await srv.wait_for(answered, timeout=20)
                await asyncio.sleep(PAUSE)
                return str(found)

            async def press(user: FakeUser, who: str, prefix: str, label: str) -> None:
                message, data = last_with_button(srv, user.id, prefix, label)
                script.person(who, f"〔按下“{label}”〕")
                before = len(srv.callback_answers)
                srv.press_button(user, message, data)
                await srv.wait_for(lambda s: len(s.callback_answers) > before, timeout=20)
                await asyncio.sleep(PAUSE)

            office = srv.add_user("办公室主任")
            leader = srv.add_user("领导小组组长")
            contact = srv.add_user("甲县联络员")
            for user, who, args in (
                (office, "办公室主任", ("office",)),
                (leader, "领导小组组长", ("leader",)),
                (contact, "甲县联络员", ("contact", "甲县")),
            ):
                code = await invite(*args)
                await say(user, who, f"/start {code}", "登记成功")

            mine = await say(contact, "甲县联络员", "/mine", "已完成 0/")
            assert "书面调研报告" in mine and ("剩 2 天" in mine or "剩 3 天" in mine)

            await say(contact, "甲县联络员", "/submit", "请选择")
            await press(contact, "甲县联络员", "sub:", "书面调研报告")
            await srv.wait_for(
                lambda s: any("请发送《书面调研报告》" in x for x in s.texts_to(contact.id)),
                timeout=20,
            )
            script.person("甲县联络员", "〔发送文件“甲县总工会调研报告.pdf”〕")
            before = len(srv.sent_to(contact.id))
            srv.send_document(contact, "甲县总工会调研报告.pdf", b"%PDF-1.4 report")
            await srv.wait_for(lambda s: len(s.sent_to(contact.id)) > before, timeout=20)
            await asyncio.sleep(PAUSE)
            await press(contact, "甲县联络员", "sc:ok", "确认")
            await srv.wait_for(
                lambda s: any("已报送" in x for x in s.texts_to(contact.id)), timeout=20
            )

            # The office receives the file, copied in, with accept / return buttons (outbox).
            await srv.wait_for(
                lambda s: any(m.get("document") for m in s.sent_to(office.id)), timeout=30
            )
            await asyncio.sleep(PAUSE)
            await press(office, "办公室主任", "rev:ok:", "通过")
            await srv.wait_for(
                lambda s: any("已通过" in x for x in s.texts_to(contact.id)), timeout=30
            )

            status = await say(leader, "领导小组组长", "/status", "合计")
            research = status[status.index("书面调研报告") :]
            assert research.split("\n")[1].count("已报 1/13") == 1, status
            unit = await say(leader, "领导小组组长", "甲县", "已完成 ")
            assert "甲县总工会" in unit and "已通过" in unit
            await say(leader, "领导小组组长", "调研报告谁没交", "未报送")

            # The office looks rather than reads: a chart as a photo, the workbook as a file.
            for command, kind in (("/chart", "photo"), ("/export", "document")):
                before = len(srv.sent_to(office.id))
                script.person("办公室主任", command)
                srv.send_text(office, command)
                await srv.wait_for(
                    lambda s, k=kind, b=before: any(m.get(k) for m in s.sent_to(office.id)[b:]),
                    timeout=30,
                )
                await asyncio.sleep(PAUSE)
            workbook = next(m for m in reversed(srv.sent_to(office.id)) if m.get("document"))
            assert workbook["document"]["file_name"].endswith(".xlsx")

            script.flush()
            assert srv.rejected == [], [str(r) for r in srv.rejected]
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=30)
            log.close()
        output = log_path.read_text(encoding="utf-8", errors="replace")
        assert proc.returncode == 0, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        script.write(TRANSCRIPT)
