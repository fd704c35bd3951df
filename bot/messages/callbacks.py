"""Every button's callback data: one table, built and parsed here only.

Callback data is short and prefixed: a kind's prefix, then its fields, joined by `:`
(`sub:12`, `rev:ok:40`, `nd:7:1716000000`). A button is input like any other: `parse`
accepts only data one of our buttons can hold (row ids are ASCII digits within a
PostgreSQL INTEGER; choices are one of their words) and raises `StaleButton` for anything
else, so forged data never reaches the database. What a parsed id names is re-checked by the
service against the database and the presser's roles.

Telegram allows 1-64 bytes of callback data; the longest here is well under that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import StaleButton
from bot.plan.model import EVIDENCE_KINDS

ID = "id"  # a row id
TOKEN = "token"  # a number that makes a press unique (the manual nudge's moment)
_DIGITS = re.compile(r"[0-9]{1,10}")
_ID_MAX = 2**31 - 1  # PostgreSQL INTEGER
DATA_LIMIT = 64  # Telegram: callback data, bytes


@dataclass(frozen=True)
class Kind:
    """One kind of button: its prefix and what follows (ID, TOKEN or a tuple of words)."""

    prefix: str
    fields: tuple[str | tuple[str, ...], ...]

    def data(self, *values: int | str) -> str:
        """Return the callback data of one button of this kind.

        Raises ValueError if the values do not fit the fields (a bug in the caller).
        """
        # Checked field by field, not by parsing the text back: the planner builds three of
        # these per nudge, tens of thousands a tick.
        if len(values) != len(self.fields):
            raise ValueError(f"{values!r} do not fit {self.prefix}")
        for field, value in zip(self.fields, values, strict=True):
            if not _fits(field, value):
                raise ValueError(f"{values!r} do not fit {self.prefix}")
        text = self.prefix + ":" + ":".join(map(str, values))
        if len(text.encode()) > DATA_LIMIT:
            raise ValueError(f"{values!r} do not fit {self.prefix}")
        return text

    def match(self, data: str) -> tuple[int | str, ...] | None:
        """Return the field values if `data` is a button of this kind, else None."""
        head = self.prefix + ":"
        if not data.startswith(head):
            return None
        raw = data[len(head) :].split(":")
        if len(raw) != len(self.fields):
            return None
        pairs = list(zip(self.fields, raw, strict=True))
        if not all(_fits(field, value) for field, value in pairs):
            return None
        return tuple(int(value) if field == ID else value for field, value in pairs)


def _fits(field: str | tuple[str, ...], value: int | str) -> bool:
    """Whether `value` (as given to `data`, or as read by `match`) is valid for the field."""
    if isinstance(field, tuple):
        return value in field
    if type(value) is int:
        # A row id or a moment as the caller holds it: no text to read back (the planner
        # builds three of these per nudge, tens of thousands a tick).
        return 0 <= value < 10**10 and (field != ID or value <= _ID_MAX)
    text = str(value)
    if _DIGITS.fullmatch(text) is None:
        return False
    return field != ID or int(text) <= _ID_MAX


# The table. Prefixes never overlap, except kinds sharing one where their fields differ
# (`nd:<task>:<token>` and `nd:no`; `wu:all` and `wu:k:<kind>`).
SUBMIT = Kind("sub", (ID,))  # hand in for an assignment
SUBMIT_CONFIRM = Kind("sc", (("ok", "no"),))  # confirm or cancel a submission
EXTEND = Kind("ext", (ID,))  # ask for more time for an assignment
DETAILS = Kind("det", (ID,))  # one assignment's details
EXTENSION_APPROVE = Kind("exa", (ID,))  # the office approves an extension request
EXTENSION_REJECT = Kind("exr", (ID,))  # ... or rejects it
REVIEW_ACCEPT = Kind("rev:ok", (ID,))  # the office accepts a submission
REVIEW_RETURN = Kind("rev:ret", (ID,))  # ... or returns it with a reason
VERSION = Kind("ver", (ID,))  # send one submitted version again
PICK_UNIT = Kind("pick:u", (ID,))  # a choice among units with similar names
PICK_TASK = Kind("pick:t", (ID,))  # ... among tasks
NUDGE_PICK = Kind("nq", (ID,))  # the task to nudge, picked from a list
NUDGE_SEND = Kind("nd", (ID, TOKEN))  # confirm a manual nudge of a task
NUDGE_CANCEL = Kind("nd", (("no",),))  # cancel it
REVOKE = Kind("rvk", (ID,))  # revoke a role
CALENDAR_UNIT = Kind("cal:u", (ID,))  # the unit whose calendar link is wanted
CALENDAR_RENEW = Kind("cal:new", (ID,))  # a new calendar link for a unit
STATUS_MORE = Kind("st", (("full", "overdue", "chart"),))  # more under the short /status
# /assign and /notice (issue 17): the steps of the office's conversation.
EVIDENCE = Kind("we", (EVIDENCE_KINDS,))  # what a new task asks for
UNITS_CHOICE = Kind("wu", (("all", "pick", "done"),))  # all units, choose them, done choosing
UNITS_KIND = Kind("wu:k", (ID,))  # every unit of one kind
UNITS_TOGGLE = Kind("wu:t", (ID,))  # tick or untick one unit
UNITS_PAGE = Kind("wu:p", (ID,))  # another page of units (the page number)
INSTRUCTIONS_SKIP = Kind("wi", (("skip",),))  # a new task without instructions
NOTICE_NO_DEADLINE = Kind("wd", (("none",),))  # a notice without a deadline
WORK_CONFIRM = Kind("wc", (("ok", "no"),))  # add the task / send the notice, or cancel
NOTICE_NEW = Kind("wn", (("new",),))  # start a new notice from the list
NOTICE_VIEW = Kind("nv", (ID,))  # one notice's receipts
NOTICE_REMIND = Kind("nrm", (ID,))  # remind the units that have not received a notice
NOTICE_RECEIVED = Kind("nr", (ID, ID))  # 收到: notice id, unit id
# /report: a unit's report to the office.
REPORT_UNIT = Kind("ru", (ID,))  # the unit a report is from
REPORT_SEND = Kind("rs", (("ok", "no"),))  # send the draft, or drop it
REPORT_ACCEPT = Kind("rp:ok", (ID,))  # the office accepts a report
REPORT_RETURN = Kind("rp:ret", (ID,))  # ... or returns it with a reason

KINDS = (
    SUBMIT,
    SUBMIT_CONFIRM,
    EXTEND,
    DETAILS,
    EXTENSION_APPROVE,
    EXTENSION_REJECT,
    REVIEW_ACCEPT,
    REVIEW_RETURN,
    VERSION,
    PICK_UNIT,
    PICK_TASK,
    NUDGE_PICK,
    NUDGE_SEND,
    NUDGE_CANCEL,
    REVOKE,
    CALENDAR_UNIT,
    CALENDAR_RENEW,
    STATUS_MORE,
    EVIDENCE,
    UNITS_CHOICE,
    UNITS_KIND,
    UNITS_TOGGLE,
    UNITS_PAGE,
    INSTRUCTIONS_SKIP,
    NOTICE_NO_DEADLINE,
    WORK_CONFIRM,
    NOTICE_NEW,
    NOTICE_VIEW,
    NOTICE_REMIND,
    NOTICE_RECEIVED,
    REPORT_UNIT,
    REPORT_SEND,
    REPORT_ACCEPT,
    REPORT_RETURN,
)


@dataclass(frozen=True)
class Pressed:
    """A parsed button: its kind and field values (ids as int, tokens and words as str)."""

    kind: Kind
    values: tuple[int | str, ...]

    @property
    def id(self) -> int:
        """Return the first field, a row id (for kinds whose first field is ID)."""
        value = self.values[0]
        assert isinstance(value, int), self.kind
        return value

    @property
    def ids(self) -> tuple[int, ...]:
        """Return every row id the button carries, in order."""
        return tuple(
            v
            for v, f in zip(self.values, self.kind.fields, strict=True)
            if f == ID and isinstance(v, int)
        )

    @property
    def word(self) -> str:
        """Return the last field as text (a choice or a token)."""
        return str(self.values[-1])


def parse(data: str | None, *kinds: Kind) -> Pressed:
    """Return the button `data` is, among `kinds` (default: every kind).

    Raises StaleButton if no kind accepts it: forged, malformed or from an old version.
    """
    for kind in kinds or KINDS:
        values = kind.match(data or "")
        if values is not None:
            return Pressed(kind, values)
    raise StaleButton()


def prefix_pattern(*kinds: Kind) -> str:
    """Return a regular expression for the prefixes of these kinds (for routing a press).

    Routing is by prefix only: malformed data under a known prefix reaches that handler, which
    refuses it through `parse` in its own frame (audited like any refusal).
    """
    prefixes = sorted({re.escape(kind.prefix + ":") for kind in kinds}, key=len, reverse=True)
    return "^(?:" + "|".join(prefixes) + ")"
