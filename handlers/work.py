"""/assign and /notice: work the office adds in the chat (SPEC §4.6).

Both are short conversations kept in the database (any process takes the next step):

- /assign: title → deadline → evidence (`cb.EVIDENCE`) → units (handlers.picker) →
  instructions (text, file, or `cb.INSTRUCTIONS_SKIP`) → confirm (`cb.WORK_CONFIRM`).
- /notice: content (text or file; `/notice TEXT` gives it at once) → units → optional
  deadline (text or `cb.NOTICE_NO_DEADLINE`) → confirm. `/notice` alone lists notices
  (`cb.NOTICE_VIEW` opens one; `cb.NOTICE_REMIND` reminds the units not yet received);
  `cb.NOTICE_RECEIVED` is 收到.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from telegram import Message, Update
from telegram.ext import BaseHandler

from bot.errors import StaleButton
from bot.i18n import Markup, format_moment, t
from bot.messages import callbacks as cb
from bot.services.adhoc import (
    EVIDENCE,
    add_task,
    clean_title,
    live_phases,
    phase_for,
    read_deadline,
    target_units,
)
from bot.services.audit import record
from bot.services.catalog import pressed_kind
from bot.services.notices import (
    EmptyNotice,
    NoticeFile,
    create_notice,
    list_notices,
    notice_state,
    receive,
    remind_again,
    title_of,
)
from handlers.common import Context, Ctx, Reply, button, command, pressed
from handlers.picker import pick_buttons, target_buttons, unit_ids_of

ASSIGN = "assign"
NOTICE = "notice"
KINDS = (ASSIGN, NOTICE)


# What the audit keeps of each step (a notice's text and files stay in the notice itself).
AUDITED = ("title", "due", "evidence", "target", "chosen")


async def _open(ctx: Ctx, kind: str, step: str, data: dict[str, Any]) -> None:
    """Move the conversation to `step` and audit the step (SPEC §4.6: every step is)."""
    assert ctx.person is not None
    await ctx.begin(kind, {**data, "step": step})
    caller = ctx.need_caller()
    record(
        ctx.session,
        at=ctx.now,
        actor=f"person:{ctx.person.id}",
        action=f"{kind}.step",
        campaign_id=caller.campaign.id,
        details={"step": step, **{k: data[k] for k in AUDITED if data.get(k) is not None}},
    )


async def _current(ctx: Ctx, *steps: str) -> tuple[str, dict[str, Any]]:
    """Return the open /assign or /notice conversation in one of `steps`; else a stale button."""
    assert ctx.person is not None
    found = await ctx.conversation_of(*KINDS)
    if found.data.get("step") not in steps:
        raise StaleButton()
    return found.kind, dict(found.data)


def _due_text(ctx: Ctx, iso: str | None) -> str:
    if not iso:
        return t("work.notice_no_deadline_text", ctx.lang)
    caller = ctx.need_caller()
    return format_moment(datetime.fromisoformat(iso), caller.campaign.timezone, ctx.lang)


# -- /assign ------------------------------------------------------------------------------


async def assign(ctx: Ctx) -> None:
    """Start a new task: ask its title (or take it from the command's arguments)."""
    caller = ctx.need_caller()
    caller.require_office()
    title = " ".join(ctx.context.args or []).strip()
    if title:
        title = clean_title(title)
        await _open(ctx, ASSIGN, "deadline", {"title": title})
        ctx.say(t("work.assign_deadline", ctx.lang, title=title))
        return
    await _open(ctx, ASSIGN, "title", {})
    ctx.say(t("work.assign_title", ctx.lang))


def _evidence_buttons(ctx: Ctx) -> list[list[tuple[str, str]]]:
    rows: list[list[tuple[str, str]]] = [
        [(t(f"work.evidence_{e}", ctx.lang), cb.EVIDENCE.data(e))] for e in EVIDENCE
    ]
    return [*rows, [(t("work.cancel_button", ctx.lang), cb.WORK_CONFIRM.data("no"))]]


def _confirm_buttons(ctx: Ctx, count: int) -> list[list[tuple[str, str]]]:
    return [
        [
            (t("work.confirm_button", ctx.lang, count=count), cb.WORK_CONFIRM.data("ok")),
            (t("work.cancel_button", ctx.lang), cb.WORK_CONFIRM.data("no")),
        ]
    ]


async def _assign_message(ctx: Ctx, data: dict[str, Any], message: Message) -> None:
    caller = ctx.need_caller()
    caller.require_office()
    step = data.get("step")
    text = (message.text or message.caption or "").strip()
    if step == "title" and message.text:
        title = clean_title(text)
        await _open(ctx, ASSIGN, "deadline", {**data, "title": title})
        ctx.say(t("work.assign_deadline", ctx.lang, title=title))
        return
    if step == "deadline" and message.text:
        due = await read_deadline(ctx.session, caller.campaign, text, now=ctx.now)
        await _open(ctx, ASSIGN, "evidence", {**data, "due": due.isoformat()})
        ctx.say(t("work.assign_evidence", ctx.lang, title=data["title"]), _evidence_buttons(ctx))
        return
    if step == "instructions" and (message.text or message.document):
        extra: dict[str, Any] = {"description": text}
        if message.document is not None:
            extra |= {
                "file_id": message.document.file_id,
                "file_name": message.document.file_name or "",
            }
        await _open(ctx, ASSIGN, "confirm", {**data, **extra})
        await _assign_confirm(ctx, {**data, **extra})
        return
    await _reprompt(ctx, ASSIGN, data)


async def _assign_confirm(ctx: Ctx, data: dict[str, Any]) -> None:
    caller = ctx.need_caller()
    units = await target_units(
        ctx.session, caller.campaign.id, data["target"], data.get("chosen") or []
    )
    phase = phase_for(caller.campaign, await live_phases(ctx.session, caller.campaign.id), ctx.now)
    if data.get("file_id"):
        instructions = t("work.file_instructions", ctx.lang, name=data.get("file_name") or "")
    else:
        instructions = data.get("description") or t("work.no_instructions", ctx.lang)
    ctx.say(
        t(
            "work.assign_confirm",
            ctx.lang,
            title=data["title"],
            due=_due_text(ctx, data["due"]),
            evidence=t(f"work.evidence_{data['evidence']}", ctx.lang),
            units=len(units),
            instructions=str(instructions)[:500],
            phase=phase.name,
        ),
        _confirm_buttons(ctx, len(units)),
    )


async def on_evidence(ctx: Ctx) -> None:
    """Take the evidence (`cb.EVIDENCE`: file, text, any, none) and ask for the units."""
    caller = ctx.need_caller()
    caller.require_office()
    evidence = pressed(ctx, cb.EVIDENCE).word
    kind, data = await _current(ctx, "evidence")
    if kind != ASSIGN:
        raise StaleButton()
    await _open(ctx, ASSIGN, "units", {**data, "evidence": evidence})
    ctx.say(
        t("work.assign_units", ctx.lang, title=data["title"]), await target_buttons(ctx, caller)
    )


async def on_skip(ctx: Ctx) -> None:
    """Add no instructions (`cb.INSTRUCTIONS_SKIP`) and show the summary to confirm."""
    caller = ctx.need_caller()
    caller.require_office()
    kind, data = await _current(ctx, "instructions")
    if kind != ASSIGN:
        raise StaleButton()
    await _open(ctx, ASSIGN, "confirm", data)
    await _assign_confirm(ctx, data)


async def _assign_finish(ctx: Ctx, data: dict[str, Any]) -> None:
    caller = ctx.need_caller()
    units = await target_units(
        ctx.session, caller.campaign.id, data["target"], data.get("chosen") or []
    )
    added = await add_task(
        ctx.session,
        caller.campaign,
        title=data["title"],
        due_at=datetime.fromisoformat(data["due"]),
        evidence=data["evidence"],
        units=units,
        description=str(data.get("description") or ""),
        file_id=data.get("file_id"),
        file_name=data.get("file_name"),
        actor=f"person:{caller.person.id}",
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    ctx.replies.append(
        Reply(
            t(
                "work.assign_done",
                ctx.lang,
                title=added.task.title,
                due=format_moment(added.task.due_at, caller.campaign.timezone, ctx.lang),
                count=added.units,
            ),
            edit=True,
        )
    )


# -- the unit picker ----------------------------------------------------------------------


async def on_units(ctx: Ctx) -> None:
    """Choose the units: all, one kind, or ticked one by one on pages, then done."""
    caller = ctx.need_caller()
    caller.require_office()
    button = pressed(ctx, cb.UNITS_CHOICE, cb.UNITS_KIND, cb.UNITS_TOGGLE, cb.UNITS_PAGE)
    kind, data = await _current(ctx, "units")
    if button.kind == cb.UNITS_CHOICE and button.word == "all":
        await _units_chosen(ctx, kind, {**data, "target": "all"})
    elif button.kind == cb.UNITS_KIND:
        found = await pressed_kind(ctx.session, caller, button.id)
        await _units_chosen(ctx, kind, {**data, "target": f"kind:{found.id}"})
    elif button.kind == cb.UNITS_CHOICE and button.word == "done":
        await _units_chosen(ctx, kind, {**data, "target": "units"})
    else:
        chosen = list(data.get("chosen") or [])
        page = int(data.get("page") or 0)
        if button.kind == cb.UNITS_PAGE:
            page = button.id
        if button.kind == cb.UNITS_TOGGLE:
            unit_id = button.id
            if unit_id not in await unit_ids_of(ctx, caller):
                raise StaleButton()
            chosen = (
                [u for u in chosen if u != unit_id] if unit_id in chosen else [*chosen, unit_id]
            )
        data = {**data, "chosen": chosen, "page": page, "target": "units"}
        await _open(ctx, kind, "units", data)
        ctx.replies.append(
            Reply(
                t("work.units_pick_title", ctx.lang, count=len(chosen)),
                await pick_buttons(ctx, caller, data),
                edit=True,
            )
        )


async def _units_chosen(ctx: Ctx, kind: str, data: dict[str, Any]) -> None:
    caller = ctx.need_caller()
    # Refuses an empty choice in one line; the conversation stays at the units step.
    await target_units(ctx.session, caller.campaign.id, data["target"], data.get("chosen") or [])
    if kind == ASSIGN:
        await _open(ctx, ASSIGN, "instructions", data)
        ctx.say(
            t("work.assign_instructions", ctx.lang),
            [
                [
                    (t("work.skip_button", ctx.lang), cb.INSTRUCTIONS_SKIP.data("skip")),
                    (t("work.cancel_button", ctx.lang), cb.WORK_CONFIRM.data("no")),
                ]
            ],
        )
        return
    await _open(ctx, NOTICE, "deadline", data)
    ctx.say(
        t("work.notice_ask_deadline", ctx.lang),
        [
            [
                (t("work.notice_no_deadline", ctx.lang), cb.NOTICE_NO_DEADLINE.data("none")),
                (t("work.cancel_button", ctx.lang), cb.WORK_CONFIRM.data("no")),
            ]
        ],
    )


async def _reprompt(ctx: Ctx, kind: str, data: dict[str, Any]) -> None:
    """Repeat what the open step expects (a message that does not fit it)."""
    caller = ctx.need_caller()
    step = data.get("step")
    prompts: dict[tuple[str, str], str] = {
        (ASSIGN, "title"): "work.assign_title",
        (ASSIGN, "deadline"): "work.assign_deadline",
        (ASSIGN, "instructions"): "work.assign_instructions",
        (NOTICE, "content"): "work.notice_ask_content",
        (NOTICE, "deadline"): "work.notice_ask_deadline",
    }
    key = prompts.get((kind, str(step)))
    if key is not None:
        ctx.say(t(key, ctx.lang, title=data.get("title", "")))
        return
    if step == "evidence":
        ctx.say(t("work.assign_evidence", ctx.lang, title=data["title"]), _evidence_buttons(ctx))
    elif step == "units":
        ctx.say(t("work.notice_units", ctx.lang), await target_buttons(ctx, caller))
    elif kind == ASSIGN:
        await _assign_confirm(ctx, data)
    else:
        await _notice_confirm(ctx, data)


# -- confirm / cancel ---------------------------------------------------------------------


async def on_confirm(ctx: Ctx) -> None:
    """Finish (`cb.WORK_CONFIRM` ok, at the confirm step) or cancel (no, at any step)."""
    caller = ctx.need_caller()
    caller.require_office()
    choice = pressed(ctx, cb.WORK_CONFIRM).word
    assert ctx.person is not None
    if choice == "no":
        kind, _ = await _current(
            ctx, "title", "deadline", "evidence", "units", "instructions", "content", "confirm"
        )
        await ctx.end()
        record(
            ctx.session,
            at=ctx.now,
            actor=f"person:{ctx.person.id}",
            action=f"{kind}.cancel",
            campaign_id=caller.campaign.id,
        )
        ctx.replies.append(Reply(t("work.cancelled", ctx.lang), edit=True))
        return
    kind, data = await _current(ctx, "confirm")
    await ctx.end()
    if kind == ASSIGN:
        await _assign_finish(ctx, data)
    else:
        await _notice_finish(ctx, data)


# -- /notice ------------------------------------------------------------------------------


async def notice(ctx: Ctx) -> None:
    """List notices (office and leaders); `/notice TEXT` (office) starts a new one."""
    caller = ctx.need_caller()
    caller.require_overseer()
    text = " ".join(ctx.context.args or []).strip()
    if text:
        caller.require_office()
        message = ctx.update.effective_message
        # Keep the office's line breaks: the text after the command, as typed.
        raw = (message.text or "") if message else ""
        body = raw.split(None, 1)[1].strip() if len(raw.split(None, 1)) > 1 else text
        await _open(ctx, NOTICE, "units", {"text": body, "file": None})
        ctx.say(t("work.notice_units", ctx.lang), await target_buttons(ctx, caller))
        return
    summaries = await list_notices(ctx.session, caller.campaign.id)
    tz = caller.campaign.timezone
    rows: list[list[tuple[str, str]]] = [
        [
            (
                t(
                    "work.notice_open_button",
                    ctx.lang,
                    title=title_of(s.notice, 20),
                    received=s.received,
                    total=s.total,
                ),
                cb.NOTICE_VIEW.data(s.notice.id),
            )
        ]
        for s in summaries
    ]
    if caller.is_office:
        rows.append([(t("work.notice_new_button", ctx.lang), cb.NOTICE_NEW.data("new"))])
    if not summaries:
        ctx.say(t("work.notice_none", ctx.lang), rows or None)
        return
    lines = [t("work.notice_list_title", ctx.lang, count=len(summaries))]
    lines += [
        t(
            "work.notice_line",
            ctx.lang,
            title=title_of(s.notice),
            moment=format_moment(s.notice.created_at, tz, ctx.lang),
            received=s.received,
            total=s.total,
        )
        for s in summaries
    ]
    ctx.say("\n".join(lines), rows)


async def on_new_notice(ctx: Ctx) -> None:
    """Ask for a new notice's content (`cb.NOTICE_NEW`)."""
    caller = ctx.need_caller()
    caller.require_office()
    await _open(ctx, NOTICE, "content", {"file": None})
    ctx.say(t("work.notice_ask_content", ctx.lang))


async def _notice_message(ctx: Ctx, data: dict[str, Any], message: Message) -> None:
    caller = ctx.need_caller()
    caller.require_office()
    step = data.get("step")
    if step == "content":
        file: dict[str, Any] | None = None
        if message.document is not None:
            file = {
                "kind": "document",
                "file_id": message.document.file_id,
                "file_name": message.document.file_name,
            }
        elif message.photo:
            file = {"kind": "photo", "file_id": message.photo[-1].file_id, "file_name": None}
        text = (message.text or message.caption or "").strip()
        if not text and file is None:
            raise EmptyNotice()
        await _open(ctx, NOTICE, "units", {**data, "text": text, "file": file})
        ctx.say(t("work.notice_units", ctx.lang), await target_buttons(ctx, caller))
        return
    if step == "deadline" and message.text:
        due = await read_deadline(ctx.session, caller.campaign, message.text, now=ctx.now)
        data = {**data, "due": due.isoformat()}
        await _open(ctx, NOTICE, "confirm", data)
        await _notice_confirm(ctx, data)
        return
    await _reprompt(ctx, NOTICE, data)


async def on_no_deadline(ctx: Ctx) -> None:
    """Send the notice without a deadline (`cb.NOTICE_NO_DEADLINE`): show the summary."""
    caller = ctx.need_caller()
    caller.require_office()
    kind, data = await _current(ctx, "deadline")
    if kind != NOTICE:
        raise StaleButton()
    data = {**data, "due": None}
    await _open(ctx, NOTICE, "confirm", data)
    await _notice_confirm(ctx, data)


async def _notice_confirm(ctx: Ctx, data: dict[str, Any]) -> None:
    caller = ctx.need_caller()
    units = await target_units(
        ctx.session, caller.campaign.id, data["target"], data.get("chosen") or []
    )
    file = data.get("file")
    what = Markup(html.escape(str(data.get("text") or "")[:200], quote=False))
    if file:
        name = t("work.notice_file", ctx.lang, name=file.get("file_name") or "")
        what = Markup(f"{name} {what}".strip())
    ctx.say(
        t(
            "work.notice_confirm",
            ctx.lang,
            what=what,
            units=len(units),
            deadline=_due_text(ctx, data.get("due")),
        ),
        _confirm_buttons(ctx, len(units)),
    )


async def _notice_finish(ctx: Ctx, data: dict[str, Any]) -> None:
    caller = ctx.need_caller()
    units = await target_units(
        ctx.session, caller.campaign.id, data["target"], data.get("chosen") or []
    )
    raw = data.get("file")
    file = NoticeFile(raw["kind"], raw["file_id"], raw.get("file_name")) if raw else None
    due = data.get("due")
    _, messages = await create_notice(
        ctx.session,
        caller,
        text=str(data.get("text") or ""),
        file=file,
        units=units,
        deadline_at=datetime.fromisoformat(due) if due else None,
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    ctx.replies.append(
        Reply(t("work.notice_sent", ctx.lang, units=len(units), messages=messages), edit=True)
    )


async def on_view(ctx: Ctx) -> None:
    """Show one notice's receipts (`cb.NOTICE_VIEW`), with "remind again" for the office."""
    caller = ctx.need_caller()
    state = await notice_state(ctx.session, caller, pressed(ctx, cb.NOTICE_VIEW).id)
    tz = caller.campaign.timezone
    notice = state.notice
    deadline = (
        t("work.notice_deadline", ctx.lang, due=format_moment(notice.deadline_at, tz, ctx.lang))
        if notice.deadline_at
        else ""
    )
    total = len(state.received) + len(state.missing)
    lines = [
        t(
            "work.notice_state_title",
            ctx.lang,
            title=title_of(notice, 60),
            moment=format_moment(notice.created_at, tz, ctx.lang),
            deadline=deadline,
            received=len(state.received),
            total=total,
        )
    ]
    if state.received:
        lines.append(t("work.notice_received_head", ctx.lang, count=len(state.received)))
        lines += [
            t(
                "work.notice_received_line",
                ctx.lang,
                unit=unit.name,
                who=who,
                moment=format_moment(at, tz, ctx.lang),
            )
            for unit, who, at in state.received
        ]
    if state.missing:
        lines.append(t("work.notice_missing_head", ctx.lang, count=len(state.missing)))
        lines += [t("work.notice_missing_line", ctx.lang, unit=u.name) for u in state.missing]
    buttons = None
    if caller.is_office and state.missing:
        buttons = [
            [
                (
                    t("work.remind_button", ctx.lang, count=len(state.missing)),
                    cb.NOTICE_REMIND.data(notice.id),
                )
            ]
        ]
    ctx.say("\n".join(lines), buttons)


async def on_remind(ctx: Ctx) -> None:
    """Send the notice again to the units not yet received (`cb.NOTICE_REMIND`)."""
    caller = ctx.need_caller()
    units, messages = await remind_again(
        ctx.session,
        caller,
        pressed(ctx, cb.NOTICE_REMIND).id,
        now=ctx.now,
        default_language=ctx.rt.default_language,
    )
    ctx.pushed = True
    text = t("work.notice_reminded", ctx.lang, units=units, messages=messages)
    ctx.replies.append(Reply(text, toast=text))


async def on_received(ctx: Ctx) -> None:
    """Record 收到 (`cb.NOTICE_RECEIVED`: notice, unit) for the presser's own unit only."""
    caller = ctx.need_caller()
    notice_id, unit_id = pressed(ctx, cb.NOTICE_RECEIVED).ids
    got = await receive(ctx.session, caller, notice_id, unit_id, now=ctx.now)
    if got.first:
        text = t("work.received_done", ctx.lang, unit=got.unit.name)
    else:
        text = t(
            "work.received_before",
            ctx.lang,
            unit=got.unit.name,
            who=got.who,
            moment=format_moment(got.at, caller.campaign.timezone, ctx.lang),
        )
    ctx.replies.append(Reply(text, toast=text))


async def take_message(ctx: Ctx, kind: str, data: dict[str, Any]) -> None:
    """Take a message of an open /assign or /notice conversation."""
    message = ctx.update.effective_message
    assert message is not None
    if kind == ASSIGN:
        await _assign_message(ctx, data, message)
    else:
        await _notice_message(ctx, data, message)


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the /assign and /notice handlers and their buttons."""
    return [
        command("assign", assign),
        command("notice", notice),
        button(on_evidence, cb.EVIDENCE),
        button(on_units, cb.UNITS_CHOICE, cb.UNITS_KIND, cb.UNITS_TOGGLE, cb.UNITS_PAGE),
        button(on_skip, cb.INSTRUCTIONS_SKIP),
        button(on_no_deadline, cb.NOTICE_NO_DEADLINE),
        button(on_confirm, cb.WORK_CONFIRM),
        button(on_new_notice, cb.NOTICE_NEW),
        button(on_view, cb.NOTICE_VIEW),
        button(on_remind, cb.NOTICE_REMIND),
        button(on_received, cb.NOTICE_RECEIVED),
    ]
