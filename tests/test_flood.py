"""Floods: one user hammering the bot gets one polite notice, and nobody else notices.

The rate limiter alone, on a fake clock, then the whole Telegram bot (the real engine and
python-telegram-bot's HTTP stack against the stand-in Bot API): a 100-message flood from
one user while others ask, and 200 users asking at once — every update in gets its reply out.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.ratelimit import RATE_LIMIT_NOTICE, RateLimiter, Verdict
from bot.render.telegram import render_answer
from tests.test_telegram_e2e import fresh_user, links, running_bot, shown

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

# Questions people ask (tests/eval/cases.yaml), each answered with sources in one message.
QUESTIONS = [
    "How do I opt out of LinkedIn using my data to train AI?",
    "Does Facebook train on my posts?",
    "When does LinkedIn start training AI on my data?",
    "How do I stop ChatGPT training on my chats?",
    "Does Reddit sell my posts for AI training?",
    "Are my LinkedIn private messages used to train AI?",
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- The rate limiter ---------------------------------------------------------------------------


def test_a_hundred_messages_in_ten_seconds_get_eight_answers_then_one_notice_then_silence():
    clock = FakeClock()
    limiter = RateLimiter(max_messages=8, window_seconds=10, clock=clock)  # the default limit
    verdicts = []
    for i in range(100):  # one message every 0.1 s
        verdicts.append(limiter.check("flooder"))
        assert limiter.check(f"someone-else-{i % 50}") is Verdict.ALLOWED, "other users are unaffected"
        clock.advance(0.1)

    assert verdicts[:8] == [Verdict.ALLOWED] * 8
    assert verdicts[8] is Verdict.NOTIFY
    assert verdicts[9:] == [Verdict.DROP] * 91


def test_once_the_window_has_passed_the_user_is_answered_again_and_a_new_flood_gets_a_new_notice():
    clock = FakeClock()
    limiter = RateLimiter(max_messages=8, window_seconds=10, clock=clock)
    for _ in range(20):
        limiter.check("flooder")
    assert 9 < limiter.retry_after("flooder") <= 10, "the notice can say how long to wait"

    clock.advance(10.01)
    assert limiter.retry_after("flooder") == 0
    second_flood = [limiter.check("flooder") for _ in range(20)]
    assert second_flood.count(Verdict.ALLOWED) == 8 and second_flood.count(Verdict.NOTIFY) == 1


def test_a_steady_user_within_the_limit_is_never_held_back():
    clock = FakeClock()
    limiter = RateLimiter(max_messages=8, window_seconds=10, clock=clock)
    for _ in range(200):  # exactly 8 messages in every 10 seconds
        assert limiter.check("steady") is Verdict.ALLOWED
        clock.advance(1.25)


def test_a_flood_of_new_users_does_not_make_the_limiter_grow_without_bound():
    clock = FakeClock()
    limiter = RateLimiter(max_messages=8, window_seconds=10, clock=clock, max_users=1_000)
    for n in range(20_000):  # 20,000 different users, 100 of them in any 10 seconds
        assert limiter.check(f"user-{n}") is Verdict.ALLOWED
        clock.advance(0.1)
    # The users it tracks (what it holds in memory): at most the cap plus those active within the window.
    assert len(limiter._users) <= 1_000 + 100


# --- Through the Telegram bot -------------------------------------------------------------------


async def test_a_hundred_messages_from_one_user_get_one_polite_notice_while_others_are_answered_as_usual(engine):
    # The default limit of 8 messages; the window is stretched from 10 s to a minute only so a slow
    # machine cannot let it slide while the flood (about two seconds of sending) is still being processed.
    async with running_bot(engine, rate_limit_window_seconds=60) as telegram:
        flooder = fresh_user()
        others = {fresh_user(): question for question in QUESTIONS}
        asking = iter(others.items())
        for burst in range(10):  # 100 messages, ten at a time
            for n in range(10):
                telegram.private_message(flooder, QUESTIONS[(burst + n) % len(QUESTIONS)])
            if burst % 2 == 0 and (other := next(asking, None)):
                telegram.private_message(*other)  # someone else asks in the middle of the flood
            await asyncio.sleep(0.2)
        for other in asking:
            telegram.private_message(*other)

        await telegram.wait_for(lambda: all(telegram.sent_to(user) for user in others), timeout=120)
        await telegram.wait_for_messages(flooder, 9, timeout=120)
        await telegram.settle()

        replies = [shown(message) for message in telegram.sent_to(flooder)]
        assert len(replies) == 9, "eight answers and one notice; the other 91 messages get silence"
        assert replies.count(RATE_LIMIT_NOTICE) == 1
        assert "Please wait" in RATE_LIMIT_NOTICE  # polite, and says what to do
        for user, question in others.items():
            [reply] = telegram.sent_to(user)
            expected = render_answer(await engine.answer(f"unflooded-{user}", question))
            assert reply["text"] == expected[0], "exactly the answer they would get on a quiet day"
            assert links(reply)


async def test_two_hundred_users_at_once_all_get_their_answer(engine):
    async with running_bot(engine) as telegram:
        users = [fresh_user() for _ in range(200)]
        questions = itertools.cycle(QUESTIONS)
        for user in users:
            telegram.private_message(user, next(questions))  # 200 updates in

        await telegram.wait_for(lambda: all(telegram.sent_to(user) for user in users), timeout=600)
        await telegram.settle()  # every update confirmed, and nothing more on its way

        replies = {user: telegram.sent_to(user) for user in users}
        assert sum(len(sent) for sent in replies.values()) == 200, "200 replies out: none lost, none doubled"
        assert all(len(sent) == 1 and links(sent[0]) for sent in replies.values())
        assert all(call.status == 200 for call in telegram.calls_to("sendMessage"))
