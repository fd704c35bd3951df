"""Describe a valid plan in a few lines for `duban plan check`."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.i18n import format_moment, plain
from bot.plan.model import Plan


def summarize(plan: Plan, lang: str) -> list[str]:
    """Return the summary lines: counts, first and last deadline, non-working deadlines."""
    tasks = plan.tasks
    lines = [
        plain("plan.ok", lang, file=str(plan.source)),
        plain("plan.campaign", lang, title=plan.title, key=plan.key),
        plain(
            "plan.counts",
            lang,
            phases=len(plan.phases),
            tasks=len(tasks),
            units=len(plan.units),
            assignments=plan.assignment_count(),
        ),
    ]
    series: dict[str, list[str]] = {}
    for task in tasks:
        if task.series is not None and task.occurrence is not None:
            day = task.occurrence
            series.setdefault(task.series_title or task.series, []).append(f"{day.month}/{day.day}")
    for title, days in series.items():
        lines.append(
            plain("recurring.summary", lang, title=title, count=len(days), days=", ".join(days))
        )
    if not tasks:
        lines.append(plain("plan.no_tasks", lang))
    else:
        dues = sorted(task.due for task in tasks)
        lines.append(
            plain(
                "plan.deadlines",
                lang,
                first=format_moment(dues[0], plan.timezone, lang, with_year=True),
                last=format_moment(dues[-1], plan.timezone, lang, with_year=True),
            )
        )
        zone = ZoneInfo(plan.timezone)
        off = [t for t in tasks if not plan.calendar.is_working_day(t.due.astimezone(zone).date())]
        detail = "".join(
            f"\n  - {t.title}: {format_moment(t.due, plan.timezone, lang, with_year=True)}"
            for t in off
        )
        lines.append(plain("plan.nonworking", lang, count=len(off), detail=detail))
    lines.extend(plain("plan.warning", lang, text=w) for w in plan.warnings)
    return lines
