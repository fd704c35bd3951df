"""A tall, phone-width page drawn with matplotlib (Agg): lines of text and stacked bars."""

from __future__ import annotations

import io
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.domain.text import printable
from bot.reports.fonts import cjk_family

# 7.2 in at 150 dpi is 1080 px: a phone shows it full width without scaling text away.
WIDTH_IN = 7.2
DPI = 150
MARGIN_IN = 0.4
# Telegram refuses a photo whose width and height add up to more than 10,000 px.
MAX_HEIGHT_IN = (10_000 - WIDTH_IN * DPI) / DPI - 0.5

INK = "#1f2328"
MUTED = "#59636e"
COLOURS = {
    "accepted": "#1a7f37",
    "submitted": "#6fbf73",
    "overdue": "#cf222e",
    "pending": "#d0d7de",
}

# The packaged font has one weight: hierarchy comes from size and colour, never from bold
# (matplotlib would warn and fall back on every bold line).
# matplotlib keeps global state (rcParams, the font cache): one drawing at a time.
_LOCK = threading.Lock()


def text_width(text: str, size: float) -> float:
    """Estimate the width of a line in inches (wide characters take a full em)."""
    ems = sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.58 for ch in text)
    return ems * size / 72


def wrap(text: str, size: float, width: float) -> list[str]:
    """Break text into lines no wider than `width` inches, at any character."""
    lines: list[str] = []
    current = ""
    for ch in text:
        if current and text_width(current + ch, size) > width:
            lines.append(current)
            current = ""
        current += ch
    return [*lines, current] if current or not lines else lines


@dataclass
class _Op:
    kind: str
    args: dict[str, Any]


@dataclass
class Page:
    """Lay content out from the top down; coordinates are inches."""

    width: float = WIDTH_IN
    y: float = MARGIN_IN
    ops: list[_Op] = field(default_factory=list)

    @property
    def inner(self) -> float:
        """Return the usable width between the margins."""
        return self.width - 2 * MARGIN_IN

    def _text(self, x: float, y: float, s: str, size: float, colour: str, ha: str) -> None:
        """Put one run of text at (x, y), aligned `ha` (left, center, right) on x."""
        self.ops.append(
            _Op("text", {"x": x, "y": y, "s": s, "size": size, "colour": colour, "ha": ha})
        )

    def space(self, inches: float) -> None:
        """Leave a gap."""
        self.y += inches

    def text(self, text: str, size: float = 11, *, colour: str = INK) -> None:
        """Write a paragraph, wrapped to the page width."""
        for line in wrap(text, size, self.inner):
            self.y += size * 1.3 / 72
            self._text(MARGIN_IN, self.y, line, size, colour, "left")
        self.y += size * 0.35 / 72

    def line(self, left: str, right: str, size: float = 11, *, right_colour: str = INK) -> None:
        """Write a label on the left and figures on the right of one line."""
        right_width = text_width(right, size) + 0.15
        lines = wrap(left, size, self.inner - right_width)
        for i, part in enumerate(lines):
            self.y += size * 1.3 / 72
            self._text(MARGIN_IN, self.y, part, size, INK, "left")
            if i == len(lines) - 1 and right:
                self._text(self.width - MARGIN_IN, self.y, right, size, right_colour, "right")
        self.y += size * 0.45 / 72

    def bar(self, segments: Sequence[tuple[int, str]], height: float = 0.24) -> None:
        """Draw a full-width bar split in proportion to the counts, each count written in."""
        total = sum(count for count, _ in segments)
        x = MARGIN_IN
        for count, colour in segments:
            if count <= 0 or total <= 0:
                continue
            span = self.inner * count / total
            self.ops.append(
                _Op("rect", {"x": x, "y": self.y, "w": span, "h": height, "colour": colour})
            )
            label = str(count)
            if text_width(label, 9) + 0.08 < span:
                dark = colour in (COLOURS["accepted"], COLOURS["overdue"])
                self._text(
                    x + span / 2,
                    self.y + height / 2 + 0.045,
                    label,
                    9,
                    "white" if dark else INK,
                    "center",
                )
            x += span
        if total <= 0:
            self.ops.append(
                _Op(
                    "rect",
                    {
                        "x": x,
                        "y": self.y,
                        "w": self.inner,
                        "h": height,
                        "colour": COLOURS["pending"],
                    },
                )
            )
        self.y += height + 0.16

    def legend(self, items: Sequence[tuple[str, str]], size: float = 10) -> None:
        """Write a row of colour chips with their meaning, wrapping when the page is full."""
        x = MARGIN_IN
        line_height = size * 1.6 / 72
        self.y += line_height
        for colour, label in items:
            need = 0.22 + text_width(label, size) + 0.25
            if x + need > self.width - MARGIN_IN and x > MARGIN_IN:
                x = MARGIN_IN
                self.y += line_height
            chip = size / 72
            self.ops.append(
                _Op(
                    "rect",
                    {"x": x, "y": self.y - chip * 0.95, "w": chip, "h": chip, "colour": colour},
                )
            )
            self._text(x + chip + 0.07, self.y, label, size, MUTED, "left")
            x += need
        self.y += size * 0.6 / 72

    def rule(self) -> None:
        """Draw a thin separating line."""
        self.y += 0.08
        self.ops.append(_Op("rule", {"y": self.y}))
        self.y += 0.1


@dataclass
class Picture:
    """A rendered PNG and every piece of text drawn on it."""

    png: bytes
    texts: list[str]
    width_px: int
    height_px: int


def render(page: Page) -> Picture:
    """Draw the page with matplotlib's Agg backend and return the PNG."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    height = min(page.y + MARGIN_IN, MAX_HEIGHT_IN)
    with (
        _LOCK,
        rc_context(
            {
                # DejaVu Sans (shipped with matplotlib) only for a symbol the Chinese font lacks.
                "font.family": [cjk_family(), "DejaVu Sans"],
                # Plan text is data, never LaTeX: a "$" in a unit name must print as "$".
                "text.parse_math": False,
                "text.usetex": False,
            }
        ),
    ):
        figure = Figure(figsize=(page.width, height), dpi=DPI, facecolor="white")
        FigureCanvasAgg(figure)
        axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
        axes.set_xlim(0, page.width)
        axes.set_ylim(height, 0)
        axes.axis("off")
        texts: list[str] = []
        for op in page.ops:
            a = op.args
            if a.get("y", 0) > height:
                continue  # cut at Telegram's size limit; callers keep pages shorter
            if op.kind == "text":
                axes.text(
                    a["x"],
                    a["y"],
                    # One line per text op: a control character has no glyph to draw.
                    printable(a["s"], multiline=False),
                    fontsize=a["size"],
                    color=a["colour"],
                    ha=a["ha"],
                    va="baseline",
                )
                texts.append(a["s"])
            elif op.kind == "rect":
                axes.add_patch(
                    Rectangle(
                        (a["x"], a["y"]),
                        a["w"],
                        a["h"],
                        facecolor=a["colour"],
                        edgecolor="white",
                        linewidth=0.8,
                    )
                )
            elif op.kind == "rule":
                axes.plot(
                    [MARGIN_IN, page.width - MARGIN_IN],
                    [a["y"], a["y"]],
                    color="#d8dee4",
                    linewidth=0.8,
                )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
        width_px, height_px = (round(v) for v in figure.get_size_inches() * DPI)
    return Picture(buffer.getvalue(), texts, int(width_px), int(height_px))
