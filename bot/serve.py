"""`python -m bot serve`: every front end whose token is set, in one process and one event loop.

With no token set it starts the console chat, so a fresh clone always does something useful.

SIGINT or SIGTERM stops every front end cleanly (exit status 0); a second signal cancels
whatever is still shutting down. If any front end fails — a rejected token, an API that can't
be reached — the others are stopped too and the process exits non-zero, so a service manager
restarts it or shows the failure instead of a half-working bot.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pydantic import SecretStr

from bot.engine import Engine
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.metrics import MetricsServer

log = logging.getLogger(__name__)

# Front ends get this long to log out and close their connections before they are cancelled.
SHUTDOWN_GRACE_SECONDS = 20.0

# What to tell the operator when a front end's API rejects its token.
REJECTED_TOKEN_HINTS = {
    "telegram": "Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather.",
    "discord": "Discord rejected DISCORD_BOT_TOKEN; copy it again from the Developer Portal (Bot page).",
}

FrontEnd = Callable[[Settings, Engine, asyncio.Event], Awaitable[None]]


def has_token(secret: SecretStr | None) -> bool:
    """A token counts as set only when it has something other than whitespace in it."""
    return secret is not None and bool(secret.get_secret_value().strip())


def front_ends_to_run(settings: Settings) -> list[str]:
    names = []
    if has_token(settings.telegram_bot_token):
        names.append("telegram")
    if has_token(settings.discord_bot_token):
        names.append("discord")
    return names


def serve(settings: Settings) -> int:
    """The blocking entry point: load the engine once, then run the front ends (or the console)."""
    names = front_ends_to_run(settings)
    engine = Engine.from_settings(settings)
    if not names:
        from bot.adapters import console

        log.info("no TELEGRAM_BOT_TOKEN or DISCORD_BOT_TOKEN set: starting the console chat")
        if settings.metrics_port:
            log.info("METRICS_PORT is not used by the console chat")
        console.run(engine)
        return 0

    async def main() -> int:
        try:
            return await run_front_ends(settings, engine, names)
        finally:
            await engine.close()

    return asyncio.run(main())


async def run_front_ends(settings: Settings, engine: Engine, names: list[str]) -> int:
    """Run the named front ends (and the metrics endpoint, if configured) until a signal or a failure.

    Returns the exit status: 0 after a requested stop, 2 when a token was rejected, 1 for any other failure.
    The engine is left open for the caller to close.
    """
    stop = asyncio.Event()
    server = None
    if settings.metrics_port:
        server = await _start_metrics(settings, engine, names, stop)
        if server is None:
            return 1
    tasks = {asyncio.create_task(_adapter(name)(settings, engine, stop), name=name) for name in names}
    remove_signal_handlers = _on_signals(stop, tasks)
    log.info("serving: %s", ", ".join(names))
    try:
        return await _supervise(tasks, stop)
    finally:
        remove_signal_handlers()
        if server is not None:
            await server.stop()


def _adapter(name: str) -> FrontEnd:
    if name == "telegram":
        from bot.adapters import telegram

        return telegram.run_async
    from bot.adapters import discord

    return discord.run_async


async def _start_metrics(settings: Settings, engine: Engine, names: list[str],
                         stop: asyncio.Event) -> MetricsServer | None:
    from bot.metrics import Metrics, MetricsServer

    assert settings.metrics_port is not None
    server = MetricsServer(Metrics(engine), names, settings.metrics_host, settings.metrics_port, stopping=stop)
    try:
        await server.start()
    except OSError as error:
        log.error("cannot serve /healthz and /metrics on %s:%d (%s); stopping", settings.metrics_host,
                  settings.metrics_port, error.strerror or type(error).__name__)
        await server.stop()
        return None
    return server


async def _supervise(tasks: set[asyncio.Task], stop: asyncio.Event) -> int:
    """Wait for a stop request or for any front end to end; then stop the rest and report."""
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait(tasks | {stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    requested = stop.is_set()
    stop.set()
    if requested:
        log.info("stopping: %s", ", ".join(sorted(t.get_name() for t in tasks if not t.done())) or "nothing running")
    _, unfinished = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
    for task in unfinished:
        log.warning("%s did not stop within %.0f s; cancelling it", task.get_name(), SHUTDOWN_GRACE_SECONDS)
        task.cancel()
    await asyncio.gather(*unfinished, return_exceptions=True)
    statuses = [_status(task, requested) for task in sorted(tasks, key=lambda t: t.get_name())]
    return max(statuses, default=0)


def _status(task: asyncio.Task, requested: bool) -> int:
    """Log how one front end ended; its exit status."""
    name = task.get_name()
    if task.cancelled():
        return 0 if requested else 1
    error = task.exception()
    if error is None:
        if requested:
            return 0
        log.error("%s stopped by itself; stopping the others", name)
        return 1
    if _is_rejected_token(name, error):
        log.error("%s; stopping", REJECTED_TOKEN_HINTS[name])
        return 2
    # The class and where it was raised, never str(error): PTB's InvalidToken, for one, quotes the token,
    # and other messages may quote what a user wrote.
    log.error("%s failed with %s%s; stopping", name, type(error).__name__, _where(error))
    return 1


def _is_rejected_token(name: str, error: BaseException) -> bool:
    if name == "telegram":
        from telegram.error import InvalidToken

        return isinstance(error, InvalidToken)
    if name == "discord":
        from discord import LoginFailure

        return isinstance(error, LoginFailure)
    return False


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" at {last.filename.rsplit('site-packages/', 1)[-1]}:{last.lineno} in {last.name}"


def _on_signals(stop: asyncio.Event, tasks: set[asyncio.Task]) -> Callable[[], None]:
    """SIGINT/SIGTERM: stop cleanly; a second one: cancel what is still shutting down. Returns an undo."""
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if not stop.is_set():
            log.info("received %s", signal.Signals(signum).name)
            stop.set()
            return
        log.warning("received %s again: cancelling the front ends", signal.Signals(signum).name)
        for task in tasks:
            task.cancel()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals (Windows)
            pass

    def undo() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return undo
