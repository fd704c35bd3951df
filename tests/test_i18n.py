"""Message catalogs: both languages complete, parameters escaped, dates written the Chinese way."""

from __future__ import annotations

import string
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from bot.i18n import Markup, catalog, format_date, format_moment, plain, progress_bar, t


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_keys_and_parameters() -> None:
    zh, en = catalog("zh"), catalog("en")
    assert set(zh) == set(en)
    for key in zh:
        assert fields(zh[key]) == fields(en[key]), key


def test_parameters_are_escaped_but_markup_is_not() -> None:
    text = t("error.unknown_unit", "zh", name="<b>甲县</b> & co")
    assert "&lt;b&gt;甲县&lt;/b&gt; &amp; co" in text
    assert t("start.welcome_back", "en", name=Markup("<i>x</i>"), campaign="c", roles="r").count(
        "<i>x</i>"
    )
    assert plain("error.unknown_unit", "zh", name="<b>") == "找不到单位：<b>"


@given(st.text())
def test_any_user_string_comes_out_escaped(value: str) -> None:
    rendered = t("error.unknown_unit", "en", name=value)
    rest = rendered.removeprefix("No unit called ").removesuffix(".")
    assert "<" not in rest and ">" not in rest
    assert rest.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "").count("&") == 0


def test_unknown_language_falls_back_to_chinese() -> None:
    assert t("invite.expired", "fr", office="办公室") == t("invite.expired", "zh", office="办公室")
    assert t("invite.expired", "en-US", office="x") == t("invite.expired", "en", office="x")


def test_dates_read_naturally() -> None:
    moment = datetime(2017, 5, 10, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai, a Wednesday
    assert format_moment(moment, "Asia/Shanghai", "zh") == "5月10日 18:00（周三）"
    assert (
        format_moment(moment, "Asia/Shanghai", "zh", with_year=True)
        == "2017年5月10日 18:00（周三）"
    )
    assert format_moment(moment, "Asia/Shanghai", "en") == "Wed 10 May 18:00"
    assert format_date(moment, "Asia/Shanghai", "zh") == "5月10日"


def test_progress_bar() -> None:
    assert progress_bar(0, 10) == "░" * 10
    assert progress_bar(5, 10) == "▓" * 5 + "░" * 5
    assert progress_bar(3, 0) == "░" * 10
