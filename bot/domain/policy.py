"""The reminder policy of a task: when nudges and escalations go out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.timespec import Duration, Window, parse_duration, parse_window

ESCALATION_TARGETS = ("head", "office", "leaders")


@dataclass(frozen=True)
class Escalation:
    """Tell `to` once the assignment is `after` overdue."""

    after: Duration
    to: str


@dataclass(frozen=True)
class ReminderPolicy:
    """Every rule that decides a task's nudges (SPEC §5)."""

    before: tuple[Duration, ...]
    on_due: bool
    overdue_every: Duration | None
    escalate: tuple[Escalation, ...]
    window: Window
    workdays_only: bool

    def to_json(self) -> dict[str, Any]:
        """Return the policy as plain data for the database."""
        return {
            "before": [str(d) for d in self.before],
            "on_due": self.on_due,
            "overdue_every": None if self.overdue_every is None else str(self.overdue_every),
            "escalate": [{"after": str(e.after), "to": e.to} for e in self.escalate],
            "window": str(self.window),
            "workdays_only": self.workdays_only,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReminderPolicy:
        """Rebuild a policy stored by `to_json`."""
        every = data.get("overdue_every")
        return cls(
            before=tuple(
                sorted((parse_duration(d) for d in data["before"]), key=_seconds, reverse=True)
            ),
            on_due=bool(data["on_due"]),
            overdue_every=None if every is None else parse_duration(every),
            escalate=tuple(
                Escalation(parse_duration(e["after"]), e["to"]) for e in data["escalate"]
            ),
            window=parse_window(data["window"]),
            workdays_only=bool(data["workdays_only"]),
        )


DEFAULT_POLICY_JSON: dict[str, Any] = {
    "before": ["7d", "3d", "1d", "2h"],
    "on_due": True,
    "overdue_every": "1d",
    "escalate": [{"after": "1d", "to": "head"}, {"after": "3d", "to": "leaders"}],
    "window": "09:00-18:00",
    "workdays_only": True,
}


def _seconds(duration: Duration) -> int:
    return duration.seconds
