"""Bad input, fuzzed: command arguments, free text, buttons, plan files, dates and names.

The chat tests run the real Application (tests/harness.py) on one event loop of their own, so
that Hypothesis can drive it from a plain function; every update must be answered politely,
with HTML Telegram accepts, without an exception reaching the error handler.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, assume, example, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from telegram.ext import CommandHandler, ContextTypes

from bot.db import models as m
from bot.db.engine import Database
from bot.domain.dates import parse_day
from bot.domain.timespec import (
    TimespecError,
    parse_clock,
    parse_duration,
    parse_weekly,
    parse_window,
)
from bot.plan import Plan, PlanInvalid, parse_plan
from bot.services.matching import Candidate, choose, rank
from sandbox.botapi.htmlcheck import HTMLParseError, parse_html, utf16_len
from tests.conftest import EXAMPLE, ROOT
from tests.harness import T0, Call, Harness, User, assignment_id, texts
from tests.reliability import record

T = TypeVar("T")

ROLES = ("stranger", "contact", "head", "office", "leader", "admin")
# SPEC §4.1 and §4.2; the test fuzzes whatever the Application registers, at least these.
SPEC_COMMANDS = {
    "start",
    "help",
    "lang",
    "mine",
    "submit",
    "extend",
    "status",
    "unit",
    "task",
    "overdue",
    "nudge",
    "chart",
    "export",
    "calendar",
    "invite",
    "people",
    "revoke",
    "reopen",
    "received",
    "campaign",
    "assign",
    "notice",
    "report",
}
# Commands that may add rows when their arguments happen to be right; every other command
# must leave every table but the audit log (where refusals go by design) as it was.
# /assign, /notice and /report open a conversation (a row) for their next step.
WRITING_COMMANDS = {"invite", "reopen", "received", "assign", "notice", "report"}
# These ignore their arguments and drawing is the slow part: a few rounds each suffice.
HEAVY_COMMANDS = {"chart": 2, "export": 2}

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)

# -- what people paste ------------------------------------------------------------------

ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")
BIDI = ("\u200e", "\u200f", "\u202a", "\u202b", "\u202d", "\u202e", "\u2066", "\u2067", "\u2069")
INVISIBLE = ZERO_WIDTH + BIDI
EMOJI = (
    "😀",
    "👍🏽",
    "👨\u200d👩\u200d👧\u200d👦",  # a family: one picture made of four joined by ZWJ
    "🏳️\u200d🌈",
    "🧑🏻\u200d💻",
    "🇨🇳",
    "🇪🇺",
    "❤️",
    "#️⃣",
)
FULL_WIDTH = (
    "５月１０日",
    "２０１７年５月２０日",
    "５／２０　９：００",
    "１２３",
    "ｃｏｕｎｔｙ－ａ",
    "／ｈｅｌｐ",
)
HTML_LIKE = (
    "<b>",
    "</b>",
    "</i>",
    '<a href="x">',
    "</a>",
    "&amp;",
    "&lt;script&gt;",
    "<script>alert(1)</script>",
    "<",
    ">",
    "&",
    '"',
    "'",
    "&#0;",
    "&#x1F600;",
    "<tg-spoiler>",
    '<pre><code class="language-x">',
    "<!--",
)
WORDS = ("contact", "head", "office", "leader", "admin", "zh", "en", "@duban_test_bot", "-1", "0")
SEPARATORS = (" ", "  ", "\n", "\t", "\u3000", "\u00a0", "")

EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
EXAMPLE_PLAN = parse_plan(EXAMPLE_TEXT, str(EXAMPLE))
UNIT_NAMES = tuple(name for u in EXAMPLE_PLAN.units for name in (u.key, u.name, *(u.aliases or ())))
TASK_NAMES = tuple(
    name for phase in EXAMPLE_PLAN.phases for task in phase.tasks for name in (task.key, task.title)
)

piece = st.one_of(
    st.sampled_from(INVISIBLE),
    st.sampled_from(EMOJI),
    st.sampled_from(FULL_WIDTH),
    st.sampled_from(HTML_LIKE),
    st.sampled_from(UNIT_NAMES),
    st.sampled_from(TASK_NAMES),
    st.sampled_from(WORDS),
    st.integers().map(str),
    st.text(max_size=12),
)
short_text = st.lists(st.tuples(piece, st.sampled_from(SEPARATORS)), max_size=8).map(
    lambda parts: "".join(p + s for p, s in parts)
)
# Long text is built by repetition: drawing 5,000 characters one by one would be slow.
long_text = st.builds(
    lambda text, times: (text * times)[:5000],
    short_text.filter(bool),
    st.integers(min_value=100, max_value=5000),
)


def fill(text: str, limit: int = 4096) -> str:
    """Return the text repeated to `limit` UTF-16 units: the longest message Telegram takes."""
    repeated = text * (limit // utf16_len(text) + 1)
    return repeated.encode("utf-16-le")[: 2 * limit].decode("utf-16-le", "ignore")


at_limit = short_text.filter(lambda s: bool(s.strip())).map(fill)
ARGS = st.one_of(short_text, short_text, long_text, at_limit, st.text(max_size=300))
# A message Telegram delivers has some text and is not a command.
FREE_TEXT = ARGS.filter(lambda s: bool(s.strip()) and not s.startswith("/"))


def short(text: str) -> str:
    """Return the start of a long input, for assertion messages."""
    return text if len(text) <= 80 else f"{text[:80]}… ({len(text)} characters)"


def full_width(text: str) -> str:
    """Return the text as typed with a Chinese input method's full-width ASCII."""
    return "".join(
        "\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text
    )


# -- a world: the example campaign, the real Application, one event loop ------------------


# Where a swallowed failure would still show: a failed reply, a failed audit, a service.
LOGGERS = ("handlers", "bot")


class _Logged(logging.Handler):
    """Keep the warnings and errors logged while the bot handles updates."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class World:
    """A harness driven from synchronous code, with every error it meets kept."""

    runner: asyncio.Runner
    db: Database
    h: Harness
    logged: _Logged
    errors: list[BaseException] = field(default_factory=list)
    people: dict[str, User] = field(default_factory=dict)
    cases: Counter[str] = field(default_factory=Counter)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the world's loop."""
        return self.runner.run(coro)

    def check(self, what: str, calls: list[Call], *, answered: bool = True) -> list[str]:
        """Assert nothing failed while handling one update; return what the bot said."""
        said = texts(calls)
        what = short(what)  # Hypothesis prints the whole input; the message need not
        errors, self.errors[:] = list(self.errors), []
        logged, self.logged.records[:] = list(self.logged.records), []
        assert not errors, f"{what!r}: {errors!r}"
        assert not logged, f"{what!r}: {[r.getMessage() for r in logged]}"
        assert not any("Traceback" in s for s in said), f"{what!r}: {[short(s) for s in said]}"
        if answered:
            assert said, f"{what!r}: no answer"
        return said

    def send(self, user: User, text: str, chat: dict[str, Any] | None = None) -> list[Call]:
        """Send a message and return the calls the bot made."""
        self.errors.clear()  # a failed example must not blame the next one
        self.logged.records.clear()
        return self.run(self.h.send_calls(user, text, chat))

    def press(self, user: User, data: str) -> list[str]:
        """Press a button; it must be answered (no spinner left) and nothing may fail."""
        self.errors.clear()
        self.logged.records.clear()
        calls = self.run(self.h.press(user, data))
        said = self.check(data, calls)
        assert any(c.method == "answerCallbackQuery" for c in calls), (
            f"{short(data)!r}: spinner left"
        )
        return said

    def counts(self) -> dict[str, int]:
        """Return the number of rows of every table but the audit log."""
        return self.run(_counts(self.db))

    def outbox_problems(self) -> list[str]:
        """Return every queued message Telegram would refuse (bad HTML, too long)."""
        problems = []
        for row in self.run(self.h.outbox()):
            payload = row.payload
            for name, limit in (("text", 4096), ("caption", 1024)):
                if name in payload:
                    problem = refusal(str(payload[name]), payload.get("parse_mode"), limit)
                    if problem:
                        problems.append(f"{row.kind} {row.key}: {problem}")
        return problems


# The audit log and the wrong-code counters record refusals: they are meant to grow.
TABLES = [
    t for t in m.Base.metadata.sorted_tables if t.name not in ("audit_log", "attempt_counters")
]


async def _counts(db: Database) -> dict[str, int]:
    query = select(
        *(select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in TABLES)
    )
    async with db.read() as session:
        row = (await session.execute(query)).one()
    return {name: int(value) for name, value in row._mapping.items()}


def refusal(text: str, parse_mode: Any, limit: int) -> str | None:
    """Return why Telegram would refuse this text, or None."""
    plain = text
    if parse_mode == "HTML":
        try:
            plain = parse_html(text).text
        except HTMLParseError as exc:
            return exc.description
    if not plain.strip():
        return "empty"
    if utf16_len(plain) > limit:
        return f"too long ({utf16_len(plain)} > {limit})"
    return None


def sqlite_copy(sqlite_template: Path, tmp_path: Path) -> Database:
    """Return a freshly migrated SQLite database (the `sqlite_db` fixture, loop-free)."""
    path = tmp_path / "duban.db"
    shutil.copy(sqlite_template, path)
    return Database(f"sqlite+aiosqlite:///{path}")


@contextmanager
def world(db: Database) -> Iterator[World]:
    """Build the example campaign with a person in every role, on a loop of its own."""
    runner = asyncio.Runner()
    h = runner.run(Harness.create(db, T0))
    logged = _Logged()
    for name in LOGGERS:
        logging.getLogger(name).addHandler(logged)
    w = World(runner, db, h, logged)

    async def keep(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if context.error is not None:
            w.errors.append(context.error)

    h.app.add_error_handler(keep)
    try:
        for role in ROLES:
            if role == "stranger":
                user = h.user("路人")
                w.send(user, "/help")  # the first update records the person
            else:
                unit = "甲县" if role in ("contact", "head") else None
                user = runner.run(h.register(role, unit, name=f"{role}-person"))
            w.people[role] = user
        w.check("setup", [], answered=False)
        yield w
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(logged)
        runner.run(h.close())
        runner.run(db.dispose())
        runner.close()


def command_names(h: Harness) -> list[str]:
    """Return every command the Application answers."""
    names: set[str] = set()
    for group in h.app.handlers.values():
        for handler in group:
            if isinstance(handler, CommandHandler):
                names |= set(handler.commands)
    return sorted(names)


# -- 1. chat commands, free text and buttons ----------------------------------------------


def test_fuzzed_arguments_of_every_command_for_every_role(
    sqlite_template: Path, tmp_path: Path
) -> None:
    with world(sqlite_copy(sqlite_template, tmp_path)) as w:
        commands = command_names(w.h)
        assert set(commands) >= SPEC_COMMANDS
        for index, role in enumerate(ROLES):
            fuzz_commands(w, role, commands, index)
        cases = w.cases["commands"]
    assert cases >= len(ROLES) * len(commands) * 3
    record(
        "bad input",
        "fuzzed arguments of every command × every role",
        cases,
        "one polite answer each, no traceback; read-only commands changed nothing",
    )


def fuzz_commands(w: World, role: str, commands: list[str], index: int) -> None:
    """Send each command with drawn arguments as one person, several rounds."""
    user = w.people[role]
    rounds: Counter[str] = Counter()

    @seed(index)
    @settings(FUZZ, max_examples=5)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        for command in commands:
            args = data.draw(ARGS, label=command)
            rounds[command] += 1
            if rounds[command] > HEAVY_COMMANDS.get(command, sys.maxsize):
                continue
            text = f"/{command} {args}" if args else f"/{command}"
            before = w.counts()
            w.check(text, w.send(user, text))
            w.cases["commands"] += 1
            if command not in WRITING_COMMANDS:
                assert w.counts() == before, f"{role} {short(text)!r} changed the database"

    run()


def test_fuzzed_free_text_and_callback_data(sqlite_template: Path, tmp_path: Path) -> None:
    with world(sqlite_copy(sqlite_template, tmp_path)) as w:
        for index, role in enumerate(ROLES):
            fuzz_free_text(w, role, index)
        fuzz_group(w)
        fuzz_conversations(w)
        real = real_callback_data(w)
        for index, role in enumerate(ROLES):
            fuzz_buttons(w, role, real, index)
        assert not w.outbox_problems()
        cases = w.cases
    record(
        "bad input",
        "fuzzed free text and callback data",
        cases["text"] + cases["group"] + cases["conversation"] + cases["button"],
        "one polite answer each (silence in unregistered groups), no traceback; "
        "every queued message valid",
    )


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_fuzzed_callback_data_on_postgres(db: Database) -> None:
    # PostgreSQL's INTEGER keys overflow where SQLite's do not: forged ids must be refused.
    with world(db) as w:
        real = real_callback_data(w)
        for index, role in enumerate(ROLES):
            fuzz_buttons(w, role, real, index, examples=25)
        cases = w.cases["button"]
    record(
        "bad input",
        "fuzzed callback data on PostgreSQL",
        cases,
        "each press answered with one polite line, no traceback",
    )


def fuzz_free_text(w: World, role: str, index: int) -> None:
    """Send drawn messages with no conversation open; overseers' disguised names are found."""
    user = w.people[role]
    overseer = role in ("office", "leader", "admin")

    @seed(100 + index)
    @settings(FUZZ, max_examples=30)
    @given(FREE_TEXT, disguised(units_only=True))
    def run(text: str, unit: tuple[int, str]) -> None:
        before = w.counts()
        w.check(text, w.send(user, text))
        assert w.counts() == before, f"{role} {short(text)!r} changed the database"
        w.cases["text"] += 1
        if overseer:
            wanted, variant = unit
            said = w.check(variant, w.send(user, variant))
            assert f"<b>{EXAMPLE_PLAN.units[wanted].name}</b>" in said[0], (variant, said)
            w.cases["text"] += 1

    run()


def fuzz_group(w: World) -> None:
    """In a group that never redeemed an invite the bot says nothing (SPEC §4.5)."""
    group = {"id": -100_777, "type": "supergroup", "title": "闲聊群"}
    user = w.people["contact"]
    names = [c for c in command_names(w.h) if c != "start"]  # /start CODE registers a group

    @seed(200)
    @settings(FUZZ, max_examples=20)
    @given(FREE_TEXT, st.sampled_from(names), ARGS)
    def run(text: str, command: str, args: str) -> None:
        for message in (text, f"/{command} {args}"):
            calls = w.send(user, message, group)
            w.check(message, calls, answered=False)
            assert calls == [], f"{short(message)!r} answered in an unregistered group"
            w.cases["group"] += 1

    run()


DATE_FORMS = (
    "{d.month}月{d.day}日",
    "{d.year}年{d.month}月{d.day}日",
    "{d.year}-{d.month:02d}-{d.day:02d}",
    "{d.year}/{d.month}/{d.day}",
    "{d.month}/{d.day}",
    "{d.month}.{d.day}",
    "{d.month}月{d.day}号",
)
# After a date ending in a digit the hour needs a space, for people as for the parser.
TIME_FORMS = ("", " {h}:{mi:02d}", " {h}点", " {h}点{mi:02d}分", " {h}：{mi:02d}")


@st.composite
def typed_date(draw: st.DrawFn) -> tuple[str, date, time | None]:
    """Draw a date written as a person writes it (ASCII), and what it means."""
    day = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)))
    form = draw(st.sampled_from(DATE_FORMS))
    clock = draw(st.sampled_from(TIME_FORMS))
    hour, minute = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    text = (form + clock).format(d=day, h=hour, mi=minute)
    moment = time(hour, minute if "{mi" in clock else 0) if clock else None
    return text, day, moment


DATE_INPUT = st.one_of(
    typed_date().map(lambda x: x[0]),
    typed_date().map(lambda x: full_width(x[0])),
    FREE_TEXT,
)


def fuzz_conversations(w: World) -> None:
    """Drawn text where a conversation waits: a submission, a return reason, a new date."""
    contact, office = w.people["contact"], w.people["office"]
    arrangement = w.run(assignment_id(w.db, "county-a", "arrangement"))
    research = w.run(assignment_id(w.db, "county-a", "research-report"))

    @seed(300)
    @settings(FUZZ, max_examples=25)
    @given(FREE_TEXT, FREE_TEXT, DATE_INPUT, FREE_TEXT)
    # The longest texts Telegram delivers, in characters it counts twice.
    @example("😀" * 2048, "&" * 4096, "５月２０日", fill(EMOJI[2]))
    def run(submission: str, reason: str, new_date: str, why: str) -> None:
        w.press(contact, f"sub:{arrangement}")
        w.check(submission, w.send(contact, submission))
        updates = 2
        if "sc:ok" in [data for _, data in w.h.last_buttons(contact)]:
            w.press(contact, "sc:ok")
            reached["submitted"] += 1
            updates += 1
        latest = w.run(latest_submission(w.db))
        if latest is not None:
            said = w.press(office, f"rev:ret:{latest}")
            reached["asked for a reason"] += any("退回" in s for s in said)
            w.check(reason, w.send(office, reason))
            updates += 2
        w.press(contact, f"ext:{research}")
        said = w.check(new_date, w.send(contact, new_date))
        updates += 2
        if any("延期原因" in s for s in said):
            reached["new date taken"] += 1
            w.check(why, w.send(contact, why))
            updates += 1
        # What was typed here goes out to others through the outbox: Telegram must take it.
        assert not w.outbox_problems()
        w.cases["conversation"] += updates

    reached: Counter[str] = Counter()
    run()
    # The drawn text got where it was meant to go, not only to the question router.
    assert all(reached[k] for k in ("submitted", "asked for a reason", "new date taken")), reached


def fuzz_buttons(w: World, role: str, real: list[str], index: int, examples: int = 45) -> None:
    """Press random and mutated real callback data; each press is answered, nothing fails."""
    user = w.people[role]

    @seed(400 + index)
    @settings(FUZZ, max_examples=examples)
    @given(st.one_of(callback_text, mutated_callback(real), st.sampled_from(real)))
    # Always tried: a digit int() refuses, and ids past PostgreSQL's INTEGER and SQLite's.
    @example("sub:²")
    @example(f"ext:{2**31}")
    @example("det:" + "9" * 40)
    def run(data: str) -> None:
        w.press(user, data)
        w.cases["button"] += 1

    run()


# Telegram carries 1-64 bytes of callback data.
callback_text = st.text(min_size=1, max_size=64).filter(lambda s: len(s.encode()) <= 64)
NUMBERS = ("0", "-1", "1.5", "1e3", " 1", "0x1", "", "１２", "١", "²", "①", "2147483648", "9" * 40)
PREFIXES = (
    "sub:",
    "ext:",
    "det:",
    "exa:",
    "exr:",
    "rev:ok:",
    "rev:ret:",
    "ver:",
    "rvk:",
    "nq:",
    "wu:t:",
    "nr:1:",
    "nv:",
    "nrm:",
    "rp:ok:",
)


@st.composite
def mutated_callback(draw: st.DrawFn, real: list[str]) -> str:
    """Draw real callback data changed the way a forged or garbled button would be."""
    data = draw(st.sampled_from(real))
    how = draw(st.sampled_from(("number", "cut", "append", "invisible", "case", "colon", "prefix")))
    if how == "number":
        data = re.sub(r"\d+", lambda _: draw(st.sampled_from(NUMBERS)), data)
    elif how == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif how == "append":
        data += draw(piece)
    elif how == "invisible":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(INVISIBLE)) + data[at:]
    elif how == "case":
        data = data.upper()
    elif how == "colon":
        data = data.replace(":", draw(st.sampled_from(("::", "", "：", ": "))), 1)
    else:
        data = draw(st.sampled_from(PREFIXES)) + data.split(":")[-1]
    data = data.encode()[:64].decode("utf-8", "ignore")
    return data or "x"


def real_callback_data(w: World) -> list[str]:
    """Make a submission and an extension request, and list every kind of button's data."""
    contact = w.people["contact"]
    arrangement = w.run(assignment_id(w.db, "county-a", "arrangement"))
    research = w.run(assignment_id(w.db, "county-a", "research-report"))
    w.press(contact, f"sub:{arrangement}")
    w.check("setup", w.send(contact, "部署情况见附件说明"))
    w.press(contact, "sc:ok")
    w.press(contact, f"ext:{research}")
    w.check("setup", w.send(contact, "6月30日"))
    w.check("setup", w.send(contact, "调研对象多，需要更多时间"))
    return w.run(_real_data(w.db))


async def _real_data(db: Database) -> list[str]:
    async with db.read() as session:
        assignments = list(await session.scalars(select(m.Assignment.id).limit(3)))
        units = list(await session.scalars(select(m.Unit.id).limit(3)))
        tasks = list(await session.scalars(select(m.Task.id).limit(3)))
        submissions = list(await session.scalars(select(m.Submission.id)))
        extensions = list(await session.scalars(select(m.Extension.id)))
        roles = list(await session.scalars(select(m.Role.id)))
    assert submissions and extensions
    token = str(int(T0.timestamp()))
    data = ["nd:no", "sc:ok", "sc:no", "st:full", "st:overdue", "st:chart"]
    data += [f"{p}{a}" for a in assignments for p in ("sub:", "ext:", "det:")]
    data += [f"{p}{u}" for u in units for p in ("pick:u:", "cal:u:", "cal:new:")]
    data += [f"{p}{t}" for t in tasks for p in ("pick:t:", "nq:")] + [f"nd:{tasks[0]}:{token}"]
    data += [f"{p}{s}" for s in submissions for p in ("rev:ok:", "rev:ret:", "ver:")]
    data += [f"{p}{e}" for e in extensions for p in ("exa:", "exr:")]
    data += [f"rvk:{r}" for r in roles]
    # Work outside the plan: the picker, confirms, notices and reports (SPEC §4.6).
    data += ["wc:ok", "wc:no", "wu:all", "wu:pick", "wu:done", "wi:skip", "wd:none", "wn:new"]
    data += ["we:file", "we:none", "rs:ok", "rs:no"]
    data += [f"{p}{u}" for u in units for p in ("wu:t:", "wu:k:", "ru:", "nr:1:")]
    data += [f"{p}1" for p in ("nv:", "nrm:", "rp:ok:", "rp:ret:", "wu:p:")]
    return data


async def latest_submission(db: Database) -> int | None:
    async with db.read() as session:
        found = await session.scalar(select(func.max(m.Submission.id)))
    return int(found) if found is not None else None


# -- 2. plan files --------------------------------------------------------------------------

PLAN_FILES = sorted((ROOT / "examples").glob("*.toml"))
PLAN_TOKENS = (
    '"',
    "[",
    "]",
    "{",
    "}",
    "=",
    '""',
    '"""',
    "'",
    "true",
    "-1",
    "0",
    "1e999",
    "nan",
    "2017-13-45",
    "2017-02-30",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59-12:00",
    "0001-01-01",
    "9999-12-31",
    "09:00",
    '"3x"',
    '"0d"',
    '"400d"',
    '"24:00-09:00"',
    '"Mars/Olympus"',
    '"county"',
    '"nowhere"',
    "[]",
    "[1, 2]",
    '{ after = "1d" }',
    '"５月１０日"',
    '"\u200b"',
    '"' + "x" * 300 + '"',  # longer than a file name may be
    "9" * 5000,  # longer than Python converts to an int
    '"' + "9" * 5000 + 'd"',
    "[" * 1000 + "]" * 1000,  # nested deeper than the TOML reader recurses
)


@st.composite
def mutated_plan(draw: st.DrawFn) -> tuple[str, str]:
    """Draw an example plan file after one to three random edits."""
    path = draw(st.sampled_from(PLAN_FILES))
    lines = path.read_text(encoding="utf-8").split("\n")
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(("delete", "duplicate", "replace", "swap", "insert", "cut")))
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        if how == "delete" and len(lines) > 1:
            del lines[at]
        elif how == "duplicate":
            lines.insert(at, lines[at])
        elif how == "replace":
            # Each key equally likely: the one `timezone` matters as much as 13 unit names.
            keys = sorted({line.split("=")[0].strip() for line in lines if "=" in line})
            if keys:
                key = draw(st.sampled_from(keys))
                at = draw(
                    st.sampled_from([i for i, x in enumerate(lines) if x.strip().startswith(key)])
                )
            token = draw(
                st.one_of(
                    st.sampled_from(PLAN_TOKENS),
                    st.text(max_size=10),
                    st.text(max_size=10).map(json.dumps),
                )
            )
            eq = lines[at].find("=")
            lines[at] = f"{lines[at][: eq + 1]} {token}" if eq >= 0 else token
        elif how == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif how == "insert":
            column = draw(st.integers(0, len(lines[at])))
            noise = draw(st.one_of(piece, st.sampled_from(INVISIBLE + EMOJI)))
            lines[at] = lines[at][:column] + noise + lines[at][column:]
        else:
            text = "\n".join(lines)
            lines = text[: draw(st.integers(0, len(text)))].split("\n")
    return str(path), "\n".join(lines)


def test_random_mutations_of_plan_files() -> None:
    outcomes: Counter[str] = Counter()

    @settings(FUZZ, max_examples=400, derandomize=True)
    @given(mutated_plan())
    @example(("huge.toml", EXAMPLE_TEXT.replace('due_time = "18:00"', "due_time = " + "9" * 5000)))
    @example(
        (
            "deep.toml",
            EXAMPLE_TEXT.replace(
                "extra_holidays = []", "extra_holidays = " + "[" * 1000 + "]" * 1000
            ),
        )
    )
    @example(("open.toml", EXAMPLE_TEXT + '\n[[units]]\nkey = "unterminated'))
    @example(("early.toml", EXAMPLE_TEXT.replace("due = 2017-04-10", "due = 0001-01-01T00:00:00")))
    @example(("zone.toml", EXAMPLE_TEXT.replace('"Asia/Shanghai"', '"' + "x" * 300 + '"')))
    def run(case: tuple[str, str]) -> None:
        file, text = case
        try:
            plan = parse_plan(text, file)
        except PlanInvalid as exc:
            assert exc.errors, "rejected without a reason"
            lines = len(text.splitlines()) or 1
            for error in exc.errors:
                assert error.file == file
                assert str(error).startswith(file), str(error)
                assert error.line is not None or error.key, f"neither line nor key: {error}"
                assert error.line is None or 1 <= error.line <= lines, str(error)
            outcomes["rejected"] += 1
        else:
            assert isinstance(plan, Plan)
            outcomes["valid"] += 1

    run()
    assert outcomes["rejected"] and outcomes["valid"]
    record(
        "bad input",
        "random mutations of plan files",
        outcomes.total(),
        f"{outcomes['rejected']} rejected, each error with file and line or key; "
        f"{outcomes['valid']} still valid; no other exception",
    )


# -- 3. durations, windows and dates -------------------------------------------------------

DIGITS = "0123456789０１２３４５６７８９٠١٢٣٤٥٦٧٨٩²³①⑩𝟓"
date_noise = st.one_of(
    st.text(alphabet=DIGITS + "年月日号点分:：-/.－／． \u3000" + "".join(INVISIBLE), max_size=40),
    st.text(max_size=200),
    st.builds(lambda n: "9" * n + "月1日", st.integers(1, 5000)),
)
spec_noise = st.one_of(
    st.text(alphabet=DIGITS + "smhdwSMHDW:：-－ \tmontuewedthufrisatsun", max_size=20),
    st.text(max_size=60),
    st.builds(lambda n, unit: "9" * n + unit, st.integers(1, 5000), st.sampled_from("smhdw")),
)
not_strings = st.one_of(
    st.none(), st.integers(), st.floats(), st.booleans(), st.lists(st.integers()), st.dates()
)
PARSERS: tuple[Callable[[Any], object], ...] = (
    parse_duration,
    parse_clock,
    parse_window,
    parse_weekly,
)


def test_fuzzed_durations_windows_and_dates() -> None:
    cases: Counter[str] = Counter()
    today = date(2017, 5, 1)

    @settings(FUZZ, max_examples=400, derandomize=True)
    @given(typed_date(), st.lists(st.sampled_from(INVISIBLE), max_size=3), st.data())
    def same_in_full_width(
        typed: tuple[str, date, time | None], marks: list[str], data: Any
    ) -> None:
        text, day, moment = typed
        with_year = str(day.year) in text
        assume(with_year or (day.month, day.day) != (2, 29))
        found = parse_day(text, today)
        assert found is not None, text
        assert (found[0].month, found[0].day, found[1]) == (day.month, day.day, moment)
        assert found[0] == day if with_year else found[0] >= today
        assert parse_day(full_width(text), today) == found, full_width(text)
        # Invisible marks pasted anywhere change nothing.
        marked = text
        for mark in marks:
            at = data.draw(st.integers(0, len(marked)))
            marked = marked[:at] + mark + marked[at:]
        assert parse_day(marked, today) == found, marked
        cases["dates"] += 1

    @settings(FUZZ, max_examples=400, derandomize=True)
    @given(date_noise)
    def dates_never_fail(text: str) -> None:
        found = parse_day(text, today)
        assert found is None or (isinstance(found[0], date) and found[0].year >= 1)
        cases["date noise"] += 1

    @settings(FUZZ, max_examples=400, derandomize=True)
    @given(st.one_of(spec_noise, not_strings), st.sampled_from(PARSERS))
    @example("9" * 5000 + "d", parse_duration)
    def specs_fail_only_their_way(value: Any, parse: Callable[[Any], object]) -> None:
        cases["specs"] += 1
        try:
            result = parse(value)
        except TimespecError:
            return
        assert isinstance(value, str)
        if parse is parse_duration:
            assert parse_duration(str(result)) == result
        elif parse is parse_window:
            assert parse_window(str(result)) == result
        elif parse is parse_weekly:
            assert isinstance(result, tuple) and 0 <= result[0] <= 6

    same_in_full_width()
    dates_never_fail()
    specs_fail_only_their_way()
    record(
        "bad input",
        "fuzzed durations, windows and dates (incl. full-width digits)",
        cases.total(),
        "full-width and invisible marks read the same; otherwise None or the module's own error",
    )


# -- 4. the free-text matcher --------------------------------------------------------------

UNIT_CANDIDATES = [
    Candidate(i, (u.key, u.name, *(u.aliases or ()))) for i, u in enumerate(EXAMPLE_PLAN.units)
]
TASKS = [task for phase in EXAMPLE_PLAN.phases for task in phase.tasks]
TASK_CANDIDATES = [
    Candidate(len(UNIT_CANDIDATES) + i, (task.key, task.title)) for i, task in enumerate(TASKS)
]
DECORATION = (*EMOJI, *INVISIBLE, " ", "\u3000", "\u00a0", "？", "!", "。", "\n")


@st.composite
def disguised(draw: st.DrawFn, *, units_only: bool = False) -> tuple[int, str]:
    """Draw a real unit (or task) name with invisible marks inside and emoji around it."""
    pool = UNIT_CANDIDATES if units_only else UNIT_CANDIDATES + TASK_CANDIDATES
    candidate = draw(st.sampled_from(pool))
    name = draw(st.sampled_from(candidate.names))
    if name.isascii():
        name = draw(st.sampled_from((name, name.upper(), full_width(name))))
    chars = list(name)
    for _ in range(draw(st.integers(0, 4))):
        chars.insert(draw(st.integers(0, len(chars))), draw(st.sampled_from(INVISIBLE)))
    before = draw(st.lists(st.sampled_from(DECORATION), max_size=3))
    after = draw(st.lists(st.sampled_from(DECORATION), max_size=3))
    return candidate.id, "".join(before) + "".join(chars) + "".join(after)


def test_fuzzed_matcher_input() -> None:
    cases = 0

    @settings(FUZZ, max_examples=600, derandomize=True)
    @given(disguised())
    def run(case: tuple[int, str]) -> None:
        nonlocal cases
        wanted, text = case
        pool = UNIT_CANDIDATES if wanted < len(UNIT_CANDIDATES) else TASK_CANDIDATES
        best, close = choose(rank(text, pool))
        assert best is not None and best.id == wanted, (text, close)
        cases += 1

    run()
    record(
        "bad input",
        "fuzzed matcher input (zero-width, RTL, emoji)",
        cases,
        "every disguised unit and task name still found",
    )
