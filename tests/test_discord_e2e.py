"""End to end: the real `python -m bot discord` process against a stand-in Discord on 127.0.0.1.

The process logs in over HTTP, syncs its commands, connects to the stand-in's gateway
websocket and answers the interactions dispatched to it — all the way through discord.py,
the adapter, the renderer and the real engine. Nothing reaches the internet.

The tests below run in order against one bot process, like one user session.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot import texts
from bot.adapters import discord as adapter
from tests.standins.discord_api import (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, EPHEMERAL, Call, DiscordStandIn,
                                        User, snowflake)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "e2e-fake-token.not-a-real-one"
QUESTION = "How do I stop LinkedIn using my data to train AI?"
COOLDOWN_LIMIT = 2
START_TIMEOUT = 180  # the process loads the model and the index before logging in


class BotProcess:
    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
async def discord_api() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn(token=TOKEN) as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
async def bot(discord_api: DiscordStandIn, tmp_path_factory: pytest.TempPathFactory,
              engine: Any) -> AsyncIterator[BotProcess]:
    # `engine` first: building it fills the on-disk index cache, which the bot process then loads.
    workdir = tmp_path_factory.mktemp("discord-e2e")  # no developer .env is read from here
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TELEGRAM_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DISCORD_BOT_TOKEN": TOKEN, "DISCORD_API_BASE_URL": discord_api.api_url,
        "RATE_LIMIT_MESSAGES": str(COOLDOWN_LIMIT), "RATE_LIMIT_WINDOW_SECONDS": "3600", "LOG_LEVEL": "INFO",
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    }
    log_path = workdir / "bot.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "discord", cwd=workdir, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file)
    running = BotProcess(process, log_path)
    try:
        exited = asyncio.ensure_future(process.wait())
        connected = asyncio.ensure_future(discord_api.wait_until_connected(timeout=START_TIMEOUT))
        await asyncio.wait({exited, connected}, return_when=asyncio.FIRST_COMPLETED)
        if not connected.done() or connected.exception():
            connected.cancel()
            pytest.fail(f"the bot did not connect to the stand-in; its log:\n{running.log()}")
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def callback(calls: list[Call]) -> dict[str, Any]:
    callbacks = [c for c in calls if c.path.endswith("/callback")]
    assert len(callbacks) == 1, f"acknowledged {len(callbacks)} times"
    return callbacks[0].json


def is_ephemeral(payload: dict[str, Any]) -> bool:
    return bool((payload.get("flags") or 0) & EPHEMERAL)


def answered(calls: list[Call]) -> bool:
    return any(c.method == "PATCH" and c.path.endswith("/messages/@original") for c in calls)


def acknowledged(calls: list[Call]) -> bool:
    return any(c.path.endswith("/callback") for c in calls)


def edit(calls: list[Call]) -> dict[str, Any]:
    return next(c.json for c in calls if c.method == "PATCH" and c.path.endswith("/messages/@original"))


ALICE = User(username="alice")
CHANNEL = snowflake()


async def test_the_bot_logs_in_and_registers_its_commands(bot: BotProcess, discord_api: DiscordStandIn,
                                                          engine: Any) -> None:
    [login] = [c for c in discord_api.calls if c.path == "/users/@me"]
    assert login.authorization == f"Bot {TOKEN}"
    assert any(c.path == "/gateway/bot" for c in discord_api.calls), "the gateway address came from the API"

    [overwrite] = [c for c in discord_api.calls if c.method == "PUT" and c.path.endswith("/commands")]
    assert "/guilds/" not in overwrite.path, "registered globally when no DISCORD_GUILD_ID is set"
    commands = {c["name"]: c for c in overwrite.json}
    assert set(commands) == {"ask", "optout", "sources", "forget", "help", "privacy"}
    assert all(c["description"] for c in commands.values())
    [platform] = commands["optout"]["options"]
    assert [(c["value"], c["name"]) for c in platform["choices"]] == engine.platform_choices()


async def test_ask_is_deferred_then_answered_with_citations(bot: BotProcess, discord_api: DiscordStandIn) -> None:
    interaction = await discord_api.send_command("ask", question=QUESTION, user=ALICE, channel_id=CHANNEL)
    calls = await discord_api.wait_for_calls(interaction, answered, timeout=60)

    assert callback(calls)["type"] == DEFERRED_CHANNEL_MESSAGE
    [embed] = edit(calls)["embeds"]
    assert embed["description"]
    assert any(f["name"] == "Sources" and "**[1]** [" in f["value"] for f in embed["fields"])
    buttons = [b["custom_id"] for row in edit(calls)["components"] for b in row["components"]]
    assert adapter.SOURCES_BUTTON_ID in buttons and adapter.UP_BUTTON_ID in buttons


async def test_sources_and_thumbs_up_under_that_answer(bot: BotProcess, discord_api: DiscordStandIn) -> None:
    [answer_message] = [m for m in discord_api.messages.values() if m["components"]][:1]

    sources = await discord_api.press_button(answer_message, adapter.SOURCES_BUTTON_ID, user=ALICE)
    reply = callback(await discord_api.wait_for_calls(sources, acknowledged, timeout=60))
    assert reply["type"] == CHANNEL_MESSAGE and is_ephemeral(reply["data"])
    assert reply["data"]["embeds"][0]["fields"][0]["value"].startswith("> ")

    thumbs_up = await discord_api.press_button(answer_message, adapter.UP_BUTTON_ID, user=ALICE)
    reply = callback(await discord_api.wait_for_calls(thumbs_up, acknowledged, timeout=60))
    assert reply["type"] == CHANNEL_MESSAGE and is_ephemeral(reply["data"])
    assert "Thanks" in reply["data"]["content"]


async def test_forget_deletes_the_conversation(bot: BotProcess, discord_api: DiscordStandIn) -> None:
    forget = await discord_api.send_command("forget", user=ALICE, channel_id=CHANNEL)
    calls = await discord_api.wait_for_calls(forget, answered, timeout=60)

    assert is_ephemeral(callback(calls)["data"])
    assert edit(calls)["content"] == texts.FORGET_CONFIRMATION


async def test_asking_too_fast_gets_a_private_cooldown_notice(bot: BotProcess, discord_api: DiscordStandIn) -> None:
    bob, channel = User(username="bob"), snowflake()
    for _ in range(COOLDOWN_LIMIT):
        asked = await discord_api.send_command("ask", question=QUESTION, user=bob, channel_id=channel)
        await discord_api.wait_for_calls(asked, answered, timeout=60)

    too_fast = await discord_api.send_command("ask", question=QUESTION, user=bob, channel_id=channel)
    reply = callback(await discord_api.wait_for_calls(too_fast, acknowledged, timeout=60))

    assert reply["type"] == CHANNEL_MESSAGE and is_ephemeral(reply["data"])
    assert "ask again in about" in reply["data"]["content"]


async def test_the_bot_stops_cleanly_and_never_logged_the_token_or_a_question(bot: BotProcess) -> None:
    bot.process.send_signal(signal.SIGTERM)
    status = await asyncio.wait_for(bot.process.wait(), timeout=60)

    log = bot.log()
    assert status == 0, log
    assert "Traceback" not in log
    assert TOKEN not in log
    assert QUESTION not in log and "train AI" not in log
