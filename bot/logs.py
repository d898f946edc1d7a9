"""Logging set-up: stderr only, never message text or tokens.

Libraries that log request URLs (httpx, used by python-telegram-bot, puts the bot
token in the URL) are held at WARNING, as PTB's own examples do.
"""

from __future__ import annotations

import logging
import sys

QUIET_LIBRARIES = ("httpx", "httpcore", "sentence_transformers", "transformers", "urllib3", "filelock",
                   "huggingface_hub", "faiss", "bm25s", "asyncio")


def setup_logging(level: str = "INFO", json_format: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"levelname": "level", "asctime": "time"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
