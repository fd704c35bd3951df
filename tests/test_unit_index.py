"""The unit-name index answers as `matching.rank` does, fast, and never from a stale list."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.db import models as m
from bot.db.engine import Database
from bot.plan import parse_plan
from bot.services.lookup import find_unit, rank_units, resolve_unit
from bot.services.matching import Candidate, choose, rank
from bot.services.plan_load import load_plan_into
from bot.services.unit_index import UnitIndex
from tests.conftest import EXAMPLE

PLACES = "甲乙丙丁长治沙河东西南北安平阳城山水江湖海宁远新兴和华中龙凤泉林石桥"
KINDS = ("县总工会", "区总工会", "市教育工会", "交通运输工会", "集团公司工会", "医院工会")


def realistic(count: int, seed: int = 3) -> list[Candidate]:
    """Units named as offices name them: place + kind, with a short alias."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < count:
        place = "".join(rng.choice(PLACES) for _ in range(rng.randint(2, 3)))
        kind = rng.choice(KINDS)
        name = place + kind
        if name in seen:
            continue
        seen.add(name)
        out.append(Candidate(len(out) + 1, (f"u{len(out):04d}", name, place + kind[:1])))
    return out


UNITS = realistic(600)
INDEX = UnitIndex.build(1, UNITS)


def best(matches: list) -> int | None:
    found, _ = choose(matches)
    return found.id if found else None


def queries(rng: random.Random) -> list[str]:
    picks = rng.sample(UNITS, 40)
    out = []
    for c in picks:
        key, name, alias = c.names
        out += [name, alias, key, f"{alias}交了吗", f"{name}的进度怎么样", name[:-1], name[1:]]
        typo = list(name)
        typo[rng.randrange(len(typo))] = rng.choice(PLACES)
        out.append("".join(typo))
    return out


def test_same_answer_as_matching_on_realistic_names() -> None:
    for text in queries(random.Random(11)):
        expected = choose(rank(text, UNITS))
        got = choose(INDEX.rank(text))
        if expected[0] is not None:
            assert got[0] == expected[0], text
        else:
            # Ambiguous: the index offers the same choice (close matches are scored among
            # the names sharing the most character pairs, which hold the best ones).
            assert got[0] is None, text
            assert {m.id for m in got[1]} <= {m.id for m in rank(text, UNITS)}, text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=PLACES + "县区市工会交了吗 abcxyzＡ", max_size=12))
def test_same_best_answer_for_any_text(text: str) -> None:
    expected = choose(rank(text, UNITS))[0]
    got = choose(INDEX.rank(text))[0]
    assert got == expected


def test_polyphonic_place_names_match_every_reading() -> None:
    units = [
        Candidate(1, ("cz", "长治市总工会", "长治")),
        Candidate(2, ("cs", "长沙市总工会", "长沙")),
    ]
    index = UnitIndex.build(1, units)
    assert best(index.rank("cz")) == 1  # 长治 read cháng zhì, as people say the city
    assert best(index.rank("changzhi")) == 1
    assert best(index.rank("zz")) == 1  # the other reading of 长 counts too
    assert best(index.rank("czszgh")) == 1
    assert best(index.rank("changsha")) == 2
    assert best(rank("changzhi", units)) == 1  # matching itself agrees


def test_only_restricts_the_answer() -> None:
    target = UNITS[5]
    assert best(INDEX.rank(target.names[1], only=[target.id])) == target.id
    assert INDEX.rank(target.names[1], only=[UNITS[6].id]) == []


async def test_lookups_through_the_database_and_a_rename(db: Database) -> None:
    now = datetime(2017, 3, 20, tzinfo=UTC)
    text = EXAMPLE.read_text(encoding="utf-8")
    await load_plan_into(db, parse_plan(text, str(EXAMPLE)), now=now)
    async with db.read() as session:
        campaign_id = (await find_unit(session, 1, "甲县")).campaign_id
        found, _ = await resolve_unit(session, campaign_id, "jx")
        assert found is not None and found.name == "甲县总工会"
        assert best(await rank_units(session, campaign_id, "甲县交了吗")) == found.id
        stored = await session.get_one(m.Unit, found.id)
        assert "jx" in (stored.spellings or [])
    # The plan renames the unit: every process's index sees it at its next lookup.
    renamed = text.replace('name = "甲县总工会"', 'name = "长治县总工会"').replace(
        'aliases = ["甲县"', 'aliases = ["长治"'
    )
    await load_plan_into(db, parse_plan(renamed, str(EXAMPLE)), now=now)
    async with db.read() as session:
        found, _ = await resolve_unit(session, campaign_id, "cz")
        assert found is not None and found.name == "长治县总工会"
        gone, _ = await resolve_unit(session, campaign_id, "甲县总工会")
        assert gone is None or gone.name != "甲县总工会"
