"""Reminder stages: moments, windows, working days, catch-up, and no stage twice (pure rules)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.calendar import WorkCalendar
from bot.domain.policy import DEFAULT_POLICY_JSON, ReminderPolicy
from bot.domain.reminders import (
    LATE_GRACE,
    MOVED_DAY_OFF,
    MOVED_EARLIER,
    MOVED_WINDOW,
    Stage,
    Timetable,
    time_left,
    timetable,
)

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
CN = WorkCalendar("CN")
FAR = datetime(2030, 1, 1, tzinfo=UTC)


def local(*args: int) -> datetime:
    """Return a Shanghai wall-clock moment as UTC."""
    return datetime(*args, tzinfo=ZONE).astimezone(UTC)  # type: ignore[misc]


def policy(**overrides: Any) -> ReminderPolicy:
    return ReminderPolicy.from_json({**DEFAULT_POLICY_JSON, **overrides})


def table(end: date | None = date(2030, 12, 31), **overrides: Any) -> Timetable:
    return timetable(policy(**overrides), CN, TZ, end)


def schedule(tt: Timetable, due: datetime, set_at: datetime | None = None) -> dict[str, Stage]:
    start = set_at or datetime(2000, 1, 1, tzinfo=UTC)
    return {s.key: s for s in tt.stages(due, set_at, start, FAR)}


def at_local(stage: Stage) -> datetime:
    return stage.at.astimezone(ZONE).replace(tzinfo=None)


def test_reference_schedule() -> None:
    due = local(2017, 5, 10, 18)
    stages = schedule(table(end=date(2017, 5, 31)), due)
    assert at_local(stages["before:7d"]) == datetime(2017, 5, 3, 18)
    # Sunday 5-7 is a day off: the next opening.
    assert at_local(stages["before:3d"]) == datetime(2017, 5, 8, 9)
    assert stages["before:3d"].moved == MOVED_DAY_OFF
    assert at_local(stages["before:1d"]) == datetime(2017, 5, 9, 18)
    assert at_local(stages["before:2h"]) == datetime(2017, 5, 10, 16)
    # 18:00 with window 09:00-18:00: both ends are inside.
    assert stages["due"].at == due and stages["due"].moved is None
    assert at_local(stages["overdue:1"]) == datetime(2017, 5, 11, 18)
    assert at_local(stages["overdue:3"]) == datetime(2017, 5, 15, 18)  # over the weekend
    assert at_local(stages["escalate:0"]) == datetime(2017, 5, 11, 18)
    assert stages["escalate:0"].to == "head"
    assert at_local(stages["escalate:1"]) == datetime(2017, 5, 15, 18)  # 3 working days
    assert stages["escalate:1"].to == "leaders"
    # The campaign ends on 5-31: nothing overdue goes out after it.
    last = max((s for s in stages.values() if s.kind == "overdue"), key=lambda s: s.at)
    assert at_local(last) == datetime(2017, 5, 31, 18)


def test_may_day_2017() -> None:
    tt = table()
    # 4-29 to 5-1 off: "3d before" a Wednesday deadline falls on Sunday 4-30.
    stages = schedule(tt, local(2017, 5, 3, 18))
    assert at_local(stages["before:3d"]) == datetime(2017, 5, 2, 9)
    # Overdue days are working days: Friday 4-28 -> Tuesday 5-2.
    stages = schedule(tt, local(2017, 4, 28, 18))
    assert at_local(stages["overdue:1"]) == datetime(2017, 5, 2, 18)
    assert at_local(stages["escalate:0"]) == datetime(2017, 5, 2, 18)


def test_dragon_boat_2017_counts_the_make_up_saturday() -> None:
    stages = schedule(table(), local(2017, 5, 26, 18))
    assert at_local(stages["overdue:1"]) == datetime(2017, 5, 27, 18)  # Saturday, a working day
    assert at_local(stages["overdue:2"]) == datetime(2017, 5, 31, 18)  # after 5-28..5-30 off
    assert at_local(stages["escalate:1"]) == datetime(2017, 6, 1, 18)


def test_national_day_2026_and_its_make_up_saturday() -> None:
    tt = table()
    stages = schedule(tt, local(2026, 9, 30, 18))
    assert at_local(stages["overdue:1"]) == datetime(2026, 10, 8, 18)
    assert at_local(stages["overdue:2"]) == datetime(2026, 10, 9, 18)
    assert at_local(stages["overdue:3"]) == datetime(2026, 10, 10, 18)  # Saturday, worked
    assert at_local(stages["overdue:4"]) == datetime(2026, 10, 12, 18)
    assert at_local(stages["escalate:1"]) == datetime(2026, 10, 10, 18)
    stages = schedule(tt, local(2026, 10, 9, 18))
    assert at_local(stages["before:3d"]) == datetime(2026, 10, 8, 9)  # 10-6 is a holiday
    assert at_local(stages["before:7d"]) == datetime(2026, 10, 8, 9)
    # Collapsed in a tick: the later stage goes out.
    tick = tt.due_in(local(2026, 10, 9, 18), None, local(2026, 10, 8, 8), local(2026, 10, 8, 9))
    assert tick.nudge is not None and tick.nudge.key == "before:3d"


def test_window_pushes_to_the_next_opening() -> None:
    tt = table(before=["90m", "10h"], workdays_only=False)
    stages = schedule(tt, local(2017, 5, 10, 19))
    # 17:30 is inside; 09:00 is inside (both ends).
    assert at_local(stages["before:90m"]) == datetime(2017, 5, 10, 17, 30)
    assert at_local(stages["before:10h"]) == datetime(2017, 5, 10, 9)
    # The deadline itself (19:00) is outside: the next morning.
    assert at_local(stages["due"]) == datetime(2017, 5, 11, 9)
    assert stages["due"].moved == MOVED_WINDOW
    early = schedule(tt, local(2017, 5, 10, 7, 30))["due"]
    assert at_local(early) == datetime(2017, 5, 10, 9)
    always = schedule(table(window="00:00-24:00", workdays_only=False), local(2017, 5, 7, 3))
    assert at_local(always["due"]) == datetime(2017, 5, 7, 3)


def test_before_stage_never_lands_after_the_deadline() -> None:
    # Saturday 10:00: "2h before" is Saturday 08:00, whose next opening is Monday.
    stages = schedule(table(), local(2017, 5, 6, 10))
    assert at_local(stages["before:2h"]) == datetime(2017, 5, 5, 9)
    assert stages["before:2h"].moved == MOVED_EARLIER
    # Friday 10:00 is inside the window: "1d before" keeps its moment, after the moved one.
    assert at_local(stages["before:1d"]) == datetime(2017, 5, 5, 10)
    assert at_local(stages["due"]) == datetime(2017, 5, 8, 9)  # only "before" moves back


def test_stages_before_the_deadline_was_set_are_skipped() -> None:
    due = local(2017, 5, 10, 18)
    tt = table()
    set_at = local(2017, 5, 8, 12)
    stages = schedule(tt, due, set_at)
    assert "before:7d" not in stages and "before:3d" not in stages  # 3d went out 5-8 09:00
    assert "before:1d" in stages
    tick = tt.due_in(due, set_at, set_at, set_at + timedelta(hours=1))
    assert tick.nudge is None
    assert tick.next_at == local(2017, 5, 9, 18)


def test_overdue_and_escalations_stop_when_the_campaign_ends() -> None:
    due = local(2017, 8, 29, 18)
    stages = schedule(table(end=date(2017, 8, 31)), due)
    assert [k for k in stages if k.startswith("overdue")] == ["overdue:1", "overdue:2"]
    assert "escalate:0" in stages and "escalate:1" not in stages
    tt = table(end=date(2017, 8, 31))
    assert tt.due_in(due, None, local(2017, 9, 1), local(2017, 9, 5)).next_at is None


def test_catch_up_sends_the_latest_nudge_and_each_escalation_once() -> None:
    due = local(2017, 5, 10, 18)
    tt = table()
    set_at = local(2017, 4, 1, 9)
    # Down from 5-9 (before "1d") until 5-16 12:00.
    tick = tt.due_in(due, set_at, local(2017, 5, 9, 17), local(2017, 5, 16, 12))
    assert tick.nudge is not None and tick.nudge.key == "overdue:3"  # 5-15 18:00
    assert [s.key for s in tick.escalations] == ["escalate:0", "escalate:1"]
    assert tick.next_at == local(2017, 5, 16, 18)
    # Down over the deadline with no due or overdue nudge: no "due in 2 hours" afterwards.
    quiet = table(on_due=False, overdue_every=None, escalate=[])
    late = quiet.due_in(due, set_at, local(2017, 5, 10, 15), local(2017, 5, 10, 19))
    assert late.nudge is None and late.next_at is None


def test_what_is_caught_up_late_waits_for_the_window() -> None:
    due = local(2017, 5, 10, 18)
    tt = table()
    set_at = local(2017, 4, 1, 9)
    # The tick just after 18:00 sends the deadline's nudge at once, outside the window or not.
    on_time = tt.due_in(due, set_at, local(2017, 5, 10, 17), local(2017, 5, 10, 18, 0, 40))
    assert on_time.nudge is not None and on_time.nudge.key == "due"
    just_after = local(2017, 5, 10, 18, 0, 40)
    assert tt.deliver_at(on_time.nudge, just_after) == just_after
    # Back at 23:00 after a day down: overdue:1 (5-11 18:00) waits for Friday 09:00.
    late = tt.due_in(due, set_at, local(2017, 5, 10, 19), local(2017, 5, 11, 23))
    assert late.nudge is not None and late.nudge.key == "overdue:1"
    assert tt.deliver_at(late.nudge, local(2017, 5, 11, 23)) == local(2017, 5, 12, 9)
    # Back at 20:00, having missed the "1d" nudge of a deadline at 08:00 the next morning: the
    # next opening (09:00) is after the deadline, so nothing is sent.
    early_due = local(2017, 5, 10, 8)
    missed = tt.due_in(early_due, set_at, local(2017, 5, 9, 7), local(2017, 5, 9, 20))
    assert missed.nudge is None


def test_hours_in_overdue_every_are_calendar_hours_pushed_into_the_window() -> None:
    tt = table(overdue_every="6h", escalate=[])
    stages = schedule(tt, local(2017, 5, 12, 18))  # Friday
    assert at_local(stages["overdue:1"]) == datetime(2017, 5, 15, 9)  # Sat 00:00 -> Monday
    assert at_local(stages["overdue:2"]) == datetime(2017, 5, 15, 9)  # collapse in one tick
    tick = tt.due_in(local(2017, 5, 12, 18), None, local(2017, 5, 13), local(2017, 5, 15, 9))
    assert tick.nudge is not None
    assert tick.nudge.key == "overdue:10"  # the latest of the weekend's stages


def test_time_left() -> None:
    due = local(2017, 5, 10, 18)
    assert time_left(due, due - timedelta(days=3, hours=2)) == (3, 0)
    assert time_left(due, due - timedelta(hours=2)) == (0, 2)
    assert time_left(due, due - timedelta(minutes=5)) == (0, 1)


# -- properties ------------------------------------------------------------------------

DURATIONS = ["90s", "30m", "2h", "10h", "1d", "3d", "1w"]
WINDOWS = ["09:00-18:00", "00:00-24:00", "08:30-12:00", "13:00-13:30", "18:00-23:59"]
TARGETS = ["head", "office", "leaders"]

policies = st.builds(
    lambda before, on_due, every, escalate, window, workdays: policy(
        before=before,
        on_due=on_due,
        overdue_every=every,
        escalate=escalate,
        window=window,
        workdays_only=workdays,
    ),
    st.lists(st.sampled_from(DURATIONS), max_size=4, unique=True),
    st.booleans(),
    st.none() | st.sampled_from(["2h", "12h", "1d", "2d"]),
    st.lists(
        st.fixed_dictionaries(
            {"after": st.sampled_from(["2h", "1d", "3d", "1w"]), "to": st.sampled_from(TARGETS)}
        ),
        max_size=3,
    ),
    st.sampled_from(WINDOWS),
    st.booleans(),
)
HOLIDAYS = [
    datetime(2017, 5, 1),  # May Day: 4-29..5-1 off
    datetime(2017, 5, 28),  # Dragon Boat: 5-28..5-30 off, Saturday 5-27 worked
    datetime(2026, 10, 1),  # National Day: 10-1..10-7 off, Sunday 9-20 and Saturday 10-10 worked
]


def near(moment: datetime) -> st.SearchStrategy[datetime]:
    return st.integers(-14 * 24 * 60, 14 * 24 * 60).map(lambda m: moment + timedelta(minutes=m))


# Anywhere in 2017-2026, and often around the holidays with make-up working days.
deadlines = st.one_of(
    st.datetimes(min_value=datetime(2017, 1, 1), max_value=datetime(2026, 11, 30)),
    *(near(day) for day in HOLIDAYS),
).map(lambda d: d.replace(second=0, microsecond=0, tzinfo=ZONE).astimezone(UTC))
# Gaps between ticks: a normal minute, a slow tick, or an outage of hours or days.
gaps = st.one_of(
    st.just(timedelta(minutes=1)),
    st.integers(1, 180).map(lambda m: timedelta(minutes=m)),
    st.integers(1, 72).map(lambda h: timedelta(hours=h)),
    st.integers(1, 9).map(lambda d: timedelta(days=d)),
)


def in_window(tt: Timetable, at: datetime) -> bool:
    moment = at.astimezone(tt.zone)
    ok_day = not tt.policy.workdays_only or CN.is_working_day(moment.date())
    return ok_day and tt.policy.window.contains(moment.time())


def run_ticks(
    tt: Timetable, due: datetime, set_at: datetime, ticks: list[datetime]
) -> list[tuple[datetime, datetime, Stage, datetime]]:
    """Tick like the planner does; return (span start, tick, stage, delivery) for every send."""
    sent = []
    next_check: datetime | None = set_at
    for tick in ticks:
        if next_check is None:
            break
        if next_check > tick:
            continue
        owed = tt.due_in(due, set_at, next_check, tick)
        for stage in ([owed.nudge] if owed.nudge else []) + list(owed.escalations):
            sent.append((next_check, tick, stage, tt.deliver_at(stage, tick)))
        assert owed.next_at is None or owed.next_at > tick
        next_check = owed.next_at
    return sent


@settings(max_examples=300, deadline=None)
@given(
    policies,
    deadlines,
    st.integers(0, 30 * 24),
    st.integers(-10, 60),
    st.lists(gaps, min_size=1, max_size=60),
)
def test_no_sequence_of_ticks_sends_a_stage_twice_or_out_of_its_rules(
    pol: ReminderPolicy, due: datetime, lead_hours: int, end_days: int, tick_gaps: list[timedelta]
) -> None:
    end = due.astimezone(ZONE).date() + timedelta(days=end_days)
    tt = timetable(pol, CN, TZ, end)
    set_at = due - timedelta(hours=lead_hours)
    ticks = [set_at]
    for gap in tick_gaps:
        ticks.append(ticks[-1] + gap)
    sent = run_ticks(tt, due, set_at, ticks)
    keys = [stage.key for _, _, stage, _ in sent]
    assert len(keys) == len(set(keys)), keys
    for start, tick, stage, delivery in sent:
        assert start <= stage.at <= tick
        assert stage.nominal >= set_at and stage.at >= set_at
        assert in_window(tt, stage.at), stage
        # Sent at the tick if it is on time; caught up late, at an opening of the window.
        assert delivery == tick if tick - stage.at <= LATE_GRACE else in_window(tt, delivery)
        if stage.kind == "before":
            assert delivery <= due and stage.at <= due
        if stage.kind in ("overdue", "escalate"):
            assert tt.end_moment is not None and stage.at < tt.end_moment
    # Nudges to the contacts: at most one per tick.
    per_tick = [tick for _, tick, stage, _ in sent if stage.kind != "escalate"]
    assert len(per_tick) == len(set(per_tick))


@settings(max_examples=200, deadline=None)
@given(policies, deadlines, st.integers(0, 30 * 24), st.integers(0, 40), st.data())
def test_a_tick_owes_exactly_what_the_schedule_says(
    pol: ReminderPolicy, due: datetime, lead_hours: int, end_days: int, data: st.DataObject
) -> None:
    end = due.astimezone(ZONE).date() + timedelta(days=end_days)
    tt = timetable(pol, CN, TZ, end)
    set_at = due - timedelta(hours=lead_hours)
    start = set_at + timedelta(minutes=data.draw(st.integers(0, 40 * 24 * 60)))
    now = start + timedelta(minutes=data.draw(st.integers(0, 20 * 24 * 60)))
    owed = tt.due_in(due, set_at, start, now)
    expected = tt.stages(due, set_at, start, now)
    contacts = [s for s in expected if s.kind != "escalate"]
    latest = max(contacts, key=lambda s: s.order) if contacts else None
    if latest is not None and latest.kind == "before" and tt.deliver_at(latest, now) > due:
        latest = None
    assert owed.nudge == latest
    assert list(owed.escalations) == [s for s in expected if s.kind == "escalate"]
    after = tt.stages(due, set_at, now + timedelta(microseconds=1), FAR)
    assert owed.next_at == (min(s.at for s in after) if after else None)


@settings(max_examples=150, deadline=None)
@given(policies, deadlines, st.integers(0, 30 * 24), st.integers(0, 40))
def test_ticking_at_every_send_moment_sends_every_stage(
    pol: ReminderPolicy, due: datetime, lead_hours: int, end_days: int
) -> None:
    end = due.astimezone(ZONE).date() + timedelta(days=end_days)
    tt = timetable(pol, CN, TZ, end)
    set_at = due - timedelta(hours=lead_hours)
    schedule_ = tt.stages(due, set_at, set_at, FAR)
    ticks = sorted({set_at, *(s.at for s in schedule_)})
    sent = {stage for _, _, stage, _ in run_ticks(tt, due, set_at, ticks)}
    escalations = {s for s in schedule_ if s.kind == "escalate"}
    assert escalations <= sent
    # Of the nudges falling due at one moment, the latest goes out.
    by_moment: dict[datetime, list[Stage]] = {}
    for stage in schedule_:
        if stage.kind != "escalate":
            by_moment.setdefault(stage.at, []).append(stage)
    wanted = {max(group, key=lambda s: s.order) for group in by_moment.values()}
    assert wanted == sent - escalations
