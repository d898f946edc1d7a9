"""What a Discord user sees from each slash command and button.

The bot runs in this process against the stand-in Discord (tests/standins/discord_api.py):
it logs in, syncs its commands and connects to the stand-in's gateway like it would to
Discord. Each test dispatches INTERACTION_CREATE through that gateway — discord.py's own
interaction path — and checks the HTTP calls the bot made in reply. Answers come from
the real engine; a thin wrapper can only hold an answer back or make one fail on cue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from bot import texts
from bot.adapters import discord as adapter
from bot.render import discord as render
from bot.settings import Settings
from tests.standins.discord_api import (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, EPHEMERAL, Call, DiscordStandIn,
                                        User, snowflake)

QUESTION = "How do I stop LinkedIn using my data to train AI?"
FAILING_QUESTION = "a question the engine will fail on"
COOLDOWN_LIMIT = 3


class Switchboard:
    """The real engine, plus two controls for tests: hold answers back, and fail on cue."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.answering = asyncio.Event()
        self.go_ahead = asyncio.Event()
        self.go_ahead.set()
        self.conversations: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def answer(self, chat_id: str, text: str) -> Any:
        self.conversations.append(chat_id)
        self.answering.set()
        await self.go_ahead.wait()
        if text == FAILING_QUESTION:
            raise RuntimeError("the engine failed")
        return await self._engine.answer(chat_id, text)


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, engine: Any, discord_api: DiscordStandIn) -> AsyncIterator[None]:
    """The Discord bot, connected to the stand-in, for the duration of the block."""
    # The adapter points discord.py (process-wide) at the stand-in; put it back afterwards.
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    stop = asyncio.Event()
    identified = len(discord_api.identifies)
    task = asyncio.create_task(adapter.run_async(settings, engine, stop))
    try:
        await discord_api.wait_until(lambda: len(discord_api.identifies) > identified or task.done(), timeout=60)
        if task.done():
            task.result()  # the bot stopped: show why
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


def bot_settings(discord_api: DiscordStandIn, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"discord_bot_token": discord_api.token, "discord_api_base_url": discord_api.api_url,
                              "discord_guild_id": None, "rate_limit_messages": COOLDOWN_LIMIT,
                              "rate_limit_window_seconds": 3600}
    return Settings(_env_file=None, **(values | overrides))


@pytest.fixture(scope="module")
async def discord_api() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
async def switchboard(engine: Any) -> Switchboard:
    return Switchboard(engine)


@pytest.fixture(scope="module", autouse=True)
async def bot(discord_api: DiscordStandIn, switchboard: Switchboard) -> AsyncIterator[None]:
    async with running_bot(bot_settings(discord_api), switchboard, discord_api):
        yield


# --- Helpers that read the stand-in's record -------------------------------------------------------


def callback(calls: list[Call]) -> dict[str, Any]:
    """The one interaction callback (the acknowledgement) among an interaction's calls."""
    callbacks = [c for c in calls if c.path.endswith("/callback")]
    assert len(callbacks) == 1, f"acknowledged {len(callbacks)} times"
    return callbacks[0].json


def is_ephemeral(payload: dict[str, Any]) -> bool:
    return bool((payload.get("flags") or 0) & EPHEMERAL)


def edits_of_original(calls: list[Call]) -> list[dict[str, Any]]:
    return [c.json for c in calls if c.method == "PATCH" and c.path.endswith("/messages/@original")]


def followups(calls: list[Call]) -> list[dict[str, Any]]:
    return [c.json for c in calls if c.method == "POST" and c.path.startswith("/webhooks/")]


def answered(calls: list[Call]) -> bool:
    return bool(edits_of_original(calls))


def acknowledged(calls: list[Call]) -> bool:
    return any(c.path.endswith("/callback") for c in calls)


async def ask(discord_api: DiscordStandIn, question: str, user: User, channel_id: str) -> list[Call]:
    interaction = await discord_api.send_command("ask", question=question, user=user, channel_id=channel_id)
    return await discord_api.wait_for_calls(interaction, answered)


# --- Start-up ----------------------------------------------------------------------------------


async def test_the_bot_registers_its_six_slash_commands_with_descriptions(discord_api: DiscordStandIn,
                                                                         engine: Any) -> None:
    commands = {c["name"]: c for c in discord_api.commands[None]}  # global: no DISCORD_GUILD_ID

    assert set(commands) == {"ask", "optout", "sources", "forget", "help", "privacy"}
    assert all(c["description"] for c in commands.values())
    [question] = commands["ask"]["options"]
    assert question["name"] == "question" and question["required"]
    [platform] = commands["optout"]["options"]
    assert [(c["value"], c["name"]) for c in platform["choices"]] == engine.platform_choices()


async def test_the_bot_asks_for_no_privileged_intents(discord_api: DiscordStandIn) -> None:
    assert discord_api.identifies[-1]["intents"] == discord.Intents.default().value


# --- /ask ----------------------------------------------------------------------------------------


async def test_ask_is_acknowledged_at_once_then_answered_with_a_cited_embed_and_buttons(
        discord_api: DiscordStandIn) -> None:
    calls = await ask(discord_api, QUESTION, User(), snowflake())

    assert callback(calls)["type"] == DEFERRED_CHANNEL_MESSAGE  # "thinking…", public
    assert not is_ephemeral(callback(calls).get("data") or {})
    assert calls[0].path.endswith("/callback"), "the acknowledgement comes before anything else"
    [answer] = edits_of_original(calls)
    [embed] = answer["embeds"]
    assert embed["description"]
    sources = [f for f in embed["fields"] if f["name"].startswith("Sources")]
    assert sources and "**[1]** [" in sources[0]["value"], "numbered, linked sources"
    assert "ref " in embed["footer"]["text"]
    buttons = [b["custom_id"] for row in answer["components"] for b in row["components"]]
    assert buttons == [adapter.SOURCES_BUTTON_ID, adapter.UP_BUTTON_ID, adapter.DOWN_BUTTON_ID]
    assert answer["allowed_mentions"] == {"parse": []}, "an answer never pings anyone"


async def test_ask_is_acknowledged_even_while_the_engine_is_busy(discord_api: DiscordStandIn,
                                                                 switchboard: Switchboard) -> None:
    switchboard.go_ahead.clear()
    switchboard.answering.clear()
    try:
        interaction = await discord_api.send_command("ask", question=QUESTION, user=User(), channel_id=snowflake())
        calls = await discord_api.wait_for_calls(interaction, acknowledged)
        await asyncio.wait_for(switchboard.answering.wait(), timeout=30)

        assert callback(calls)["type"] == DEFERRED_CHANNEL_MESSAGE
        assert not answered(discord_api.calls_for(interaction)), "the engine has not answered yet"
    finally:
        switchboard.go_ahead.set()
    await discord_api.wait_for_calls(interaction, answered)


async def test_consecutive_questions_by_one_user_in_one_channel_are_one_conversation(
        discord_api: DiscordStandIn, switchboard: Switchboard) -> None:
    alice, bob, channel, other_channel = User(), User(username="bob"), snowflake(), snowflake()
    start = len(switchboard.conversations)

    await ask(discord_api, QUESTION, alice, channel)
    await ask(discord_api, "what about on my phone?", alice, channel)
    await ask(discord_api, "what about on my phone?", bob, channel)
    await ask(discord_api, "what about on my phone?", alice, other_channel)

    first, follow_up, bobs, elsewhere = switchboard.conversations[start:]
    assert follow_up == first, "Alice's follow-up continues her conversation"
    assert bobs != first, "Bob in the same channel has his own conversation"
    assert elsewhere != first, "Alice in another channel starts afresh"


async def test_ask_works_in_a_direct_message_too(discord_api: DiscordStandIn) -> None:
    interaction = await discord_api.send_command("ask", question=QUESTION, user=User(), in_guild=False)
    calls = await discord_api.wait_for_calls(interaction, answered)

    assert callback(calls)["type"] == DEFERRED_CHANNEL_MESSAGE
    assert edits_of_original(calls)[0]["embeds"]


# --- Buttons -----------------------------------------------------------------------------------


async def test_the_sources_button_shows_the_quotes_privately(discord_api: DiscordStandIn) -> None:
    asked = await discord_api.send_command("ask", question=QUESTION, user=User(), channel_id=snowflake())
    await discord_api.wait_for_calls(asked, answered)

    press = await discord_api.press_button(discord_api.original_message(asked), adapter.SOURCES_BUTTON_ID)
    calls = await discord_api.wait_for_calls(press, acknowledged)

    reply = callback(calls)
    assert reply["type"] == CHANNEL_MESSAGE and is_ephemeral(reply["data"])
    quotes = reply["data"]["embeds"][0]["fields"]
    assert quotes and quotes[0]["name"].startswith("[1] ")
    assert quotes[0]["value"].startswith("> "), "each source with its quote"


async def test_thumbs_up_and_down_record_anonymous_feedback(discord_api: DiscordStandIn, engine: Any) -> None:
    asked = await discord_api.send_command("ask", question=QUESTION, user=User(), channel_id=snowflake())
    await discord_api.wait_for_calls(asked, answered)
    message = discord_api.original_message(asked)
    before = await engine.feedback.counts()

    for button in (adapter.UP_BUTTON_ID, adapter.DOWN_BUTTON_ID):
        press = await discord_api.press_button(message, button)
        reply = callback(await discord_api.wait_for_calls(press, acknowledged))
        assert reply["type"] == CHANNEL_MESSAGE and is_ephemeral(reply["data"])
        assert "Thanks" in reply["data"]["content"]

    after = await engine.feedback.counts()
    assert sum(after.values()) - sum(before.values()) == 2
    assert all(isinstance(key, tuple) and len(key) == 2 for key in after), "only (topic, vote) is kept"


async def test_the_buttons_still_answer_after_a_restart(engine: Any) -> None:
    # A separate stand-in and two bot lifetimes: the second one never saw the answer.
    async with DiscordStandIn() as discord_api:
        async with running_bot(bot_settings(discord_api), engine, discord_api):
            asked = await discord_api.send_command("ask", question=QUESTION, user=User(), channel_id=snowflake())
            await discord_api.wait_for_calls(asked, answered)
        message = discord_api.original_message(asked)

        async with running_bot(bot_settings(discord_api), engine, discord_api):
            sources = await discord_api.press_button(message, adapter.SOURCES_BUTTON_ID)
            vote = await discord_api.press_button(message, adapter.UP_BUTTON_ID)
            sources_reply = callback(await discord_api.wait_for_calls(sources, acknowledged))
            vote_reply = callback(await discord_api.wait_for_calls(vote, acknowledged))

    assert is_ephemeral(sources_reply["data"])
    assert "no longer available" in sources_reply["data"]["content"]
    assert "/sources" in sources_reply["data"]["content"]
    assert "Thanks" in vote_reply["data"]["content"]


# --- The other commands ---------------------------------------------------------------------------


async def test_forget_clears_the_conversation_and_says_so_privately(discord_api: DiscordStandIn) -> None:
    user, channel = User(), snowflake()
    await ask(discord_api, QUESTION, user, channel)

    replies = []
    for _ in range(2):
        forget = await discord_api.send_command("forget", user=user, channel_id=channel)
        calls = await discord_api.wait_for_calls(forget, answered)
        assert callback(calls)["type"] == DEFERRED_CHANNEL_MESSAGE and is_ephemeral(callback(calls)["data"])
        replies.append(edits_of_original(calls)[0]["content"])

    assert replies == [texts.FORGET_CONFIRMATION, texts.FORGET_NOTHING]


async def test_optout_answers_with_the_steps_for_the_chosen_platform(discord_api: DiscordStandIn,
                                                                     engine: Any) -> None:
    platform_id, _name = engine.platform_choices()[0]
    interaction = await discord_api.send_command("optout", platform=platform_id, user=User(), channel_id=snowflake())
    calls = await discord_api.wait_for_calls(interaction, answered)

    assert callback(calls)["type"] == DEFERRED_CHANNEL_MESSAGE
    [embed] = edits_of_original(calls)[0]["embeds"]
    assert embed["description"]


@pytest.mark.parametrize("command, expected", [
    ("help", texts.help_text("/").splitlines()[-1]),
    ("privacy", "What I store about you"),
])
async def test_help_and_privacy_answer_privately_with_the_shared_texts(discord_api: DiscordStandIn, command: str,
                                                                       expected: str) -> None:
    interaction = await discord_api.send_command(command, user=User(), channel_id=snowflake())
    reply = callback(await discord_api.wait_for_calls(interaction, acknowledged))

    assert reply["type"] == CHANNEL_MESSAGE and is_ephemeral(reply["data"])
    assert expected in reply["data"]["content"]


async def test_sources_describes_the_knowledge_privately(discord_api: DiscordStandIn, engine: Any) -> None:
    interaction = await discord_api.send_command("sources", user=User(), channel_id=snowflake())
    reply = callback(await discord_api.wait_for_calls(interaction, acknowledged))

    assert reply["type"] == CHANNEL_MESSAGE and is_ephemeral(reply["data"])
    [embed] = reply["data"]["embeds"]
    assert embed["description"].startswith(render.escape(engine.sources_summary().body)[:80])


# --- Limits and failures -------------------------------------------------------------------------


async def test_a_user_who_asks_too_fast_is_told_privately_to_wait(discord_api: DiscordStandIn,
                                                                  switchboard: Switchboard) -> None:
    user, channel = User(), snowflake()
    for _ in range(COOLDOWN_LIMIT):
        await ask(discord_api, QUESTION, user, channel)
    asked_engine = len(switchboard.conversations)

    too_fast = await discord_api.send_command("ask", question=QUESTION, user=user, channel_id=channel)
    reply = callback(await discord_api.wait_for_calls(too_fast, acknowledged))

    assert reply["type"] == CHANNEL_MESSAGE and is_ephemeral(reply["data"])
    assert "ask again in about" in reply["data"]["content"]
    assert len(switchboard.conversations) == asked_engine, "the engine is spared"
    # Someone else in the same channel is not slowed down.
    await ask(discord_api, QUESTION, User(), channel)


async def test_a_failure_is_reported_privately_logged_without_text_and_harms_no_one_else(
        discord_api: DiscordStandIn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    failing = await discord_api.send_command("ask", question=FAILING_QUESTION, user=User(), channel_id=snowflake())
    fine = await discord_api.send_command("ask", question=QUESTION, user=User(), channel_id=snowflake())

    failed_calls = await discord_api.wait_for_calls(failing, lambda calls: followups(calls))
    fine_calls = await discord_api.wait_for_calls(fine, answered)

    assert callback(failed_calls)["type"] == DEFERRED_CHANNEL_MESSAGE
    assert any(c.method == "DELETE" for c in failed_calls), "the public 'thinking…' is removed"
    [notice] = followups(failed_calls)
    assert is_ephemeral(notice) and "something went wrong" in notice["content"]
    assert edits_of_original(fine_calls)[0]["embeds"], "the other user still got an answer"
    assert "RuntimeError" in caplog.text
    assert FAILING_QUESTION not in caplog.text and QUESTION not in caplog.text
    assert discord_api.token not in caplog.text


async def test_commands_sync_to_one_server_at_once_when_a_guild_is_set(engine: Any) -> None:
    async with DiscordStandIn() as discord_api:
        guild_id = int(discord_api.guild_id)
        async with running_bot(bot_settings(discord_api, discord_guild_id=guild_id), engine, discord_api):
            pass

    assert None not in discord_api.commands, "nothing registered globally"
    assert {c["name"] for c in discord_api.commands[str(guild_id)]} == {
        "ask", "optout", "sources", "forget", "help", "privacy"}


def test_without_a_token_the_bot_explains_and_exits_with_status_2(capsys: pytest.CaptureFixture[str],
                                                                   engine: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        adapter.run(Settings(_env_file=None, discord_bot_token=None), engine)

    assert exit_info.value.code == 2
    assert "DISCORD_BOT_TOKEN is not set" in capsys.readouterr().err
