"""Chinese date expressions in notices: points, ranges and deadlines (SPEC §3.1).

Forms: `3月30日至4月10日`, `2026年3月2日—3月10日`, `4月中旬至5月底`, `6月上旬`, `10月`,
`5月下旬-8月`, `2月下旬至3月上旬`, `6月10日前` (a range given by its end), ranges across a
year end, full-width digits and Chinese numerals (`三月三十日`, `二〇二六年`, via cn2an).
上旬 = days 1–10, 中旬 = 11–20, 下旬 = 21–end, 月底/月末 = the last day, 月初 = days 1–10.

A year missing from a point is filled in by the caller (`resolve`), which knows the notice.
"""

from __future__ import annotations

import calendar as _stdcal
import re
from dataclasses import dataclass
from datetime import date

_FULLWIDTH = str.maketrans("０１２３４５６７８９：～－．", "0123456789:~-.")
_CN_DIGITS = dict(zip("〇零一二三四五六七八九", "00123456789", strict=True))
_CN_NUMBER = re.compile(r"[〇零一二三四五六七八九十两]+(?=[年月日号时点])")
_CN_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}

PART = r"上旬|中旬|下旬|月底|月末|月初|底|末|初"
_POINT = (
    r"(?:(?P<{p}y>\d{{4}})\s*年\s*)?"
    r"(?:(?P<{p}m>\d{{1,2}})\s*月\s*)"
    r"(?:(?P<{p}d>\d{{1,2}})\s*[日号]|(?P<{p}part>" + PART + r"))?"
)
_TAIL = (
    r"(?:(?:(?P<{p}y>\d{{4}})\s*年\s*)?(?P<{p}m>\d{{1,2}})\s*月\s*)?"
    r"(?:(?P<{p}d>\d{{1,2}})\s*[日号]|(?P<{p}part>" + PART + r"))?"
)
_SEP = r"\s*(?:——|—|–|-|~|至|到|起至|起到|起，至|一直到)\s*"
RANGE = re.compile(
    r"(?P<apoint>" + _POINT.format(p="a") + r")"
    r"(?:" + _SEP + r"(?P<bpoint>" + _TAIL.format(p="b") + r"))?"
)
DEADLINE_WORDS = re.compile(r"^\s*(?:前|之前|以前|止|为止)")


@dataclass(frozen=True)
class Point:
    """A date as written: year and day may be missing; `part` is 上旬/中旬/下旬/底/初."""

    year: int | None
    month: int
    day: int | None = None
    part: str | None = None

    @property
    def vague(self) -> bool:
        """Return whether the day is not written (a month, a third of a month, its end)."""
        return self.day is None


@dataclass(frozen=True)
class Span:
    """A date expression found in a text: a start and end (equal for a single point)."""

    start: Point
    end: Point
    begin: int  # where it is in the normalized text
    stop: int
    text: str
    deadline: bool = False  # followed by 前/之前/以前: a moment by which, not a range

    @property
    def vague(self) -> bool:
        """Return whether either end has no exact day."""
        return self.start.vague or self.end.vague


def normalize(text: str) -> str:
    """Return text with ASCII digits and colons, Chinese numerals in dates made digits.

    The text keeps its length only where no Chinese numeral was converted.
    """
    text = text.translate(_FULLWIDTH)

    def number(match: re.Match[str]) -> str:
        run = match.group(0)
        if len(run) >= 2 and "十" not in run and all(c in _CN_DIGITS for c in run):
            return "".join(_CN_DIGITS[c] for c in run)  # 二〇二六 -> 2026
        import cn2an

        try:
            return str(int(cn2an.cn2an(run, "smart")))
        except (ValueError, KeyError):
            return run

    return _CN_NUMBER.sub(number, text)


def _point(match: re.Match[str], p: str, before: Point | None) -> Point | None:
    year, month, day, part = (match.group(p + k) for k in ("y", "m", "d", "part"))
    if month is None and day is None and part is None:
        return None
    m = int(month) if month else (before.month if before else None)
    if m is None or not 1 <= m <= 12:
        return None
    y = int(year) if year else (before.year if before and month is None else None)
    if year is None and before is not None and month is not None and before.year is not None:
        # 2026年12月—1月: a later month number keeps the year, an earlier one is the next.
        y = before.year if m >= before.month else before.year + 1
    d = int(day) if day else None
    if d is not None and not 1 <= d <= 31:
        return None
    return Point(y, m, d, _part(part) if part else None)


def _part(text: str) -> str:
    return {"月底": "底", "月末": "底", "末": "底", "月初": "初"}.get(text, text)


def find_spans(text: str) -> list[Span]:
    """Return every date expression of a normalized text, in order."""
    out: list[Span] = []
    for match in RANGE.finditer(text):
        start = _point(match, "a", None)
        if start is None:
            continue
        has_end = bool(match.group("bm") or match.group("bd") or match.group("bpart"))
        end = _point(match, "b", start) if has_end else None
        stop = match.end("bpoint") if end is not None else match.end("apoint")
        deadline = end is None and bool(DEADLINE_WORDS.match(text[stop:]))
        begin = match.start()
        out.append(Span(start, end or start, begin, stop, text[begin:stop], deadline))
    return out


def _last_day(year: int, month: int) -> int:
    return _stdcal.monthrange(year, month)[1]


def first_day(point: Point, year: int) -> date:
    """Return the first day a point can mean (上旬 -> 1, 中旬 -> 11, 下旬 -> 21, 底 -> last)."""
    y = point.year or year
    if point.day is not None:
        return date(y, point.month, min(point.day, _last_day(y, point.month)))
    starts = {"中旬": 11, "中": 11, "下旬": 21, "底": _last_day(y, point.month)}
    day = starts.get(point.part or "", 1)
    return date(y, point.month, day)


def last_day(point: Point, year: int) -> date:
    """Return the last day a point can mean (上旬/初 -> 10, 中旬 -> 20, else the month's end)."""
    y = point.year or year
    if point.day is not None:
        return date(y, point.month, min(point.day, _last_day(y, point.month)))
    ends = {"上旬": 10, "初": 10, "中旬": 20, "中": 20}
    day = ends.get(point.part or "", _last_day(y, point.month))
    return date(y, point.month, day)


def weekday(text: str) -> int | None:
    """Return 0-6 for 周一..周日 / 星期一..星期日 / 礼拜一, else None."""
    match = re.search(r"(?:周|星期|礼拜)([一二三四五六日天1-7])", text)
    if match is None:
        return None
    c = match.group(1)
    return int(c) - 1 if c.isdigit() else _CN_WEEKDAY[c]
