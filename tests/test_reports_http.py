"""duban's own HTTP server, started as bot/app.py starts it: health check and calendar feeds."""

from __future__ import annotations

import aiohttp
from icalendar import Calendar
from sqlalchemy import select

from bot.config import load_config
from bot.db import models as m
from bot.db.engine import Database
from bot.http import start_http, stop_http
from bot.services.access import load_caller
from bot.services.campaigns import pick_campaign
from bot.services.feeds import feed_token, hash_token, revoke_unit_feeds
from bot.services.lookup import find_unit
from tests.reports_world import NOW, seed


async def test_not_configured_means_not_started(sqlite_db: Database) -> None:
    config = load_config(env={})
    assert config.http is None
    server = await start_http(config, sqlite_db)
    assert server is None
    await stop_http(server)


async def test_health_and_feed_over_tcp(db: Database) -> None:
    await seed(db)
    async with db.write() as session:
        campaign = await pick_campaign(session)
        unit = await find_unit(session, campaign.id, "甲县")
        person = m.Person(telegram_id=4242, name="甲县联络员", created_at=NOW, language="en")
        session.add(person)
        await session.flush()
        session.add(
            m.Role(
                person_id=person.id,
                campaign_id=campaign.id,
                role="contact",
                unit_id=unit.id,
                created_at=NOW,
            )
        )
        await session.flush()
        caller = await load_caller(session, 4242)
        assert caller is not None
        token = await feed_token(session, caller, unit, NOW, secret="1:TEST")
        # The same link again, though only its hash is stored (issue 14).
        assert await feed_token(session, caller, unit, NOW, secret="1:TEST") == token
        stored = list(await session.scalars(select(m.CalendarFeed.token)))
        assert stored == [hash_token(token)] and token not in str(stored)
    config = load_config(env={"DUBAN_HTTP_LISTEN": "127.0.0.1", "DUBAN_HTTP_PORT": "0"})
    server = await start_http(config, db, clock=lambda: NOW)
    assert server is not None and server.port > 0
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{base}/healthz") as response:
                assert response.status == 200 and (await response.text()).strip() == "ok"
            async with client.get(f"{base}/calendar/{token}.ics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/calendar")
                calendar = Calendar.from_ical(await response.read())
            events = list(calendar.walk("VEVENT"))
            assert len(events) == 5
            # The holder's language: this contact chose English.
            assert all("due" in str(e.get("summary")) for e in events)
            for wrong in ("x" * 32, "short", "../../etc/passwd"):
                async with client.get(f"{base}/calendar/{wrong}.ics") as response:
                    assert response.status == 404
            async with db.write() as session:
                campaign = await pick_campaign(session)
                unit = await find_unit(session, campaign.id, "甲县")
                assert await revoke_unit_feeds(session, campaign, unit, NOW, actor="test") == 1
            async with client.get(f"{base}/calendar/{token}.ics") as response:
                assert response.status == 404
    finally:
        await stop_http(server)
