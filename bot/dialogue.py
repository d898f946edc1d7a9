"""Per-chat conversation state, kept behind one small store interface.

State is what follow-ups need: the platform, topic and region last talked about and
the citations last given ("where did you read that?"). It expires after an idle
time and `delete` forgets it at once (/forget).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Container
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from bot.models import Citation

if TYPE_CHECKING:
    from bot.understand import Understanding


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


# ---------------------------------------------------------------- follow-ups

# Families of topics that a follow-up moves between ("and for ads?" after an opt-out question).
OPT_OUT_TOPICS = {"opt-out-web", "opt-out-mobile", "direct-link", "default-setting", "ads-opt-out", "objection-form"}
# What "turn that off" means right after an answer on each of these topics.
OPT_OUT_FOR = {"ads-sharing": "ads-opt-out", "affiliates": "ads-opt-out"}


@dataclass
class Turn:
    """Everything decided about one message, for composing and for the next turn's state."""

    understanding: Understanding
    platforms: list[str]
    inherited_platform: str | None
    topics: list[str]
    inherited_topic: str | None
    regions: list[str]
    previous_fact: str | None = None


def resolve_turn(u: Understanding, state: ConversationState | None, known_fact_ids: Container[str]) -> Turn:
    """Read a message in the context of the conversation: what it inherits from the turns before."""
    inherited_platform = None
    platforms = list(u.platforms)
    if not platforms and state and state.platform:
        inherited_platform = state.platform
    topics = list(u.topics)
    inherited_topic = None
    if state and state.topic and not topics:
        # "Is the UK one of them?", "And LinkedIn?": keep talking about the same thing. A question
        # naming a platform inherits the topic only when it is a bare follow-up ("What about Facebook?").
        if not platforms or u.looks_like_follow_up:
            inherited_topic = state.topic
    previous_topic = state.topic if state else None
    wants_to_stop = previous_topic in OPT_OUT_TOPICS or "opt-out-web" in topics
    if wants_to_stop and "ads-sharing" in topics and "ads-opt-out" not in topics:
        # "and for ads?" after opt-out steps, or "how do I stop the ads thing?": the ads opt-out steps
        topics.insert(0, "ads-opt-out")
    elif previous_topic in OPT_OUT_FOR and set(topics) <= {"opt-out-web", "opt-out-mobile"} and topics:
        # "how do I turn that off?" right after the ads-sharing answer: that is the ads setting
        topics.insert(0, OPT_OUT_FOR[previous_topic])
    if u.regions and "regions" not in topics:
        topics.append("regions")  # "I'm in Spain. Is my Copilot data used?" asks where it applies too
    if inherited_topic in OPT_OUT_TOPICS and "opt-out-mobile" in topics:
        inherited_topic = None
    regions = list(u.regions)
    if not regions and state and state.region and inherited_topic == "regions":
        regions = [state.region]
    previous_fact = next((f for f in state.fact_ids if f in known_fact_ids), None) if state else None
    return Turn(u, platforms, inherited_platform, topics, inherited_topic, regions, previous_fact)
