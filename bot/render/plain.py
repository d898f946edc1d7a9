"""Plain-text rendering for the console: the answer's own text, which already lists its sources."""

from __future__ import annotations

from bot.models import Answer


def render(answer: Answer) -> str:
    return answer.text
