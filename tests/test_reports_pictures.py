"""The progress chart and the bulletin picture: figures from the database, a real PNG, and a
font that has every character drawn."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from PIL import Image
from sqlalchemy import select

from bot.db import models as m
from bot.db.engine import Database
from bot.domain.assignments import DONE, OPEN
from bot.reports.bulletin import (
    BULLETIN_ENDS,
    BulletinData,
    bulletin_data,
    draw_bulletin,
    render_bulletin,
)
from bot.reports.chart import chart_data, draw_chart, render_chart
from bot.reports.figures import UnitStanding, unit_ranking
from bot.reports.fonts import cjk_font_path, missing_glyphs
from bot.reports.plotting import Picture
from bot.services.campaigns import pick_campaign
from tests.reports_world import NOW, seed


def check_png(data: bytes) -> Image.Image:
    """Open the PNG and check it is a phone-width picture Telegram accepts, not blank."""
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    width, height = image.size
    assert width == 1080
    assert height > 400 and width + height <= 10_000 and height / width <= 20
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # text and bars, not an empty canvas
    return image


def check_glyphs(picture: Picture) -> None:
    """Every character drawn has a glyph in the Chinese font (no empty boxes)."""
    drawn = "".join(picture.texts)
    assert drawn
    assert missing_glyphs(drawn) == set()


def test_the_font_is_the_packaged_noto_sans_sc() -> None:
    path = cjk_font_path()
    assert path.name == "NotoSansSC-Regular.otf"
    assert missing_glyphs("职工队伍稳定调研排查化解专项工作（市、区）·…%/0123456789") == set()
    assert missing_glyphs("😀") == {"😀"}  # the check does find what is missing


@pytest.fixture
async def seeded(db: Database) -> Database:
    await seed(db)
    return db


async def test_chart_figures_come_from_the_database(seeded: Database) -> None:
    async with seeded.read() as session:
        campaign = await pick_campaign(session)
        data = await chart_data(session, campaign, NOW)
        rows = list(
            await session.execute(
                select(m.Assignment, m.Task.title, m.UnitKind.name)
                .join(m.Task, m.Task.id == m.Assignment.task_id)
                .join(m.Unit, m.Unit.id == m.Assignment.unit_id)
                .join(m.UnitKind, m.UnitKind.id == m.Unit.kind_id)
            )
        )
        png = await render_chart(session, campaign, NOW, "zh")
    assert [t.title for t in data.tasks] == [
        "工作部署情况报告",
        "书面调研报告",
        "问题清单和工作台账",
        "专项报告及典型经验材料",
        "工作总结",
    ]
    for task in data.tasks:
        mine = [a for a, title, _ in rows if title == task.title]
        assert task.split.total == len(mine)
        assert task.split.done == sum(a.status in DONE for a in mine)
        assert task.split.accepted == sum(a.status == "accepted" for a in mine)
        assert task.split.overdue == sum(a.status in OPEN and a.due_at < NOW for a in mine)
    for kind in data.kinds:
        mine = [a for a, _, name in rows if name == kind.name]
        assert kind.split.total == len(mine)
        assert kind.split.done == sum(a.status in DONE for a in mine)
    # The seeded history has every state somewhere.
    assert all(sum(getattr(t.split, s) for t in data.tasks) for s in ("accepted", "submitted"))
    assert sum(t.split.overdue for t in data.tasks) and sum(t.split.pending for t in data.tasks)

    check_png(png)
    for lang in ("zh", "en"):
        picture = draw_chart(data, lang)
        check_png(picture.png)
        check_glyphs(picture)
        drawn = "\n".join(picture.texts)
        for task in data.tasks:
            assert task.title in drawn
        for kind in data.kinds:
            assert kind.name in drawn
    drawn = "\n".join(draw_chart(data, "zh").texts)
    first = data.tasks[0].split
    assert f"已报 {first.done}/{first.total}" in drawn


async def test_bulletin_ranks_units_by_completion(seeded: Database) -> None:
    async with seeded.read() as session:
        campaign = await pick_campaign(session)
        data = await bulletin_data(session, campaign, NOW)
        png = await render_bulletin(session, campaign, NOW, "zh")
        units = list(await session.scalars(select(m.Unit)))
        assignments = list(await session.scalars(select(m.Assignment)))
        # The dashboard's ranking: the same standings in the same order, late left uncounted.
        page = await unit_ranking(session, campaign.id, NOW, with_late=False)
    assert [replace(s, late=0) for s in data.ranking] == page
    assert {s.name for s in data.ranking} == {u.name for u in units}
    rates = [s.rate for s in data.ranking]
    assert rates == sorted(rates, reverse=True)
    for standing in data.ranking:
        unit = next(u for u in units if u.name == standing.name)
        mine = [a for a in assignments if a.unit_id == unit.id]
        due = [a for a in mine if a.due_at <= NOW]
        assert standing.total == len(due)
        assert standing.done == sum(a.status in DONE for a in due)
        assert standing.overdue == sum(a.status in OPEN and a.due_at < NOW for a in mine)
    assert any(s.late for s in data.ranking)
    check_png(png)
    picture = draw_bulletin(data, "zh")
    check_glyphs(picture)
    drawn = "\n".join(picture.texts)
    assert "2017 年第 20 周" in drawn
    best, worst = data.ranking[0], data.ranking[-1]
    assert f"1. {best.name}" in drawn and f"{len(data.ranking)}. {worst.name}" in drawn
    if worst.overdue:
        assert f"逾期 {worst.overdue}" in drawn
    check_glyphs(draw_bulletin(data, "en"))


def test_a_long_ranking_shows_the_best_and_the_worst_within_telegrams_limits() -> None:
    ranking = [
        UnitStanding(f"第{i}区总工会", i, 10 - i // 40, 10, i // 40, 0, 10, 0) for i in range(400)
    ]
    now = datetime(2017, 5, 15, 2, 0, tzinfo=UTC)
    picture = draw_bulletin(BulletinData("很长的专项工作", "Asia/Shanghai", now, ranking), "zh")
    check_png(picture.png)
    check_glyphs(picture)
    drawn = "\n".join(picture.texts)
    assert "第0区总工会" in drawn and "第399区总工会" in drawn
    assert "第200区总工会" not in drawn
    assert f"中间 {400 - 2 * BULLETIN_ENDS} 个单位略" in drawn


def test_plan_text_is_never_read_as_mathtext() -> None:
    ranking = [UnitStanding("$x^2$ 工会", 0, 1, 1, 0, 0, 1, 0)]
    now = datetime(2017, 5, 15, 2, 0, tzinfo=UTC)
    picture = draw_bulletin(BulletinData("$1 专项", "Asia/Shanghai", now, ranking), "zh")
    assert "1. $x^2$ 工会" in picture.texts


def test_a_long_ranking_is_named_at_its_ends_and_counted_in_the_middle() -> None:
    from bot.reports.figures import Skipped, named_ranks

    short = named_ranks(["a", "b"], 1, every_up_to=2)  # type: ignore[list-item]
    assert short == [(1, "a"), (2, "b")]
    long = named_ranks(list("abcdefg"), 2, every_up_to=6)  # type: ignore[arg-type]
    assert long == [(1, "a"), (2, "b"), Skipped(3), (6, "f"), (7, "g")]
