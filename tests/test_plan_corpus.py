"""Every broken plan is rejected with its file, line and key; valid plans load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.plan import PlanInvalid, load_plan
from tests.reliability import record

PLANS = Path(__file__).parent / "plans"
EXPECT = re.compile(r"^# expect: line=(\d+) key=(\S*) message=(.+)$")
BROKEN = sorted((PLANS / "broken").glob("*.toml"))


def test_corpus_is_large_enough() -> None:
    assert len(BROKEN) >= 15
    record(
        "bad input",
        "broken plan files (corpus)",
        len(BROKEN),
        "each rejected with file, line and key",
    )


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_plan_names_file_line_and_key(path: Path) -> None:
    match = EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0])
    assert match, f"{path.name} lacks its '# expect:' line"
    line, key, message = int(match.group(1)), match.group(2), match.group(3).strip()
    with pytest.raises(PlanInvalid) as caught:
        load_plan(path)
    errors = caught.value.errors
    found = [e for e in errors if e.key == key and message in e.message]
    assert found, f"expected {key!r} ({message}) among: {[str(e) for e in errors]}"
    assert found[0].line == line
    assert found[0].file == str(path)
    assert str(found[0]).startswith(f"{path}:{line}: ")


def test_every_error_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = (PLANS / "base.toml").read_text(encoding="utf-8")
    text = text.replace('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"')
    text = text.replace('kind = "county"', 'kind = "nowhere"')
    text = text.replace("end = 2017-05-10", "end = 2017-04-01")
    path = tmp_path / "many.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanInvalid) as caught:
        load_plan(path)
    keys = {e.key for e in caught.value.errors}
    assert {"campaign.timezone", "units[0].kind", "phases[0].end"} <= keys


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlanInvalid) as caught:
        load_plan(tmp_path / "nope.toml")
    assert "file not found" in str(caught.value)


def test_base_and_example_plans_are_valid() -> None:
    base = load_plan(PLANS / "base.toml")
    assert base.key == "mini"
    assert base.assignment_count() == 1
    example = load_plan(Path(__file__).parent.parent / "examples" / "campaign.toml")
    assert len(example.phases) == 5
    assert len(example.units) >= 12
    assert {u.kind for u in example.units} == {"county", "industry", "enterprise"}
    # The inspection phase owes nothing.
    assert [p.key for p in example.phases if not p.tasks] == ["inspection"]
