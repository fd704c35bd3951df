"""Draft a plan from a notice (SPEC §3.1): phases, dated and recurring deliverables.

The draft is for a person to check, never a silent guess: every phase and task carries the
sentence it came from, and what is uncertain (a phase given by month or by its end only, a
deliverable without a date or outside its phase, an unknown year) is listed under "check
these". Input is the notice's lines (bot/intake/notice.py); tables come as `| a | b |` rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from bot.domain.recurrence import WEEKDAYS, Repeat, RepeatError
from bot.i18n import plain
from bot.intake.cndates import Point, Span, find_spans, first_day, last_day, normalize, weekday
from bot.intake.units_toml import make_key, toml_string

# Enumerators, from the outermost level: 一、 > （一） > 1． > （1）; 第一阶段 is a phase's own.
_ENUMS = (
    ("cn", re.compile(r"^[一二三四五六七八九十]+\s*[、．.]")),
    ("cn-paren", re.compile(r"^[（(][一二三四五六七八九十]+[)）]")),
    ("num", re.compile(r"^\d{1,2}\s*(?:[、．.](?!\d)|\s)")),
    ("num-paren", re.compile(r"^[（(]\d{1,2}[)）]")),
    ("stage", re.compile(r"^第[一二三四五六七八九十\d]+(?:阶段|步|部分)\s*[:：、，,]?")),
)
_LEVEL = {name: i for i, (name, _) in enumerate(_ENUMS)}
_HEAD_BODY = re.compile(
    r"^(?P<name>[^（(：:，,。；;|]{2,30}?)\s*"
    r"(?:[（(](?P<paren>[^)）]{3,40})[)）]\s*[:：。．.，,]?|[:：]\s*(?P<colon>[^，,。；;]{3,40}?)\s*(?:[，,。；;]|$))"
)
_VERB = r"(?:报送|上报|提交|填报|报至|报|送交|送达|发送|交)"
_MAKE = r"(?:形成|完成|制定|起草|编制|撰写|整理|汇总)"
_DEST = r"(?=[区市县省镇乡街局委办部处科所站室中心各上级总本]|至|给|到)"
_DEADLINE_TAIL = re.compile(
    r"^\s*(?:\d{1,2}\s*[:：]\s*\d{2}|\d{1,2}\s*[时点](?:整)?)?\s*(?:前|之前|以前|为止|止)\s*"
)
_LINKER = re.compile(r"^\s*(?:和|、|及|与|，|,)\s*$")
_LEAD_NOISE = re.compile(
    r"^(?:并|再|分别|统一|及时|按时|要|须|应|请|务必|将|把|向\S{1,12}?|本校(?:（园）|\(园\))?|"
    r"本单位|本地区|本镇(?:（街道）)?|本部门|当月|本月|本周|当周|上月|上周|本季度|各自(?:的)?|有关|相关|的)"
)
_NOUNS = re.compile(
    r"报告|方案|总结|台账|清单|名单|材料|统计表|报表|周报|月报|简报|情况|推荐表|计划"
)
_TITLE_WORDS = re.compile(r"(?:的)?(?:工作|实施|活动)?(?:方案|通知|意见|安排)$")
_NOTICE_DATE = re.compile(r"^\s*(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日\s*$")
_YEAR = re.compile(r"(\d{4})\s*年")
_TIME = re.compile(r"(\d{1,2})\s*[:：]\s*(\d{2})|(\d{1,2})\s*[时点](?:整)?")
_SENTENCE = re.compile(r"[^。；;！!？?\n]+[。；;！!？?]?")
_PHASE_WORDS = re.compile(r"阶段|步骤|环节|时段|进度")
_DATE_COL = re.compile(r"时间|日期|起止|时限|期限")
_DELIVERABLE_COL = re.compile(r"报送|材料|成果|提交|报表")
_TASK_COL = re.compile(r"任务|内容|工作|措施|要求")


@dataclass(frozen=True)
class Check:
    """Something a person must check: a message key (intake.check.<kind>) and its values."""

    kind: str
    values: dict[str, object]

    def render(self, lang: str | None) -> str:
        """Return the line in the person's language."""
        return plain(f"intake.check.{self.kind}", lang, **self.values)


@dataclass
class DraftTask:
    """A deliverable: one due date (and maybe a time) or a recurrence rule."""

    title: str
    source: str
    due: date | None = None
    at: time | None = None
    repeat: dict[str, object] | None = None
    allow_outside: bool = False
    key: str = ""


@dataclass
class DraftPhase:
    """A phase: its name, dates (end inclusive), the text it was read from, its tasks."""

    name: str
    start: date
    end: date
    source: str
    tasks: list[DraftTask] = field(default_factory=list)
    key: str = ""
    body: list[str] = field(default_factory=list)


@dataclass
class Draft:
    """What was read from a notice, and what a person must check."""

    title: str
    year: int
    phases: list[DraftPhase]
    checks: list[Check]


@dataclass
class _Ctx:
    base: date
    checks: list[Check]


def campaign_title(first_line: str) -> str:
    """Return the campaign's title from the notice's title (关于开展X的实施方案 -> X)."""
    text = first_line.strip()
    quoted = re.search(r"《([^》]{2,60})》", text)
    if quoted:
        text = quoted.group(1)
    text = re.sub(r"^关于", "", text)
    text = _TITLE_WORDS.sub("", text)
    if "开展" in text:
        text = text.rsplit("开展", 1)[1]
    text = text.replace("“", "").replace("”", "").replace('"', "").strip("，,。 ")
    return text or first_line.strip()


def _notice_base(lines: list[str], year: int | None, checks: list[Check], today: date) -> date:
    """Return the moment the notice speaks from: --year, its own date, its first year."""
    if year is not None:
        return date(year, 1, 1)
    for line in reversed(lines[-8:]):
        match = _NOTICE_DATE.match(line)
        if match:
            y, m, d = (int(g) for g in match.groups())
            try:
                return date(y, m, d)
            except ValueError:
                break
    for line in lines:
        match = _YEAR.search(line)
        if match and 2000 <= int(match.group(1)) <= 2099:
            return date(int(match.group(1)), 1, 1)
    checks.append(Check("no_year", {"year": today.year}))
    return date(today.year, 1, 1)


def _enum(line: str) -> tuple[str | None, str]:
    """Return the enumerator style of a line and the text after it."""
    for name, pattern in _ENUMS:
        match = pattern.match(line)
        if match:
            return name, line[match.end() :].strip()
    return None, line


def _resolve_start(point: Point, cursor: date) -> date:
    """Pick the year of a point without one: the first on or after two months before cursor."""
    if point.year is not None:
        return first_day(point, point.year)
    for y in (cursor.year - 1, cursor.year, cursor.year + 1):
        candidate = first_day(point, y)
        if candidate >= cursor - timedelta(days=60):
            return candidate
    return first_day(point, cursor.year + 1)


def _resolve_end(point: Point, start: date) -> date:
    if point.year is not None:
        return last_day(point, point.year)
    end = last_day(point, start.year)
    return end if end >= start else last_day(point, start.year + 1)


def _phase_span(
    span: Span, cursor: date, previous_end: date | None, ctx: _Ctx, label: str
) -> tuple[date, date]:
    if span.deadline:
        end = _resolve_start(span.end, cursor)
        end = last_day(span.end, end.year)
        start = previous_end + timedelta(days=1) if previous_end else min(ctx.base, end)
        start = min(start, end)
        ctx.checks.append(
            Check("phase_by_end", {"phase": label, "text": span.text, "start": start})
        )
        return start, end
    start = _resolve_start(span.start, cursor)
    if span.end is span.start:
        end = _resolve_end(span.start, start)
    else:
        end = _resolve_end(span.end, start)
    if span.vague:
        ctx.checks.append(
            Check("phase_vague", {"phase": label, "text": span.text, "start": start, "end": end})
        )
    return start, end


def _date_of(text: str) -> Span | None:
    """Return the span that makes up (almost) all of a short text, if any."""
    spans = find_spans(text)
    if not spans:
        return None
    span = spans[0]
    rest = (text[: span.begin] + text[span.stop :]).strip()
    rest = re.sub(r"^(?:自|从|于|在)|(?:前|之前|以前|左右|完成|进行|期间|起|止|为止|内)", "", rest)
    if len(re.sub(r"[\s，,。．.：:、]", "", rest)) > 2:
        return None
    if re.match(r"^\s*(?:前|之前|以前)", text[span.stop :]) and span.end is span.start:
        return Span(span.start, span.end, span.begin, span.stop, span.text, deadline=True)
    return span


def _heading(line: str) -> tuple[str, Span, str, str | None] | None:
    """Read a phase heading: (name, date span, the text after the heading, enumerator)."""
    style, rest = _enum(line)
    match = _HEAD_BODY.match(rest)
    if match is None:
        return None
    dates = match.group("paren") or match.group("colon") or ""
    span = _date_of(dates)
    if span is None:
        return None
    name = match.group("name").strip()
    if style is None and "阶段" not in name and len(line) > 60:
        return None
    name = re.sub(r"^第[一二三四五六七八九十\d]+阶段\s*[:：、，,]?\s*", "", name)
    name = re.sub(r"阶段$", "", name).strip() or name
    if not name or len(name) > 20 or _VERB_ONLY.search(name):
        return None
    return name, span, rest[match.end() :].strip(), style


_TIME_LABEL = re.compile(r"^(?:时间|时间安排|实施时间|完成时间|起止时间|工作时间|时限)$")
_BARE_HEADING = re.compile(r"^[^，,。；;：:（(]{2,16}\s*[：:]?$")
_OFFICE = re.compile(
    r"^[^，,。；;]{1,16}?(?:办|局|室|科|部|处|中心|站|所|委员会|工会|办公室|专班)[。；;，,\s]*$"
)
_VERB_ONLY = re.compile(r"\d")


def _table_rows(lines: list[str], i: int) -> tuple[list[list[str]], int]:
    rows = []
    while i < len(lines) and lines[i].startswith("|"):
        cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
        if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
            rows.append(cells)
        i += 1
    return rows, i


def draft_plan(raw_lines: list[str], *, today: date, year: int | None = None) -> Draft:
    """Draft phases and tasks from a notice's lines (see the module's docstring).

    `year` is the campaign's year when the notice does not say it (or says it wrongly);
    `today` gives the year when neither the notice nor `year` does (and it is checked).
    """
    lines = [normalize(line) for line in raw_lines]
    checks: list[Check] = []
    ctx = _Ctx(_notice_base(lines, year, checks, today), checks)
    title = campaign_title(raw_lines[0]) if raw_lines else "campaign"
    phases: list[DraftPhase] = []
    loose: list[str] = []  # text outside every phase
    current: DraftPhase | None = None
    current_style: str | None = None
    pending: tuple[str, str | None, str] | None = None  # a heading whose dates come next
    cursor = ctx.base
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            rows, i = _table_rows(lines, i)
            table_phases = _table_phases(rows, cursor, ctx, phases)
            if table_phases:
                phases.extend(table_phases)
                cursor = table_phases[-1].start
                current = None
            else:
                loose.extend(" ".join(r) for r in rows)
            continue
        i += 1
        found = _heading(line)
        source = raw_lines[i - 1] if i - 1 < len(raw_lines) else line
        if found is not None and _TIME_LABEL.match(found[0]):
            # "一、筹备启动阶段" on one line, "时间：4月1日至4月15日。" on the next.
            if pending is None:
                found = None
            else:
                found = (pending[0], found[1], found[2], pending[1])
                source = f"{pending[2]} {source}"
        if found is not None:
            name, span, rest, style = found
            previous_end = phases[-1].end if phases else None
            start, end = _phase_span(span, cursor, previous_end, ctx, name)
            pending = None
            current = DraftPhase(name, start, end, source)
            current.body.append(rest)
            current_style = style
            phases.append(current)
            cursor = start
            continue
        style, title_text = _enum(line)
        pending = None
        if style is not None and _BARE_HEADING.match(title_text):
            name = re.sub(r"阶段$", "", title_text.strip(" ：:")) or title_text
            pending = (name, style, source)
        if (
            current is not None
            and style is not None
            and (current_style is None or _LEVEL[style] <= _LEVEL.get(current_style, 99))
        ):
            current = None  # a heading of the phases' level or above ends the phase's text
        if current is not None:
            current.body.append(line)
        else:
            loose.append(line)
    if not phases:
        checks.append(Check("no_phase", {"start": ctx.base}))
        phases.append(DraftPhase("全程", ctx.base, ctx.base + timedelta(days=30), "", key="all"))

    for phase in phases:
        for sentence in _sentences(phase.body):
            phase.tasks.extend(_deliverables(sentence, phase, ctx))
    for sentence in _sentences(loose):
        for task in _deliverables(sentence, None, ctx):
            home = _phase_for(task, phases)
            _place(task, home, ctx)
            home.tasks.append(task)
    _drop_empty_repeats(phases, ctx)
    _keys(phases)
    return Draft(title, (phases[0].start if phases else ctx.base).year, phases, checks)


def _sentences(texts: list[str]) -> list[str]:
    out: list[str] = []
    for text in texts:
        out.extend(s.strip() for s in _SENTENCE.findall(text) if s.strip())
    return out


def _phase_for(task: DraftTask, phases: list[DraftPhase]) -> DraftPhase:
    day = task.due or (task.repeat or {}).get("from")
    if isinstance(day, date):
        for phase in phases:
            if phase.start <= day <= phase.end:
                return phase
        before = [p for p in phases if p.start <= day]
        if before:
            return before[-1]
    return phases[-1]


def _place(task: DraftTask, phase: DraftPhase, ctx: _Ctx) -> None:
    """Mark a task due outside its phase (allowed, and listed under check these)."""
    if task.due is not None and not phase.start <= task.due <= phase.end:
        task.allow_outside = True
        ctx.checks.append(
            Check(
                "outside",
                {
                    "task": task.title,
                    "due": task.due,
                    "phase": phase.name,
                    "start": phase.start,
                    "end": phase.end,
                },
            )
        )


def _table_phases(
    rows: list[list[str]], cursor: date, ctx: _Ctx, before: list[DraftPhase]
) -> list[DraftPhase]:
    """Read a table of phases (阶段 | 时间 | 主要任务 | 报送材料及时限)."""
    head = next(
        (
            n
            for n, row in enumerate(rows)
            if any(_PHASE_WORDS.search(c) for c in row) and any(_DATE_COL.search(c) for c in row)
        ),
        None,
    )
    if head is None:
        return []
    header = rows[head]

    def column(pattern: re.Pattern[str], skip: set[int]) -> int | None:
        return next((k for k, c in enumerate(header) if pattern.search(c) and k not in skip), None)

    phase_col = column(_PHASE_WORDS, set())
    deliver_col = column(_DELIVERABLE_COL, {phase_col} if phase_col is not None else set())
    taken = {c for c in (phase_col, deliver_col) if c is not None}
    date_col = column(_DATE_COL, taken)
    task_col = column(_TASK_COL, taken | ({date_col} if date_col is not None else set()))
    if phase_col is None or date_col is None:
        return []
    out: list[DraftPhase] = []
    for row in rows[head + 1 :]:
        if max(phase_col, date_col) >= len(row):
            continue
        span = _date_of(row[date_col])
        name = re.sub(r"^第[一二三四五六七八九十\d]+阶段\s*[:：、，,]?\s*", "", row[phase_col])
        name = re.sub(r"阶段$", "", name).strip()
        if span is None or not name:
            continue
        previous_end = (out or before)[-1].end if (out or before) else None
        start, end = _phase_span(span, cursor, previous_end, ctx, name)
        cursor = start
        phase = DraftPhase(name, start, end, "| " + " | ".join(row) + " |")
        if task_col is not None and task_col < len(row):
            phase.body.append(row[task_col])
        if deliver_col is not None and deliver_col < len(row):
            for item in re.split(r"[；;]", row[deliver_col]):
                phase.tasks.extend(_table_item(item.strip(), phase, ctx))
        out.append(phase)
    return out


def _table_item(item: str, phase: DraftPhase, ctx: _Ctx) -> list[DraftTask]:
    """Read `活动方案，3月20日前` or `季度进展情况，6月30日前、9月30日前` from a table cell."""
    if not item or re.fullmatch(r"[—\-–无/、\s]*", item):
        return []
    spans = find_spans(item)
    if not spans:
        if _NOUNS.search(item):
            ctx.checks.append(Check("undated", {"phase": phase.name, "text": item}))
        return []
    title = _clean_title(re.split(r"[，,：:（(]?\s*$", item[: spans[0].begin])[0])
    if not title:
        title = _clean_title(re.sub(r"^[前之以]+", "", item[spans[-1].stop :]))
    if not title:
        return []
    tasks = []
    for span in spans:
        task = DraftTask(title, item, due=_task_date(span.end, phase))
        _place(task, phase, ctx)
        tasks.append(task)
    return _numbered(tasks)


def _numbered(tasks: list[DraftTask]) -> list[DraftTask]:
    """Several dates for one thing: each task's title names its date."""
    if len(tasks) > 1:
        for task in tasks:
            if task.due is not None:
                task.title = f"{task.title}（{task.due.month}月{task.due.day}日）"
    return tasks


def _task_date(point: Point, phase: DraftPhase) -> date:
    """Resolve a deadline's year: the one that puts it in its phase, else the nearest."""
    if point.year is not None:
        return last_day(point, point.year)
    years = range(phase.start.year - 1, phase.end.year + 2)
    options = [last_day(point, y) for y in years]
    inside = [d for d in options if phase.start <= d <= phase.end]
    if inside:
        return inside[0]
    return min(options, key=lambda d: min(abs((d - phase.start).days), abs((d - phase.end).days)))


def _clean_title(text: str) -> str:
    text = text.strip(" \t，,。；;：:、")
    for _ in range(4):
        stripped = _LEAD_NOISE.sub("", text).strip(" ，,")
        if stripped == text:
            break
        text = stripped
    text = re.sub(r"(?:等|等材料|等情况)$", "", text).strip(" ，,。")
    if text.startswith("《") and text.endswith("》") and text.count("《") == 1:
        text = text[1:-1]
    return text[:40]


def _object_after(text: str) -> str:
    """Return the thing handed in, read after a deadline: 将X报…, 报送X, 形成X（，报…）."""
    text = re.sub(r"^[\s，,]*", "", text)
    match = re.match(r"^(?:[^，,。]{0,12}?)将(?P<x>.+?)" + _VERB + r"(?:[^，,。；]*)", text)
    if match:
        return _clean_title(match.group("x"))
    match = re.match(
        r"^(?:[^，,。]{0,16}?)" + r"(?P<v>" + _MAKE + r"|" + _VERB + r")(?P<x>[^，,。；;]+)", text
    )
    if match:
        x = match.group("x")
        handed = re.search(r"(?:并|后|再)(?:报送|上报|提交|填报)(?P<y>[^，,。；;]+)", x)
        if re.match(_MAKE, match.group("v")) and handed:
            x = handed.group("y")  # 完成自查并报送自查报告: the report, not the checking
        elif re.match(_MAKE, match.group("v")) and not _NOUNS.search(x):
            return ""  # 完成整改: work to do, not a thing to hand in
        if match.group("v") in ("报", "报至", "送交", "送达", "发送") and _OFFICE.match(x):
            return ""  # 报县安委办: a destination, the thing handed in is named before
        x = re.split(r"(?<=[^\s])(?:报送|上报|报)" + _DEST, x)[0]
        x = re.split(r"并(?:报|送|上)", x)[0]
        return _clean_title(x)
    return ""


def _deliverables(sentence: str, phase: DraftPhase | None, ctx: _Ctx) -> list[DraftTask]:
    """Return the deliverables a sentence names with a date or a recurrence."""
    repeat = _recurring(sentence, phase, ctx)
    if repeat is not None:
        return [repeat]
    spans = find_spans(sentence)
    chosen: list[Span] = []
    for n in range(len(spans) - 1, -1, -1):
        span = spans[n]
        after = sentence[span.stop :]
        dated = span.deadline or _DEADLINE_TAIL.match(after) or re.match(r"^\s*" + _VERB, after)
        linked = chosen and _LINKER.match(sentence[span.stop : chosen[0].begin])
        if dated or linked:
            chosen.insert(0, span)
    if not chosen:
        hands_in = re.search(r"报送|上报|提交|填报|报" + _DEST + r"|形成|撰写|起草|编制", sentence)
        if phase is not None and hands_in and _NOUNS.search(sentence):
            ctx.checks.append(Check("undated", {"phase": phase.name, "text": sentence}))
        return []
    tail = sentence[chosen[-1].stop :]
    tail = _DEADLINE_TAIL.sub("", tail)
    title = _object_after(tail)
    if not title:
        head = sentence[: chosen[0].begin]
        head = re.sub(r"(?:分别|并|须|应|要|请|务必)?(?:于|在)?\s*$", "", head)
        if re.search(_VERB, tail):
            title = _clean_title(re.split(r"[，,：:]", head)[-1])
    if not title or not _plausible(title):
        return []
    moment = _TIME.search(sentence[chosen[-1].stop : chosen[-1].stop + 8])
    tasks = []
    for span in chosen:
        if phase is None:
            due = _resolve_start(span.end, ctx.base)
            due = last_day(span.end, due.year)
        else:
            due = _task_date(span.end, phase)
        task = DraftTask(title, sentence, due=due, at=_at(moment))
        if phase is not None:
            _place(task, phase, ctx)
        tasks.append(task)
    return _numbered(tasks)


def _plausible(title: str) -> bool:
    """Return whether a title reads like a thing to hand in (not a verb phrase)."""
    return 2 <= len(title) <= 40 and not re.match(r"^(?:完成|开展|进行|组织|召开)", title)


def _at(match: re.Match[str] | None) -> time | None:
    if match is None:
        return None
    hour = int(match.group(1) or match.group(3))
    minute = int(match.group(2) or 0)
    return time(hour, minute) if hour < 24 and minute < 60 else None


_CLOCK = r"(?:\s*(\d{1,2}[:：]\d{2}|\d{1,2}[时点]))?"
_BEFORE = r"\s*(?:前|之前|以前)"
_WEEKLY = re.compile(r"每(?:周|星期|个星期)([一二三四五六日天1-7])" + _CLOCK + _BEFORE + "?")
_MONTHLY = re.compile(
    r"每(?:个)?月\s*((?:\d{1,2}\s*[日号]?\s*[、，,和及]?\s*)+?)\s*[日号]?" + _BEFORE
)
_DAILY = re.compile(r"每(?:天|日)" + _CLOCK + _BEFORE)


def _recurring(sentence: str, phase: DraftPhase | None, ctx: _Ctx) -> DraftTask | None:
    """Read 每周五17:00前报送X, 每月25日前报送X, 每月10日、20日前报送X, 每天…报送X."""
    weekly = _WEEKLY.search(sentence)
    monthly = _MONTHLY.search(sentence)
    daily = _DAILY.search(sentence)
    rule: dict[str, object]
    if weekly:
        day = weekday("周" + weekly.group(1))
        if day is None:
            return None
        rule = {"every": "week", "on": [WEEKDAYS[day]]}
        found = weekly
    elif monthly:
        numbers = (int(d) for d in re.findall(r"\d{1,2}", monthly.group(1)))
        days = sorted({d for d in numbers if 1 <= d <= 31})
        if not days:
            return None
        rule = {"every": "month", "on": days}
        found = monthly
    elif daily:
        rule = {"every": "day"}
        found = daily
    else:
        return None
    title = _object_after(sentence[found.end() :])
    if not title or not _plausible(title):
        return None
    moment = _TIME.search(found.group(0))
    at = _at(moment)
    if at is not None:
        rule["at"] = at.strftime("%H:%M")
    if phase is None:
        ctx.checks.append(Check("repeat_loose", {"task": title}))
    return DraftTask(title, sentence, repeat=rule)


def _drop_empty_repeats(phases: list[DraftPhase], ctx: _Ctx) -> None:
    """A rule with no occurrence in its phase (每月25日 in a phase of 12-1 to 12-20) is not a
    task: it is listed under check these instead."""
    for phase in phases:
        kept = []
        for task in phase.tasks:
            if task.repeat is not None:
                on = task.repeat.get("on")
                try:
                    rule = Repeat.parse(task.repeat["every"], on)
                    empty = not rule.dates(phase.start, phase.end)
                except RepeatError:
                    empty = True
                if empty:
                    ctx.checks.append(
                        Check("repeat_empty", {"task": task.title, "phase": phase.name})
                    )
                    continue
            kept.append(task)
        phase.tasks = kept


def _keys(phases: list[DraftPhase]) -> None:
    taken: set[str] = set()
    for phase in phases:
        phase.key = make_key(phase.name, taken, "phase")
    for phase in phases:
        for task in phase.tasks:
            task.key = make_key(task.title, taken, "task")


def _quote(text: str) -> str:
    return " ".join(text.split())[:200]


def draft_toml(draft: Draft, *, source: str, lang: str | None, units: str | None = None) -> str:
    """Write the draft as a plan file: comments quote the notice, check-these on top."""
    lines = [
        f"# Drafted by `duban plan draft` from {source}.",
        "# 草案：请逐项核对后再 `duban plan check` / `duban plan load`。",
    ]
    if draft.checks:
        lines.append("#")
        lines.append("# " + plain("intake.draft_check_head", lang, count=len(draft.checks)))
        lines.extend(f"#   - {_quote(c.render(lang))}" for c in draft.checks)
    plain_title = re.sub(r"\d{4}\s*年度?", "", draft.title)
    key = make_key(plain_title, set(), "campaign")[:30].strip("-") + f"-{draft.year}"
    lines += [
        "",
        "[campaign]",
        f"key = {toml_string(key)}",
        f"title = {toml_string(draft.title)}",
        'timezone = "Asia/Shanghai"',
        'due_time = "18:00"',
        "",
    ]
    if units:
        lines.append(units.rstrip("\n"))
    else:
        lines += [
            "# Units: `duban units import ROSTER.xlsx --into THIS_FILE` fills [[unit_kinds]] and",
            "# [[units]] (or write them by hand).",
        ]
    for phase in draft.phases:
        lines += [
            "",
            "[[phases]]",
            f"# 「{_quote(phase.source)}」",
            f"key = {toml_string(phase.key)}",
            f"name = {toml_string(phase.name)}",
            f"start = {phase.start.isoformat()}",
            f"end = {phase.end.isoformat()}",
        ]
        for task in phase.tasks:
            lines += [
                "",
                "  [[phases.tasks]]",
                f"  # 「{_quote(task.source)}」",
                f"  key = {toml_string(task.key)}",
                f"  title = {toml_string(task.title)}",
            ]
            if task.repeat is not None:
                parts = [f"every = {toml_string(str(task.repeat['every']))}"]
                on = task.repeat.get("on")
                if isinstance(on, list):
                    parts.append(
                        "on = ["
                        + ", ".join(toml_string(x) if isinstance(x, str) else str(x) for x in on)
                        + "]"
                    )
                if "at" in task.repeat:
                    parts.append(f"at = {toml_string(str(task.repeat['at']))}")
                lines.append(f"  repeat = {{ {', '.join(parts)} }}")
            elif task.due is not None:
                due = task.due.isoformat()
                if task.at is not None:
                    due += f"T{task.at.strftime('%H:%M')}:00"
                lines.append(f"  due = {due}")
            if task.allow_outside:
                lines.append("  allow_outside_phase = true  # check: due outside its phase")
    return "\n".join(lines) + "\n"
