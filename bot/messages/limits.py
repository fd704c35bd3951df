"""Telegram's limits on one message, and splitting text to keep within them.

Telegram counts a text's length in UTF-16 code units after parsing the HTML (an emoji
outside the BMP is two), allows 4,096 of them in a message and 1,024 in a caption, and keeps
at most 100 formatting entities per message (the rest are dropped). Lengths here are taken
on the HTML, which is never shorter than the text Telegram counts; entities are counted as
opening tags, never fewer than Telegram makes of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TEXT_LIMIT = 4096  # Telegram: a message's text, UTF-16 code units after parsing
CAPTION_LIMIT = 1024  # Telegram: a document's or photo's caption
ENTITY_LIMIT = 100  # Telegram: formatting entities kept in one message
# A reply is split a little under the limit, leaving room for what Telegram counts differently.
REPLY_LIMIT = 4000

_OPENING_TAG = re.compile(r"<[a-zA-Z]")


def utf16_len(text: str) -> int:
    """Return a text's length as Telegram counts it (UTF-16 code units; an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2


def utf16_prefix(text: str, limit: int) -> str:
    """Return the longest start of `text` that Telegram counts as at most `limit` long.

    A character that would be cut in half (an emoji at the boundary) is left out whole.
    """
    return text.encode("utf-16-le")[: 2 * limit].decode("utf-16-le", "ignore")


def entity_count(html: str) -> int:
    """Return how many formatting entities an HTML text makes at most (its opening tags)."""
    return len(_OPENING_TAG.findall(html))


def _fits(text: str, limit: int) -> bool:
    return utf16_len(text) <= limit and entity_count(text) <= ENTITY_LIMIT


def _cut(line: str, limit: int) -> int:
    """Return where to cut an over-long line: within `limit`, never inside an entity or tag."""
    end, size = 0, 0
    for ch in line:
        size += utf16_len(ch)
        if size > limit:
            break
        end += 1
    # Escaped text is full of `&amp;`-style entities; half of one is invalid HTML.
    for opener, closer in (("&", ";"), ("<", ">")):
        start = line.rfind(opener, 0, end)
        if start > 0 and line.find(closer, start, end) < 0:
            end = start
    return end


def split_text(text: str, limit: int = REPLY_LIMIT) -> list[str]:
    """Split a long answer at line breaks into messages within Telegram's limits.

    Each part is at most `limit` long (UTF-16) and holds at most ENTITY_LIMIT entities.
    Views keep every HTML tag within one line, so splitting between lines keeps tags whole.
    """
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while utf16_len(line) > limit:  # a single over-long line (plan text) is cut hard
            if current:
                parts.append(current)
            current = ""
            end = _cut(line, limit)
            parts.append(line[:end])
            line = line[end:]
        candidate = f"{current}\n{line}" if current else line
        if not _fits(candidate, limit) and current:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current or not parts:
        parts.append(current)
    return parts


def pack(title: str, lines: Sequence[str], continued: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Join lines under a title into as few messages as fit Telegram's limits.

    Every message after the first starts with `continued` (the title marked as continued).
    Lengths and entities are counted on the HTML, never below what Telegram counts.
    """
    texts: list[str] = []
    current = title
    size, entities = utf16_len(title), entity_count(title)
    for line in lines:
        line_size, line_entities = utf16_len(line), entity_count(line)
        too_long = size + 1 + line_size > limit or entities + line_entities > ENTITY_LIMIT
        if too_long and current not in (title, continued):
            texts.append(current)
            current = continued
            size, entities = utf16_len(continued), entity_count(continued)
        current = f"{current}\n{line}"
        size += 1 + line_size
        entities += line_entities
    texts.append(current)
    return texts
