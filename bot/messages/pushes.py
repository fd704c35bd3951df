"""Builders of messages pushed through the outbox: nudges and the buttons of pushed messages.

The planner's scheduled nudge and the office's manual nudge carry the same three buttons
(submit, ask for more time, details); a task added in the chat carries submit and details, a
notice its 收到; the office's notices of a submission, an extension request and a unit's
report carry their decision buttons. Callback data comes from `callbacks`.
"""

from __future__ import annotations

import html
from datetime import datetime
from functools import lru_cache
from typing import Any

from bot.domain.deadlines import days_left, days_overdue
from bot.domain.reminders import Stage, time_left
from bot.i18n import Markup, format_moment, plain, t
from bot.messages import callbacks as cb

# Rows of buttons as the Bot API takes them in a payload: {"text", "callback_data"}.
ButtonRows = list[list[dict[str, str]]]


@lru_cache(maxsize=256)
def _label(key: str, lang: str) -> str:
    """A button's label (the catalogs do not change while the process runs)."""
    return plain(key, lang)


def _row(*buttons: tuple[str, str]) -> ButtonRows:
    return [[{"text": label, "callback_data": data} for label, data in buttons]]


def assignment_buttons(assignment_id: int, lang: str, *, extend: bool = True) -> ButtonRows:
    """Return the buttons under a nudge: submit, ask for more time, details.

    A task just added in the chat is announced without "more time" (`extend=False`).
    """
    buttons = [(_label("reminders.nudge.button_submit", lang), cb.SUBMIT.data(assignment_id))]
    if extend:
        buttons.append(
            (_label("reminders.nudge.button_extend", lang), cb.EXTEND.data(assignment_id))
        )
    buttons.append((_label("reminders.nudge.button_details", lang), cb.DETAILS.data(assignment_id)))
    return _row(*buttons)


def received_buttons(notice_id: int, unit_id: int, lang: str) -> ButtonRows:
    """Return the button under a notice to one unit: 收到 (received)."""
    return _row((plain("work.received_button", lang), cb.NOTICE_RECEIVED.data(notice_id, unit_id)))


def report_buttons(report_id: int, lang: str) -> ButtonRows:
    """Return the office's buttons under a unit's report: accept, return."""
    return _row(
        (plain("review.accept_button", lang), cb.REPORT_ACCEPT.data(report_id)),
        (plain("review.return_button", lang), cb.REPORT_RETURN.data(report_id)),
    )


def review_buttons(submission_id: int, lang: str) -> ButtonRows:
    """Return the office's buttons under a new submission: accept, return."""
    return _row(
        (plain("review.accept_button", lang), cb.REVIEW_ACCEPT.data(submission_id)),
        (plain("review.return_button", lang), cb.REVIEW_RETURN.data(submission_id)),
    )


def extension_buttons(extension_id: int, lang: str) -> ButtonRows:
    """Return the office's buttons under an extension request: approve, reject."""
    return _row(
        (plain("extend.approve_button", lang), cb.EXTENSION_APPROVE.data(extension_id)),
        (plain("extend.reject_button", lang), cb.EXTENSION_REJECT.data(extension_id)),
    )


def nudge_text(
    stage: Stage, task: str, unit: str, due: datetime, tz: str, lang: str, at: datetime
) -> Markup:
    """Render the nudge of one stage to a unit's contacts, with the days left or late at `at`."""
    params: dict[str, Any] = {"task": task, "unit": unit, "due": format_moment(due, tz, lang)}
    if stage.kind == "before":
        days, hours = time_left(due, at)
        left = (
            t("reminders.nudge.left_days", lang, days=days)
            if days
            else t("reminders.nudge.left_hours", lang, hours=hours)
        )
        return t("reminders.nudge.before", lang, left=left, **params)
    if stage.kind == "due":
        return t("reminders.nudge.due", lang, **params)
    return t("reminders.nudge.overdue", lang, days=days_overdue(due, at), **params)


# Where a unit's name goes in a nudge rendered once for many units. NUL is in no catalog text,
# task title or unit name: PostgreSQL cannot store it and every update is stripped of it.
_UNIT_SLOT = "\x00unit\x00"


class NudgeTexts:
    """`nudge_text` for many units at once: what all of them share is rendered once.

    A planning tick nudges thousands of units about the same task, deadline and stage; the
    text differs only by the unit's name. Each (stage kind, task, deadline, zone, language,
    moment) is rendered once with a slot for the unit, which `text` fills (escaped as `t`
    escapes a parameter). Keep one per tick: it holds every text it rendered.
    """

    def __init__(self) -> None:
        self._rendered: dict[tuple[str, str, datetime, str, str, datetime], str] = {}

    def text(
        self, stage: Stage, task: str, unit: str, due: datetime, tz: str, lang: str, at: datetime
    ) -> Markup:
        """Return `nudge_text(stage, task, unit, due, tz, lang, at)`."""
        key = (stage.kind, task, due, tz, lang, at)
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = nudge_text(stage, task, Markup(_UNIT_SLOT), due, tz, lang, at)
            self._rendered[key] = rendered
        return Markup(rendered.replace(_UNIT_SLOT, html.escape(unit, quote=False)))


def manual_nudge_text(
    task: str, unit: str, due: datetime, overdue: bool, tz: str, lang: str, at: datetime
) -> Markup:
    """Render the office's manual nudge to a unit's contacts (days left, or days late)."""
    days = (
        t("nudge_manual.overdue", lang, days=days_overdue(due, at))
        if overdue
        else t("nudge_manual.left", lang, days=days_left(due, at))
    )
    return t(
        "nudge_manual.text", lang, unit=unit, task=task, due=format_moment(due, tz, lang), days=days
    )
