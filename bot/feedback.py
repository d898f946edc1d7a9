"""Anonymous feedback on answers: only the answer's topic and the vote are kept.

Never the user, the chat or any text. Counts live where conversation state lives
(bot.state: SQLite by default, Redis, or this in-memory counter for `memory://`).
"""

from __future__ import annotations

from collections import Counter
from typing import Literal, Protocol

Vote = Literal["up", "down"]


class FeedbackStore(Protocol):
    async def record(self, topic: str | None, vote: Vote) -> None: ...

    async def counts(self) -> dict[tuple[str, str], int]: ...


def feedback_key(topic: str | None, vote: str) -> tuple[str, str]:
    """The (topic, vote) pair a vote is counted under; refuses anything but 'up' or 'down'."""
    if vote not in ("up", "down"):
        raise ValueError("vote must be 'up' or 'down'")
    return topic or "none", vote


class FeedbackCounter:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    async def record(self, topic: str | None, vote: Vote) -> None:
        self._counts[feedback_key(topic, vote)] += 1

    async def counts(self) -> dict[tuple[str, str], int]:
        return dict(self._counts)
