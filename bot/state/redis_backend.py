"""Conversation state and feedback counts in Redis, so several replicas share them.

One key per chat, written with EXPIRE = the idle TTL: Redis itself forgets idle
chats. Feedback counts are fields of one hash, bumped with HINCRBY. If Redis goes
away, reads and writes fail soft (see health.py) and redis-py reconnects by itself
once it is back.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import redis
import redis.asyncio
from pydantic import ValidationError
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from bot.dialogue import ConversationState
from bot.feedback import Vote, feedback_key
from bot.state.health import Outage, StateUnavailable

DEFAULT_PREFIX = "privacy-bot:"
TIMEOUT_SECONDS = 2.0  # a message waits at most about this long on a Redis that does not answer


def where(url: str) -> str:
    """host:port/db of a Redis URL, without any password it may carry (for messages)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"


class RedisStore:
    """ConversationStore on Redis: key `<prefix>chat:<chat id>` holds the state as JSON."""

    def __init__(self, client: redis.asyncio.Redis, ttl_seconds: int, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = client
        self._ttl = ttl_seconds
        self._chat_prefix = f"{prefix}chat:"
        self.outage = Outage("redis", (redis.RedisError, OSError))

    async def get(self, chat_id: str) -> ConversationState | None:
        raw = await self.outage.call("get", self._redis.get(self._chat_prefix + chat_id), None)
        if raw is None:
            return None
        try:
            return ConversationState.model_validate_json(raw)
        except ValidationError:
            return None  # written by an incompatible version: start the chat afresh

    async def put(self, chat_id: str, state: ConversationState) -> None:
        state.updated_at = time.time()
        await self.outage.call("put", self._redis.set(self._chat_prefix + chat_id, state.model_dump_json(),
                                                      ex=self._ttl), None)

    async def delete(self, chat_id: str) -> bool:
        # Raises rather than answer "nothing to delete" when the truth is unknown.
        return bool(await self.outage.call_or_raise("delete", self._redis.delete(self._chat_prefix + chat_id)))

    async def count(self) -> int:
        async def count_keys() -> int:
            # SCAN walks the key space in small steps, so it never blocks Redis the way KEYS would.
            return sum([1 async for _ in self._redis.scan_iter(match=self._chat_prefix + "*", count=1000)])

        return await self.outage.call("count", count_keys(), 0)

    async def close(self) -> None:
        await self._redis.aclose()


class RedisFeedback:
    """Feedback counts in the hash `<prefix>feedback`, field `<topic>/<vote>`."""

    def __init__(self, client: redis.asyncio.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self._redis = client
        self._key = f"{prefix}feedback"
        self.outage = Outage("redis", (redis.RedisError, OSError))

    async def record(self, topic: str | None, vote: Vote) -> None:
        field = "/".join(feedback_key(topic, vote))
        await self.outage.call("record feedback", self._redis.hincrby(self._key, field, 1), None)

    async def counts(self) -> dict[tuple[str, str], int]:
        fields = await self.outage.call("read feedback", self._redis.hgetall(self._key), {})
        counts: dict[tuple[str, str], int] = {}
        for field, n in fields.items():
            topic, _, vote = field.rpartition("/")
            counts[(topic, vote)] = int(n)
        return counts


def open_redis(url: str, ttl_seconds: int, prefix: str = DEFAULT_PREFIX) -> tuple[RedisStore, RedisFeedback]:
    """Check Redis answers now (a clear error at start-up beats a silent bot), then connect for real."""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS) as probe:
            probe.ping()
    except (redis.RedisError, OSError) as error:
        raise StateUnavailable(f"Cannot reach Redis at {where(url)} ({type(error).__name__}). Start redis-server, "
                               "or set STATE_URL to sqlite:///state.db to keep state in a local file.") from None
    # The asyncio client connects lazily, on the event loop that first uses it.
    client = redis.asyncio.Redis.from_url(
        url, decode_responses=True, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2),
        health_check_interval=30)
    return RedisStore(client, ttl_seconds, prefix), RedisFeedback(client, prefix)
