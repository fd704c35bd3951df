"""Draw plain-text tables that line up with Chinese characters."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def width(text: str) -> int:
    """Return how many terminal columns a string takes (CJK characters take two)."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def pad(text: str, columns: int, right: bool = False) -> str:
    """Pad a string to a number of terminal columns."""
    fill = " " * max(0, columns - width(text))
    return fill + text if right else text + fill


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Return the table as lines of text; columns in `right` are right-aligned."""
    widths = [width(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], width(cell))
    lines = ["  ".join(pad(h, widths[i], i in right) for i, h in enumerate(header)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(pad(c, widths[i], i in right) for i, c in enumerate(row)).rstrip())
    return "\n".join(lines)
