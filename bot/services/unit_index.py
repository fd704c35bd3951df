"""An index of a campaign's unit names, so `/unit` and free text find a unit in milliseconds.

`matching.rank` compares the text with every name: fine for tasks (dozens), too slow for a
campaign of 10,000 units (hundreds of milliseconds). The index answers the same question
from dictionaries:

- a key, name or alias as typed or folded (width, case, invisible characters): one lookup;
- a name inside the text ("甲县交了吗"): every substring of the text is looked up;
- the text inside a name ("第05000号"): the units holding every character pair of the text;
- pinyin initials or full pinyin, every reading of a polyphonic name: one lookup;
- a close match (typos, reordering): an upper bound of every name's score, from the
  characters and character pairs it shares with the text (counted in C by numpy), picks the
  few names that can win; `matching` itself scores those.

Each process keeps one index per campaign and rebuilds it when the campaign's
`units_version` (raised by the database on every change of a unit) moves, so several bot
processes on one database never answer from a stale list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db import models as m
from bot.services.matching import (
    AMBIGUITY,
    EXACT,
    THRESHOLD,
    Candidate,
    Match,
    normalize,
    score,
    spellings,
)

if TYPE_CHECKING:
    import numpy as np

# At most this many names are scored in full for one text: past it, so many names are about
# equally close that the answer is a choice anyway.
SCORED = 256
# Indexes kept per process (one per campaign asked about).
KEPT = 8


def _tokens(text: str, size: int) -> list[str]:
    """Return the text's runs of `size` characters, each repeat numbered (a multiset)."""
    seen: dict[str, int] = {}
    out = []
    for i in range(len(text) - size + 1):
        run = text[i : i + size]
        seen[run] = seen.get(run, 0) + 1
        out.append(f"{run}#{seen[run]}")
    return out


@dataclass
class UnitIndex:
    """Every live unit's names of one campaign, in plan order, with lookup tables.

    Names are also kept flat (one entry per key, name or alias, folded) with posting lists of
    their characters and character pairs, from which `rank` computes an upper bound of every
    name's fuzzy score in C (numpy) before scoring the few that can win in Python.
    """

    version: int
    candidates: list[Candidate]
    exact: dict[str, list[int]] = field(default_factory=dict)
    folded: dict[str, list[int]] = field(default_factory=dict)
    spelled: dict[str, list[int]] = field(default_factory=dict)
    spelled_by: list[frozenset[str]] = field(default_factory=list)
    # Set by `build` (numpy is imported only when an index is first built).
    owner: np.ndarray = field(init=False)
    lengths: np.ndarray = field(init=False)
    chars: dict[str, np.ndarray] = field(init=False)
    pairs: dict[str, np.ndarray] = field(init=False)

    @classmethod
    def build(
        cls,
        version: int,
        candidates: list[Candidate],
        spelled: list[Iterable[str] | None] | None = None,
    ) -> UnitIndex:
        """Index the candidates (their position is their plan order).

        `spelled` holds each candidate's pinyin as stored by the plan load; where it is
        missing (None) the pinyin is computed here.
        """
        import numpy as np

        index = cls(version, candidates)
        owner: list[int] = []
        lengths: list[int] = []
        chars: dict[str, list[int]] = {}
        pairs: dict[str, list[int]] = {}
        for pos, candidate in enumerate(candidates):
            known = spelled[pos] if spelled is not None else None
            if known is None:
                known = set().union(*(spellings(name) for name in candidate.names))
            index.spelled_by.append(frozenset(known))
            for spelling in index.spelled_by[-1]:
                index.spelled.setdefault(spelling, []).append(pos)
            for name in candidate.names:
                index.exact.setdefault(name, []).append(pos)
                folded = normalize(name)
                if not folded:
                    continue
                index.folded.setdefault(folded, []).append(pos)
                flat = len(owner)
                owner.append(pos)
                lengths.append(len(folded))
                for token in _tokens(folded, 1):
                    chars.setdefault(token, []).append(flat)
                for token in _tokens(folded, 2):
                    pairs.setdefault(token, []).append(flat)
        index.owner = np.asarray(owner, dtype=np.int32)
        index.lengths = np.asarray(lengths, dtype=np.float64)
        index.chars = {k: np.asarray(v, dtype=np.int32) for k, v in chars.items()}
        index.pairs = {k: np.asarray(v, dtype=np.int32) for k, v in pairs.items()}
        return index

    def _shared(self, postings: dict[str, np.ndarray], tokens: list[str]) -> np.ndarray:
        """Count, per flat name, the tokens of the text it shares (as multisets)."""
        import numpy as np

        hits = [postings[t] for t in tokens if t in postings]
        if not hits:
            return np.zeros(len(self.owner), dtype=np.int64)
        return np.bincount(np.concatenate(hits), minlength=len(self.owner))

    def _bounds(self, query: str) -> np.ndarray:
        """Return, per candidate, a score no name of it can exceed by similarity alone.

        `matching.score`'s close match is max(60 + 30·run/len(name) for a shared run of ≥ 2
        characters, 0.8·WRatio). A run of s characters is s - 1 shared pairs, and WRatio
        (Indel ratios of whole strings or of the shorter against part of the longer) is at
        most 100·(shared characters)/(the shorter length).
        """
        import numpy as np

        if len(query) < 2 or not len(self.owner):
            return np.zeros(len(self.candidates))
        pairs = self._shared(self.pairs, _tokens(query, 2))
        chars = self._shared(self.chars, _tokens(query, 1))
        run = np.minimum(pairs + 1, self.lengths)
        by_run = np.where(pairs >= 1, 60.0 + 30.0 * run / self.lengths, 0.0)
        by_ratio = 80.0 * chars / np.minimum(self.lengths, len(query))
        per_name = np.maximum(by_run, by_ratio)
        out = np.zeros(len(self.candidates))
        np.maximum.at(out, self.owner, per_name)
        return out

    def rank(self, text: str, only: Iterable[int] | None = None) -> list[Match]:
        """Return what `matching.rank(text, candidates)` returns for the same units.

        Every name that can be within AMBIGUITY of the best is scored (up to SCORED names),
        so `matching.choose` picks the same unit; names far below the best are left out of
        the list. `only` restricts the answer to these unit ids.
        """
        import numpy as np

        allowed = None if only is None else set(only)

        def keep(positions: Iterable[int]) -> list[int]:
            found = sorted(set(positions))
            if allowed is None:
                return found
            return [p for p in found if self.candidates[p].id in allowed]

        raw = text.strip()
        query = normalize(text)
        for hits in (self.exact.get(raw, []), self.folded.get(query, [])):
            exact = keep(hits)
            if exact:
                return [Match(self.candidates[p].id, EXACT) for p in exact]
        if not query:
            return []
        scores: dict[int, float] = {}

        def score_of(pos: int) -> float:
            if pos not in scores:
                names, spelled = self.candidates[pos].names, self.spelled_by[pos]
                scores[pos] = max((score(query, n, spelled) for n in names), default=0.0)
            return scores[pos]

        # Names inside the text, the text inside a name, pinyin: found by lookups.
        direct: set[int] = set(self.spelled.get(query, ()))
        if len(query) <= 64:
            for start in range(len(query)):
                for end in range(start + 2, len(query) + 1):
                    direct.update(self.folded.get(query[start:end], ()))
        bounds = self._bounds(query)
        if len(query) >= 2 and len(self.owner):
            whole = self._shared(self.pairs, _tokens(query, 2)) >= len(query) - 1
            direct.update(int(self.owner[i]) for i in np.flatnonzero(whole))
        # Thousands of units answering to the same initials cannot all be meant: the first
        # SCORED (in plan order) stand for them.
        best = max((score_of(p) for p in keep(direct)[:SCORED]), default=0.0)
        # Then close matches, most promising first, while one could still come within
        # AMBIGUITY of the best.
        order = np.argsort(-bounds, kind="stable")
        allowed_positions = None if allowed is None else set(keep(range(len(self.candidates))))
        scored = 0
        for pos in order:
            bound = float(bounds[pos])
            if bound < THRESHOLD or bound < best - AMBIGUITY or scored >= SCORED:
                break
            p = int(pos)
            if allowed_positions is not None and p not in allowed_positions:
                continue
            scored += 1
            best = max(best, score_of(p))
        out = [
            Match(self.candidates[p].id, scores[p]) for p in keep(scores) if scores[p] >= THRESHOLD
        ]
        out.sort(key=lambda match: match.score, reverse=True)
        return out


_kept: dict[tuple[str, int], UnitIndex] = {}


async def unit_index(session: AsyncSession, campaign_id: int) -> UnitIndex:
    """Return the campaign's unit index, rebuilt when the database says a unit changed.

    Costs one primary-key read when nothing changed; a rebuild reads the live units' names
    and stored pinyin (tens of milliseconds at 10,000 units).
    """
    version = await session.scalar(
        select(m.Campaign.units_version).where(m.Campaign.id == campaign_id)
    )
    bind = session.get_bind()
    slot = (str(bind.engine.url), campaign_id)
    index = _kept.get(slot)
    if index is not None and index.version == version:
        return index
    rows = list(
        await session.execute(
            select(m.Unit.id, m.Unit.key, m.Unit.name, m.Unit.aliases, m.Unit.spellings)
            .where(m.Unit.campaign_id == campaign_id, m.Unit.archived_at.is_(None))
            .order_by(m.Unit.position, m.Unit.id)
        )
    )
    candidates = [Candidate(row[0], (row[1], row[2], *(row[3] or []))) for row in rows]
    index = UnitIndex.build(int(version or 0), candidates, [row[4] for row in rows])
    if len(_kept) >= KEPT:
        _kept.pop(next(iter(_kept)))
    _kept[slot] = index
    return index
