"""Free-text matching of units and tasks: names, aliases, pinyin initials, close matches."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.services.matching import Candidate, choose, initials, normalize, rank, spellings

UNITS = [
    Candidate(1, ("county-a", "甲县总工会", "甲县")),
    Candidate(2, ("county-b", "乙县总工会", "乙县")),
    Candidate(3, ("ind-education", "市教育工会", "教育工会")),
    Candidate(4, ("ind-transport", "市交通运输工会", "交通工会")),
    Candidate(5, ("ent-railway", "市轨道交通集团工会", "轨道集团")),
]
TASKS = [
    Candidate(10, ("research-report", "书面调研报告")),
    Candidate(11, ("special-report", "专项报告及典型经验材料")),
    Candidate(12, ("work-summary", "工作总结")),
]


def one(text: str, candidates: list[Candidate]) -> int | None:
    best, _ = choose(rank(text, candidates))
    return best.id if best else None


def test_exact_name_alias_and_key() -> None:
    assert one("甲县总工会", UNITS) == 1
    assert one("甲县", UNITS) == 1
    assert one("county-b", UNITS) == 2


def test_name_inside_a_question() -> None:
    assert one("甲县交了吗", UNITS) == 1
    assert one("乙县总工会的进度怎么样？", UNITS) == 2
    assert one("调研报告谁没交", TASKS) == 10


def test_pinyin_initials_and_full_width() -> None:
    assert initials("甲县") == "jx"
    assert one("jx", UNITS) == 1
    assert one("ＪＸ", UNITS) == 1
    assert one("甲\u200b县", UNITS) == 1  # a zero-width space pasted in


def test_ambiguous_names_offer_a_choice() -> None:
    best, close = choose(rank("交通", UNITS))
    assert best is None
    assert {m.id for m in close} == {4, 5}


def test_nothing_matches() -> None:
    assert rank("天气怎么样", UNITS) == []
    assert choose([]) == (None, [])


@given(st.text(max_size=40))
def test_matching_never_crashes(text: str) -> None:
    matches = rank(text, UNITS + TASKS)
    assert all(m.score >= 72 for m in matches)
    normalize(text)


def test_polyphonic_place_names_match_every_reading() -> None:
    # Issue 11 case 8: 长 in 长治 is read cháng, not zhǎng; people type cz and changzhi.
    units = [Candidate(1, ("长治市总工会", "长治")), Candidate(2, ("重庆市总工会", "重庆"))]
    assert one("cz", units) == 1
    assert one("changzhi", units) == 1
    assert one("zz", units) == 1  # the reading pypinyin prefers still works
    assert one("cq", units) == 2 and one("chongqing", units) == 2
    assert "czszgh" in spellings("长治市总工会")
    assert "changzh" not in spellings("长治") and "cza" not in spellings("长治")


def test_spelling_many_names_in_processes_gives_what_one_process_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A national roster's pinyin is spread over every core; the spellings are the same."""
    from bot.services import matching

    names = ["长治县总工会", "乐清市教育工会", "甲县", "ＪＸ集团", "no hanzi", "重庆"] * 3
    alone = {name: matching.spellings(name) for name in names}
    monkeypatch.setattr(matching, "PROCESSES_FROM", 2)
    monkeypatch.setattr(matching.os, "cpu_count", lambda: 2)
    assert matching.spell_many(names) == alone
    assert {"czxzgh", "zzxzgh"} <= alone["长治县总工会"]  # 长 read both ways in a place name
