"""Find the unit or task a person means: by name, alias, key, pinyin initials or a close match."""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import unicodedata
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from rapidfuzz import fuzz

log = logging.getLogger(__name__)

# Scores: an exact name beats a name inside the text, which beats the text inside a name,
# which beats pinyin initials, which beats a fuzzy likeness.
EXACT = 100.0
NAME_IN_TEXT = 95.0
TEXT_IN_NAME = 90.0
INITIALS = 88.0
THRESHOLD = 72.0
# Candidates within this many points of the best are offered as a choice.
AMBIGUITY = 4.0
# Readings kept per name for a polyphonic name (长治: zz, zc, cz, cc): enough for place
# names, bounded for a long name full of polyphonic characters.
MAX_SPELLINGS = 16


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
    from pypinyin import Style, lazy_pinyin  # 60 MB of dictionaries: loaded when needed

    letters = lazy_pinyin(name, style=Style.FIRST_LETTER, errors="ignore")
    return "".join(letters).casefold()


# Characters read differently in place names than in everyday words (长治 Chángzhì,
# 重庆 Chóngqìng, 乐清 Yuèqīng, 六安 Lù'ān, 单县 Shànxiàn, 蚌埠 Bèngbù, 厦门 Xiàmén, 会稽
# Kuàijī, 济南 Jǐnán, 莘县 Shēnxiàn, 大城 Dàichéng, 洪洞 Hóngtóng, 番禺 Pānyú, 铅山 Yánshān,
# 尉犁 Yùlí, 枞阳 Zōngyáng, 浚县 Xùnxiàn, 繁峙 Fánshì, 荥阳 Xíngyáng, 台州 Tāizhōu, 曲阜
# Qūfù, 朝阳 Cháoyáng, 解州 Xièzhōu, 涡阳 Guōyáng, 沈丘 Shěnqiū): for these every reading
# counts; other characters keep the reading of their context, so a rare reading of an
# everyday character (乙 jí) does not make 乙县 answer to `jx`.
PLACE_POLYPHONES = frozenset("长重乐六单蚌厦会济莘大洞番铅尉枞浚繁荥台曲朝解涡沈行藏都泊华")


@lru_cache(maxsize=65536)
def spellings(name: str) -> frozenset[str]:
    """Return the pinyin initials and the full pinyin a person may type for a name.

    Each character is read as pypinyin reads it in context (its phrase dictionary knows
    most place names: `乐清` is `yq`), and a character of PLACE_POLYPHONES by every reading
    too (`长治`: `cz` and `zz`, `changzhi` and `zhangzhi`). At most MAX_SPELLINGS of each
    kind; empty when the name has no Chinese.
    """
    # pypinyin's dictionaries take about 60 MB: loaded only when a name is first spelled
    # (a plan load with new names, or a question typed in Latin letters).
    from pypinyin import Style, pinyin

    context = pinyin(name, style=Style.NORMAL, errors="ignore")
    hans = [ch for ch in name if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"]
    # Every reading is asked for only when a place-name polyphone is there to use it: the
    # second pinyin pass was a sixth of the cost of spelling a plan's new unit names.
    every = (
        pinyin(name, style=Style.NORMAL, heteronym=True, errors="ignore")
        if any(ch in PLACE_POLYPHONES for ch in hans)
        else []
    )
    readings: list[list[str]] = []
    for i, heard in enumerate(context):
        options = list(heard)
        if len(every) == len(context) and i < len(hans) and hans[i] in PLACE_POLYPHONES:
            options += [r for r in every[i] if r not in options]
        readings.append(options)
    firsts = [sorted({reading[:1] for reading in options}) for options in readings]
    out: set[str] = set()
    for per_char in (firsts, readings):
        for combo in itertools.islice(itertools.product(*per_char), MAX_SPELLINGS):
            out.add("".join(combo).casefold())
    out.discard("")
    return frozenset(out)


# From this many names on, `spell_many` spreads the work over every core: pypinyin takes
# about 0.2 ms a name, 40 s for a national roster's 100,000 names and their aliases.
PROCESSES_FROM = 20_000


def spell_many(names: Iterable[str]) -> dict[str, frozenset[str]]:
    """Return `spellings` of each name (a dict by name).

    From PROCESSES_FROM names on (and with more than one core), in worker processes started
    afresh ("spawn": the caller may hold threads and open connections, which a forked child
    must not inherit); the results are the same as one process gives.
    """
    unique = list(dict.fromkeys(names))
    workers = min(os.cpu_count() or 1, 8)
    if len(unique) < PROCESSES_FROM or workers < 2:
        return {name: spellings(name) for name in unique}
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            chunk = max(1, len(unique) // (workers * 8))
            return dict(zip(unique, pool.map(spellings, unique, chunksize=chunk), strict=True))
    except (BrokenProcessPool, OSError) as exc:
        # No worker could start (a program without a `__main__` guard, no /dev/shm): slower,
        # and the same result.
        log.warning("spelling %d names in this process: %s", len(unique), exc)
        return {name: spellings(name) for name in unique}


def score(text: str, name: str, spelled: frozenset[str] | None = None) -> float:
    """Return how well a folded text names `name`: 0 to 100 (EXACT).

    `spelled` is the name's pinyin when the caller already knows it (the unit-name index
    stores it); else it is computed.
    """
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
    if (
        text.isascii()
        and text.isalpha()
        and len(text) >= 2
        and text in (spellings(name) if spelled is None else spelled)
    ):
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
        best = max((score(query, name) for name in candidate.names), default=0.0)
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
