"""Find the unit or task a person means: by name, alias, key, pinyin initials or a close match."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from pypinyin import Style, lazy_pinyin, pinyin
from rapidfuzz import fuzz

# Scores: an exact name beats a name inside the text, which beats the text inside a name,
# which beats pinyin initials, which beats a fuzzy likeness.
EXACT = 100.0
NAME_IN_TEXT = 95.0
TEXT_IN_NAME = 90.0
INITIALS = 88.0
# Pinyin in a reading other than pypinyin's first choice (长治 as cz): still a match, but a
# name whose usual reading fits wins over one that fits only in a rare reading (乙 as ji).
OTHER_READING = 83.0
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


@lru_cache(maxsize=16384)
def initials(name: str) -> str:
    """Return the pinyin initials of a Chinese name (`甲县` -> `jx`)."""
    letters = lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore")
    return "".join(letters).casefold()


@lru_cache(maxsize=16384)
def full_pinyin(name: str) -> str:
    """Return the usual full pinyin of a Chinese name, toneless (`甲县` -> `jiaxian`)."""
    return "".join(lazy_pinyin(name, errors="ignore")).casefold()


@lru_cache(maxsize=16384)
def readings(name: str) -> tuple[frozenset[str], ...]:
    """Return every pinyin reading (toneless) of each Chinese character of a name, in order.

    Polyphonic characters keep all their readings (`长治` -> ({zhang, chang}, {zhi, chi})),
    because place names often use the rarer one and pypinyin's phrase table does not know
    every place. Where the phrase table does know a word (`重庆`), its reading is the one kept.
    Characters that are not Chinese are left out, as in `initials`.
    """
    return tuple(
        frozenset(r.casefold() for r in options if r.isascii() and r.isalpha())
        for options in pinyin(name, style=Style.NORMAL, heteronym=True, errors="ignore")
        if options
    )


def sounds_like(text: str, name: str) -> bool:
    """Return whether ASCII `text` is the name's pinyin initials or full pinyin in any reading.

    Input: folded text (`normalize`). `cz` and `changzhi` both name `长治`. Linear in the
    length of the text times the readings per character: no product of readings is built.
    """
    chars = readings(name)
    if not chars or not text.isascii() or not text.isalpha():
        return False
    if len(text) == len(chars) and all(
        text[i] in {r[0] for r in options} for i, options in enumerate(chars)
    ):
        return True
    # Full pinyin: can the text be cut into one reading per character, in order?
    reach = {0}
    for options in chars:
        reach = {at + len(r) for at in reach for r in options if text.startswith(r, at)}
        if not reach:
            return False
    return len(text) in reach


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
    if text.isascii() and text.isalpha() and len(text) >= 2:
        if text in (initials(name), full_pinyin(name)):
            return INITIALS
        if sounds_like(text, name):
            return OTHER_READING
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
