"""Conversation state and feedback counts in one SQLite file (the default backend).

The file survives restarts, so `updated_at` is wall-clock time and the idle TTL is
checked on every read; expired rows are also deleted now and then on write. All
sqlite3 calls run on one worker thread: they block, and the event loop must not.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from bot.dialogue import ConversationState
from bot.feedback import Vote, feedback_key
from bot.state.health import Outage, StateUnavailable

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    chat_id    TEXT PRIMARY KEY,
    state      TEXT NOT NULL,   -- ConversationState as JSON
    updated_at REAL NOT NULL    -- seconds since the epoch
);
CREATE INDEX IF NOT EXISTS conversations_by_age ON conversations (updated_at);
CREATE TABLE IF NOT EXISTS feedback (
    topic TEXT NOT NULL,
    vote  TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (topic, vote)
);
"""

PURGE_EVERY_SECONDS = 60.0


class SqliteDatabase:
    """One connection, owned by one worker thread, shared by the conversation store and the feedback counts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-state")
        try:
            self._connection = self._worker.submit(self._connect, path).result()
        except (OSError, sqlite3.Error) as error:
            self._worker.shutdown()
            raise StateUnavailable(f"Cannot open the SQLite state file {path} ({type(error).__name__}). "
                                   "Check that DATA_DIR / STATE_URL point at a writable place.") from None
        self.outage = Outage("sqlite", (sqlite3.Error,))
        self._closed = False

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit (each statement is its own transaction); wait up to 5 s for another process's write.
        connection = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        connection.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer, nor it them
        connection.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a power cut may lose the last writes
        connection.executescript(SCHEMA)
        return connection

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, work, self._connection, *args)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.run(lambda connection: connection.close())
            self._worker.shutdown()


class SqliteStore:
    """ConversationStore on SQLite with an idle TTL (wall clock, so it holds across restarts)."""

    def __init__(self, database: SqliteDatabase, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._ttl = ttl_seconds
        self._clock = clock
        self._last_purge = float("-inf")

    def _cutoff(self) -> float:
        return self._clock() - self._ttl

    async def get(self, chat_id: str) -> ConversationState | None:
        def read(connection: sqlite3.Connection) -> str | None:
            row = connection.execute("SELECT state FROM conversations WHERE chat_id = ? AND updated_at > ?",
                                     (chat_id, self._cutoff())).fetchone()
            return row[0] if row else None

        raw = await self._db.outage.call("get", self._db.run(read), None)
        if raw is None:
            return None
        try:
            return ConversationState.model_validate_json(raw)
        except ValidationError:
            return None  # written by an incompatible version: start the chat afresh

    async def put(self, chat_id: str, state: ConversationState) -> None:
        state.updated_at = self._clock()
        purge = state.updated_at - self._last_purge >= PURGE_EVERY_SECONDS
        if purge:
            self._last_purge = state.updated_at

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO conversations (chat_id, state, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (chat_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (chat_id, state.model_dump_json(), state.updated_at))
            if purge:  # cheap: the age index finds the expired rows
                connection.execute("DELETE FROM conversations WHERE updated_at <= ?", (self._cutoff(),))

        await self._db.outage.call("put", self._db.run(write), None)

    async def delete(self, chat_id: str) -> bool:
        def forget(connection: sqlite3.Connection) -> bool:
            row = connection.execute("DELETE FROM conversations WHERE chat_id = ? RETURNING updated_at",
                                     (chat_id,)).fetchone()
            return row is not None and row[0] > self._cutoff()  # an expired row was already forgotten

        # Raises rather than answer "nothing to delete" when the truth is unknown.
        return await self._db.outage.call_or_raise("delete", self._db.run(forget))

    async def count(self) -> int:
        def count_live(connection: sqlite3.Connection) -> int:
            return connection.execute("SELECT COUNT(*) FROM conversations WHERE updated_at > ?",
                                      (self._cutoff(),)).fetchone()[0]

        return await self._db.outage.call("count", self._db.run(count_live), 0)

    async def close(self) -> None:
        await self._db.close()


class SqliteFeedback:
    """Feedback counts in the same file: one row per (topic, vote)."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database

    async def record(self, topic: str | None, vote: Vote) -> None:
        key = feedback_key(topic, vote)

        def add(connection: sqlite3.Connection) -> None:
            connection.execute("INSERT INTO feedback (topic, vote, count) VALUES (?, ?, 1) "
                               "ON CONFLICT (topic, vote) DO UPDATE SET count = count + 1", key)

        await self._db.outage.call("record feedback", self._db.run(add), None)

    async def counts(self) -> dict[tuple[str, str], int]:
        def read(connection: sqlite3.Connection) -> dict[tuple[str, str], int]:
            return {(topic, vote): n for topic, vote, n in connection.execute("SELECT topic, vote, count FROM feedback")}

        return await self._db.outage.call("read feedback", self._db.run(read), {})


def open_sqlite(path: Path, ttl_seconds: float, clock: Callable[[], float] = time.time) -> tuple[SqliteStore, SqliteFeedback]:
    database = SqliteDatabase(path)
    return SqliteStore(database, ttl_seconds, clock), SqliteFeedback(database)
