"""Command line: the one place that reads configuration and wires the pieces together.

    python -m bot                 serve: every front end whose token is set, else the console chat
    python -m bot chat [--jsonl]  console chat, or the JSON-lines protocol on stdin/stdout
    python -m bot ask "question"  one answer, for scripts
    python -m bot validate        check the knowledge base (exit status 0 only when valid)
    python -m bot build-index     embed the knowledge into the on-disk index cache
    python -m bot telegram        the Telegram bot (TELEGRAM_BOT_TOKEN)
    python -m bot discord         the Discord bot (DISCORD_BOT_TOKEN)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from collections import Counter

from bot.knowledge import KnowledgeError, load_knowledge
from bot.logs import setup_logging
from bot.settings import Settings, get_settings
from bot.state.health import StateUnavailable

log = logging.getLogger("bot")


def _engine(settings: Settings):
    from bot.engine import Engine

    return Engine.from_settings(settings)


def cmd_validate(settings: Settings, args: argparse.Namespace) -> int:
    knowledge = load_knowledge(settings.knowledge_dir)
    platforms = Counter(f.platform for f in knowledge.facts)
    kinds = Counter(f.kind for f in knowledge.facts)
    cited = {c.source for f in knowledge.facts for c in f.citations}
    print(f"knowledge base is valid: {len(knowledge.facts)} facts ({dict(kinds)}), "
          f"{len(knowledge.sources)} sources, {len(cited)} cited")
    print("facts per platform: " + ", ".join(f"{p} {n}" for p, n in sorted(platforms.items())))
    return 0


def cmd_build_index(settings: Settings, args: argparse.Namespace) -> int:
    from bot.index import build_search_index

    knowledge = load_knowledge(settings.knowledge_dir)
    index = build_search_index(knowledge, settings.index_cache_dir, settings.approximate_index_threshold)
    print(f"index {'built' if index.built else 'already current'} in {index.seconds:.1f}s: "
          f"{index.fact_vectors.ntotal} fact vectors, {index.passage_vectors.ntotal} passage vectors "
          f"-> {settings.index_cache_dir}")
    return 0


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    engine = _engine(settings)
    if args.jsonl:
        from bot.adapters import jsonl

        jsonl.run(engine)
    else:
        from bot.adapters import console

        console.run(engine)
    return 0


def cmd_ask(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    engine = _engine(settings)

    async def ask_once() -> object:
        chat_id = f"ask-{uuid.uuid4().hex}"  # each `ask` stands alone: no follow-up state across runs
        try:
            return await engine.answer(chat_id, " ".join(args.question))
        finally:
            await engine.forget(chat_id)
            await engine.close()

    answer = asyncio.run(ask_once())
    if args.json:
        print(json.dumps(answer.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        print(answer.text)
    return 0


def _require(token, name: str) -> None:
    if token is None or not token.get_secret_value().strip():
        print(f"{name} is not set. Put it in the environment or in a .env file (see README).", file=sys.stderr)
        raise SystemExit(2)


def cmd_telegram(settings: Settings, args: argparse.Namespace) -> int:
    _require(settings.telegram_bot_token, "TELEGRAM_BOT_TOKEN")
    from bot.adapters import telegram

    telegram.run(settings, _engine(settings))
    return 0


def cmd_discord(settings: Settings, args: argparse.Namespace) -> int:
    _require(settings.discord_bot_token, "DISCORD_BOT_TOKEN")
    from bot.adapters import discord

    discord.run(settings, _engine(settings))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from bot.serve import serve

    return serve(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Privacy answers bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run every front end whose token is set; the console chat if none")
    chat = sub.add_parser("chat", help="console chat")
    chat.add_argument("--jsonl", action="store_true", help="JSON lines on stdin/stdout")
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question", nargs="+")
    ask.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    sub.add_parser("validate", help="check the knowledge base")
    sub.add_parser("build-index", help="embed the knowledge into the index cache")
    sub.add_parser("telegram", help="run the Telegram bot")
    sub.add_parser("discord", help="run the Discord bot")
    args = parser.parse_args(argv)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_json)
    handlers = {"chat": cmd_chat, "ask": cmd_ask, "validate": cmd_validate, "build-index": cmd_build_index,
                "telegram": cmd_telegram, "discord": cmd_discord, "serve": cmd_serve, None: cmd_serve}
    try:
        return handlers[args.command](settings, args)
    except KnowledgeError as error:
        print(f"Refusing to start: {error}", file=sys.stderr)
        return 1
    except StateUnavailable as error:
        print(f"Refusing to start: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
