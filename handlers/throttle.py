"""Per-person and per-chat budgets, checked before an update costs any work (issue 14).

Every update from a person passes `Throttle.admit` before any handler runs (a handler group
ahead of all others): a person may send a short burst, then about one update a second is
handled; what comes faster is dropped, and a registered person is told once (per minute)
to slow down. A person not known to hold a role (a stranger, or anyone not yet seen by this
process) has a much smaller budget, and a stranger's refusals are answered at most once
every few minutes in a private chat and once an hour per member in a group; a group chat has
its own budget as well, so that many members together cannot flood it either.

All state is in memory and per process: it protects this process's event loop, database
connections and sending budget; the database-backed counters (invite failures) hold across
processes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes, TypeHandler

from bot.i18n import t
from bot.services.people import holds_role

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Budget:
    """A token bucket: `burst` updates at once, then one every `every` seconds."""

    burst: float
    every: float


# A registered person: a burst of ten (an office clicking through /assign's steps sends
# seven updates in a few seconds), then one update a second (Telegram's own pace into one
# chat, so every handled update can be answered).
PERSON = Budget(burst=10, every=1.0)
# A stranger (or an account not seen yet by this process): enough to redeem an invite code
# and to retry a mistyped one, then one update every 20 s.
STRANGER = Budget(burst=3, every=20.0)
# A group chat, all members together.
GROUP = Budget(burst=20, every=1.0)
# A registered person is told to slow down at most this often (seconds).
WARN_EVERY = 60.0
# A stranger's refusals are answered at most this often (seconds): private chat, group.
STRANGER_ANSWER_EVERY = 300.0
GROUP_STRANGER_ANSWER_EVERY = 3600.0
# Above this many remembered ids, idle ones are forgotten.
MAX_TRACKED = 50_000


class Verdict(Enum):
    """What to do with an update."""

    GO = "go"
    WARN = "warn"  # drop it, and tell the person once to slow down
    DROP = "drop"


class _Bucket:
    __slots__ = ("last", "tokens")

    def __init__(self, tokens: float, last: float) -> None:
        self.tokens = tokens
        self.last = last

    def take(self, budget: Budget, now: float) -> bool:
        self.tokens = min(budget.burst, self.tokens + (now - self.last) / budget.every)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Throttle:
    """The budgets of one process; `clock` is monotonic seconds (a parameter for tests)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        person: Budget = PERSON,
        stranger: Budget = STRANGER,
        group: Budget = GROUP,
        stranger_answer_every: float = STRANGER_ANSWER_EVERY,
        group_stranger_answer_every: float = GROUP_STRANGER_ANSWER_EVERY,
    ) -> None:
        self.clock = clock
        self.person, self.stranger, self.group = person, stranger, group
        self.stranger_answer_every = stranger_answer_every
        self.group_stranger_answer_every = group_stranger_answer_every
        self._people: dict[int, _Bucket] = {}
        self._groups: dict[int, _Bucket] = {}
        self._registered: dict[int, bool] = {}
        self._warned: dict[int, float] = {}
        self._answered: dict[tuple[int, int], float] = {}
        self.dropped = 0

    @classmethod
    def unlimited(cls) -> Throttle:
        """Return a throttle that admits and answers everything (handler tests)."""
        free = Budget(burst=1e12, every=1e-9)
        return cls(
            person=free,
            stranger=free,
            group=free,
            stranger_answer_every=0.0,
            group_stranger_answer_every=0.0,
        )

    def learn(self, user_id: int, *, registered: bool) -> None:
        """Remember whether a person holds a role (decides their budget from now on)."""
        self._registered[user_id] = registered
        if registered:
            self._answered = {k: v for k, v in self._answered.items() if k[0] != user_id}
        self._forget_some(self._registered)

    def known(self, user_id: int) -> bool:
        """Return whether this process has learnt whether the person holds a role."""
        return user_id in self._registered

    def registered(self, user_id: int) -> bool:
        """Return whether the person is known to hold a role."""
        return self._registered.get(user_id, False)

    def admit(self, user_id: int, chat_id: int, *, group: bool) -> Verdict:
        """Spend one update of the person's (and the group's) budget; say what to do."""
        now = self.clock()
        budget = self.person if self.registered(user_id) else self.stranger
        person = self._people.get(user_id)
        if person is None:
            person = self._people[user_id] = _Bucket(budget.burst, now)
            self._forget_some(self._people)
        ok = person.take(budget, now)
        if ok and group:
            chat = self._groups.get(chat_id)
            if chat is None:
                chat = self._groups[chat_id] = _Bucket(self.group.burst, now)
                self._forget_some(self._groups)
            ok = chat.take(self.group, now)
        if ok:
            return Verdict.GO
        self.dropped += 1
        if not self.registered(user_id):
            return Verdict.DROP
        if now - self._warned.get(user_id, -WARN_EVERY) < WARN_EVERY:
            return Verdict.DROP
        self._warned[user_id] = now
        self._forget_some(self._warned)
        return Verdict.WARN

    def answer_stranger(self, user_id: int, chat_id: int, *, group: bool) -> bool:
        """Return True if a refusal may be sent to this stranger now (and count it)."""
        now = self.clock()
        every = self.group_stranger_answer_every if group else self.stranger_answer_every
        key = (user_id, chat_id)
        last = self._answered.get(key)
        if last is not None and now - last < every:
            return False
        self._answered[key] = now
        if len(self._answered) > MAX_TRACKED:
            horizon = now - max(self.group_stranger_answer_every, self.stranger_answer_every)
            self._answered = {k: v for k, v in self._answered.items() if v > horizon}
        return True

    def _forget_some(self, table: dict[Any, Any]) -> None:
        # Dicts keep insertion order: the oldest entries go first (a fresh bucket is full,
        # so forgetting an idle one changes nothing).
        while len(table) > MAX_TRACKED:
            del table[next(iter(table))]


THROTTLE_KEY = "throttle"


def throttle_of(bot_data: dict[str, Any]) -> Throttle:
    """Return the application's throttle, creating it on first use."""
    found = bot_data.get(THROTTLE_KEY)
    if not isinstance(found, Throttle):
        found = bot_data[THROTTLE_KEY] = Throttle()
    return found


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stop an update that is over its sender's budget before any handler sees it."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None or update.my_chat_member or update.chat_member:
        return  # membership changes are Telegram's, not a person's, and cost nothing
    group = chat.type in ("group", "supergroup")
    throttle = throttle_of(context.application.bot_data)
    runtime = context.application.bot_data.get("runtime")
    if not throttle.known(user.id) and runtime is not None:
        # Once per person and process (after a restart, in another webhook process): one
        # indexed read, so a registered person never gets a stranger's budget.
        try:
            async with runtime.db.read() as session:
                throttle.learn(user.id, registered=await holds_role(session, user.id))
        except SQLAlchemyError:
            log.warning("could not read whether person %s holds a role", user.id)
    verdict = throttle.admit(user.id, chat.id, group=group)
    if verdict is Verdict.GO:
        return
    if verdict is Verdict.WARN:
        log.info("person %s sends too fast; updates dropped", user.id)
        # The person's chosen language is in the database: reading it would be the work
        # this gate saves; the default language answers.
        text = t("throttle.slow_down", runtime.default_language if runtime else "zh")
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text[:190])
            elif update.effective_message is not None:
                await update.effective_message.reply_text(text, parse_mode=ParseMode.HTML)
        except TelegramError as exc:
            log.warning("could not tell a person to slow down: %s", exc)
    elif update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            await update.callback_query.answer()  # no spinner left behind
    raise ApplicationHandlerStop


def gate_handler() -> TypeHandler[Update, ContextTypes.DEFAULT_TYPE, None]:
    """Return the handler that runs `gate` ahead of every other handler (group -1)."""
    return TypeHandler(Update, gate)
