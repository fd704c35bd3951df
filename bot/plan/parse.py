"""Turn a plan file into a `Plan`, or every error with its file, line and key."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.calendar import UnknownCountry, WorkCalendar
from bot.domain.policy import (
    DEFAULT_POLICY_JSON,
    ESCALATION_TARGETS,
    ReminderPolicy,
)
from bot.domain.recurrence import Repeat, RepeatError
from bot.domain.timespec import (
    Duration,
    TimespecError,
    parse_clock,
    parse_duration,
    parse_weekly,
    parse_window,
)
from bot.plan.locate import LineIndex, PathItem, format_path
from bot.plan.model import (
    EVIDENCE_KINDS,
    Digest,
    Phase,
    Plan,
    PlanError,
    PlanInvalid,
    Task,
    Unit,
    UnitKind,
)
from bot.textfile import TextFileError, read_text

# Deadlines and phase dates must lie in these years (inclusive).
MIN_YEAR = 2000
MAX_YEAR = 2099

T = TypeVar("T")
KeyPath = tuple[PathItem, ...]

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Control characters (SPEC §3): none in keys, names, aliases and titles; a description may
# hold newlines and tabs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")

TOP_KEYS = {"campaign", "calendar", "reminders", "digest", "unit_kinds", "units", "phases"}
CAMPAIGN_KEYS = {
    "key",
    "title",
    "timezone",
    "due_time",
    "units_see_all",
    "description",
    "office",
}
CALENDAR_KEYS = {"country", "extra_holidays", "extra_workdays"}
REMINDER_KEYS = set(DEFAULT_POLICY_JSON)
DIGEST_KEYS = {"daily", "weekly"}
KIND_KEYS = {"key", "name"}
UNIT_KEYS = {"key", "name", "kind", "aliases"}
PHASE_KEYS = {"key", "name", "start", "end", "description", "reminders", "tasks"}
TASK_KEYS = {
    "key",
    "title",
    "due",
    "evidence",
    "for",
    "except",
    "allow_outside_phase",
    "reminders",
    "description",
    "repeat",
}
REPEAT_KEYS = {"every", "on", "at", "from", "until"}

_MISSING = object()


class _Checker:
    """Collect errors while reading a parsed TOML document."""

    def __init__(self, file: str, index: LineIndex) -> None:
        self.file = file
        self.index = index
        self.errors: list[PlanError] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.errors.append(
            PlanError(self.file, self.index.line_of(path), format_path(path), message)
        )

    def table(self, data: Any, path: KeyPath, allowed: set[str]) -> dict[str, Any]:
        """Return a table, reporting a wrong type and unknown keys."""
        if not isinstance(data, dict):
            self.error(path, "expected a table")
            return {}
        for key in data:
            if key not in allowed:
                self.error((*path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return data

    def get(
        self,
        data: dict[str, Any],
        path: KeyPath,
        key: str,
        kind: type[T] | tuple[type, ...],
        what: str,
        default: Any = _MISSING,
    ) -> Any:
        """Return `data[key]` if it has the right type; report missing or wrong values."""
        if key not in data:
            if default is _MISSING:
                self.error((*path, key), "missing key")
            return None if default is _MISSING else default
        value = data[key]
        # bool is an int in Python; TOML keeps them apart, so must we.
        bad_bool = isinstance(value, bool) and kind is not bool and kind != (bool,)
        if not isinstance(value, kind) or bad_bool:
            self.error((*path, key), f"expected {what}, got {_describe(value)}")
            return None
        return value

    def text(
        self,
        data: dict[str, Any],
        path: KeyPath,
        key: str,
        default: Any = _MISSING,
        *,
        multiline: bool = False,
    ) -> Any:
        value = self.get(data, path, key, str, "a string", default)
        if isinstance(value, str) and not value.strip() and default is _MISSING:
            self.error((*path, key), "must not be empty")
            return None
        if isinstance(value, str) and not self.printable((*path, key), value, multiline):
            return None
        return value

    def printable(self, path: KeyPath, value: str, multiline: bool = False) -> bool:
        """Report a control character (U+0000-U+001F, U+007F; SPEC §3); return whether none."""
        found = (_CONTROL_MULTILINE if multiline else _CONTROL).search(value)
        if found is None:
            return True
        where = "a description" if multiline else "keys, names, aliases and titles"
        self.error(
            path,
            f"control character U+{ord(found.group()):04X} at position {found.start() + 1} "
            f"(not allowed in {where}; Word's line break is U+000B)",
        )
        return False

    def ident(self, data: dict[str, Any], path: KeyPath) -> str | None:
        value = self.get(data, path, "key", str, "a string")
        if isinstance(value, str) and not self.printable((*path, "key"), value):
            return None
        # fullmatch: `$` alone would let a key end in a newline.
        if isinstance(value, str) and not _KEY.fullmatch(value):
            self.error(
                (*path, "key"),
                f"{value!r} is not a valid key (lower-case letters, digits, '-' and '_', "
                "at most 64 characters)",
            )
            return None
        return value if isinstance(value, str) else None

    def strings(self, data: dict[str, Any], path: KeyPath, key: str) -> list[str]:
        value = self.get(data, path, key, list, "a list of strings", [])
        if value is None:
            return []
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.error((*path, key, i), f"expected a non-empty string, got {_describe(item)}")
            elif self.printable((*path, key, i), item):
                out.append(item)
        return out

    def dates(self, data: dict[str, Any], path: KeyPath, key: str) -> list[date]:
        value = self.get(data, path, key, list, "a list of dates", [])
        out = []
        for i, item in enumerate(value or []):
            if isinstance(item, date) and not isinstance(item, datetime):
                out.append(item)
            else:
                self.error(
                    (*path, key, i), f"expected a date such as 2017-05-01, got {_describe(item)}"
                )
        return out

    def spec(self, path: KeyPath, value: Any, parse: Callable[[str], T]) -> T | None:
        try:
            return parse(value)
        except TimespecError as exc:
            self.error(path, str(exc))
            return None


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _check_policy(
    c: _Checker, raw: Any, path: KeyPath, base: dict[str, Any]
) -> dict[str, Any] | None:
    """Validate a [reminders] table and merge it over `base` (plain JSON form)."""
    table = c.table(raw, path, REMINDER_KEYS)
    merged = dict(base)
    ok = True
    if "before" in table:
        value = table["before"]
        if not isinstance(value, list):
            c.error((*path, "before"), f"expected a list of durations, got {_describe(value)}")
            ok = False
        else:
            durations: list[Duration] = []
            for i, item in enumerate(value):
                parsed = c.spec((*path, "before", i), item, parse_duration)
                if parsed is None:
                    ok = False
                elif parsed in durations:
                    c.error((*path, "before", i), f"duplicate offset {item!r}")
                    ok = False
                else:
                    durations.append(parsed)
            merged["before"] = [
                str(d) for d in sorted(durations, key=lambda d: d.seconds, reverse=True)
            ]
    if "on_due" in table:
        value = c.get(table, path, "on_due", bool, "true or false")
        ok = ok and value is not None
        merged["on_due"] = value
    if "overdue_every" in table:
        value = table["overdue_every"]
        if value is False:
            merged["overdue_every"] = None
        else:
            parsed = c.spec((*path, "overdue_every"), value, parse_duration)
            ok = ok and parsed is not None
            merged["overdue_every"] = str(parsed) if parsed else None
    if "escalate" in table:
        value = table["escalate"]
        steps = []
        if not isinstance(value, list):
            c.error((*path, "escalate"), f"expected a list of tables, got {_describe(value)}")
            ok = False
        else:
            for i, step in enumerate(value):
                step_path = (*path, "escalate", i)
                if not isinstance(step, dict):
                    c.error(step_path, 'expected a table such as { after = "1d", to = "head" }')
                    ok = False
                    continue
                c.table(step, step_path, {"after", "to"})
                after = c.spec((*step_path, "after"), step.get("after", ""), parse_duration)
                to = step.get("to")
                if "after" not in step:
                    ok = False
                if to not in ESCALATION_TARGETS:
                    c.error(
                        (*step_path, "to"),
                        f"unknown role {to!r} (use {', '.join(ESCALATION_TARGETS)})"
                        if "to" in step
                        else "missing key",
                    )
                    ok = False
                if after is not None and to in ESCALATION_TARGETS:
                    steps.append({"after": str(after), "to": to})
                else:
                    ok = False
            merged["escalate"] = steps
    if "window" in table:
        parsed_window = c.spec((*path, "window"), table["window"], parse_window)
        ok = ok and parsed_window is not None
        merged["window"] = str(parsed_window) if parsed_window else None
    if "workdays_only" in table:
        value = c.get(table, path, "workdays_only", bool, "true or false")
        ok = ok and value is not None
        merged["workdays_only"] = value
    return merged if ok else None


def _due_moment(
    c: _Checker, value: Any, path: KeyPath, zone: ZoneInfo | None, due_time: time
) -> datetime | None:
    """Turn a TOML date or date-time (campaign-local unless it has an offset) into UTC."""
    try:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                if zone is None:
                    return None
                moment: datetime = value.replace(tzinfo=zone).astimezone(UTC)
            else:
                moment = value.astimezone(UTC)
        elif isinstance(value, date):
            if zone is None:
                return None
            moment = datetime.combine(value, due_time, tzinfo=zone).astimezone(UTC)
        else:
            c.error(
                path, f"expected a date such as 2017-05-10 or a date-time, got {_describe(value)}"
            )
            return None
        if zone is not None:
            moment.astimezone(zone)  # it is shown in the campaign's zone: that must exist too
    except OverflowError:  # 0001-01-01 00:00 east of UTC, 9999-12-31 late west of it
        c.error(path, f"{value} is out of range")
        return None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        # Reminders count days and weeks past a deadline: near year 9999 that overflows.
        c.error(path, f"{value} is out of range (years {MIN_YEAR}-{MAX_YEAR})")
        return None
    return moment


def _unique(c: _Checker, items: Iterable[tuple[KeyPath, str | None]], what: str) -> None:
    seen: dict[str, KeyPath] = {}
    for path, key in items:
        if key is None:
            continue
        if key in seen:
            c.error(path, f"duplicate {what} {key!r} (first at {format_path(seen[key])})")
        else:
            seen[key] = path


def parse_plan(text: str, file: str = "<plan>") -> Plan:
    """Validate plan text; raise `PlanInvalid` listing every error."""
    # A byte-order mark (Notepad's UTF-8) is read as nothing; it holds no line of its own.
    text = text.removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        # "(at end of document)": something left open, reported on the last line.
        line = int(match.group(1)) if match else len(text.splitlines()) or 1
        message = _TOML_LINE.sub("", str(exc)).strip()
        raise PlanInvalid([PlanError(file, line, "", f"not valid TOML: {message}")]) from None
    except (ValueError, RecursionError) as exc:
        # tomllib gives no position for a number too long to read or values nested too deep.
        what = "values nested too deeply" if isinstance(exc, RecursionError) else "number too long"
        line = _first_failing_line(text)
        raise PlanInvalid([PlanError(file, line, "", f"not valid TOML: {what}")]) from None
    c = _Checker(file, LineIndex(text))
    plan = _build(c, data, file)
    if c.errors or plan is None:
        raise PlanInvalid(c.errors)
    return plan


def _first_failing_line(text: str) -> int:
    """Return the first line through which tomllib fails without naming a position.

    tomllib reads in order, so once a prefix of the lines holds the culprit, every longer
    prefix fails the same way: bisect. A prefix that merely stops mid-value is not it.
    """
    lines = text.splitlines(keepends=True)
    low, high = 1, max(len(lines), 1)
    while low < high:
        middle = (low + high) // 2
        try:
            tomllib.loads("".join(lines[:middle]))
        except tomllib.TOMLDecodeError:
            low = middle + 1
        except (ValueError, RecursionError):
            high = middle
        else:
            low = middle + 1
    return low


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file."""
    path = Path(path)
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise PlanInvalid([PlanError(str(path), None, "", "file not found")]) from None
    except TextFileError as exc:
        raise PlanInvalid([PlanError(str(path), None, "", exc.reason)]) from None
    except OSError as exc:
        raise PlanInvalid(
            [PlanError(str(path), None, "", f"cannot read: {exc.strerror}")]
        ) from None
    return parse_plan(text, str(path))


@dataclass
class _Context:
    """What later sections of a plan need from earlier ones."""

    zone: ZoneInfo | None = None
    due_time: time = time(18, 0)
    base_policy: dict[str, Any] | None = None
    kind_keys: set[str] = field(default_factory=set)  # valid kinds
    all_kind_keys: set[str] = field(default_factory=set)  # every kind key written
    unit_keys: set[str] = field(default_factory=set)
    task_paths: list[tuple[KeyPath, str | None]] = field(default_factory=list)
    calendar: WorkCalendar | None = None


def _build(c: _Checker, data: dict[str, Any], file: str) -> Plan | None:
    c.table(data, (), TOP_KEYS)
    ctx = _Context()
    campaign = _campaign(c, data, ctx)
    calendar = _calendar(c, data)
    ctx.calendar = calendar
    ctx.base_policy = _check_policy(
        c, data.get("reminders", {}), ("reminders",), DEFAULT_POLICY_JSON
    )
    digest = _digest(c, data)
    kinds = _unit_kinds(c, data, ctx)
    units = _units(c, data, ctx)
    phases = _phases(c, data, ctx)
    key, title, units_see_all = campaign
    office = _office(c, data)
    zone, base_policy = ctx.zone, ctx.base_policy
    if c.errors or not (key and title and zone and base_policy):
        return None
    return Plan(
        source=Path(file),
        key=key,
        title=title,
        timezone=zone.key,
        due_time=ctx.due_time,
        units_see_all=units_see_all,
        calendar=calendar,
        policy=ReminderPolicy.from_json(base_policy),
        digest=digest,
        unit_kinds=tuple(kinds),
        units=tuple(units),
        phases=tuple(phases),
        warnings=tuple(_calendar_warnings(calendar, phases, zone, file)),
        office=office,
    )


def _office(c: _Checker, data: dict[str, Any]) -> str:
    """Read `[campaign] office`: the name people are told to turn to ("" if not given)."""
    campaign = data.get("campaign")
    if not isinstance(campaign, dict):
        return ""
    value = c.text(campaign, ("campaign",), "office", "")
    return value.strip() if isinstance(value, str) else ""


def _campaign(
    c: _Checker, data: dict[str, Any], ctx: _Context
) -> tuple[str | None, str | None, bool]:
    """Read [campaign]; set the time zone and due time on the context."""
    if "campaign" not in data:
        c.error(("campaign",), "missing table [campaign]")
    campaign = c.table(data.get("campaign", {}), ("campaign",), CAMPAIGN_KEYS)
    cp: KeyPath = ("campaign",)
    key = c.ident(campaign, cp) if campaign or "campaign" in data else None
    title = c.text(campaign, cp, "title") if "campaign" in data else None
    tz_name = c.text(campaign, cp, "timezone", "Asia/Shanghai")
    if isinstance(tz_name, str):
        try:
            ctx.zone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
            c.error((*cp, "timezone"), f'unknown time zone {tz_name!r} (e.g. "Asia/Shanghai")')
    due_time_text = c.text(campaign, cp, "due_time", "18:00")
    if isinstance(due_time_text, str):
        parsed: time | None = c.spec((*cp, "due_time"), due_time_text, parse_clock)
        ctx.due_time = parsed or ctx.due_time
    units_see_all = c.get(campaign, cp, "units_see_all", bool, "true or false", False)
    return key, title, bool(units_see_all)


def _calendar(c: _Checker, data: dict[str, Any]) -> WorkCalendar:
    """Read [calendar] into the campaign's working-day calendar."""
    cal = c.table(data.get("calendar", {}), ("calendar",), CALENDAR_KEYS)
    country = c.get(cal, ("calendar",), "country", str, 'a country code such as "CN"', "CN")
    extra_holidays = c.dates(cal, ("calendar",), "extra_holidays")
    extra_workdays = c.dates(cal, ("calendar",), "extra_workdays")
    for day in set(extra_holidays) & set(extra_workdays):
        c.error(("calendar", "extra_workdays"), f"{day} is also in extra_holidays")
    calendar = WorkCalendar(country or None, frozenset(extra_holidays), frozenset(extra_workdays))
    if country:
        try:
            calendar.is_working_day(date(2000, 1, 3))
        except UnknownCountry:
            c.error(("calendar", "country"), f"no holiday data for country {country!r}")
            calendar = WorkCalendar(None, calendar.extra_holidays, calendar.extra_workdays)
    return calendar


def _digest(c: _Checker, data: dict[str, Any]) -> Digest:
    """Read [digest]: the daily digest's time and the weekly bulletin's day and time."""
    dg = c.table(data.get("digest", {}), ("digest",), DIGEST_KEYS)
    daily: time | None = time(9, 0)
    weekly: tuple[int, time] | None = (0, time(9, 0))
    if "daily" in dg:
        daily = (
            None if dg["daily"] is False else c.spec(("digest", "daily"), dg["daily"], parse_clock)
        )
    if "weekly" in dg:
        weekly = (
            None
            if dg["weekly"] is False
            else c.spec(("digest", "weekly"), dg["weekly"], parse_weekly)
        )
    return Digest(daily, weekly)


def _unit_kinds(c: _Checker, data: dict[str, Any], ctx: _Context) -> list[UnitKind]:
    """Read [[unit_kinds]]; remember their keys on the context."""
    kinds: list[UnitKind] = []
    raw_kinds = c.get(data, (), "unit_kinds", list, "an array of tables [[unit_kinds]]")
    kind_paths: list[tuple[KeyPath, str | None]] = []
    for i, raw in enumerate(raw_kinds or []):
        kp: KeyPath = ("unit_kinds", i)
        kt = c.table(raw, kp, KIND_KEYS)
        k_key, k_name = c.ident(kt, kp), c.text(kt, kp, "name")
        kind_paths.append(((*kp, "key"), k_key))
        if k_key and k_name:
            kinds.append(UnitKind(k_key, k_name))
    _unique(c, kind_paths, "unit kind key")
    ctx.kind_keys = {k.key for k in kinds}
    ctx.all_kind_keys = {k for _, k in kind_paths if k}
    return kinds


def _units(c: _Checker, data: dict[str, Any], ctx: _Context) -> list[Unit]:
    """Read [[units]]; keys, names and aliases must be unique."""
    units: list[Unit] = []
    raw_units = c.get(data, (), "units", list, "an array of tables [[units]]")
    unit_paths: list[tuple[KeyPath, str | None]] = []
    names: list[tuple[KeyPath, str | None]] = []
    for i, raw in enumerate(raw_units or []):
        up: KeyPath = ("units", i)
        ut = c.table(raw, up, UNIT_KEYS)
        u_key, u_name = c.ident(ut, up), c.text(ut, up, "name")
        u_kind = c.text(ut, up, "kind")
        aliases = c.strings(ut, up, "aliases")
        unit_paths.append(((*up, "key"), u_key))
        names.append(((*up, "name"), u_name))
        names.extend(((*up, "aliases", j), a) for j, a in enumerate(aliases))
        if isinstance(u_kind, str) and u_kind not in ctx.all_kind_keys:
            c.error((*up, "kind"), f"unknown unit kind {u_kind!r}" + _known(ctx.all_kind_keys))
        if u_key and u_name and u_kind in ctx.kind_keys:
            units.append(Unit(u_key, u_name, u_kind, tuple(aliases)))
    _unique(c, unit_paths, "unit key")
    _unique(c, names, "unit name or alias")
    ctx.unit_keys = {k for _, k in unit_paths if k}
    return units


def _phases(c: _Checker, data: dict[str, Any], ctx: _Context) -> list[Phase]:
    """Read [[phases]] with their tasks; phase and task keys must be unique."""
    phases: list[Phase] = []
    raw_phases = c.get(data, (), "phases", list, "an array of tables [[phases]]")
    phase_paths: list[tuple[KeyPath, str | None]] = []
    for i, raw in enumerate(raw_phases or []):
        pp: KeyPath = ("phases", i)
        pt = c.table(raw, pp, PHASE_KEYS)
        p_key, p_name = c.ident(pt, pp), c.text(pt, pp, "name")
        phase_paths.append(((*pp, "key"), p_key))
        start = _plain_date(c, pt, pp, "start")
        end = _plain_date(c, pt, pp, "end")
        if start and end and end < start:
            c.error((*pp, "end"), f"phase ends ({end}) before it starts ({start})")
        policy = ctx.base_policy
        if "reminders" in pt and policy is not None:
            policy = _check_policy(c, pt["reminders"], (*pp, "reminders"), policy)
        raw_tasks = c.get(pt, pp, "tasks", list, "an array of tables [[phases.tasks]]", [])
        tasks = [
            task
            for j, raw_task in enumerate(raw_tasks or [])
            for task in _task(c, raw_task, (*pp, "tasks", j), ctx, policy, start, end)
        ]
        if p_key and p_name and start and end:
            description = c.text(pt, pp, "description", "", multiline=True) or ""
            phases.append(Phase(p_key, p_name, start, end, tuple(tasks), description))
    _unique(c, phase_paths, "phase key")
    _unique(c, ctx.task_paths, "task key")
    if raw_phases is not None and not raw_phases:
        c.error(("phases",), "a plan needs at least one phase")
    return phases


def _task(
    c: _Checker,
    raw: Any,
    tp: KeyPath,
    ctx: _Context,
    phase_policy: dict[str, Any] | None,
    start: date | None,
    end: date | None,
) -> list[Task]:
    """Read one [[phases.tasks]] entry (its due date must lie in its phase unless allowed).

    A task with `repeat` becomes one Task per occurrence (keyed `<key>@<date>`).
    """
    tt = c.table(raw, tp, TASK_KEYS)
    t_key, t_title = c.ident(tt, tp), c.text(tt, tp, "title")
    ctx.task_paths.append(((*tp, "key"), t_key))
    due = None
    if "due" in tt and "repeat" in tt:
        c.error((*tp, "repeat"), "a task has either due or repeat, not both")
    elif "due" in tt:
        due = _due_moment(c, tt["due"], (*tp, "due"), ctx.zone, ctx.due_time)
    elif "repeat" not in tt:
        c.error((*tp, "due"), "missing key (or give repeat for a recurring task)")
    evidence = c.text(tt, tp, "evidence", "any")
    if isinstance(evidence, str) and evidence not in EVIDENCE_KINDS:
        c.error(
            (*tp, "evidence"), f"unknown evidence {evidence!r} (use {', '.join(EVIDENCE_KINDS)})"
        )
    for_kinds = c.strings(tt, tp, "for") if "for" in tt else sorted(ctx.all_kind_keys)
    for k, kind in enumerate(for_kinds):
        if kind not in ctx.all_kind_keys:
            c.error((*tp, "for", k), f"unknown unit kind {kind!r}" + _known(ctx.all_kind_keys))
    exempt = c.strings(tt, tp, "except")
    for k, unit_key in enumerate(exempt):
        if unit_key not in ctx.unit_keys:
            c.error((*tp, "except", k), f"unknown unit {unit_key!r}")
    outside = c.get(tt, tp, "allow_outside_phase", bool, "true or false", False)
    if due is not None and start and end and ctx.zone is not None and not outside:
        local = due.astimezone(ctx.zone).date()
        if not start <= local <= end:
            c.error(
                (*tp, "due"),
                f"due {local} lies outside its phase ({start} – {end}); "
                "set allow_outside_phase = true if that is intended",
            )
    policy = phase_policy
    if "reminders" in tt and phase_policy is not None:
        policy = _check_policy(c, tt["reminders"], (*tp, "reminders"), phase_policy)
    description = c.text(tt, tp, "description", "", multiline=True)
    if "repeat" in tt and "due" not in tt:
        moments = _repeat_moments(
            c, tt["repeat"], (*tp, "repeat"), ctx, policy, start, end, outside
        )
        if not (t_key and t_title and moments and isinstance(evidence, str) and policy):
            return []
        return [
            Task(
                key=f"{t_key}@{day.isoformat()}",
                title=f"{t_title} · {day.month}/{day.day}",
                due=moment,
                evidence=evidence,
                kinds=tuple(for_kinds),
                exempt=tuple(exempt),
                allow_outside_phase=bool(outside),
                policy=ReminderPolicy.from_json(policy),
                description=description or "",
                series=t_key,
                series_title=t_title,
                occurrence=day,
            )
            for day, moment in moments
        ]
    if not (t_key and t_title and due and isinstance(evidence, str) and policy):
        return []
    return [
        Task(
            key=t_key,
            title=t_title,
            due=due,
            evidence=evidence,
            kinds=tuple(for_kinds),
            exempt=tuple(exempt),
            allow_outside_phase=bool(outside),
            policy=ReminderPolicy.from_json(policy),
            description=description or "",
        )
    ]


def _repeat_moments(
    c: _Checker,
    raw: Any,
    rp: KeyPath,
    ctx: _Context,
    policy: dict[str, Any] | None,
    start: date | None,
    end: date | None,
    outside: Any,
) -> list[tuple[date, datetime]]:
    """Read a task's `repeat` table; return each occurrence's local date and UTC due moment.

    SPEC §3: `every` week/month (or day), `on`, optional `at` (default the campaign's
    due_time), `from`/`until` (default the phase's dates, inside it unless allowed).
    """
    table = c.table(raw, rp, REPEAT_KEYS)
    if not isinstance(raw, dict):
        return []
    try:
        rule = Repeat.parse(table.get("every"), table.get("on"))
    except RepeatError as exc:
        key = "every" if "every" in str(exc) or "every" not in table else "on"
        c.error((*rp, key), str(exc))
        return []
    at = ctx.due_time
    if "at" in table:
        parsed_at: time | None = c.spec((*rp, "at"), table["at"], parse_clock)
        if parsed_at is None:
            return []
        at = parsed_at
    first = _plain_date(c, table, rp, "from") if "from" in table else start
    last = _plain_date(c, table, rp, "until") if "until" in table else end
    if first is None or last is None or ctx.zone is None:
        return []
    if last < first:
        c.error((*rp, "until"), f"until ({last}) lies before from ({first})")
        return []
    if start and end and not outside and not (start <= first and last <= end):
        c.error(
            rp,
            f"occurrences from {first} to {last} lie outside its phase ({start} – {end}); "
            "set allow_outside_phase = true if that is intended",
        )
        return []
    workdays = bool(policy.get("workdays_only")) if policy else False
    try:
        days = rule.dates(first, last, ctx.calendar if workdays else None)
    except (RepeatError, ValueError) as exc:
        c.error(rp, str(exc))
        return []
    if not days:
        c.error(rp, f"no occurrence between {first} and {last}")
        return []
    zone = ctx.zone
    return [(d, datetime.combine(d, at, tzinfo=zone).astimezone(UTC)) for d in days]


def _calendar_warnings(
    calendar: WorkCalendar, phases: list[Phase], zone: ZoneInfo, file: str
) -> list[str]:
    """Warn about years whose 调休 make-up days are not known yet."""
    years = {t.due.astimezone(zone).year for p in phases for t in p.tasks}
    years |= {p.start.year for p in phases} | {p.end.year for p in phases}
    missing = calendar.years_without_data(years)
    if not missing:
        return []
    return [
        f"{file}: calendar.country: no adjusted working days (调休) known for "
        f"{', '.join(map(str, missing))}; counting statutory holidays and weekends only "
        "(add extra_holidays / extra_workdays when they are announced)"
    ]


def _plain_date(c: _Checker, table: dict[str, Any], path: KeyPath, key: str) -> date | None:
    if key not in table:
        c.error((*path, key), "missing key")
        return None
    value = table[key]
    if isinstance(value, datetime) or not isinstance(value, date):
        c.error((*path, key), f"expected a date such as 2017-04-10, got {_describe(value)}")
        return None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        c.error((*path, key), f"{value} is out of range (years {MIN_YEAR}-{MAX_YEAR})")
        return None
    return value


def _known(keys: set[str]) -> str:
    return f" (known: {', '.join(sorted(keys))})" if keys else " (no [[unit_kinds]] defined)"
