"""Per-chat conversation state, kept behind one small store interface.

State is what follow-ups need: the platform, topic and region last talked about and
the citations last given ("where did you read that?"). It expires after an idle
time and `delete` forgets it at once (/forget).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from pydantic import BaseModel

from bot.models import Citation


class ConversationState(BaseModel):
    platform: str | None = None
    topic: str | None = None
    region: str | None = None
    fact_ids: list[str] = []
    citations: list[Citation] = []
    updated_at: float = 0.0


class ConversationStore(Protocol):
    """Where conversation state lives: memory for tests and the console, SQLite or Redis to run."""

    async def get(self, chat_id: str) -> ConversationState | None: ...

    async def put(self, chat_id: str, state: ConversationState) -> None: ...

    async def delete(self, chat_id: str) -> bool: ...

    async def count(self) -> int: ...

    async def close(self) -> None: ...


class MemoryStore:
    """In-process store with an idle TTL and a size bound (oldest chats dropped first)."""

    def __init__(self, ttl_seconds: float, max_chats: int = 100_000, clock=time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_chats
        self._clock = clock
        self._states: OrderedDict[str, ConversationState] = OrderedDict()

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl
        while self._states:
            oldest_id, oldest = next(iter(self._states.items()))
            if oldest.updated_at > cutoff and len(self._states) <= self._max:
                break
            del self._states[oldest_id]

    async def get(self, chat_id: str) -> ConversationState | None:
        self._expire()
        return self._states.get(chat_id)

    async def put(self, chat_id: str, state: ConversationState) -> None:
        state.updated_at = self._clock()
        self._states.pop(chat_id, None)
        self._states[chat_id] = state  # most recently used goes last
        self._expire()

    async def delete(self, chat_id: str) -> bool:
        return self._states.pop(chat_id, None) is not None

    async def count(self) -> int:
        self._expire()
        return len(self._states)

    async def close(self) -> None:
        self._states.clear()
