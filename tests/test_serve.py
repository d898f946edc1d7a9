"""`python -m bot serve`, the README's run command: every front end whose token is set, in one
process and one event loop; the console chat when none is; a clean stop on SIGINT or SIGTERM;
and a non-zero exit, never a hang, when a front end can't start.

The front ends talk to the stand-in Telegram and Discord APIs on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from bot.serve import front_ends_to_run, run_front_ends
from bot.settings import Settings
from tests.bot_process import ROOT, bot_process, free_port, process_env
from tests.standins.discord_api import DiscordStandIn, User
from tests.standins.telegram_api import TelegramStandIn

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

TELEGRAM_TOKEN = "123456789" + ":" + "AAServeTestTokenXyZ0123456789abcdefg"  # parts: no token literal committed
WRONG_TOKEN = "123456789:AAWrongTokenWrongTokenWrongToken12"
DISCORD_TOKEN = "serve-test-discord-token"
QUESTION = "How do I stop LinkedIn using my data to train AI?"


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramStandIn]:
    standin = TelegramStandIn(TELEGRAM_TOKEN)
    await standin.start()
    yield standin
    await standin.close()


@pytest.fixture
async def discord_api() -> AsyncIterator[DiscordStandIn]:
    async with DiscordStandIn(token=DISCORD_TOKEN) as standin:
        yield standin


def with_both(settings: Settings, telegram: TelegramStandIn, discord_api: DiscordStandIn, **changes: Any) -> Settings:
    return settings.model_copy(update={
        "telegram_bot_token": SecretStr(TELEGRAM_TOKEN), "telegram_api_base_url": telegram.base_url,
        "discord_bot_token": SecretStr(DISCORD_TOKEN), "discord_api_base_url": discord_api.api_url, **changes})


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


def total(metrics: str, name: str, *label_parts: str) -> float:
    """The sum of the samples of `name` whose labels contain every one of `label_parts`."""
    values = []
    for line in metrics.splitlines():
        series, _, value = line.rpartition(" ")
        if (series == name or series.startswith(name + "{")) and all(part in series for part in label_parts):
            values.append(float(value))
    return sum(values)


async def ask_discord(discord_api: DiscordStandIn, question: str) -> None:
    asked = await discord_api.send_command("ask", question=question, user=User(username="ann"))
    await discord_api.wait_for_calls(asked, lambda calls: any(c.method == "PATCH" for c in calls), 60)


def front_end_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() in ("telegram", "discord")]


# --- which front ends ------------------------------------------------------------------------------


def test_a_front_end_runs_when_its_token_is_set_and_an_empty_token_counts_as_unset() -> None:
    def names(**tokens: str) -> list[str]:
        return front_ends_to_run(Settings(_env_file=None, **tokens))

    assert names() == []
    assert names(telegram_bot_token="", discord_bot_token="   ") == []
    assert names(telegram_bot_token="1:abc") == ["telegram"]
    assert names(discord_bot_token="xyz") == ["discord"]
    assert names(telegram_bot_token="1:abc", discord_bot_token="xyz") == ["telegram", "discord"]


# --- one loop, both bots (in this process, with the session's engine) ------------------------------


async def test_both_bots_answer_from_one_loop_with_health_and_metrics_and_stop_on_ctrl_c(
        engine, settings, telegram, discord_api) -> None:
    port = free_port()
    serving = asyncio.create_task(run_front_ends(with_both(settings, telegram, discord_api, metrics_port=port),
                                                 engine, ["telegram", "discord"]))
    await telegram.wait_for(lambda: telegram.calls_to("getUpdates") or serving.done(), 60)
    await discord_api.wait_until_connected(timeout=60)
    _, before = await get(f"http://127.0.0.1:{port}/metrics")

    telegram.private_message(600_001, QUESTION)
    [answer] = await telegram.wait_for_messages(600_001, 1, timeout=60)
    thumbs_up = answer["reply_markup"]["inline_keyboard"][0][-2]["callback_data"]  # [Sources,] 👍, 👎
    telegram.press(600_001, answer, thumbs_up)
    await telegram.wait_for(lambda: telegram.calls_to("answerCallbackQuery"), 60)
    await ask_discord(discord_api, QUESTION)

    status, health = await get(f"http://127.0.0.1:{port}/healthz")
    assert status == 200
    assert '"status": "ok"' in health and '"front_ends": ["telegram", "discord"]' in health
    _, after = await get(f"http://127.0.0.1:{port}/metrics")
    for name, labels in [("bot_answers_total", ['kind="answer"']), ("bot_answer_seconds_count", [])]:
        assert total(after, name, *labels) - total(before, name, *labels) == 2, name
    assert total(after, "bot_feedback_votes_total", 'vote="up"') - total(before, "bot_feedback_votes_total",
                                                                        'vote="up"') == 1

    os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would
    assert await asyncio.wait_for(serving, 60) == 0
    assert not front_end_tasks()
    with pytest.raises(aiohttp.ClientConnectionError):  # the endpoint went away with the bots
        await get(f"http://127.0.0.1:{port}/healthz")


async def test_a_rejected_token_stops_the_other_bot_and_exits_with_status_2(
        engine, settings, telegram, discord_api, caplog) -> None:
    caplog.set_level(logging.INFO)
    wrong = with_both(settings, telegram, discord_api, telegram_bot_token=SecretStr(WRONG_TOKEN))
    status = await asyncio.wait_for(run_front_ends(wrong, engine, ["telegram", "discord"]), 90)

    assert status == 2
    assert "Telegram rejected TELEGRAM_BOT_TOKEN" in caplog.text
    assert WRONG_TOKEN.split(":")[1] not in caplog.text and "Traceback" not in caplog.text
    assert not front_end_tasks()


async def test_an_api_that_cannot_be_reached_is_a_failure_not_a_hang(engine, settings, caplog) -> None:
    caplog.set_level(logging.INFO)
    nowhere = f"http://127.0.0.1:{free_port()}/bot"  # nothing listens there
    unreachable = settings.model_copy(update={"telegram_bot_token": SecretStr(TELEGRAM_TOKEN),
                                              "telegram_api_base_url": nowhere})
    status = await asyncio.wait_for(run_front_ends(unreachable, engine, ["telegram"]), 120)

    assert status == 1
    assert "telegram failed with NetworkError" in caplog.text
    assert TELEGRAM_TOKEN.split(":")[1] not in caplog.text


async def test_a_taken_metrics_port_is_reported_and_no_bot_starts(engine, settings, telegram, caplog) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = settings.model_copy(update={"telegram_bot_token": SecretStr(TELEGRAM_TOKEN),
                                           "telegram_api_base_url": telegram.base_url, "metrics_port": port})
        status = await asyncio.wait_for(run_front_ends(busy, engine, ["telegram"]), 60)

    assert status == 1
    assert f"cannot serve /healthz and /metrics on 127.0.0.1:{port}" in caplog.text
    assert not telegram.calls


# --- the real process -----------------------------------------------------------------------------


async def test_python_m_bot_with_no_token_set_is_the_console_chat(engine, tmp_path: Path) -> None:
    env = process_env(tmp_path, TELEGRAM_BOT_TOKEN="", DISCORD_BOT_TOKEN=" ")  # empty counts as unset
    async with bot_process([], env, tmp_path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE) as bot:
        out, _ = await asyncio.wait_for(bot.process.communicate(f"{QUESTION}\n/quit\n".encode()), 180)

    assert bot.process.returncode == 0, bot.log()
    assert "starting the console chat" in bot.log()
    assert "bot> " in out.decode() and "linkedin.com" in out.decode().lower()


def run_healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The Dockerfile's HEALTHCHECK command, run as Docker runs it (exec or shell form), with this venv's python."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    line = next(line for line in dockerfile.splitlines() if line.startswith("HEALTHCHECK"))
    command = line.split(" CMD ", 1)[1].strip()
    argv = json.loads(command) if command.startswith("[") else ["sh", "-c", command]
    env = env | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    return subprocess.run(argv, check=False, env=env, capture_output=True, timeout=30)


async def test_python_m_bot_serve_runs_both_bots_passes_the_image_healthcheck_and_stops_on_sigterm(
        engine, tmp_path: Path, telegram, discord_api) -> None:
    env = process_env(tmp_path, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_BASE_URL=telegram.base_url,
                      DISCORD_BOT_TOKEN=DISCORD_TOKEN, DISCORD_API_BASE_URL=discord_api.api_url,
                      METRICS_PORT=str(free_port()))
    async with bot_process(["serve"], env, tmp_path) as bot:
        await bot.until(telegram.wait_for(lambda: telegram.calls_to("getUpdates"), 180), "Telegram polling")
        await bot.until(discord_api.wait_until_connected(timeout=180), "Discord connected")
        telegram.private_message(600_002, QUESTION)
        await telegram.wait_for_messages(600_002, 1, timeout=60)
        await ask_discord(discord_api, QUESTION)

        check = await asyncio.to_thread(run_healthcheck, env)
        assert check.returncode == 0, check.stderr.decode()
        status = await bot.stop(signal.SIGTERM)

    log = bot.log()
    assert status == 0, log
    assert "serving: telegram, discord" in log and "Traceback" not in log


def test_the_image_healthcheck_fails_when_nothing_answers(tmp_path: Path) -> None:
    assert run_healthcheck(process_env(tmp_path, METRICS_PORT=str(free_port()))).returncode != 0
