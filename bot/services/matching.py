"""Find the unit or task a person means: by name, alias, key, pinyin initials or a close match."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from rapidfuzz import fuzz

# Scores: an exact name beats a name inside the text, which beats the text inside a name,
# which beats pinyin initials, which beats a fuzzy likeness.
EXACT = 100.0
NAME_IN_TEXT = 95.0
TEXT_IN_NAME = 90.0
INITIALS = 88.0
THRESHOLD = 72.0
# Candidates within this many points of the best are offered as a choice.
AMBIGUITY = 4.0


@dataclass(frozen=True)
class Candidate:
    """Something that can be named: its id and every name it goes by."""

    id: int
    names: tuple[str, ...]


@dataclass(frozen=True)
class Match:
    """A candidate and how well the text names it."""

    id: int
    score: float


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """Fold width and case and drop invisible characters, so `ＪＸ` and `jx` compare equal."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in ("C", "Z")).strip()


@lru_cache(maxsize=4096)
def initials(name: str) -> str:
    """Return the pinyin initials of a Chinese name (`甲县` -> `jx`)."""
    letters = lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore")
    return "".join(letters).casefold()


def _score(text: str, name: str) -> float:
    name = normalize(name)
    if not name or not text:
        return 0.0
    if name == text:
        return EXACT
    if len(name) >= 2 and name in text:
        # Prefer the longest name found in the text ("甲县总工会" over "甲县").
        return NAME_IN_TEXT + min(len(name), 20) / 10
    if len(text) >= 2 and text in name:
        return TEXT_IN_NAME + len(text) / len(name)
    if text.isascii() and text.isalpha() and len(text) >= 2 and initials(name) == text:
        return INITIALS
    if len(text) < 2:
        return 0.0
    # A shared run of characters ("调研报告" in "书面调研报告谁没交") counts by how much of
    # the name it covers; WRatio catches typos and reordering.
    common = SequenceMatcher(None, text, name, autojunk=False).find_longest_match()
    shared = 60.0 + 30.0 * common.size / len(name) if common.size >= 2 else 0.0
    return max(shared, float(fuzz.WRatio(text, name)) * 0.8)


def rank(text: str, candidates: Iterable[Candidate]) -> list[Match]:
    """Return the candidates the text may mean, best first (only those above the threshold)."""
    query = normalize(text)
    pool = list(candidates)
    # An exact name or alias settles it without comparing every name (thousands of units):
    # first as typed, then folded.
    raw = text.strip()
    exact = [Match(c.id, EXACT) for c in pool if raw in c.names]
    if not exact:
        exact = [Match(c.id, EXACT) for c in pool if any(normalize(n) == query for n in c.names)]
    if exact:
        return exact
    out = []
    for candidate in pool:
        best = max((_score(query, name) for name in candidate.names), default=0.0)
        if best >= THRESHOLD:
            out.append(Match(candidate.id, best))
    out.sort(key=lambda m: m.score, reverse=True)
    return out


def choose(matches: Sequence[Match]) -> tuple[Match | None, list[Match]]:
    """Return (the one meant, []) or (None, the close alternatives) or (None, [])."""
    if not matches:
        return None, []
    best = matches[0]
    close = [m for m in matches if best.score - m.score <= AMBIGUITY]
    if len(close) == 1 or (best.score == EXACT and close[1].score < EXACT):
        return best, []
    return None, close[:8]
