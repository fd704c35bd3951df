"""Render progress for the chat: short lines, progress bars, the worst first."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.db import models as m
from bot.domain.assignments import ACCEPTED, DONE, is_open
from bot.domain.deadlines import days_left, days_overdue
from bot.i18n import Markup, format_date, format_moment, progress_bar, t
from bot.messages import callbacks as cb
from bot.services.progress import AssignmentView, CampaignProgress, TaskProgress
from bot.services.submissions import Owed
from bot.services.unit_reports import ReportLine


def state_label(view: AssignmentView, lang: str) -> Markup:
    """Name an assignment's state (how late it is, `when_label` says)."""
    return t(f"state.{view.status}", lang)


def when_label(view: AssignmentView, now: datetime, lang: str) -> Markup:
    """Say how much time is left, or how late, for an open assignment."""
    if not is_open(view.status):
        return Markup("")
    if view.overdue:
        return t("status.days_overdue", lang, days=days_overdue(view.due_at, now))
    days = days_left(view.due_at, now)
    return t("status.due_today", lang) if days == 0 else t("status.days_left", lang, days=days)


def _task_lines(task: TaskProgress, tz: str, lang: str) -> list[str]:
    return [
        t("chat.task_head", lang, title=task.title, due=format_moment(task.due_at, tz, lang)),
        *series_lines(task, tz, lang),
        t(
            "chat.task_figures",
            lang,
            bar=progress_bar(task.submitted, task.total),
            submitted=task.submitted,
            total=task.total,
            accepted=task.accepted,
            overdue=task.overdue,
        ),
    ]


def series_lines(task: TaskProgress, tz: str, lang: str) -> list[str]:
    """Return the line under a recurring task: occurrences due so far and the next one."""
    if not task.recurring:
        return []
    count = len(task.occurrences)
    if task.next_due is None:
        return [t("recurring.series_over", lang, count=count)]
    nxt = format_moment(task.next_due, tz, lang)
    return [t("recurring.series_next", lang, count=count, due_so_far=task.due_so_far, next=nxt)]


def campaign_view(
    progress: CampaignProgress, lang: str, *, laggards: Sequence[tuple[str, int]] = ()
) -> str:
    """Render a campaign's progress for a phone: what matters now first, the rest in one line.

    The current phase shows every task; a past phase only the tasks still open; a finished or
    future phase one line. `laggards` (unit, overdue count) lists the units most behind.
    """
    tz = progress.timezone
    today = progress.now.astimezone(ZoneInfo(tz)).date()
    total, submitted, accepted, overdue = progress.totals()
    lines: list[str] = [
        t("chat.status_title", lang, campaign=progress.title),
        t("status.as_of", lang, moment=format_moment(progress.now, tz, lang)),
        t(
            "status.total",
            lang,
            total=total,
            submitted=submitted,
            accepted=accepted,
            overdue=overdue,
        ),
        t(
            "reports.status.overall",
            lang,
            bar=progress_bar(submitted, total),
            percent=round(100 * submitted / total) if total else 0,
        ),
    ]
    for phase in progress.phases:
        span = {
            "name": phase.name,
            "start": f"{phase.start.month}/{phase.start.day}",
            "end": f"{phase.end.month}/{phase.end.day}",
        }
        tasks = phase.tasks
        lines.append("")
        if not tasks:
            lines.append(t("reports.status.phase_quiet", lang, **span))
        elif phase.start > today:
            lines.append(t("reports.status.phase_future", lang, count=len(tasks), **span))
        elif phase.end < today:
            open_tasks = [x for x in tasks if x.submitted < x.total]
            if not open_tasks:
                lines.append(
                    t(
                        "reports.status.phase_done",
                        lang,
                        submitted=sum(x.submitted for x in tasks),
                        total=sum(x.total for x in tasks),
                        **span,
                    )
                )
                continue
            lines.append(t("reports.status.phase_past", lang, **span))
            for task in sorted(open_tasks, key=lambda x: -x.overdue):
                lines.extend(_task_lines(task, tz, lang))
        else:
            lines.append(t("reports.status.phase_now", lang, **span))
            for task in tasks:
                lines.extend(_task_lines(task, tz, lang))
    if laggards:
        lines.append("")
        lines.append(t("reports.status.laggards", lang))
        for rank, (unit, count) in enumerate(laggards, 1):
            lines.append(
                t("reports.status.laggard_line", lang, rank=rank, unit=unit, overdue=count)
            )
    return "\n".join(lines)


def status_buttons(lang: str) -> list[list[tuple[str, str]]]:
    """Return the "more" buttons under the short status: full details, the overdue list, chart."""
    return [
        [
            (str(t("reports.status.more_button", lang)), cb.STATUS_MORE.data("full")),
            (str(t("reports.status.overdue_button", lang)), cb.STATUS_MORE.data("overdue")),
        ],
        [(str(t("reports.status.chart_button", lang)), cb.STATUS_MORE.data("chart"))],
    ]


def campaign_detail_view(progress: CampaignProgress, lang: str) -> str:
    """Render every phase and task of a campaign with done/total, a bar, overdue (the "more")."""
    tz = progress.timezone
    lines: list[str] = [
        t("chat.status_title", lang, campaign=progress.title),
        t("status.as_of", lang, moment=format_moment(progress.now, tz, lang)),
    ]
    for phase in progress.phases:
        lines.append("")
        lines.append(
            t(
                "chat.phase_line",
                lang,
                name=phase.name,
                start=f"{phase.start.month}/{phase.start.day}",
                end=f"{phase.end.month}/{phase.end.day}",
            )
        )
        if not phase.tasks:
            lines.append(t("status.no_tasks", lang))
        for task in phase.tasks:
            lines.extend(_task_lines(task, tz, lang))
    total, submitted, accepted, overdue = progress.totals()
    lines.append("")
    lines.append(
        t(
            "status.total",
            lang,
            total=total,
            submitted=submitted,
            accepted=accepted,
            overdue=overdue,
        )
    )
    return "\n".join(lines)


def unit_view(unit: m.Unit, views: list[AssignmentView], tz: str, now: datetime, lang: str) -> str:
    """Render one unit's tasks: state, due date, days left or overdue."""
    done = sum(1 for v in views if v.status in DONE)
    lines: list[str] = [
        t("chat.unit_title", lang, unit=unit.name),
        t(
            "chat.unit_figures",
            lang,
            bar=progress_bar(done, len(views)),
            done=done,
            total=len(views),
        ),
    ]
    for view in views:
        lines.append("")
        lines.append(
            t(
                "chat.task_head",
                lang,
                title=view.task_title,
                due=format_moment(view.due_at, tz, lang),
            )
        )
        extra = when_label(view, now, lang)
        lines.append(t("chat.unit_task_state", lang, state=state_label(view, lang), extra=extra))
        if view.last_submitted_at is not None:
            lines.append(
                t(
                    "chat.last_submission",
                    lang,
                    moment=format_moment(view.last_submitted_at, tz, lang),
                    who=view.submitter or "—",
                )
            )
        if view.review == "returned" and view.review_reason:
            lines.append(t("chat.returned_reason", lang, reason=view.review_reason))
    if not views:
        lines.append(t("chat.nothing_owed", lang))
    return "\n".join(lines)


def task_view(task: m.Task, views: list[AssignmentView], tz: str, now: datetime, lang: str) -> str:
    """Render who has submitted a task and who has not, the latest first."""
    submitted = [v for v in views if v.status in DONE]
    missing = [v for v in views if is_open(v.status)]
    # The worst offenders first: the longest overdue at the top.
    missing.sort(key=lambda v: v.due_at)
    mark = t("work.task_added_mark", lang) if task.origin == "chat" else ""
    lines: list[str] = [
        t("chat.task_title", lang, title=task.title, due=format_moment(task.due_at, tz, lang))
        + mark,
        t(
            "chat.task_figures",
            lang,
            bar=progress_bar(len(submitted), len(views)),
            submitted=len(submitted),
            total=len(views),
            accepted=sum(1 for v in views if v.status == ACCEPTED),
            overdue=sum(1 for v in missing if v.overdue),
        ),
        "",
        t("chat.missing_head", lang, count=len(missing)),
    ]
    for view in missing:
        lines.append(
            t(
                "chat.missing_line",
                lang,
                unit=view.unit_name,
                state=state_label(view, lang),
                extra=when_label(view, now, lang),
            )
        )
    lines.append("")
    lines.append(t("chat.submitted_head", lang, count=len(submitted)))
    for view in submitted:
        moment = format_date(view.last_submitted_at, tz, lang) if view.last_submitted_at else "—"
        late = t("chat.late_mark", lang) if view.late else Markup("")
        lines.append(
            t(
                "chat.submitted_line",
                lang,
                unit=view.unit_name,
                state=state_label(view, lang),
                moment=moment,
                late=late,
            )
        )
    return "\n".join(lines)


def overdue_view(views: list[AssignmentView], now: datetime, lang: str) -> str:
    """Render every overdue assignment, grouped by unit, the unit with most overdue first."""
    overdue = [v for v in views if v.overdue]
    if not overdue:
        return str(t("chat.no_overdue", lang))
    by_unit: dict[str, list[AssignmentView]] = defaultdict(list)
    for view in overdue:
        by_unit[view.unit_name].append(view)
    lines: list[str] = [t("chat.overdue_title", lang, count=len(overdue), units=len(by_unit))]
    for unit, items in sorted(by_unit.items(), key=lambda kv: -len(kv[1])):
        lines.append("")
        lines.append(t("chat.overdue_unit", lang, unit=unit, count=len(items)))
        for view in sorted(items, key=lambda v: v.due_at):
            lines.append(
                t(
                    "chat.overdue_line",
                    lang,
                    task=view.task_title,
                    days=days_overdue(view.due_at, now),
                )
            )
    return "\n".join(lines)


def mine_view(
    units: list[tuple[m.Unit, list[AssignmentView]]], tz: str, now: datetime, lang: str
) -> str:
    """Render a contact's own units' tasks."""
    return "\n\n".join(unit_view(unit, views, tz, now, lang) for unit, views in units)


# A keyboard of more rows is unwieldy on a phone; /mine lists everything.
MAX_PICK_BUTTONS = 30


def owed_buttons(
    owed: Sequence[Owed], kind: cb.Kind, tz: str, lang: str
) -> list[list[tuple[str, str]]]:
    """Return one button per open assignment (task, unit, due) of this kind."""
    return [
        [
            (
                t(
                    "submit.pick_button",
                    lang,
                    task=item.task.title,
                    unit=item.unit.name,
                    due=format_moment(item.assignment.due_at, tz, lang),
                ),
                kind.data(item.assignment.id),
            )
        ]
        for item in owed[:MAX_PICK_BUTTONS]
    ]


# A version's text shown in /unit keeps this much (the whole text stays in the export).
VERSION_TEXT_LIMIT = 200


def versions_view(
    subs: Sequence[tuple[m.Submission, str]],
    files: dict[int, list[m.SubmissionFile]],
    tz: str,
    lang: str,
) -> str:
    """Render a unit's versions for the office: task, version, moment, files and text."""
    lines = [t("kinds.versions_title", lang)]
    for sub, title in subs:
        names = "、".join(f.file_name or f"[{f.kind}]" for f in files.get(sub.id, []))
        text = (sub.text or "").strip()
        if len(text) > VERSION_TEXT_LIMIT:
            text = text[:VERSION_TEXT_LIMIT] + "…"
        lines.append(
            t(
                "kinds.version_line",
                lang,
                task=title,
                version=sub.version,
                moment=format_moment(sub.submitted_at, tz, lang),
                files=t("kinds.version_files", lang, names=names) if names else "",
                text=t("kinds.version_text", lang, text=text) if text else "",
            )
        )
    return "\n".join(lines)


def unit_reports_view(reports: Sequence[ReportLine], tz: str, lang: str) -> list[str]:
    """Return the lines listing a unit's reports outside any task (newest first)."""
    lines: list[str] = [t("work.unit_reports_head", lang, count=len(reports))]
    for line in reports:
        report = line.report
        text = (report.text or "").replace("\n", " ")
        lines.append(
            t(
                "work.unit_report_line",
                lang,
                moment=format_moment(report.created_at, tz, lang),
                who=line.who,
                state=t(f"work.report_state_{report.status}", lang),
                files=len(report.files or []),
                text=text if len(text) <= 40 else text[:39] + "…",
            )
        )
    return lines
