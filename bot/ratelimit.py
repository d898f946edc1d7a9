"""A per-user sliding-window rate limit shared by the chat front ends.

A user over the limit gets one polite notice per window, then silence until the
window frees up, so a flood never turns into a flood of replies.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    ALLOWED = "allowed"
    NOTIFY = "notify"  # over the limit: tell the user once
    DROP = "drop"  # over the limit and already told


@dataclass
class _Window:
    times: deque[float]
    notified: bool = False


class RateLimiter:
    def __init__(self, max_messages: int, window_seconds: float, clock=time.monotonic, max_users: int = 100_000) -> None:
        self._max = max_messages
        self._window = window_seconds
        self._clock = clock
        self._max_users = max_users
        self._users: dict[str, _Window] = {}

    def check(self, user_id: str) -> Verdict:
        now = self._clock()
        window = self._users.get(user_id)
        if window is None:
            if len(self._users) >= self._max_users:
                self._forget_idle(now)
            window = self._users[user_id] = _Window(deque())
        while window.times and window.times[0] <= now - self._window:
            window.times.popleft()
        if len(window.times) < self._max:
            window.times.append(now)
            window.notified = False
            return Verdict.ALLOWED
        if window.notified:
            return Verdict.DROP
        window.notified = True
        return Verdict.NOTIFY

    def retry_after(self, user_id: str) -> float:
        window = self._users.get(user_id)
        if not window or not window.times:
            return 0.0
        return max(0.0, window.times[0] + self._window - self._clock())

    def _forget_idle(self, now: float) -> None:
        for user_id in [u for u, w in self._users.items() if not w.times or w.times[-1] <= now - self._window]:
            del self._users[user_id]


RATE_LIMIT_NOTICE = (
    "You're sending messages faster than I can answer them well. "
    "Please wait a few seconds and ask again; I'll answer your next question."
)
