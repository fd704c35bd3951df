"""The campaign's phases on a timeline with today marked: an SVG drawn by matplotlib.

The text stays text in the SVG (`svg.fonttype = none`) in the packaged Chinese font's family,
so the picture is a few kilobytes and sharp at any width; the page's CSS ships that font for
browsers that have no Chinese font of their own.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta

from bot.reports.fonts import cjk_family
from bot.reports.plotting import COLOURS, INK, MUTED

# matplotlib keeps global state: one drawing at a time (bot.reports.plotting does the same).
_LOCK = threading.Lock()
_CACHE: OrderedDict[str, bytes] = OrderedDict()
_CACHE_SIZE = 32
PAST = "#8c959f"
FUTURE = "#d0d7de"
CURRENT = COLOURS["accepted"]
TODAY = COLOURS["overdue"]


@dataclass(frozen=True)
class Span:
    """One phase: its name and first and last day."""

    name: str
    start: date
    end: date


def timeline_key(spans: list[Span], today: date, today_label: str) -> str:
    """Return a short key that changes whenever the picture would (for caching and ETags)."""
    text = repr((spans, today, today_label))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def timeline_svg(spans: list[Span], today: date, today_label: str) -> bytes:
    """Draw the phases as bars along the calendar and a line at today; return SVG bytes.

    Drawn once per distinct input (a small in-memory cache): the picture changes once a day.
    """
    key = timeline_key(spans, today, today_label)
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            _CACHE.move_to_end(key)
            return cached
        data = _draw(spans, today, today_label)
        _CACHE[key] = data
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return data


def _draw(spans: list[Span], today: date, today_label: str) -> bytes:
    # Imported here: the bot's process does not carry matplotlib until a page needs it.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    family = cjk_family()
    rows = max(len(spans), 1)
    first = min([*(s.start for s in spans), today]) - timedelta(days=1)
    last = max([*(s.end for s in spans), today]) + timedelta(days=2)

    def x(day: date) -> float:
        return float((day - first).days)

    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "font.family": [family, "sans-serif"],
            "font.size": 10,
            "svg.hashsalt": "duban",
        }
    ):
        fig, ax = plt.subplots(figsize=(3.8, 0.3 * rows + 0.55))
        try:
            for row, span in enumerate(spans):
                colour = PAST if span.end < today else FUTURE if span.start > today else CURRENT
                width = (span.end - span.start).days + 1
                ax.barh(row, width, left=x(span.start), height=0.62, color=colour)
            marker = x(today) + 0.5
            ax.axvline(marker, color=TODAY, linewidth=1.6)
            ax.text(marker, -0.75, today_label, color=TODAY, ha="center", va="bottom", fontsize=8)
            ax.set_ylim(rows - 0.5, -0.9)
            ax.set_xlim(0, x(last))
            # Phase names on the left: a short phase's bar is too narrow to hold its name.
            ax.set_yticks(range(len(spans)), [span.name for span in spans])
            ax.tick_params(axis="y", colors=INK, labelsize=10, length=0)
            step = max(1, round((last - first).days / 4))
            ticks = [first + timedelta(days=i) for i in range(1, (last - first).days, step)]
            ax.set_xticks([x(day) for day in ticks], [f"{d.month}/{d.day}" for d in ticks])
            ax.tick_params(axis="x", colors=MUTED, labelsize=8, length=0)
            for side in ("top", "right", "left"):
                ax.spines[side].set_visible(False)
            ax.spines["bottom"].set_color(FUTURE)
            fig.tight_layout(pad=0.3)
            out = io.BytesIO()
            fig.savefig(out, format="svg", metadata={"Date": None})
        finally:
            plt.close(fig)
    return out.getvalue()
