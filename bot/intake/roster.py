"""Read a unit roster (名单) as offices keep them: `.xlsx` or `.csv` (UTF-8 or GBK).

The header row is found below title rows; a merged two-row header (联络员 over 姓名 | 职务 |
手机) is read as one label per column; a 序号 column, empty rows and a note row at the bottom
(注：…) are skipped; names lose padding spaces (full-width too) and full-width digits and
letters become ASCII. Phone numbers are never read: a column whose label names a phone is
skipped cell by cell, so no number reaches the plan or the database.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import DubanError

# Labels that name a column, checked in this order on the column's (merged) label.
_PHONE = re.compile(r"手机|电话|联系方式|phone|mobile|tel", re.IGNORECASE)
_SERIAL = re.compile(r"^(序号|编号|no\.?|#)$", re.IGNORECASE)
_KIND = re.compile(r"类别|类型|分类|kind|type|category", re.IGNORECASE)
_CONTACT = re.compile(r"姓名|联络员|联系人|contact", re.IGNORECASE)
_NAME = re.compile(r"单位|名称|unit|name", re.IGNORECASE)
_NOTE = re.compile(r"^(注|备注|说明|填表|note)", re.IGNORECASE)
_SPACES = re.compile(r"[\s\u3000\u00a0]+")
# Padding between two Chinese characters (赵\u3000一) is removed; elsewhere one space stays.
_CJK_GAP = re.compile(r"(?<=[^\x00-\x7f])[\s\u3000\u00a0]+(?=[^\x00-\x7f])")
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F) if chr(c - 0xFEE0).isalnum()}
# A unit name with one of these endings also goes by what is left (甲县总工会 -> 甲县).
_SUFFIXES = ("总工会", "工会委员会", "工会", "委员会")


class RosterError(DubanError):
    """A roster that cannot be read: the message names the file and what is wrong."""

    key = "roster.error"


@dataclass(frozen=True)
class RosterUnit:
    """One unit of the roster: its name, the kind's name as written, the contact's name."""

    name: str
    kind: str
    contact: str = ""
    aliases: tuple[str, ...] = ()


@dataclass
class Roster:
    """The units of a roster in their order, and the kinds in order of first appearance."""

    source: str
    units: list[RosterUnit] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        """Return the kind names in the order they first appear."""
        return list(dict.fromkeys(u.kind for u in self.units))


def clean(value: object) -> str:
    """Return a cell as text: padding and inner spaces (full-width too) gone, ASCII digits.

    A whole number stored as a float (Excel's 1.0) is written without ".0".
    """
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = _CJK_GAP.sub("", str(value).translate(_FULLWIDTH).strip(" \t\r\n\u3000\u00a0"))
    return _SPACES.sub(" ", text)


def read_grid(path: Path) -> list[list[str]]:
    """Return the first sheet (or the CSV) as rows of cleaned text; merged cells filled in.

    Raises RosterError for an unknown extension, an unreadable file or an encoding that is
    neither UTF-8 nor GBK/GB18030.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_grid(path)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_grid(path)
    raise RosterError(f"{path}: a roster is an .xlsx or .csv file")


def _csv_grid(path: Path) -> list[list[str]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RosterError(f"{path}: {exc.strerror or exc}") from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise RosterError(f"{path}: neither UTF-8 nor GBK text")
    rows = list(csv.reader(io.StringIO(text)))
    width = max((len(r) for r in rows), default=0)
    return [[clean(c) for c in r] + [""] * (width - len(r)) for r in rows]


def _xlsx_grid(path: Path) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=False, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise RosterError(f"{path}: not a readable .xlsx file ({type(exc).__name__})") from None
    sheet = book.worksheets[0]
    grid = [[clean(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    for merged in sheet.merged_cells.ranges:
        value = grid[merged.min_row - 1][merged.min_col - 1]
        for r in range(merged.min_row - 1, merged.max_row):
            for c in range(merged.min_col - 1, merged.max_col):
                if r < len(grid) and c < len(grid[r]):
                    grid[r][c] = value
    return grid


def _header_row(grid: list[list[str]]) -> int:
    """Return the index of the row that names the unit column (the first such row)."""
    for i, row in enumerate(grid[:30]):
        cells = [c for c in row if c]
        if len(cells) >= 2 and any(_NAME.search(c) and len(c) <= 12 for c in cells):
            return i
    raise RosterError("no header row naming the units (单位名称) in the first 30 rows")


def _labels(grid: list[list[str]], head: int) -> tuple[list[str], int]:
    """Return one label per column and the first data row (after a second header row)."""
    top = list(grid[head])
    below = grid[head + 1] if head + 1 < len(grid) else []
    # A second header row: its cells are labels (no unit name under the name column, and
    # at least one cell that reads like a label).
    name_col = next((i for i, c in enumerate(top) if _NAME.search(c) and not _KIND.search(c)), 0)
    sub = (
        bool(below)
        and name_col < len(below)
        and (
            below[name_col] in ("", top[name_col])
            and any(
                c and (_CONTACT.search(c) or _PHONE.search(c) or _NAME.search(c)) for c in below
            )
        )
    )
    if not sub:
        return top, head + 1
    labels = []
    last_parent = ""
    for i, parent in enumerate(top):
        child = below[i] if i < len(below) else ""
        if parent:
            last_parent = parent
        elif child:
            parent = last_parent  # a CSV leaves the merged parent's other cells empty
        labels.append(parent if child in ("", parent) else f"{parent}/{child}")
    return labels, head + 2


def read_roster(path: Path, *, kind: str | None = None) -> Roster:
    """Read the units of a roster; `kind` names the kind of units whose row gives none.

    Raises RosterError (file, row and what is wrong) when no unit column is found, a unit has
    no kind and none was given, or a name appears twice.
    """
    grid = read_grid(path)
    try:
        head = _header_row(grid)
    except RosterError as exc:
        raise RosterError(f"{path}: {exc}") from None
    labels, first = _labels(grid, head)
    columns: dict[str, int] = {}
    for i, label in enumerate(labels):
        if not label or _PHONE.search(label) or _SERIAL.match(label):
            continue
        for what, pattern in (("kind", _KIND), ("contact", _CONTACT), ("name", _NAME)):
            if pattern.search(label) and what not in columns:
                if what == "contact" and re.search(r"职务|职位|title", label):
                    break
                columns[what] = i
                break
    if "name" not in columns:
        raise RosterError(f"{path}: no column of unit names (单位名称)")
    roster = Roster(str(path))
    seen: dict[str, int] = {}
    for r in range(first, len(grid)):
        row = grid[r]
        name = row[columns["name"]] if columns["name"] < len(row) else ""
        filled = [c for c in row if c]
        if not name or _NOTE.match(filled[0] if filled else "") or _NOTE.match(name):
            continue
        unit_kind = row[columns["kind"]] if "kind" in columns else ""
        unit_kind = unit_kind or (kind or "")
        if not unit_kind:
            raise RosterError(f"{path}: row {r + 1}: {name}: no unit kind (give --kind)")
        if name in seen:
            raise RosterError(f"{path}: row {r + 1}: {name} appears twice (row {seen[name]})")
        seen[name] = r + 1
        contact = row[columns["contact"]] if "contact" in columns else ""
        roster.units.append(RosterUnit(name, unit_kind, contact))
    if not roster.units:
        raise RosterError(f"{path}: no units below the header row")
    roster.units = _with_aliases(roster.units)
    return roster


def _with_aliases(units: list[RosterUnit]) -> list[RosterUnit]:
    """Give each unit its short form (甲县 for 甲县总工会, 教育工会 for 市教育工会) when no
    other unit shares it."""
    names = {u.name for u in units}
    shorts: dict[str, list[int]] = {}
    for i, unit in enumerate(units):
        if unit.name[:1] in ("市", "省") and len(unit.name) >= 5:
            # 市教育工会 goes by 教育工会 (the city's own branch), not by 市教育.
            shorts.setdefault(unit.name[1:], []).append(i)
            continue
        for suffix in _SUFFIXES:
            if unit.name.endswith(suffix) and len(unit.name) - len(suffix) >= 2:
                shorts.setdefault(unit.name[: -len(suffix)], []).append(i)
                break
    out = list(units)
    for short, owners in shorts.items():
        if len(owners) == 1 and short not in names:
            unit = out[owners[0]]
            out[owners[0]] = RosterUnit(unit.name, unit.kind, unit.contact, (short,))
    return out
