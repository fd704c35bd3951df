"""Crowds and floods (issue 14): budgets per person and chat, replies that wait, fair shares."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from telegram.error import RetryAfter

from handlers.throttle import Budget, Throttle, Verdict
from scheduler.limits import RateLimits, TelegramLimiter


class Ticking:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _timedelta_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


# ---------------------------------------------------------------------- the limiter


def test_the_outbox_keeps_its_share_while_replies_wait() -> None:
    clock = Ticking()
    limits = RateLimits(30, clock=clock)
    limits._replies_waiting = 1  # a crowd of replies waiting for overall slots
    sent = 0
    for chat in range(1, 60):
        clock.now += 1 / 30
        if limits.sender_may_send(clock.now):
            limits.finish(limits.begin(chat, group=False))
            sent += 1
    # About two seconds: the outbox had its third of the rate (10 a second), not nothing.
    assert 18 <= sent <= 22
    limits._replies_waiting = 0
    assert limits.sender_may_send(clock.now + 1 / 30)


def test_replies_leave_the_outbox_its_share_when_it_has_rows() -> None:
    clock = Ticking()
    limits = RateLimits(30, clock=clock)
    limits.outbox_waiting = True
    for chat in range(1, 21):  # twenty replies within one second: two thirds of 30
        clock.now += 0.01
        assert limits._reply_overall_free(clock.now + 1 / 30)
        clock.now += 1 / 30
        limits.finish(limits.begin(chat, group=False, reply=True))
    clock.now += 1 / 30
    assert not limits._reply_overall_free(clock.now)
    assert limits.sender_may_send(clock.now)  # the outbox's third is free
    limits.outbox_waiting = False
    assert limits._reply_overall_free(clock.now)


def test_replies_into_a_group_keep_room_for_what_the_group_receives() -> None:
    clock = Ticking()
    limits = RateLimits(30, clock=clock)
    for _ in range(10):
        clock.now += 1.0
        assert limits._group_reply_free(-5, True, clock.now)
        limits.finish(limits.begin(-5, group=True, reply=True))
    clock.now += 1.0
    assert not limits._group_reply_free(-5, True, clock.now)  # replies' half is used up
    assert limits.chat_ready(-5, True, clock.now)  # the outbox still may send
    for _ in range(10):
        limits.finish(limits.begin(-5, group=True))
        clock.now += 1.0
    assert not limits.chat_ready(-5, True, clock.now)  # 20 a minute in all


async def test_a_reply_waits_for_its_slot_and_never_goes_over() -> None:
    # Case 1's kind: a reply does not "go anyway" after a while; it waits for the chat.
    limits = RateLimits(30, chat_interval=0.3)
    limiter = TelegramLimiter(limits)
    starts: list[float] = []

    async def request() -> bool:
        starts.append(limits.now())
        return True

    replies = [
        limiter.process_request(request, (), {}, "sendMessage", {"chat_id": 42}, None)
        for _ in range(6)
    ]
    assert await asyncio.gather(*replies) == [True] * 6
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(gap >= 0.3 for gap in gaps), gaps


async def test_a_reply_answered_429_is_waited_out_and_sent() -> None:
    # Case 1: "429 retry after 1" twice, and the answer was never sent. Now it goes.
    limits = RateLimits(30)
    limiter = TelegramLimiter(limits)
    answers = iter([RetryAfter(1), RetryAfter(1), True])
    tried: list[float] = []

    async def request() -> bool:
        tried.append(limits.now())
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await limiter.process_request(request, (), {}, "sendMessage", {"chat_id": 7}, None)
    assert len(tried) == 3
    assert tried[1] - tried[0] >= 1.0 and tried[2] - tried[1] >= 1.0


# ---------------------------------------------------------------------- the throttle


def test_a_registered_person_gets_a_burst_then_one_a_second_and_one_warning() -> None:
    clock = Ticking()
    throttle = Throttle(clock)
    throttle.learn(1, registered=True)
    verdicts = [throttle.admit(1, 1, group=False) for _ in range(300)]
    assert verdicts.count(Verdict.GO) == 5
    assert verdicts.count(Verdict.WARN) == 1  # one "slow down" line for the whole flood
    clock.now += 1.0
    assert throttle.admit(1, 1, group=False) is Verdict.GO
    # Somebody else is not affected at all.
    throttle.learn(2, registered=True)
    assert throttle.admit(2, 2, group=False) is Verdict.GO


def test_a_stranger_has_a_small_budget_and_is_never_warned() -> None:
    clock = Ticking()
    throttle = Throttle(clock)
    verdicts = []
    for _ in range(32):  # two a second for 16 s
        verdicts.append(throttle.admit(9, 9, group=False))
        clock.now += 0.5
    assert Verdict.WARN not in verdicts
    assert verdicts.count(Verdict.GO) == 3
    # ...and of what was handled, one refusal is answered every few minutes.
    answered = [throttle.answer_stranger(9, 9, group=False) for _ in range(3)]
    assert answered == [True, False, False]
    clock.now += 300
    assert throttle.answer_stranger(9, 9, group=False)


def test_a_group_member_without_a_role_is_answered_once() -> None:
    clock = Ticking()
    throttle = Throttle(clock)
    answered = []
    for _ in range(60):
        answered.append(throttle.answer_stranger(9, -100, group=True))
        clock.now += 1.0
    assert answered.count(True) == 1


def test_a_group_has_its_own_budget() -> None:
    clock = Ticking()
    throttle = Throttle(clock, group=Budget(burst=4, every=10.0))
    for member in range(1, 10):
        throttle.learn(member, registered=True)
    verdicts = [throttle.admit(member, -100, group=True) for member in range(1, 10)]
    assert verdicts.count(Verdict.GO) == 4
    assert throttle.admit(1, 1, group=False) is Verdict.GO  # their private chats are theirs
