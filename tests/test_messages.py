"""bot.messages: the callback table, and Telegram's text limits (UTF-16 length, entities)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import StaleButton
from bot.messages import callbacks as cb
from bot.messages.limits import (
    ENTITY_LIMIT,
    entity_count,
    pack,
    split_text,
    utf16_len,
    utf16_prefix,
)


def sample(kind: cb.Kind) -> tuple[int | str, ...]:
    return tuple(
        f[-1] if isinstance(f, tuple) else (2**31 - 1 if f == cb.ID else "1716000000")
        for f in kind.fields
    )


@pytest.mark.parametrize("kind", cb.KINDS, ids=lambda k: f"{k.prefix}{len(k.fields)}")
def test_every_kind_round_trips_and_fits_telegram(kind: cb.Kind) -> None:
    values = sample(kind)
    data = kind.data(*values)
    assert 1 <= len(data.encode()) <= cb.DATA_LIMIT
    pressed = cb.parse(data)
    assert pressed.kind == kind and pressed.values == values


def test_no_data_is_claimed_by_two_kinds() -> None:
    for kind in cb.KINDS:
        data = kind.data(*sample(kind))
        assert [k for k in cb.KINDS if k.match(data) is not None] == [kind]


@pytest.mark.parametrize(
    "data",
    [
        "",
        "sub:",
        "sub:²",
        "sub:-1",
        "sub:2147483648",
        "sub:1:2",
        "rev:ok",
        "st:x",
        "nd:1",
        "nd:1:x",
        "sc:yes",
        "xyz:1",
        "sub:1 ",
        None,
    ],
)
def test_forged_data_is_a_stale_button(data: str | None) -> None:
    with pytest.raises(StaleButton):
        cb.parse(data)


def test_parse_among_some_kinds_refuses_the_others() -> None:
    with pytest.raises(StaleButton):
        cb.parse(cb.SUBMIT.data(5), cb.EXTEND)
    assert cb.parse(cb.EXTEND.data(5), cb.SUBMIT, cb.EXTEND).id == 5


def test_building_data_that_cannot_be_parsed_is_a_bug() -> None:
    with pytest.raises(ValueError):
        cb.STATUS_MORE.data("everything")
    with pytest.raises(ValueError):
        cb.SUBMIT.data(-3)
    for wrong in (2**31, True, "12a", "", 10**10):
        with pytest.raises(ValueError):
            cb.SUBMIT.data(wrong)
    assert cb.SUBMIT.data(2**31 - 1) == cb.SUBMIT.data(str(2**31 - 1)) == "sub:2147483647"


def test_routing_pattern_takes_only_these_prefixes() -> None:
    import re

    pattern = re.compile(cb.prefix_pattern(cb.EXTENSION_APPROVE, cb.EXTENSION_REJECT))
    assert pattern.match("exa:1") and pattern.match("exr:9")
    assert not pattern.match("ext:1") and not pattern.match("xexa:1")


def test_every_kind_is_routed_to_exactly_one_handler() -> None:
    from telegram.ext import CallbackQueryHandler

    from handlers import (
        admin,
        extend,
        nudge,
        queries,
        reports,
        review,
        submit,
        unit_report,
        work,
    )

    modules = (queries, submit, review, extend, nudge, admin, reports, work, unit_report)
    patterns = [
        h.pattern
        for module in modules
        for h in module.handlers()
        if isinstance(h, CallbackQueryHandler) and h.pattern is not None
    ]
    for kind in cb.KINDS:
        data = kind.data(*sample(kind))
        routed = [p for p in patterns if not callable(p) and p.match(data)]
        assert len(routed) == 1, (data, routed)


def test_utf16_counts_an_emoji_as_two() -> None:
    assert utf16_len("督办") == 2
    assert utf16_len("📎") == 2
    assert utf16_prefix("ab📎c", 3) == "ab"  # the emoji is not cut in half
    assert utf16_prefix("ab📎c", 4) == "ab📎"


def test_a_reply_with_many_entities_is_split_under_the_entity_limit() -> None:
    lines = [f"<b>单位{i}</b> <i>已提交</i>" for i in range(150)]  # 300 entities, short text
    parts = split_text("\n".join(lines))
    assert len(parts) == 3
    assert all(entity_count(p) <= ENTITY_LIMIT for p in parts)
    assert "\n".join(parts).split("\n") == lines


@given(st.lists(st.text(alphabet="ab督📎<b>&amp;", max_size=300), max_size=60))
def test_split_parts_keep_every_line_within_the_limits(lines: list[str]) -> None:
    text = "\n".join(line.replace("<", "") for line in lines)
    parts = split_text(text, limit=500)
    assert all(utf16_len(p) <= 500 for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_pack_continues_under_the_title_when_entities_run_out() -> None:
    lines = [f"<b>{i}</b>" for i in range(250)]
    texts = pack("<b>标题</b>", lines, "<b>标题</b>（续）")
    assert len(texts) == 3
    assert all(entity_count(x) <= ENTITY_LIMIT for x in texts)
    assert texts[1].startswith("<b>标题</b>（续）\n")


@given(
    unit=st.text(st.characters(blacklist_characters="\x00"), max_size=30),
    task=st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=30),
    kind=st.sampled_from(["before", "due", "overdue"]),
    lang=st.sampled_from(["zh", "en"]),
)
def test_nudge_texts_rendered_once_equal_each_rendered_alone(
    unit: str, task: str, kind: str, lang: str
) -> None:
    """A nudge rendered once for many units reads exactly as if rendered for this unit."""
    from datetime import UTC, datetime, timedelta

    from bot.domain.reminders import CONTACTS, Stage
    from bot.messages.pushes import NudgeTexts, nudge_text

    due = datetime(2026, 5, 10, 10, tzinfo=UTC)
    at = due - timedelta(days=2) if kind == "before" else due + timedelta(days=3)
    stage = Stage(f"{kind}:x", kind, at, at, None, CONTACTS, 0)
    texts = NudgeTexts()
    for name in (unit, "<b>&其他单位", unit):
        expected = nudge_text(stage, task, name, due, "Asia/Shanghai", lang, at)
        assert texts.text(stage, task, name, due, "Asia/Shanghai", lang, at) == expected
