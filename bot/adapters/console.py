"""`python -m bot chat`: an interactive console chat, the embedded default (no token, no server)."""

from __future__ import annotations

import asyncio
import sys

from bot.engine import Engine
from bot.render.plain import render
from bot.texts import FORGET_CONFIRMATION, FORGET_NOTHING, help_text, privacy_text, start_text

CHAT_ID = "console"
PROMPT = "you> "


async def _reply(engine: Engine, line: str) -> str | None:
    command, _, argument = line.strip().partition(" ")
    command = command.lower()
    if command in {"/quit", "/exit"}:
        return None
    if command == "/help":
        return help_text()
    if command == "/start":
        return start_text()
    if command == "/privacy":
        return privacy_text(engine.settings.conversation_ttl_seconds // 60)
    if command == "/sources":
        return render(engine.sources_summary())
    if command == "/forget":
        return FORGET_CONFIRMATION if await engine.forget(CHAT_ID) else FORGET_NOTHING
    if command == "/optout":
        platform = engine.resolve_platform(argument) if argument.strip() else None
        if platform is None:
            names = ", ".join(pid for pid, _ in engine.platform_choices())
            return f"Which platform? One of: {names}  (e.g. /optout linkedin)"
        return render(await engine.opt_out(CHAT_ID, platform))
    return render(await engine.answer(CHAT_ID, line))


async def _chat(engine: Engine) -> None:
    interactive = sys.stdin.isatty()
    print(start_text() + "\n\nType /help for commands, /quit to leave.\n", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            print(PROMPT, end="", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if not line.strip():
            continue
        reply = await _reply(engine, line.rstrip("\n"))
        if reply is None:
            break
        print(f"\nbot> {reply}\n", flush=True)


async def _chat_then_close(engine: Engine) -> None:
    try:
        await _chat(engine)
    finally:
        await engine.close()  # flush and close the state store (SQLite, Redis)


def run(engine: Engine) -> None:
    try:
        asyncio.run(_chat_then_close(engine))
    except KeyboardInterrupt:
        print()
