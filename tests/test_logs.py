"""Logs never contain what people wrote or the bot's tokens — plain or JSON, even at LOG_LEVEL=DEBUG.

Each session test runs the real bot as its own process with a planted token and planted
question text (a marker no source or answer contains), plays a user session through the
stand-in APIs, including failures, then searches every line the process wrote to stderr.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.logs import NO_DEBUG_LIBRARIES, QUIET_LIBRARIES, setup_logging
from tests.bot_process import bot_process, free_port, process_env
from tests.standins.discord_api import DiscordStandIn, User
from tests.standins.telegram_api import TelegramStandIn

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

# Shaped like real tokens (Telegram: bot id, colon, 35 characters), so a redaction keyed on shape would be tested too.
# Built from parts so no token-shaped literal is committed (the repository scan would flag it).
TELEGRAM_TOKEN = "123456789" + ":" + "AAHplantedTokenX9kQ2mZ7vW4rT1yU8iO3pLs"
TELEGRAM_SECRET = TELEGRAM_TOKEN.split(":", 1)[1]
DISCORD_TOKEN = "MTMwMDAwMDAwMDAwMDAwMDAwMQ" + "." + "GplAnT" + "." + "ed-discord-token-secret-part-0123456789ab"
DISCORD_SECRET = DISCORD_TOKEN.rsplit(".", 1)[1]
MARKER = "quokka-lantern-7431"
QUESTION = f"How do I stop LinkedIn using my data to train AI? My cat is called {MARKER}"
USER = 700_001
GROUP = -1_000_000_700_001


def leaks(log: str, secrets: list[str]) -> list[str]:
    return [line for line in log.splitlines() if any(secret in line for secret in secrets)]


async def telegram_session(telegram: TelegramStandIn) -> None:
    """Questions in a private chat and a group, both kinds of button, a command that echoes its argument,
    a failed poll and an answer that can't be delivered — each step waited for before the next."""
    def sent() -> int:
        return len(telegram.sent_to(USER))

    telegram.fail_next("getUpdates", status=500)
    telegram.private_message(USER, QUESTION)
    [answer] = await telegram.wait_for_messages(USER, 1, timeout=60)
    for button in answer["reply_markup"]["inline_keyboard"][0]:  # Sources, 👍, 👎 ("already rated")
        telegram.press(USER, answer, button["callback_data"])
    await telegram.wait_for(lambda: len(telegram.calls_to("answerCallbackQuery")) >= 3, 60)
    before = sent()
    telegram.private_message(USER, f"/optout {MARKER}")  # the reply names what was asked for
    await telegram.wait_for(lambda: sent() > before, 60)
    telegram.group_message(GROUP, 42, f"@{telegram.bot_username} {QUESTION}")
    await telegram.wait_for_messages(GROUP, 1, timeout=60)
    telegram.fail_next("sendMessage", status=500, times=5)  # the answer and the apology both fail
    telegram.private_message(USER, f"what about {MARKER}?")
    await telegram.wait_for(lambda: len([c for c in telegram.calls_to("sendMessage") if c.status == 500]) >= 5, 60)


async def test_a_telegram_session_at_debug_logs_neither_token_nor_text(engine, tmp_path: Path) -> None:
    # `engine` builds the index cache the process loads.
    telegram = TelegramStandIn(TELEGRAM_TOKEN)
    await telegram.start()
    env = process_env(tmp_path, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_BASE_URL=telegram.base_url,
                      LOG_LEVEL="DEBUG")
    try:
        async with bot_process(["telegram"], env, tmp_path) as bot:
            await bot.until(telegram.wait_for(lambda: telegram.calls_to("getUpdates"), 180), "polling started")
            await telegram_session(telegram)
            assert await bot.stop() == 0, bot.log()
    finally:
        await telegram.close()

    log = bot.log()
    assert " DEBUG bot.logs: DEBUG is on" in log
    assert "handled chat_type=private command=question" in log, "the session was logged"
    assert not leaks(log, [TELEGRAM_TOKEN, TELEGRAM_SECRET, MARKER, "My cat is called"])


async def test_serve_with_both_bots_in_json_at_debug_logs_neither_tokens_nor_text(engine, tmp_path: Path) -> None:
    telegram = TelegramStandIn(TELEGRAM_TOKEN)
    await telegram.start()
    metrics_port = free_port()
    async with DiscordStandIn(token=DISCORD_TOKEN) as discord_api:
        env = process_env(tmp_path, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_BASE_URL=telegram.base_url,
                          DISCORD_BOT_TOKEN=DISCORD_TOKEN, DISCORD_API_BASE_URL=discord_api.api_url,
                          LOG_LEVEL="DEBUG", LOG_JSON="true", METRICS_PORT=str(metrics_port))
        try:
            async with bot_process(["serve"], env, tmp_path) as bot:
                await bot.until(telegram.wait_for(lambda: telegram.calls_to("getUpdates"), 180), "polling started")
                await bot.until(discord_api.wait_until_connected(timeout=180), "connected to the gateway")
                await telegram_session(telegram)
                asked = await discord_api.send_command("ask", question=QUESTION, user=User(username="ann"))
                calls = await discord_api.wait_for_calls(asked, lambda c: any(x.method == "PATCH" for x in c), 60)
                async with aiohttp.ClientSession() as http, \
                        http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                    metrics = await response.text()
                assert await bot.stop() == 0, bot.log()
        finally:
            await telegram.close()

    log = bot.log()
    records = [json.loads(line) for line in log.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["level"] == "DEBUG" for r in records), "DEBUG was on"
    assert any(r["logger"] == "bot.adapters.discord" for r in records), "the Discord session was logged"
    assert any(asked.token in c.path for c in calls)  # interaction tokens are short-lived secrets too
    secrets = [TELEGRAM_TOKEN, TELEGRAM_SECRET, DISCORD_TOKEN, DISCORD_SECRET, asked.token, MARKER, "My cat is called"]
    assert not leaks(log, secrets)
    assert not leaks(metrics, secrets) and "bot_answers_total" in metrics


@pytest.mark.parametrize("args, json_logs", [(["chat"], "true"), (["chat", "--jsonl"], "false")])
async def test_a_console_session_at_debug_logs_no_text(engine, tmp_path: Path, args: list[str], json_logs: str) -> None:
    lines = [QUESTION, f"/optout {MARKER}", f"and {MARKER}?", "/quit"]
    if "--jsonl" in args:
        lines = [json.dumps({"chat_id": MARKER, "text": line}) for line in lines[:-1]]
    env = process_env(tmp_path, LOG_LEVEL="DEBUG", LOG_JSON=json_logs)
    async with bot_process(args, env, tmp_path, stdin=asyncio.subprocess.PIPE,
                           stdout=asyncio.subprocess.PIPE) as bot:
        out, _ = await asyncio.wait_for(bot.process.communicate("\n".join(lines).encode() + b"\n"), 180)
    assert bot.process.returncode == 0, bot.log()
    assert "linkedin.com" in out.decode().lower(), "the questions were answered"
    log = bot.log()
    assert "index loaded" in log or "index built" in log, "the process did log"
    assert not leaks(log, [MARKER, "My cat is called"])


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide state; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ["bot", "bot.logs", *QUIET_LIBRARIES, *NO_DEBUG_LIBRARIES]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    logging.captureWarnings(False)
    root.handlers[:], root.level = handlers, level
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


def test_json_logs_are_one_object_per_line_with_time_level_logger_and_message(restore_logging) -> None:
    stream = io.StringIO()
    setup_logging("INFO", json_format=True)
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    logging.getLogger("bot.example").info("answered kind=%s", "gap")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("bot.example").exception("failed")
    first, second = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert first["level"] == "INFO" and first["logger"] == "bot.example" and first["message"] == "answered kind=gap"
    assert first["time"].endswith("+00:00")  # ISO 8601, UTC
    assert second["level"] == "ERROR" and "ValueError" in second["exc_info"]


@pytest.mark.parametrize("library", ["httpx", "httpcore", "telegram.ext", "telegram._bot", "discord.http",
                                     "discord.gateway", "tornado.access"])
def test_debug_is_for_the_bots_own_loggers_not_for_libraries_that_log_urls_or_payloads(
        library: str, restore_logging) -> None:
    setup_logging("DEBUG")
    assert logging.getLogger("bot.engine").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger(library).isEnabledFor(logging.DEBUG)


def test_a_quieter_log_level_quiets_the_libraries_too(restore_logging) -> None:
    setup_logging("WARNING")
    assert not logging.getLogger("telegram.ext").isEnabledFor(logging.INFO)
