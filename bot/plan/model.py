"""The validated content of a plan file."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from bot.domain.calendar import WorkCalendar
from bot.domain.policy import ReminderPolicy
from bot.domain.timespec import Window

EVIDENCE_KINDS = ("file", "text", "any", "none")


@dataclass(frozen=True)
class PlanError:
    """One problem in a plan file, with where it is."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class PlanInvalid(Exception):
    """A plan file with one or more errors."""

    def __init__(self, errors: list[PlanError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class UnitKind:
    """A kind of unit (county unions, industry unions, ...)."""

    key: str
    name: str


@dataclass(frozen=True)
class Unit:
    """A unit that owes deliverables."""

    key: str
    name: str
    kind: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Task:
    """A deliverable every unit of some kinds owes by a deadline."""

    key: str
    title: str
    due: datetime  # aware, UTC
    evidence: str
    kinds: tuple[str, ...]
    exempt: tuple[str, ...]
    allow_outside_phase: bool
    policy: ReminderPolicy
    description: str = ""
    # A recurring task (`repeat`) is one Task per occurrence: `series` is the key written in
    # the plan, `series_title` its title, `occurrence` the occurrence's local date.
    series: str | None = None
    series_title: str | None = None
    occurrence: date | None = None


@dataclass(frozen=True)
class Phase:
    """A stage of the campaign with its date range (end inclusive) and tasks."""

    key: str
    name: str
    start: date
    end: date
    tasks: tuple[Task, ...]
    description: str = ""


@dataclass(frozen=True)
class Digest:
    """When leaders and office get the daily digest and the weekly bulletin."""

    daily: time | None
    weekly: tuple[int, time] | None


@dataclass(frozen=True)
class Plan:
    """One campaign as described by its plan file."""

    source: Path
    key: str
    title: str
    timezone: str
    due_time: time
    units_see_all: bool
    calendar: WorkCalendar
    policy: ReminderPolicy
    digest: Digest
    unit_kinds: tuple[UnitKind, ...]
    units: tuple[Unit, ...]
    phases: tuple[Phase, ...]
    warnings: tuple[str, ...] = field(default=())
    # Who people are told to turn to (a stranger's /start, refusals); "" for the neutral
    # "the office" of the catalogs.
    office: str = ""

    @property
    def tasks(self) -> list[Task]:
        """Return every task in phase order."""
        return [task for phase in self.phases for task in phase.tasks]

    def units_for(self, task: Task) -> list[Unit]:
        """Return the units that owe a task."""
        exempt = set(task.exempt)
        kinds = set(task.kinds)
        return [u for u in self.units if u.kind in kinds and u.key not in exempt]

    def assignment_count(self) -> int:
        """Return how many (unit, task) pairs the plan creates."""
        return sum(len(self.units_for(task)) for task in self.tasks)

    @property
    def window(self) -> Window:
        """Return the campaign-wide send window."""
        return self.policy.window
