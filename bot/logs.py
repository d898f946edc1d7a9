"""Logging set-up: stderr only, never message text or tokens.

LOG_JSON=true gives one JSON object per line with `time` (ISO 8601, UTC), `level`, `logger`
and `message`, for log shippers; otherwise one readable line per record.

LOG_LEVEL applies to the bot's own loggers. Libraries that put secrets or what users wrote
into their debug output are capped, whatever LOG_LEVEL says (tests/test_logs.py checks it):
  - httpx/httpcore log every request URL, and Telegram Bot API URLs contain the token;
  - python-telegram-bot logs request parameters and whole updates (message text) at DEBUG;
  - discord.py logs request bodies, interaction webhook URLs (short-lived tokens) and gateway
    payloads (what users typed) at DEBUG;
  - tornado (PTB's webhook server) logs request paths, and a webhook path may carry a secret.
"""

from __future__ import annotations

import logging
import sys

# Libraries held at WARNING: noisy, or they log request URLs.
QUIET_LIBRARIES = ("httpx", "httpcore", "urllib3", "filelock", "huggingface_hub", "sentence_transformers",
                   "transformers", "faiss", "bm25s", "asyncio", "tornado.access", "aiohttp.access", "websockets")
# Libraries whose INFO is useful (connected, reconnecting) but whose DEBUG carries payloads.
NO_DEBUG_LIBRARIES = ("telegram", "discord", "tornado", "aiohttp")


def setup_logging(level: str = "INFO", json_format: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s", timestamp="time",
                                           rename_fields={"levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    logging.captureWarnings(True)  # library warnings become records too, so LOG_JSON output stays all JSON
    root.setLevel(level.upper())
    threshold = root.level
    # max(): a library is never *more* verbose than the root (LOG_LEVEL=WARNING keeps their INFO out too).
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))
    for name in NO_DEBUG_LIBRARIES:
        logging.getLogger(name).setLevel(max(threshold, logging.INFO))
    logging.getLogger(__name__).debug("DEBUG is on for the bot's own loggers; %s log at INFO at most",
                                      ", ".join(NO_DEBUG_LIBRARIES))
