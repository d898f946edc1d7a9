"""Anonymous feedback on answers: only the answer's topic and the vote are kept.

Never the user, the chat or any text. Counts live in the configured store
(issue: run-for-real moves them to SQLite / Redis); this in-memory version is
the default for tests and the console.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

Vote = Literal["up", "down"]


class FeedbackCounter:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    async def record(self, topic: str | None, vote: Vote) -> None:
        if vote not in ("up", "down"):
            raise ValueError("vote must be 'up' or 'down'")
        self._counts[(topic or "none", vote)] += 1

    async def counts(self) -> dict[tuple[str, str], int]:
        return dict(self._counts)
