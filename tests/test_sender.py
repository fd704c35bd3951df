"""The outbox sender against the local Bot API server: limits, 429, retries, refusals, leases."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from telegram import Bot
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)

from bot.db import models as m
from bot.db.engine import Database
from bot.services.delivery import (
    LEASE,
    Failed,
    Migrated,
    Paused,
    Retry,
    Unreachable,
    backoff,
    claim,
)
from bot.services.outbox import enqueue
from sandbox.botapi import Faults, Limits, LocalBotAPI
from scheduler.limits import RateLimits, Window
from scheduler.sender import classify
from tests.delivery_world import (
    T0,
    TOKEN,
    FakeClock,
    add_person,
    add_rows,
    drained,
    eventually,
    load_campaign,
    outbox,
    rig,
    statuses,
    unit_id,
)


@pytest.fixture(autouse=True)
def _timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB's future RetryAfter type, so that nothing in these tests warns about it.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


# ---------------------------------------------------------------------- pure parts


class Ticking:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_slot_is_held_until_one_window_after_the_answer() -> None:
    window = Window(2, 1.0)
    window.take(1)
    window.take(2)
    assert window.full(0.0)
    assert window.next_free(0.0) == float("inf")  # both still in flight
    window.finish(1, 5.0)  # the answer came late: the server may have counted it late too
    assert window.full(5.5)
    assert not window.full(6.0)


def test_limits_per_chat_per_group_and_overall() -> None:
    clock = Ticking()
    limits = RateLimits(3, group_per_minute=2, clock=clock)
    for chat in (1, 2):
        limits.finish(limits.begin(chat, group=False))
    assert not limits.chat_ready(1, False, clock.now)  # one a second into one chat
    assert limits.chat_ready(3, False, clock.now)
    limits.finish(limits.begin(-5, group=True))
    assert not limits.global_ready(clock.now)  # three a second overall
    assert limits.busy_chats(clock.now) == {1, 2, -5}
    clock.now += 1.0
    assert limits.global_ready(clock.now) and limits.chat_ready(1, False, clock.now)
    assert limits.chat_ready(-5, True, clock.now)
    limits.finish(limits.begin(-5, group=True))
    clock.now += 1.0
    assert not limits.chat_ready(-5, True, clock.now)  # two a minute into the group
    clock.now += 58.0
    assert limits.chat_ready(-5, True, clock.now)


def test_a_429_pauses_the_scope_it_was_for() -> None:
    clock = Ticking()
    limits = RateLimits(30, clock=clock)
    # Issue 14 case 2: a 429 into one private chat, the overall window quiet: only that chat.
    limits.pause(7, False, 2.0)
    assert limits.global_ready(clock.now) and limits.chat_ready(8, False, clock.now)
    assert not limits.chat_ready(7, False, clock.now) and 7 in limits.busy_chats(clock.now)
    # A second chat answered 429 within the overall window: the overall limit, everything.
    limits.pause(8, False, 1.0)
    assert not limits.global_ready(clock.now) and not limits.chat_ready(9, False, clock.now)
    clock.now += 2.0
    assert limits.global_ready(clock.now) and limits.chat_ready(7, False, clock.now)
    # The overall window nearly full: the overall limit, everything.
    for chat in range(100, 125):
        limits.finish(limits.begin(chat, group=False))
    limits.pause(200, False, 1.0)
    assert not limits.global_ready(clock.now) and not limits.chat_ready(9, False, clock.now)
    clock.now += 5.0
    limits.pause(-9, True, 40.0)  # the group's per-minute limit
    assert limits.global_ready(clock.now) and limits.chat_ready(8, False, clock.now)
    assert not limits.chat_ready(-9, True, clock.now)
    assert -9 in limits.busy_chats(clock.now)
    assert limits.next_change(clock.now) == clock.now + 40.0


def test_errors_are_sorted_into_retry_and_give_up() -> None:
    assert classify(RetryAfter(3)) == Paused(3.0)
    assert classify(ChatMigrated(-1001)) == Migrated(-1001)
    blocked = classify(Forbidden("Forbidden: bot was blocked by the user"))
    assert isinstance(blocked, Unreachable) and blocked.reason == "blocked"
    gone = classify(BadRequest("Chat not found"))
    assert isinstance(gone, Unreachable) and gone.reason == "not_found"
    assert isinstance(classify(Forbidden("Forbidden: user is deactivated")), Unreachable)
    assert isinstance(classify(BadRequest("Can't parse entities: unclosed tag")), Failed)
    for transient in (NetworkError("Bad Gateway"), TimedOut(), InvalidToken("Unauthorized")):
        assert isinstance(classify(transient), Retry)
    assert isinstance(classify(httpx.ConnectError("refused")), Retry)
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [2, 4, 8]
    assert backoff(30) == timedelta(minutes=10)


# ---------------------------------------------------------------------- against the server


async def test_limits_hold_against_strict_sliding_windows(db: Database) -> None:
    # Shrunk windows keep the test short; the shape of every limit is Telegram's.
    server_limits = Limits(
        global_per_second=10,
        global_window=0.25,
        chat_window=0.25,
        per_group_per_minute=3,
        group_window=1.0,
    )
    # Ours keep a tenth below the server's: with windows this short, the scheduling jitter of
    # a loaded machine would otherwise be enough to land two requests in one window.
    ours = RateLimits(
        36, global_window=0.25, chat_interval=0.275, group_per_minute=3, group_window=1.1
    )
    async with LocalBotAPI(token=TOKEN, limits=server_limits) as srv:
        users = [srv.add_user(started=True) for _ in range(60)]
        busy = srv.add_user(started=True)
        group = srv.add_group("办公室群")
        chats = [u.id for u in users] + [busy.id] * 6 + [group.id] * 6
        await add_rows(db, chats, text=lambda i: f"消息 {i}")
        async with rig(srv, db, limits=ours) as r:
            await eventually(lambda: drained(db, r.sender), 30, "all sent")
        assert srv.retry_after_violations == 0
        assert srv.count_429 == 0, srv.dump()
        assert await statuses(db) == {"sent": len(chats)}
        received = Counter(msg["chat"]["id"] for msg in srv.sent)
        assert received == Counter(chats)  # every row once, none twice
        # Within a chat the order of the outbox is kept.
        assert srv.texts_to(busy) == [f"消息 {i}" for i in range(60, 66)]
        assert srv.texts_to(group.id) == [f"消息 {i}" for i in range(66, 72)]
        rows = await outbox(db)
        assert all(r.sent_message_id and r.sent_at == T0 and r.attempts == 1 for r in rows)
        assert all(r.lease_owner is None for r in rows)


async def test_a_429_pauses_and_the_message_is_retried(db: Database) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        user = srv.add_user(started=True)
        others = [srv.add_user(started=True) for _ in range(5)]
        # Someone outside this process's limits (another bot process) just wrote to the user.
        async with Bot(TOKEN, base_url=srv.base_url) as outsider:
            await outsider.send_message(user.id, "hello")
        await add_rows(db, [user.id] + [o.id for o in others])
        async with rig(srv, db) as r:
            await eventually(lambda: drained(db, r.sender), 15, "all sent")
        assert srv.count_429 == 1
        assert srv.retry_after_violations == 0
        assert r.sender.stats.paused == 1
        assert await statuses(db) == {"sent": 6}
        assert srv.texts_to(user) == ["hello", "提醒 #0"]


async def test_a_reply_counts_in_the_chat_window_so_no_429_follows(db: Database) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        user = srv.add_user(started=True)
        async with rig(srv, db, run=False) as r:
            # A handler's direct reply goes through the same limiter as the sender.
            await r.bot.send_message(user.id, "您的材料已收到")
            await add_rows(db, [user.id])
            task = asyncio.create_task(r.sender.run())
            await eventually(lambda: drained(db, r.sender), 15, "sent")
            r.sender.stop()
            await task
        assert srv.count_429 == 0
        assert srv.texts_to(user) == ["您的材料已收到", "提醒 #0"]


async def test_a_reply_right_after_a_nudge_waits_for_the_chat_slot(db: Database) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        user = srv.add_user(started=True)
        await add_rows(db, [user.id])
        async with rig(srv, db) as r:
            await srv.wait_for(lambda s: s.texts_to(user), timeout=10)
            # The person answers the nudge at once; the bot's reply must not hit a 429.
            await r.bot.send_message(user.id, "已收到")
        assert srv.count_429 == 0
        assert srv.texts_to(user) == ["提醒 #0", "已收到"]
        gap = [req.at for req in srv.calls("sendMessage")]
        assert gap[1] - gap[0] >= 1.0


async def test_a_reply_answered_429_is_tried_once_more(db: Database) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        user = srv.add_user(started=True)
        async with rig(srv, db, run=False) as r, Bot(TOKEN, base_url=srv.base_url) as outsider:
            await outsider.send_message(user.id, "另一个进程")  # unseen by this process
            await r.bot.send_message(user.id, "答复")
        assert srv.count_429 == 1 and srv.retry_after_violations == 0
        assert srv.texts_to(user) == ["另一个进程", "答复"]


async def test_server_errors_and_dropped_connections_are_retried_with_backoff(
    db: Database,
) -> None:
    faults = Faults(error_rate=0.4, drop_rate=0.2, seed=7)
    # A short chat window and poll keep the rounds of retries quick.
    limits = Limits(chat_window=0.2)
    async with LocalBotAPI(token=TOKEN, faults=faults, limits=limits) as srv:
        users = [srv.add_user(started=True) for _ in range(20)]
        await add_rows(db, [u.id for u in users])
        clock = FakeClock()
        ours = RateLimits(30, chat_interval=0.2)
        async with rig(srv, db, clock=clock, limits=ours, poll_seconds=0.2) as r:

            async def done() -> bool:
                clock.advance(30)  # past any backoff so far
                return await drained(db, r.sender)

            await eventually(done, 30, "all sent despite faults")
        assert r.sender.stats.retried > 0
        assert await statuses(db) == {"sent": 20}
        assert srv.retry_after_violations == 0
        assert Counter(msg["chat"]["id"] for msg in srv.sent) == Counter(u.id for u in users)
        assert srv.rejected == []
        retried = [row for row in await outbox(db) if row.attempts > 1]
        assert retried and all(row.last_error is None for row in retried)


async def test_a_failed_send_moves_not_before_by_the_backoff(db: Database) -> None:
    async with LocalBotAPI(token=TOKEN, faults=Faults(error_rate=1.0, status=503)) as srv:
        user = srv.add_user(started=True)
        await add_rows(db, [user.id])
        async with rig(srv, db):

            async def tried() -> bool:
                return (await outbox(db))[0].attempts == 1

            await eventually(tried, 10, "one attempt")
        row = (await outbox(db))[0]
        assert row.status == "pending" and row.not_before == T0 + timedelta(seconds=2)
        assert row.lease_owner is None and "Service Unavailable" in (row.last_error or "")
        assert TOKEN not in (row.last_error or "")


async def test_blocked_contact_office_told_once_others_unaffected(db: Database) -> None:
    campaign = await load_campaign(db)
    county_a, county_b = await unit_id(db, "county-a"), await unit_id(db, "county-b")
    async with LocalBotAPI(token=TOKEN) as srv:
        blocked = srv.add_user(first_name="联络员甲", started=True)
        other = srv.add_user(first_name="联络员乙", started=True)
        office = srv.add_user(first_name="办公室", started=True)
        srv.block(blocked)
        await add_person(
            db,
            blocked.id,
            name="<i>甲</i> & 联络员",
            role="contact",
            campaign_id=campaign,
            unit=county_a,
        )
        await add_person(db, other.id, role="contact", campaign_id=campaign, unit=county_b)
        await add_person(db, office.id, role="office", campaign_id=campaign)
        await add_rows(db, [blocked.id] * 3 + [other.id], campaign_id=campaign)
        async with rig(srv, db) as r:
            await eventually(lambda: drained(db, r.sender), 15, "settled")
            # Later rows for the same person are not sent, and the office is not told again.
            await add_rows(db, [blocked.id], prefix="later", campaign_id=campaign)
            r.sender._poked = True
            r.sender._wake.set()
            await eventually(lambda: drained(db, r.sender), 15, "settled again")
        assert srv.texts_to(other) == ["提醒 #3"]
        assert srv.texts_to(blocked) == []
        notices = srv.sent_to(office)
        assert len(notices) == 1
        text = notices[0]["text"]
        assert "<i>甲</i> & 联络员" in text and "甲县总工会" in text and "屏蔽" in text
        assert srv.rejected and all(req.response_status == 403 for req in srv.rejected)
        assert len(srv.rejected) == 1  # the other rows were never tried
        async with db.read() as session:
            person = await session.scalar(
                select(m.Person).where(m.Person.telegram_id == blocked.id)
            )
        assert person is not None and not person.reachable and person.unreachable_since == T0
        by_chat = Counter((row.chat_id, row.status) for row in await outbox(db))
        assert by_chat[(blocked.id, "cancelled")] == 4
        assert by_chat[(other.id, "sent")] == 1 and by_chat[(office.id, "sent")] == 1


async def test_group_migration_is_followed(db: Database) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        group = srv.add_group("办公室群")
        person = await add_person(db, group.id, name="办公室群", is_group=True)
        supergroup = srv.migrate_group(group)
        await add_rows(db, [group.id, group.id], person_id=person)
        async with rig(srv, db) as r:
            await eventually(lambda: drained(db, r.sender), 20, "sent")
        assert srv.texts_to(supergroup.id) == ["提醒 #0", "提醒 #1"]
        assert srv.retry_after_violations == 0
        async with db.read() as session:
            moved = await session.get(m.Person, person)
        assert moved is not None and moved.telegram_id == supergroup.id
        assert {row.chat_id for row in await outbox(db)} == {supergroup.id}


async def test_bad_html_is_a_failure_not_a_retry(db: Database) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        users = [srv.add_user(started=True) for _ in range(2)]
        await add_rows(db, [u.id for u in users], text=lambda i: "<b>坏" if i == 0 else "好")
        async with rig(srv, db) as r:
            await eventually(lambda: drained(db, r.sender), 10, "settled")
        rows = await outbox(db)
        assert rows[0].status == "failed" and "parse" in (rows[0].last_error or "").lower()
        assert rows[1].status == "sent"
        assert r.sender.stats.failed == 1


async def test_stop_at_once_for_closed_or_re_dated_assignments(db: Database) -> None:
    campaign = await load_campaign(db)
    async with LocalBotAPI(token=TOKEN) as srv:
        users = [srv.add_user(started=True) for _ in range(4)]
        async with db.write() as session:
            assignments = list(
                await session.scalars(select(m.Assignment).order_by(m.Assignment.id).limit(4))
            )
            planned = [a.due_at for a in assignments]
            ids = [a.id for a in assignments]
        for i, (user, assignment, due) in enumerate(zip(users, ids, planned, strict=True)):
            await add_rows(
                db,
                [user.id],
                prefix=f"nudge{i}",
                campaign_id=campaign,
                assignment_id=assignment,
                planned_due_at=due,
            )
        # After planning: one submitted, one re-dated (extension), one archived; one untouched.
        async with db.write() as session:
            await session.execute(
                update(m.Assignment).where(m.Assignment.id == ids[0]).values(status="submitted")
            )
            await session.execute(
                update(m.Assignment)
                .where(m.Assignment.id == ids[1])
                .values(due_at=planned[1] + timedelta(days=3))
            )
            await session.execute(
                update(m.Assignment).where(m.Assignment.id == ids[2]).values(archived_at=T0)
            )
        async with rig(srv, db) as r:
            await eventually(lambda: drained(db, r.sender), 10, "settled")
        rows = await outbox(db)
        assert [row.status for row in rows] == ["cancelled", "cancelled", "cancelled", "sent"]
        assert [row.last_error for row in rows[:3]] == [
            "assignment submitted",
            "deadline changed",
            "assignment archived",
        ]
        assert [len(srv.texts_to(u)) for u in users] == [0, 0, 0, 1]


async def test_losing_leadership_stops_sending_at_once(db: Database) -> None:
    leading = [True]
    async with LocalBotAPI(token=TOKEN) as srv:
        users = [srv.add_user(started=True) for _ in range(90)]
        await add_rows(db, [u.id for u in users])
        async with rig(srv, db, is_leader=lambda: leading[0]) as r:
            await srv.wait_for(lambda s: len(s.sent) >= 10, timeout=10)
            leading[0] = False
            r.sender._wake.set()

            async def handed_back() -> bool:
                return r.sender.idle and all(row.lease_owner is None for row in await outbox(db))

            await eventually(handed_back, 5, "claimed rows handed back")
            stopped_at = len(srv.sent)
            await asyncio.sleep(1.5)
            assert len(srv.sent) == stopped_at  # nothing more after the loss
        assert stopped_at < 30  # only what was already in flight finished
        counts = await statuses(db)
        assert counts["sent"] == stopped_at and counts["pending"] == 90 - stopped_at


async def test_a_lease_keeps_a_claimed_row_from_a_second_sender(db: Database) -> None:
    clock = FakeClock()
    await add_rows(db, list(range(1, 11)))
    first = await claim(db, owner="a", now=clock(), limit=6)
    second = await claim(db, owner="b", now=clock(), limit=10)
    assert len(first) == 6 and len(second) == 4
    assert not {r.id for r in first} & {r.id for r in second}
    assert await claim(db, owner="c", now=clock(), limit=10) == []
    # A sender that died (or lost leadership unnoticed) keeps its rows only until the lease ends.
    clock.advance(LEASE.total_seconds())
    assert len(await claim(db, owner="c", now=clock(), limit=10)) == 10


@pytest.mark.postgres
async def test_two_senders_on_one_postgres_database_send_each_row_once(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("several senders share a database only on PostgreSQL")
    async with LocalBotAPI(token=TOKEN, limits=Limits.off()) as srv:
        users = [srv.add_user(started=True) for _ in range(150)]
        await add_rows(db, [u.id for u in users])
        # Concurrent claims from two transactions: SKIP LOCKED and the lease split the rows.
        async with rig(srv, db, owner="one", run=False) as a, rig(srv, db, owner="two") as b:
            task = asyncio.create_task(a.sender.run())
            await eventually(lambda: drained(db, a.sender), 30, "all sent")
            await eventually(lambda: drained(db, b.sender), 30, "all sent")
            a.sender.stop()
            await task
        assert a.sender.stats.sent > 0 and b.sender.stats.sent > 0
        assert a.sender.stats.sent + b.sender.stats.sent == 150
        assert Counter(msg["chat"]["id"] for msg in srv.sent) == Counter(u.id for u in users)
        assert await statuses(db) == {"sent": 150}


async def test_a_picture_is_drawn_when_it_goes_out(db: Database) -> None:
    campaign = await load_campaign(db)
    async with LocalBotAPI(token=TOKEN) as srv:
        leader = srv.add_user(started=True)
        await add_person(db, leader.id, name="组长", role="leader", campaign_id=campaign)
        async with db.write() as session:
            for key, spec in (("good", {"kind": "bulletin"}), ("bad", {"kind": "horoscope"})):
                await enqueue(
                    session,
                    key=f"bulletin:{key}",
                    chat_id=leader.id,
                    kind="bulletin",
                    payload={
                        "method": "sendPhoto",
                        "render": {**spec, "campaign_id": campaign, "lang": "zh"},
                        "caption": "<b>通报</b>",
                        "parse_mode": "HTML",
                    },
                    now=T0,
                )
        async with rig(srv, db) as r:
            await eventually(lambda: drained(db, r.sender), 20, "settled")
        [photo] = [m for m in srv.sent_to(leader.id) if m.get("photo")]
        assert photo["caption"] == "通报"
        upload = next(q for q in srv.requests if q.method == "sendPhoto" and q.ok)
        assert upload.params["photo"]["size"] > 10_000  # a real PNG went up
        good, bad = await outbox(db)
        assert good.status == "sent"
        assert bad.status == "failed" and "horoscope" in (bad.last_error or "")
