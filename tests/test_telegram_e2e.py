"""The Telegram bot, end to end: the real engine and python-telegram-bot's real HTTP stack,
talking to a stand-in Bot API server on 127.0.0.1 (tests/standins/telegram_api.py).

Each test plays a user: it queues an update the way Telegram would deliver it, then waits
for what the bot sends back. The stand-in refuses messages Telegram would refuse (bad
HTML, over 4096 characters), so every reply in every test is also checked for that.
Nothing here reaches the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.adapters.telegram import ASK_HINT, NOT_TEXT, SORRY, STALE_BUTTON, UNKNOWN_COMMAND, run_async
from bot.models import Answer
from bot.ratelimit import RATE_LIMIT_NOTICE
from bot.texts import EXAMPLE_QUESTIONS, FORGET_CONFIRMATION, FORGET_NOTHING
from tests.standins.telegram_api import MAX_MESSAGE_LENGTH, TelegramStandIn, visible_text, html_problem

# PTB's own RetryAfter reads its deprecated int `retry_after` while being built (v22.2+).
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789" + ":" + "AAFakeTokenForTests-onlyXyZ0123456789ab"  # shaped like a real one; reaches nothing
LINKEDIN_QUESTION = "How do I stop LinkedIn using my data to train AI?"

_ids = itertools.count(1)


def fresh_user() -> int:
    """A user (and private chat) no other test has used: conversation state never carries over."""
    return 500_000 + next(_ids)


def fresh_group() -> int:
    return -1_000_000_000_000 - next(_ids)


@contextlib.asynccontextmanager
async def running_bot(engine: Any, **settings_changes: Any) -> AsyncIterator[TelegramStandIn]:
    """The stand-in server plus the bot polling it (via run_async, as `serve` runs it)."""
    telegram = TelegramStandIn(TOKEN)
    await telegram.start()
    settings = engine.settings.model_copy(
        update={"telegram_bot_token": SecretStr(TOKEN), "telegram_api_base_url": telegram.base_url, **settings_changes}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_async(settings, engine, stop))
    try:
        await telegram.wait_for(lambda: telegram.calls_to("getUpdates") or task.done(), timeout=60)
        if task.done():
            task.result()  # start-up failed: show why
        yield telegram
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await telegram.close()
    refused = [(c.method, c.params.get("text", "")[:200]) for c in telegram.calls if c.status == 400]
    assert not refused, f"Telegram would have refused: {refused}"


@pytest.fixture
async def telegram(engine) -> AsyncIterator[TelegramStandIn]:
    async with running_bot(engine) as standin:
        yield standin


class EngineWith:
    """The real engine with its `answer` replaced, for situations the real one never produces."""

    def __init__(self, engine: Any, answer: Callable[[str, str], Awaitable[Answer]]) -> None:
        self._engine = engine
        self.answer = answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


async def say(telegram: TelegramStandIn, chat: int, text: str, expect: int = 1, **kwargs: Any) -> list[dict]:
    """Send `text` as the user `chat` (private) or into group `chat`; return the bot's new messages."""
    before = len(telegram.sent_to(chat))
    if chat > 0:
        telegram.private_message(chat, text)
    else:
        telegram.group_message(chat, kwargs.pop("user", 42), text, **kwargs)
    await telegram.wait_for_messages(chat, before + expect)
    return telegram.sent_to(chat)[before:]


async def press(telegram: TelegramStandIn, user: int, message: dict, data: str) -> str | None:
    """Press a button; return the text the bot answered the press with (answerCallbackQuery)."""
    query_id = telegram.press(user, message, data)
    answered = await telegram.wait_for(
        lambda: [c for c in telegram.calls_to("answerCallbackQuery") if c.params["callback_query_id"] == query_id]
    )
    return answered[0].params.get("text")


def buttons(message: dict) -> dict[str, str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {button["text"]: button["callback_data"] for row in rows for button in row}


def shown(message: dict) -> str:
    """The text as the user sees it (markup applied)."""
    return visible_text(message["text"])


def links(message: dict) -> dict[str, str]:
    """Link text -> URL, e.g. {"[1]": "https://..."}."""
    return {text: url.replace("&amp;", "&") for url, text in re.findall(r'<a href="([^"]*)">([^<]*)</a>', message["text"])}


# --- start-up and commands ---------------------------------------------------------


async def test_at_start_up_the_bot_registers_its_commands_and_asks_for_messages_and_button_presses(telegram):
    assert telegram.calls_to("getMe"), "the username for @mentions comes from getMe"
    commands = {c["command"]: c["description"] for c in telegram.commands}
    assert set(commands) == {"start", "help", "ask", "optout", "sources", "forget", "privacy"}
    assert all(description.strip() for description in commands.values())
    assert telegram.calls_to("setMyDescription") and telegram.calls_to("setMyShortDescription")
    allowed = telegram.calls_to("getUpdates")[-1].params["allowed_updates"]
    assert {"message", "callback_query"} <= set(allowed)


async def test_start_says_what_the_bot_does_with_three_example_questions(telegram):
    [reply] = await say(telegram, fresh_user(), "/start")
    assert reply["parse_mode"] == "HTML"
    for question in EXAMPLE_QUESTIONS:
        assert question in shown(reply)


async def test_help_lists_the_commands(telegram):
    [reply] = await say(telegram, fresh_user(), "/help")
    for command in ("/ask <question>", "/optout <platform>", "/sources", "/forget", "/privacy"):
        assert command in shown(reply)


async def test_privacy_says_what_is_stored_and_for_how_long(telegram, engine):
    [reply] = await say(telegram, fresh_user(), "/privacy")
    assert f"{engine.settings.conversation_ttl_seconds // 60} minutes" in shown(reply)
    assert "/forget" in shown(reply)


async def test_sources_says_what_the_bot_knows_and_how_current_it_is(telegram, engine):
    [reply] = await say(telegram, fresh_user(), "/sources")
    assert engine.sources_summary().body[:60] in shown(reply)


# --- questions ---------------------------------------------------------------------


async def test_a_private_question_gets_a_cited_answer_with_buttons(telegram, engine):
    user = fresh_user()
    [reply] = await say(telegram, user, LINKEDIN_QUESTION)
    expected = await engine.answer(f"expected-{user}", LINKEDIN_QUESTION)
    assert expected.citations, "the engine cites LinkedIn opt-out answers"
    assert reply["parse_mode"] == "HTML"
    assert reply["link_preview_options"] == {"is_disabled": True}
    cited = links(reply)
    for c in expected.citations:
        if f"[{c.n}]" in expected.body:
            assert cited[f"[{c.n}]"] == c.url  # numbered links to the sources
        assert " ".join(c.title.split())[:40] in shown(reply)  # the short source list
    assert set(buttons(reply)) == {"Sources", "👍", "👎"}
    typing = [c for c in telegram.calls_to("sendChatAction") if c.params["chat_id"] == user]
    assert typing and typing[0].params["action"] == "typing"
    assert telegram.calls.index(typing[0]) < telegram.calls.index(telegram.calls_to("sendMessage")[-1])


async def test_a_follow_up_continues_the_conversation_and_forget_clears_it(telegram):
    user = fresh_user()
    await say(telegram, user, LINKEDIN_QUESTION)
    [phone] = await say(telegram, user, "what about on my phone?")
    assert re.search(r"\bapp\b", shown(phone)) and "LinkedIn" in shown(phone)  # the app's path

    [forgot] = await say(telegram, user, "/forget")
    assert shown(forgot) == FORGET_CONFIRMATION
    [again] = await say(telegram, user, "/forget")
    assert shown(again) == FORGET_NOTHING
    [fresh] = await say(telegram, user, "what about on my phone?")
    assert shown(fresh) != shown(phone), "after /forget the follow-up has nothing to follow"


async def test_ask_without_a_question_explains_how_to_ask(telegram):
    [reply] = await say(telegram, fresh_user(), "/ask")
    assert shown(reply) == ASK_HINT


async def test_a_sticker_gets_a_request_for_text(telegram):
    user = fresh_user()
    telegram.private_sticker(user)
    [reply] = await telegram.wait_for_messages(user)
    assert shown(reply) == NOT_TEXT


async def test_an_unknown_command_points_to_help(telegram):
    [reply] = await say(telegram, fresh_user(), "/weather")
    assert shown(reply) == UNKNOWN_COMMAND


# --- /optout -------------------------------------------------------------------------


async def test_optout_with_a_platform_gives_its_steps(telegram, engine):
    user = fresh_user()
    [reply] = await say(telegram, user, "/optout LinkedIn")
    expected = await engine.opt_out(f"expected-{user}", "linkedin")
    assert shown(reply).startswith(expected.body[:50])
    assert "Sources" in buttons(reply)


async def test_optout_without_a_platform_offers_a_button_per_platform(telegram, engine):
    user = fresh_user()
    [menu] = await say(telegram, user, "/optout")
    choices = engine.platform_choices()
    assert list(buttons(menu)) == [label for _, label in choices]
    before = len(telegram.sent_to(user))
    assert await press(telegram, user, menu, buttons(menu)[dict(choices)["linkedin"]]) is None
    [steps] = (await telegram.wait_for_messages(user, before + 1))[before:]
    assert links(steps) and "linkedin" in shown(steps).lower()


async def test_optout_with_an_unknown_platform_offers_the_buttons(telegram):
    [menu] = await say(telegram, fresh_user(), "/optout <b>MySpace</b>")
    assert "“<b>MySpace</b>”" in shown(menu)
    assert buttons(menu)


# --- groups ------------------------------------------------------------------------


async def test_in_a_group_the_bot_stays_quiet_unless_addressed(telegram):
    group = fresh_group()
    telegram.group_message(group, 1, LINKEDIN_QUESTION)
    telegram.group_message(group, 1, f"/ask@someotherbot {LINKEDIN_QUESTION}")
    await telegram.settle()
    assert telegram.sent_to(group) == []


async def test_in_a_group_the_bot_answers_a_mention(telegram):
    group = fresh_group()
    [reply] = await say(telegram, group, f"@{telegram.bot_username} {LINKEDIN_QUESTION}")
    assert links(reply) and reply["reply_parameters"]["message_id"], "it replies to the asker's message"


async def test_in_a_group_the_bot_answers_a_reply_to_its_own_message(telegram):
    group = fresh_group()
    [answer] = await say(telegram, group, f"/ask {LINKEDIN_QUESTION}")
    [follow_up] = await say(telegram, group, "what about on my phone?", reply_to=answer)
    assert re.search(r"\bapp\b", shown(follow_up)), "the group's conversation continued"


async def test_in_a_group_the_bot_answers_ask_with_its_name(telegram):
    [reply] = await say(telegram, fresh_group(), f"/ask@{telegram.bot_username} {LINKEDIN_QUESTION}")
    assert links(reply)


# --- buttons -------------------------------------------------------------------------


async def test_the_sources_button_shows_the_quotes_behind_the_answer(telegram, engine):
    user = fresh_user()
    [reply] = await say(telegram, user, LINKEDIN_QUESTION)
    expected = await engine.answer(f"expected-{user}", LINKEDIN_QUESTION)
    before = len(telegram.sent_to(user))
    assert await press(telegram, user, reply, buttons(reply)["Sources"]) is None
    quotes = (await telegram.wait_for_messages(user, before + 1))[before:]
    text = "\n".join(m["text"] for m in quotes)
    assert text.count("<blockquote>") == len(expected.citations)
    first_words = " ".join(expected.citations[0].quote.split()[:6])
    assert first_words in "\n".join(shown(m) for m in quotes)


async def test_thumbs_record_the_topic_and_vote_only_once_per_answer(telegram, engine):
    user = fresh_user()
    [reply] = await say(telegram, user, LINKEDIN_QUESTION)
    topic = (await engine.answer(f"expected-{user}", LINKEDIN_QUESTION)).topic or "none"
    before = await engine.feedback.counts()

    assert await press(telegram, user, reply, buttons(reply)["👍"]) == "Thanks for the feedback!"
    assert await press(telegram, user, reply, buttons(reply)["👎"]) == "Already rated — thank you."

    after = await engine.feedback.counts()
    assert after.get((topic, "up"), 0) == before.get((topic, "up"), 0) + 1
    assert after.get((topic, "down"), 0) == before.get((topic, "down"), 0)
    stored = repr(after)
    assert str(user) not in stored and "LinkedIn using my data" not in stored
    edited = telegram.calls_to("editMessageReplyMarkup")[-1].params["reply_markup"]
    assert [b["text"] for row in edited["inline_keyboard"] for b in row] == ["Sources"]  # thumbs gone


async def test_stale_or_unknown_buttons_are_still_answered(telegram):
    user = fresh_user()
    [reply] = await say(telegram, user, "/start")
    for data in ("s:gone1234", "v:gone1234:up", "o:no-such-platform", "???"):
        assert await press(telegram, user, reply, data) == STALE_BUTTON


# --- rendering through the whole stack ----------------------------------------------


async def test_a_long_answer_arrives_in_several_messages_each_under_the_limit(engine):
    async def long_answer(chat_id: str, text: str) -> Answer:
        real = await engine.answer(chat_id, LINKEDIN_QUESTION)
        return real.model_copy(update={"body": "\n\n".join([real.body] * 40)})

    async with running_bot(EngineWith(engine, long_answer)) as telegram:
        user = fresh_user()
        telegram.private_message(user, LINKEDIN_QUESTION)
        messages = await telegram.wait_for(lambda: [m for m in telegram.sent_to(user) if "reply_markup" in m]
                                           and telegram.sent_to(user))
        assert len(messages) > 1
        for message in messages:
            assert len(message["text"]) <= MAX_MESSAGE_LENGTH
            assert html_problem(message["text"]) is None
        assert [("reply_markup" in m) for m in messages] == [False] * (len(messages) - 1) + [True]


async def test_markup_in_a_question_is_shown_literally_never_interpreted(engine):
    injection = '<b>bold</b> <script>alert("x")</script> Tom & Jerry *stars* _under_ [link](https://x.example)'

    async def echo(chat_id: str, text: str) -> Answer:
        return Answer(text=text, body=f"You asked: {text}", kind="gap", abstained=True)

    async with running_bot(EngineWith(engine, echo)) as telegram:
        [reply] = await say(telegram, fresh_user(), injection)
        assert "<script>" not in reply["text"] and "<b>bold" not in reply["text"]
        assert shown(reply) == f"You asked: {injection}"

    async with running_bot(engine) as telegram:  # and the real engine's answer to it is well formed
        [reply] = await say(telegram, fresh_user(), injection)
        assert html_problem(reply["text"]) is None


# --- faults and load ---------------------------------------------------------------


async def test_a_429_with_retry_after_is_waited_out(telegram):
    telegram.fail_next("sendMessage", status=429, retry_after=1)
    [reply] = await say(telegram, fresh_user(), LINKEDIN_QUESTION)
    assert links(reply)
    assert [c.status for c in telegram.calls_to("sendMessage")][-2:] == [429, 200]


async def test_server_errors_and_dropped_connections_are_retried(telegram):
    user = fresh_user()
    telegram.fail_next("sendMessage", times=2, status=500)
    [reply] = await say(telegram, user, LINKEDIN_QUESTION)
    assert links(reply)

    telegram.drop_next("sendMessage")
    telegram.fail_next("sendChatAction", status=502)
    [reply] = await say(telegram, user, "/help")
    assert "/optout" in shown(reply)

    telegram.fail_next("answerCallbackQuery", status=500)
    assert await press(telegram, user, reply, "s:gone") == STALE_BUTTON


async def test_polling_survives_server_errors_and_slow_answers(telegram):
    telegram.fail_next("getUpdates", times=2, status=500)
    telegram.delay_next("getUpdates", seconds=2)
    telegram.delay_next("sendMessage", seconds=2)
    [reply] = await say(telegram, fresh_user(), "/start")
    assert EXAMPLE_QUESTIONS[0] in shown(reply)
    assert [c.status for c in telegram.calls_to("getUpdates")].count(500) == 2


async def test_a_flood_from_one_user_gets_one_notice_while_others_are_answered(engine):
    async with running_bot(engine, rate_limit_messages=3, rate_limit_window_seconds=600) as telegram:
        flooder, other = fresh_user(), fresh_user()
        for i in range(12):
            telegram.private_message(flooder, f"/help {i}")
        [answer] = await say(telegram, other, "/start")
        assert EXAMPLE_QUESTIONS[0] in shown(answer)
        await telegram.wait_for_messages(flooder, 4)
        await telegram.settle()
        replies = [shown(m) for m in telegram.sent_to(flooder)]
        assert len(replies) == 4
        assert replies.count(RATE_LIMIT_NOTICE) == 1


async def test_thirty_users_at_once_are_all_answered(telegram):
    users = [fresh_user() for _ in range(30)]
    for user in users:
        telegram.private_message(user, LINKEDIN_QUESTION)
    await telegram.wait_for(lambda: all(telegram.sent_to(u) for u in users), timeout=120)
    await telegram.settle()
    assert all(len(telegram.sent_to(u)) == 1 for u in users)  # 30 updates in, 30 answers out
    assert all(links(telegram.sent_to(u)[0]) for u in users)


async def test_a_failure_in_one_update_does_not_affect_the_others(engine):
    async def fragile(chat_id: str, text: str) -> Answer:
        if "explode" in text:
            raise RuntimeError(f"engine failed on: {text}")
        return await engine.answer(chat_id, text)

    async with running_bot(EngineWith(engine, fragile)) as telegram:
        unlucky, lucky = fresh_user(), fresh_user()
        telegram.private_message(unlucky, "please explode")
        [answer] = await say(telegram, lucky, LINKEDIN_QUESTION)
        assert links(answer)
        [sorry] = await telegram.wait_for_messages(unlucky)
        assert shown(sorry) == SORRY
        [later] = await say(telegram, unlucky, LINKEDIN_QUESTION)
        assert links(later)


async def test_logs_contain_neither_the_token_nor_what_users_wrote(engine, caplog):
    secret_question = "How do I stop LinkedIn using my data, asks zebra-marmalade-42?"

    async def sometimes_fails(chat_id: str, text: str) -> Answer:
        if "crash" in text:
            raise ValueError(f"could not answer {text}")
        return await engine.answer(chat_id, text)

    caplog.set_level(logging.INFO)
    async with running_bot(EngineWith(engine, sometimes_fails)) as telegram:
        user, group = fresh_user(), fresh_group()
        telegram.fail_next("sendMessage", status=500)
        telegram.fail_next("getUpdates", status=500)
        [reply] = await say(telegram, user, secret_question)
        await press(telegram, user, reply, buttons(reply)["Sources"])
        await press(telegram, user, reply, buttons(reply)["👍"])
        await say(telegram, group, f"@{telegram.bot_username} {secret_question}")
        await say(telegram, user, f"crash {secret_question}")

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logs = "\n".join(formatter.format(r) for r in caplog.records if not r.name.startswith("aiohttp"))
    assert "handled chat_type=private command=question topic=" in logs  # the logs did capture the bot
    assert "update failed: ValueError" in logs
    assert "fetching updates failed (NetworkError)" in logs and "Traceback" not in logs  # one line, no dump
    assert TOKEN not in logs and TOKEN.split(":")[1] not in logs
    assert "zebra-marmalade" not in logs


# --- the real process ----------------------------------------------------------------


def _process_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "DISCORD_"))}
    return env | {"PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO", **extra}


@contextlib.asynccontextmanager
async def bot_process(env: dict[str, str], workdir: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, Path]]:
    """`python -m bot telegram` as a separate process; stopped with SIGTERM, as a service manager would."""
    log = workdir / "stderr.log"
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "telegram", cwd=workdir, env=env,  # cwd: no developer .env
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err,
        )
        try:
            yield process, log
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)


async def test_python_m_bot_telegram_answers_through_the_stand_in(engine, tmp_path):
    # `engine` is requested so the index cache is built before the process starts.
    telegram = TelegramStandIn(TOKEN)
    await telegram.start()
    env = _process_env(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=telegram.base_url)
    try:
        async with bot_process(env, tmp_path) as (process, log):
            await telegram.wait_for(lambda: telegram.calls_to("getUpdates") or process.returncode is not None, 180)
            assert process.returncode is None, log.read_text()
            [reply] = await say(telegram, fresh_user(), LINKEDIN_QUESTION)
            assert links(reply) and reply["parse_mode"] == "HTML"
    finally:
        await telegram.close()
    output = log.read_text()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert TOKEN.split(":")[1] not in output and "LinkedIn using my data" not in output


async def test_with_a_webhook_url_updates_arrive_by_webhook(engine, tmp_path):
    telegram = TelegramStandIn(TOKEN)
    await telegram.start()
    port = _free_port()
    hook = f"http://127.0.0.1:{port}/telegram-hook"
    env = _process_env(
        TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=telegram.base_url, TELEGRAM_WEBHOOK_URL=hook,
        TELEGRAM_WEBHOOK_LISTEN="127.0.0.1", TELEGRAM_WEBHOOK_PORT=str(port), TELEGRAM_WEBHOOK_SECRET="s3cret-hook",
    )
    try:
        async with bot_process(env, tmp_path) as (process, log):
            await telegram.wait_for(lambda: telegram.calls_to("setWebhook") or process.returncode is not None, 180)
            assert process.returncode is None, log.read_text()
            registered = telegram.calls_to("setWebhook")[0].params
            assert registered["url"] == hook and registered["secret_token"] == "s3cret-hook"
            assert {"message", "callback_query"} <= set(registered["allowed_updates"])

            user = fresh_user()
            update = telegram.private_update(user, LINKEDIN_QUESTION)
            assert await _post_update(hook, update, secret="wrong") == 403  # strangers can't post updates
            assert await _post_update(hook, update, secret="s3cret-hook") == 200
            [reply] = await telegram.wait_for_messages(user)
            assert links(reply)
    finally:
        await telegram.close()
    assert not telegram.calls_to("getUpdates")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _post_update(url: str, update: dict, secret: str) -> int:
    """POST an update as Telegram would, waiting for the webhook server to come up."""
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as response:
                    return response.status
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.2)
    raise TimeoutError(f"nothing listening at {url}")


async def test_without_a_token_the_bot_says_so_and_exits_with_status_2(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "telegram", cwd=tmp_path, env=_process_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in err.decode() and "Traceback" not in err.decode()
