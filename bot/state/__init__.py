"""Where conversation state and feedback counts live, chosen by STATE_URL.

    memory://                 in this process only (tests, throwaway console sessions)
    sqlite:///state.db        a file; relative paths are under DATA_DIR (the default)
    sqlite:////abs/state.db   a file at an absolute path
    redis://host:6379/0       Redis, shared by every replica pointed at it

    store, feedback = open_state(settings)
"""

from __future__ import annotations

from pathlib import Path

from bot.dialogue import ConversationStore, MemoryStore
from bot.feedback import FeedbackCounter, FeedbackStore
from bot.settings import Settings
from bot.state.health import StateUnavailable

__all__ = ["StateUnavailable", "open_state", "sqlite_path"]


def sqlite_path(state_url: str, data_dir: Path) -> Path:
    path = Path(state_url.removeprefix("sqlite:///"))
    return path if path.is_absolute() else data_dir / path


def open_state(settings: Settings) -> tuple[ConversationStore, FeedbackStore]:
    url = settings.state_url.strip()
    ttl = settings.conversation_ttl_seconds
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        return MemoryStore(ttl), FeedbackCounter()
    if scheme == "sqlite" and url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        from bot.state.sqlite_backend import open_sqlite

        return open_sqlite(sqlite_path(url, settings.data_dir), ttl)
    if scheme in ("redis", "rediss"):
        from bot.state.redis_backend import open_redis

        return open_redis(url, ttl)
    # Only the scheme is repeated: the rest of the URL may hold a password.
    raise StateUnavailable(f"STATE_URL must be memory://, sqlite:///<file> or redis://host:port/db "
                           f"(got a {scheme or 'schemeless'}:// URL)")
