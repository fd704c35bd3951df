"""The first hour, in the chat (issue 12, items 11 and 12), through the real Application.

11. A stranger is told to turn to the campaign's `[campaign] office`, or to a neutral "the
    office"; no catalog string names the reference campaign's organisation.
12. A config copied from `config.example.toml` offers no calendar feed links: they come
    only once `[http] public_url` is set.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.config import load_config
from bot.db.engine import Database
from bot.i18n import LANGUAGES, catalog
from tests.conftest import EXAMPLE, ROOT
from tests.harness import T0, Harness, texts

OFFICE = "区教育局安全科"


def _with_office(office: str) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    return text.replace(
        "units_see_all = false\n", f'units_see_all = false\noffice = "{office}"\n', 1
    )


async def test_strangers_are_sent_to_the_campaigns_office(db: Database) -> None:
    h = await Harness.create(db, T0, plan_text=_with_office(OFFICE))
    try:
        stranger = h.user("陌生人")
        [greeting] = await h.send(stranger, "/start")
        assert f"请向{OFFICE}索取邀请码" in greeting
        assert "市总工会" not in greeting and "督办助手" not in greeting
        [refused] = await h.send(stranger, "/start not-a-code")
        assert f"向{OFFICE}索取新的邀请码" in refused
        [helped] = await h.send(stranger, "/help")
        assert OFFICE in helped
        [asked] = await h.send(stranger, "/mine")
        assert OFFICE in asked
        english = h.user("stranger")
        await h.send(english, "/lang en")
        [greeting_en] = await h.send(english, "/start")
        assert f"Ask {OFFICE} for an invite code" in greeting_en
    finally:
        await h.close()


async def test_without_an_office_the_default_is_neutral(db: Database) -> None:
    h = await Harness.create(db, T0)
    try:
        [greeting] = await h.send(h.user("陌生人"), "/start")
        assert "请向办公室索取邀请码" in greeting
    finally:
        await h.close()


def test_no_catalog_string_names_the_reference_organisation() -> None:
    for lang in LANGUAGES:
        for key, text in catalog(lang).items():
            for name in ("工会", "督办助手", "union", "federation"):
                assert name not in text.lower(), (lang, key, text)


async def test_the_example_config_offers_no_feed_links(db: Database, tmp_path: Path) -> None:
    copied = tmp_path / "config.toml"
    shutil.copy(ROOT / "config.example.toml", copied)
    config = load_config(copied, env={"DUBAN_TELEGRAM_TOKEN": "1:x"})
    assert config.http is not None and config.http.public_url == ""
    h = await Harness.create(db, T0)
    try:
        h.app.bot_data["runtime"].config = config
        contact = await h.register("contact", "甲县")
        calls = await h.send_calls(contact, "/calendar")
        assert [c.method for c in calls] == ["sendDocument"]
        assert not any("example.org" in text or "/calendar/" in text for text in texts(calls))
    finally:
        await h.close()


# ------------------------------------------------------- 10. archiving stops reminders


async def test_archiving_stops_every_reminder_and_keeps_the_data(db: Database) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from bot.db import models as m
    from bot.services.campaigns import archive_campaign, pick_campaign
    from bot.services.progress import campaign_progress
    from scheduler.planner import plan_tick

    h = await Harness.create(db, T0)
    try:
        await h.register("contact", "甲县")
        await h.register("leader")

        async def pending() -> int:
            async with db.read() as session:
                count = await session.scalar(
                    select(func.count()).select_from(m.Outbox).where(m.Outbox.status == "pending")
                )
            return int(count or 0)

        # Two days before the research report is due, the contact is nudged (the control).
        await plan_tick(db, T0, default_language="zh")
        queued = await pending()
        assert queued > 0
        async with db.write() as session:
            _, withdrawn = await archive_campaign(session, "stability-2017", now=T0, actor="test")
        assert withdrawn == queued and await pending() == 0
        for days in (1, 2, 3, 8):
            await plan_tick(db, T0 + timedelta(days=days), default_language="zh")
        assert await pending() == 0
        async with db.read() as session:
            campaign = await pick_campaign(session, "stability-2017")
            progress = await campaign_progress(session, campaign, T0)
        assert progress.totals()[0] == 61
    finally:
        await h.close()
