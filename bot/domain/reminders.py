"""Reminder stages of one assignment and the moments they go out (SPEC §5.1, §5.2).

Pure rules: no database, no Telegram, no clock. Every moment is an aware UTC datetime.

Stages, in the order they fall due:

- `before:<offset>`: `offset` before the deadline, counted in calendar time;
- `due`: at the deadline (when `on_due`);
- `overdue:<n>`: every `overdue_every` after the deadline (working days when
  `workdays_only`), n = 1, 2, ...;
- `escalate:<i>`: the i-th escalation of the policy, `after` past the deadline (working
  days when `workdays_only`), to the unit's heads, the office, or the leaders.

A moment outside the send window, or on a day off when `workdays_only`, moves to the next
opening of the window; a `before` stage that would then land after the deadline goes at the
last opening before the deadline instead. Overdue nudges and escalations stop when the
campaign's last phase has ended.

A tick covers the span since the assignment was last due to be looked at: of the contacts'
nudges in it only the latest goes, and each escalation. What a tick catches up on long after
its moment (the bot was down) waits for the window's next opening, and a `before` nudge that
could then only go after the deadline is dropped.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.domain.calendar import WorkCalendar
from bot.domain.policy import ReminderPolicy
from bot.domain.timespec import Duration

CONTACTS = "contacts"

# Why a stage goes out at another moment than the one its rule names.
MOVED_WINDOW = "window"  # outside the send window: the next opening
MOVED_DAY_OFF = "day_off"  # a non-working day: the next working day's opening
MOVED_EARLIER = "earlier"  # a `before` stage kept before the deadline: the last opening before it

# How far the search for an opening may look; a calendar with no working day for a year is
# a broken calendar, not a reason to loop forever.
_SEARCH_DAYS = 400
# Without a campaign end, overdue nudges stop a year after the deadline.
_NO_END_HORIZON = timedelta(days=366)
# A tick may come this long after a stage's moment and still send it at once (ticks are at
# most an hour apart): a stage at the window's end must not wait for the next morning.
LATE_GRACE = timedelta(hours=1)
# The memo of tick answers is cleared when it grows past this many entries.
_MEMO_LIMIT = 20_000


@dataclass(frozen=True)
class Stage:
    """One nudge or escalation of an assignment, with the moment it goes out."""

    key: str  # "before:3d" | "due" | "overdue:2" | "escalate:0"
    kind: str  # "before" | "due" | "overdue" | "escalate"
    nominal: datetime  # the moment the rule names
    at: datetime  # the send moment, after windows and working days
    moved: str | None  # None, or why `at` differs from `nominal` (MOVED_*)
    to: str  # CONTACTS, or an escalation target: "head" | "office" | "leaders"
    rank: int  # order of the stages of one deadline: a higher rank is a later stage

    @property
    def order(self) -> tuple[datetime, int]:
        """Return the sort key that makes "the latest stage" well defined."""
        return (self.at, self.rank)


@dataclass(frozen=True)
class TickDue:
    """What one tick owes an assignment: at most one nudge, the escalations, the next look."""

    nudge: Stage | None
    escalations: tuple[Stage, ...]
    next_at: datetime | None


_NOTHING = TickDue(None, (), None)


def _latest(stages: list[Stage]) -> Stage | None:
    return max(stages, key=lambda s: s.order) if stages else None


class Timetable:
    """The reminder rules of one policy in one campaign, turned into moments.

    Build one per (policy, calendar, time zone, campaign end) with `timetable()`, which
    keeps them, so that the per-day and per-deadline work is shared by every assignment
    with the same deadline.
    """

    def __init__(
        self,
        policy: ReminderPolicy,
        calendar: WorkCalendar,
        timezone: str,
        campaign_end: date | None,
    ) -> None:
        self.policy = policy
        self.calendar = calendar
        self.zone = ZoneInfo(timezone)
        self.campaign_end = campaign_end
        window = policy.window
        self._open = time(window.start_minute // 60, window.start_minute % 60)
        # Overdue nudges and escalations must go out before the day after the last phase.
        self.end_moment = (
            None if campaign_end is None else self.local(campaign_end + timedelta(days=1), time())
        )
        self._ok: dict[date, bool] = {}
        self._workdays: list[int] = []  # ordinals of working days in [_lo, _hi)
        self._lo = self._hi = 0
        self._fixed: dict[datetime, tuple[tuple[Stage, ...], Stage | None, tuple[Stage, ...]]] = {}
        self._memo: dict[tuple[datetime, datetime | None, datetime, datetime], TickDue] = {}

    # -- days and windows -------------------------------------------------------------

    def local(self, day: date, clock: time) -> datetime:
        """Return the UTC moment of a local date and time of day."""
        return datetime.combine(day, clock, tzinfo=self.zone).astimezone(UTC)

    def is_send_day(self, day: date) -> bool:
        """Return whether nudges may go out on this local day."""
        if not self.policy.workdays_only:
            return True
        ok = self._ok.get(day)
        if ok is None:
            ok = self._ok[day] = self.calendar.is_working_day(day)
        return ok

    def _next_send_day(self, day: date) -> date:
        """Return the first send day after `day`."""
        for _ in range(_SEARCH_DAYS):
            day += timedelta(days=1)
            if self.is_send_day(day):
                return day
        raise ValueError("no working day within a year")

    def opening(self, day: date) -> datetime:
        """Return the moment the window opens on a local day."""
        return self.local(day, self._open)

    def send_moment(self, moment: datetime) -> tuple[datetime, str | None]:
        """Return when a nudge planned for `moment` may go out, and why it moved (if it did)."""
        local = moment.astimezone(self.zone)
        day = local.date()
        if self.is_send_day(day):
            if self.policy.window.contains(local.time()):
                return moment, None
            if local.time() < self._open:
                return self.opening(day), MOVED_WINDOW
            return self.opening(self._next_send_day(day)), MOVED_WINDOW
        return self.opening(self._next_send_day(day)), MOVED_DAY_OFF

    def deliver_at(self, stage: Stage, now: datetime) -> datetime:
        """Return when a stage that a tick at `now` sends goes out.

        At once, unless the tick comes more than LATE_GRACE after the stage's moment (the bot
        was down): then, like any nudge, not before the window's next opening.
        """
        if now - stage.at <= LATE_GRACE:
            return now
        return self.send_moment(now)[0]

    def last_opening_before(self, moment: datetime) -> datetime | None:
        """Return the last opening of the window strictly before `moment`, if within a year."""
        day = moment.astimezone(self.zone).date()
        for _ in range(_SEARCH_DAYS):
            if self.is_send_day(day):
                opening = self.opening(day)
                if opening < moment:
                    return opening
            day -= timedelta(days=1)
        return None

    def add_working_days(self, day: date, count: int) -> date:
        """Return the send day `count` send days after `day` (O(log n) on a kept index)."""
        if count <= 0:
            return day
        if not self.policy.workdays_only:
            return day + timedelta(days=count)
        ordinal = day.toordinal()
        self._cover(ordinal, ordinal + 1)
        while True:
            index = bisect_right(self._workdays, ordinal) + count - 1
            if index < len(self._workdays):
                return date.fromordinal(self._workdays[index])
            # Working days are at least a few a month; grow by a season at a time.
            self._cover(self._lo, self._hi + max(120, 2 * count))

    def _cover(self, lo: int, hi: int) -> None:
        """Make the working-day index cover the ordinals [lo, hi)."""
        if not self._workdays and self._lo == self._hi:
            self._lo = self._hi = lo
        if lo < self._lo:
            head = [o for o in range(lo, self._lo) if self.is_send_day(date.fromordinal(o))]
            self._workdays[:0] = head
            self._lo = lo
        if hi > self._hi:
            tail = [o for o in range(self._hi, hi) if self.is_send_day(date.fromordinal(o))]
            self._workdays.extend(tail)
            self._hi = hi

    # -- the stages of one deadline ---------------------------------------------------

    def after(self, due: datetime, span: Duration, times: int = 1) -> datetime:
        """Return the moment `times` x `span` after the deadline (in send days if so set)."""
        if not span.is_days:
            return due + timedelta(seconds=span.seconds * times)
        local = due.astimezone(self.zone)
        days = span.days * times
        if self.policy.workdays_only:
            day = self.add_working_days(local.date(), days)
        else:
            day = local.date() + timedelta(days=days)
        # Keep the deadline's local time of day, also across a change of UTC offset.
        return self.local(day, local.time())

    def before(self, due: datetime, span: Duration) -> datetime:
        """Return the moment `span` before the deadline, counted in calendar time."""
        if not span.is_days:
            return due - timedelta(seconds=span.seconds)
        local = due.astimezone(self.zone)
        return self.local(local.date() - timedelta(days=span.days), local.time())

    def _fixed_stages(
        self, due: datetime
    ) -> tuple[tuple[Stage, ...], Stage | None, tuple[Stage, ...]]:
        """Return the `before` stages, the `due` stage and the escalations of a deadline."""
        cached = self._fixed.get(due)
        if cached is not None:
            return cached
        befores = []
        fallback: datetime | None = None
        count = len(self.policy.before)
        for i, span in enumerate(self.policy.before):
            nominal = self.before(due, span)
            at, moved = self.send_moment(nominal)
            if at > due:
                if fallback is None:
                    fallback = self.last_opening_before(due)
                if fallback is None:
                    continue
                at, moved = fallback, MOVED_EARLIER
            # `policy.before` is longest first, so a later entry is a later stage.
            befores.append(Stage(f"before:{span}", "before", nominal, at, moved, CONTACTS, i))
        due_stage = None
        if self.policy.on_due:
            at, moved = self.send_moment(due)
            due_stage = Stage("due", "due", due, at, moved, CONTACTS, count)
        escalations = []
        for i, step in enumerate(self.policy.escalate):
            nominal = self.after(due, step.after)
            at, moved = self.send_moment(nominal)
            if self._ended(at):
                continue
            escalations.append(Stage(f"escalate:{i}", "escalate", nominal, at, moved, step.to, i))
        result = (tuple(befores), due_stage, tuple(escalations))
        if len(self._fixed) >= _MEMO_LIMIT:
            self._fixed.clear()
        self._fixed[due] = result
        return result

    def _ended(self, at: datetime) -> bool:
        return self.end_moment is not None and at >= self.end_moment

    def overdue(self, due: datetime, n: int) -> Stage:
        """Return the n-th overdue nudge of a deadline (n >= 1)."""
        every = self.policy.overdue_every
        assert every is not None
        nominal = self.after(due, every, n)
        at, moved = self.send_moment(nominal)
        # Rank after every `before` and the `due` stage.
        return Stage(
            f"overdue:{n}", "overdue", nominal, at, moved, CONTACTS, len(self.policy.before) + n
        )

    def _overdue_limit(self, due: datetime) -> int:
        """Return the last n whose overdue nudge goes out before the campaign ends (0: none)."""
        if self.policy.overdue_every is None:
            return 0
        end = self.end_moment if self.end_moment is not None else due + _NO_END_HORIZON
        return _last_true(lambda n: self.overdue(due, n).at < end, 1)

    # -- what a tick owes --------------------------------------------------------------

    def stages(
        self, due: datetime, due_set_at: datetime | None, start: datetime, end: datetime
    ) -> list[Stage]:
        """Return every stage of a deadline that goes out in [start, end], in send order.

        Stages whose moment lies before `due_set_at` are skipped (None: set before them all).
        Nothing is collapsed: this is the schedule, as a preview shows it.
        """
        befores, due_stage, escalations = self._fixed_stages(due)
        out = [s for s in (*befores, due_stage, *escalations) if s is not None]
        limit = self._overdue_limit(due)
        if limit:
            first = _first_true(lambda n: self.overdue(due, n).at >= start, 1, limit)
            last = _last_true(lambda n: self.overdue(due, n).at <= end, 1, limit)
            out.extend(self.overdue(due, n) for n in range(first, last + 1))
        return sorted(
            (s for s in out if start <= s.at <= end and _kept(s, due_set_at)),
            key=lambda s: (s.at, s.kind == "escalate", s.rank),
        )

    def due_in(
        self, due: datetime, due_set_at: datetime | None, start: datetime, end: datetime
    ) -> TickDue:
        """Return what a tick covering [start, end] owes one deadline, and when to look next.

        `start` is the moment the assignment was due to be looked at (everything before it
        was sent or skipped); `end` is now. Of the nudges to the contacts only the latest
        goes out, and a `before` nudge never after the deadline; each escalation goes out
        once. `next_at` is the first send moment after `end` (None: nothing is left).
        """
        memo_key = (due, due_set_at, start, end)
        hit = self._memo.get(memo_key)
        if hit is not None:
            return hit
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        result = self._due_in(due, due_set_at, start, end)
        self._memo[memo_key] = result
        return result

    def _due_in(
        self, due: datetime, due_set_at: datetime | None, start: datetime, end: datetime
    ) -> TickDue:
        befores, due_stage, escalations = self._fixed_stages(due)
        fixed = [s for s in (*befores, due_stage) if s is not None and _kept(s, due_set_at)]
        nudges = [s for s in fixed if start <= s.at <= end]
        later = [s.at for s in fixed if s.at > end]

        limit = self._overdue_limit(due)
        if limit:
            # Overdue moments never decrease with n, so both ends are binary searches.
            first = 1
            if due_set_at is not None:
                first = _first_true(lambda n: _kept(self.overdue(due, n), due_set_at), 1, limit)
            if first <= limit:
                last = _last_true(lambda n: self.overdue(due, n).at <= end, first, limit)
                if last >= first and self.overdue(due, last).at >= start:
                    nudges.append(self.overdue(due, last))
                if last < limit:
                    later.append(self.overdue(due, last + 1).at)

        nudge = _latest(nudges)
        if nudge is not None and nudge.kind == "before" and self.deliver_at(nudge, end) > due:
            # Caught up only after the deadline: "due in 3 days" would be wrong by then.
            nudge = None
        kept_escalations = [s for s in escalations if _kept(s, due_set_at)]
        due_now = tuple(
            sorted((s for s in kept_escalations if start <= s.at <= end), key=lambda s: s.order)
        )
        later.extend(s.at for s in kept_escalations if s.at > end)
        if nudge is None and not due_now and not later:
            return _NOTHING
        return TickDue(nudge, due_now, min(later) if later else None)


def _kept(stage: Stage, due_set_at: datetime | None) -> bool:
    """Return whether a stage belongs to a deadline set at `due_set_at` (not before it)."""
    return due_set_at is None or (stage.nominal >= due_set_at and stage.at >= due_set_at)


def _first_true(pred: Callable[[int], bool], lo: int, hi: int) -> int:
    """Return the least n in [lo, hi] with pred(n) for a monotone pred (hi + 1 if none)."""
    while lo <= hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid - 1
        else:
            lo = mid + 1
    return lo


def _last_true(pred: Callable[[int], bool], lo: int, hi: int | None = None) -> int:
    """Return the greatest n >= lo with pred(n) for a pred true then false (lo - 1 if none).

    Without `hi`, the upper end is found by doubling.
    """
    if hi is None:
        if not pred(lo):
            return lo - 1
        hi = lo
        while pred(hi * 2):
            hi *= 2
        lo, hi = hi, hi * 2 - 1
    return _first_true(lambda n: not pred(n), lo, hi) - 1


@lru_cache(maxsize=256)
def timetable(
    policy: ReminderPolicy, calendar: WorkCalendar, timezone: str, campaign_end: date | None
) -> Timetable:
    """Return the (kept) timetable of a policy in a campaign."""
    return Timetable(policy, calendar, timezone, campaign_end)


def time_left(due: datetime, at: datetime) -> tuple[int, int]:
    """Return (days, hours) left before a deadline: whole days, or hours (at least 1) if < 1 day."""
    left = due - at
    if left >= timedelta(days=1):
        return left.days, 0
    hours = -(-int(left.total_seconds()) // 3600)
    return 0, max(1, hours)
