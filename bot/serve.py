"""`python -m bot serve`: every front end whose token is set, in one process and one event loop.

With no token set it starts the console chat, so a fresh clone always does something useful.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from bot.engine import Engine
from bot.settings import Settings

log = logging.getLogger(__name__)


async def _run_front_ends(settings: Settings, engine: Engine) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    tasks = []
    if settings.telegram_bot_token:
        from bot.adapters import telegram

        tasks.append(asyncio.create_task(telegram.run_async(settings, engine, stop), name="telegram"))
    if settings.discord_bot_token:
        from bot.adapters import discord

        tasks.append(asyncio.create_task(discord.run_async(settings, engine, stop), name="discord"))
    log.info("serving: %s", ", ".join(t.get_name() for t in tasks))
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        await engine.close()


def serve(settings: Settings) -> int:
    engine = Engine.from_settings(settings)
    if not (settings.telegram_bot_token or settings.discord_bot_token):
        from bot.adapters import console

        log.info("no TELEGRAM_BOT_TOKEN or DISCORD_BOT_TOKEN set: starting the console chat")
        console.run(engine)
        return 0
    asyncio.run(_run_front_ends(settings, engine))
    return 0
