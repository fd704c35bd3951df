"""/report: a unit's report to the office outside any task, and the office's accept / return.

The contact sends text, files or an album in as many messages as they like; the draft grows
in the open conversation until they press Send (`cb.REPORT_SEND`: send or cancel). The
office gets it with `cb.REPORT_ACCEPT` / `cb.REPORT_RETURN`; a return asks for the reason as
the next message.
"""

from __future__ import annotations

from typing import Any

from telegram import Message, Update
from telegram.ext import BaseHandler

from bot.errors import StaleButton
from bot.i18n import t
from bot.messages import callbacks as cb
from bot.services import conversations
from bot.services.catalog import units_by_id
from bot.services.unit_reports import (
    MAX_FILES,
    EmptyReport,
    create_report,
    decide_report,
    pending_report,
)
from handlers.common import Context, Ctx, Reply, button, command, pressed
from handlers.submit import file_of

KIND = "report"
REASON = "report_reason"
TEXT_LIMIT = 20000  # characters a draft keeps (several messages joined)


async def start(ctx: Ctx) -> None:
    """Open a report for the caller's unit (a choice of unit if they have several)."""
    caller = ctx.need_caller()
    caller.require_unit()
    if len(caller.unit_ids) > 1:
        units = await units_by_id(ctx.session, caller.unit_ids)
        ctx.say(
            t("work.report_pick_unit", ctx.lang),
            [[(u.name, cb.REPORT_UNIT.data(u.id))] for u in units],
        )
        return
    await _open(ctx, caller.unit_ids[0])


async def _open(ctx: Ctx, unit_id: int) -> None:
    assert ctx.person is not None
    await ctx.begin(KIND, {"unit_id": unit_id, "text": "", "files": []})
    ctx.say(t("work.report_ask", ctx.lang))


async def on_unit(ctx: Ctx) -> None:
    """Open a report for the chosen unit (`cb.REPORT_UNIT`), one of the caller's own."""
    caller = ctx.need_caller()
    unit_id = pressed(ctx, cb.REPORT_UNIT).id
    if unit_id not in caller.unit_ids:
        raise StaleButton()
    await _open(ctx, unit_id)


def _file_of(message: Message) -> dict[str, Any] | None:
    """Return the file a message carries, as a report stores it (one reader for every kind)."""
    ref = file_of(message)
    return ref.to_json() if ref is not None else None


async def take_message(ctx: Ctx, data: dict[str, Any]) -> None:
    """Add a message (text, caption, file) to the open report draft."""
    caller = ctx.need_caller()
    caller.require_unit()
    message = ctx.update.effective_message
    assert message is not None and ctx.person is not None
    entry = _file_of(message)
    text = (message.text or message.caption or "").strip()
    if entry is None and not text:
        ctx.say(t("work.report_unsupported", ctx.lang))
        return
    # An album's messages may be handled at once: read the draft under a row lock
    # (PostgreSQL; SQLite's writes are serialised already) so that no file is lost.
    found = await conversations.locked(ctx.session, ctx.person.id, ctx.chat_id)
    if found is None or found.kind != KIND:
        raise StaleButton()
    data = dict(found.data)
    files = list(data.get("files") or [])
    if entry is not None and len(files) < MAX_FILES:
        files.append(entry)
    joined = "\n".join(x for x in (str(data.get("text") or ""), text) if x)[:TEXT_LIMIT]
    conversations.keep(found, {**data, "text": joined, "files": files}, ctx.now)
    ctx.say(
        t(
            "work.report_got",
            ctx.lang,
            files=len(files),
            text=t("work.report_has_text", ctx.lang) if joined else "",
        ),
        [
            [
                (t("work.report_send_button", ctx.lang), cb.REPORT_SEND.data("ok")),
                (t("work.cancel_button", ctx.lang), cb.REPORT_SEND.data("no")),
            ]
        ],
    )


async def on_send(ctx: Ctx) -> None:
    """Send the draft to the office, or drop it (`cb.REPORT_SEND`)."""
    caller = ctx.need_caller()
    choice = pressed(ctx, cb.REPORT_SEND).word
    assert ctx.person is not None
    found = await ctx.conversation_of(KIND)
    data = dict(found.data)
    if choice == "no":
        await ctx.end()
        ctx.replies.append(Reply(t("work.cancelled", ctx.lang), edit=True))
        return
    if not data.get("text") and not data.get("files"):
        raise EmptyReport()
    await ctx.end()
    report = await create_report(
        ctx.session,
        caller,
        int(data["unit_id"]),
        text=str(data.get("text") or ""),
        files=list(data.get("files") or []),
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    ctx.replies.append(Reply(t("work.report_sent", ctx.lang, files=len(report.files)), edit=True))


async def on_accept(ctx: Ctx) -> None:
    """Accept a report (`cb.REPORT_ACCEPT`)."""
    caller = ctx.need_caller()
    _, unit = await decide_report(
        ctx.session,
        caller,
        pressed(ctx, cb.REPORT_ACCEPT).id,
        accept=True,
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    text = t("work.report_accept_done", ctx.lang, unit=unit.name, who=caller.person.name)
    ctx.replies.append(Reply(text, toast=text))


async def on_return(ctx: Ctx) -> None:
    """Ask for the reason of returning a report (`cb.REPORT_RETURN`)."""
    caller = ctx.need_caller()
    report, unit = await pending_report(ctx.session, caller, pressed(ctx, cb.REPORT_RETURN).id)
    assert ctx.person is not None
    await ctx.begin(REASON, {"report_id": report.id})
    ctx.say(t("work.report_ask_reason", ctx.lang, unit=unit.name))


async def take_reason(ctx: Ctx, data: dict[str, Any], reason: str) -> None:
    """Complete a report's return with the reason typed."""
    caller = ctx.need_caller()
    assert ctx.person is not None
    await ctx.end()
    report_id = data.get("report_id")
    if not isinstance(report_id, int):
        raise StaleButton()
    _, unit = await decide_report(
        ctx.session,
        caller,
        report_id,
        accept=False,
        reason=reason.strip()[:1000],
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    ctx.say(t("work.report_return_done", ctx.lang, unit=unit.name))


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the /report handlers and their buttons."""
    return [
        command("report", start),
        button(on_unit, cb.REPORT_UNIT),
        button(on_send, cb.REPORT_SEND),
        button(on_accept, cb.REPORT_ACCEPT),
        button(on_return, cb.REPORT_RETURN),
    ]
