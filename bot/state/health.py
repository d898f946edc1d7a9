"""What a state backend does when it stops answering: fail soft, and say so once.

A chat answered without its follow-up context beats no answer at all, so reads and
writes of conversation state never raise out of the engine. Logs carry the error's
type only: an error's message can quote a key, and keys are chat ids.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

log = logging.getLogger("bot.state")

T = TypeVar("T")


class StateUnavailable(RuntimeError):
    """The state backend cannot be reached (at start-up, or for an operation that must not fail silently)."""


class Outage:
    """Runs backend calls, turning the backend's errors into a fallback value; logs going down and coming back."""

    def __init__(self, backend: str, errors: tuple[type[BaseException], ...]) -> None:
        self.backend = backend
        self.errors = errors
        self.down = False

    async def call(self, operation: str, awaitable: Awaitable[T], fallback: T) -> T:
        try:
            result = await awaitable
        except self.errors as error:
            self.failed(operation, error)
            return fallback
        self.recovered()
        return result

    async def call_or_raise(self, operation: str, awaitable: Awaitable[T]) -> T:
        try:
            result = await awaitable
        except self.errors as error:
            self.failed(operation, error)
            raise StateUnavailable(f"{self.backend} state is unavailable ({type(error).__name__})") from None
        self.recovered()
        return result

    def failed(self, operation: str, error: BaseException) -> None:
        # One warning per outage, not one per message: a busy bot would flood the log.
        if not self.down:
            log.warning("%s state unavailable (%s during %s); answering without conversation context",
                        self.backend, type(error).__name__, operation)
        self.down = True

    def recovered(self) -> None:
        if self.down:
            log.info("%s state reachable again", self.backend)
        self.down = False
