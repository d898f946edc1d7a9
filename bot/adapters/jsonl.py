"""`python -m bot chat --jsonl`: JSON lines in, exactly one JSON object per line out.

Input lines:  {"chat_id": "...", "text": "..."}
Output lines: the Answer as JSON (text, body, citations, abstained, platform, topic, confidence, ...).
A line that is not such an object gets an object with "error" and abstained: true, so
the output always has one line per input line. Logs go to stderr only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import IO

from bot.engine import Engine

log = logging.getLogger(__name__)


def _error(message: str, chat_id: str | None = None) -> dict:
    return {"chat_id": chat_id, "text": message, "body": message, "citations": [], "abstained": True,
            "platform": None, "topic": None, "confidence": 0.0, "kind": "input_error", "error": message}


async def _handle(engine: Engine, line: str) -> dict:
    try:
        request = json.loads(line)
    except json.JSONDecodeError:
        return _error('Each line must be a JSON object like {"chat_id": "1", "text": "your question"}.')
    if not isinstance(request, dict):
        return _error('Each line must be a JSON object like {"chat_id": "1", "text": "your question"}.')
    chat_id, text = request.get("chat_id"), request.get("text")
    chat_id = str(chat_id) if chat_id is not None and not isinstance(chat_id, (dict, list)) else "default"
    if not isinstance(text, str):
        return _error('"text" must be a string holding the question.', chat_id)
    try:
        answer = await engine.answer(chat_id, text)
    except Exception as error:  # noqa: BLE001 - one bad line must never end the session
        log.error("answer failed: %s", type(error).__name__)
        return _error("Sorry, something went wrong answering that. Please try again.", chat_id)
    return {"chat_id": chat_id, **answer.model_dump(mode="json")}


async def serve_lines(engine: Engine, lines: IO[str], out: IO[str]) -> int:
    count = 0
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, lines.readline)
        if not line:
            break
        reply = await _handle(engine, line.strip())
        out.write(json.dumps(reply, ensure_ascii=False) + "\n")
        out.flush()
        count += 1
    return count


def run(engine: Engine) -> None:
    count = asyncio.run(serve_lines(engine, sys.stdin, sys.stdout))
    log.info("jsonl session ended after %d line(s)", count)
