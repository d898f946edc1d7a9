"""Conversation state and feedback counts behave the same in memory, in SQLite and in Redis.

The Redis tests run against a real redis-server started for the session on 127.0.0.1.
Time passes on a fake clock where the backend takes one (memory, SQLite); Redis keeps
its own time, so there the TTL is a few seconds and the tests wait it out.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.dialogue import ConversationState, MemoryStore
from bot.engine import Engine
from bot.feedback import FeedbackCounter
from bot.models import Citation
from bot.state import StateUnavailable, open_state
from bot.state.redis_backend import open_redis
from bot.state.sqlite_backend import SqliteStore, open_sqlite
from tests.standins.redis_server import RedisServer, free_port

QUESTION = "How do I opt out of Meta AI training?"
FOLLOW_UP = "where did you read that?"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer.find_or_explain(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@dataclass
class Backend:
    """One place state is kept; `open()` connects a new store to it, as a restarted bot or another replica would."""

    name: str
    ttl: int
    open: Callable[[], tuple[Any, Any]]
    let_time_pass: Callable[[float], Awaitable[None]]
    opened: list[Any] = field(default_factory=list)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    now = [time.time()]

    async def advance_clock(seconds: float) -> None:
        now[0] += seconds

    if request.param == "memory":
        made = Backend("memory", 60, lambda: (MemoryStore(60, clock=lambda: now[0]), FeedbackCounter()), advance_clock)
    elif request.param == "sqlite":
        made = Backend("sqlite", 60, lambda: open_sqlite(tmp_path / "state.db", 60, clock=lambda: now[0]),
                       advance_clock)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        prefix = f"test-{uuid.uuid4().hex}:"  # each test sees only its own keys
        made = Backend("redis", 3, lambda: open_redis(server.url, 3, prefix=prefix), asyncio.sleep)
    original_open = made.open

    def open_and_track() -> tuple[Any, Any]:
        store, feedback = original_open()
        made.opened.append(store)
        return store, feedback

    made.open = open_and_track
    yield made
    for store in made.opened:
        await store.close()


def persistent(*names: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("backend", names, indirect=True)


CITATION = Citation(n=1, source_id="meta-help", title="Privacy Center", publisher="Meta",
                    url="https://example.org/meta", published=None, quote="You can object.", authority="official")


def a_state(topic: str = "opt-out-web") -> ConversationState:
    return ConversationState(platform="meta", topic=topic, region="eu", fact_ids=["meta-opt-out"],
                             citations=[CITATION])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> bool:
    """Poll until `check()` holds: backends that keep their own time get a generous margin, not a stopwatch."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


# ------------------------------------------------------------------ conversations

async def test_a_conversation_comes_back_as_it_was_kept(backend: Backend) -> None:
    store, _ = backend.open()
    await store.put("alice", a_state())
    kept = await store.get("alice")
    assert kept is not None
    assert (kept.platform, kept.topic, kept.region, kept.fact_ids) == ("meta", "opt-out-web", "eu", ["meta-opt-out"])
    assert kept.citations == [CITATION]
    assert await store.get("nobody") is None


async def test_chats_keep_separate_conversations(backend: Backend) -> None:
    store, _ = backend.open()
    await store.put("alice", a_state("opt-out-web"))
    await store.put("bob", a_state("retention"))
    assert (await store.get("alice")).topic == "opt-out-web"
    assert (await store.get("bob")).topic == "retention"
    assert await store.count() == 2
    await store.delete("alice")
    assert await store.get("alice") is None
    assert (await store.get("bob")).topic == "retention"
    assert await store.count() == 1


async def test_forget_deletes_a_conversation_once(backend: Backend) -> None:
    store, _ = backend.open()
    await store.put("alice", a_state())
    assert await store.delete("alice") is True
    assert await store.get("alice") is None
    assert await store.delete("alice") is False


async def test_a_conversation_is_forgotten_after_the_idle_time(backend: Backend) -> None:
    store, _ = backend.open()
    await store.put("alice", a_state())
    await backend.let_time_pass(backend.ttl + 1)
    assert await eventually(lambda: _is_gone(store, "alice"))
    assert await store.count() == 0
    assert await store.delete("alice") is False  # nothing left to forget


async def test_each_message_restarts_the_idle_time(backend: Backend) -> None:
    store, _ = backend.open()
    await store.put("alice", a_state())
    await backend.let_time_pass(backend.ttl * 0.6)
    await store.put("alice", a_state("retention"))
    await backend.let_time_pass(backend.ttl * 0.6)
    kept = await store.get("alice")
    assert kept is not None and kept.topic == "retention"


async def _is_gone(store: Any, chat_id: str) -> bool:
    return await store.get(chat_id) is None


@persistent("sqlite", "redis")
async def test_a_restarted_bot_still_has_the_conversation(backend: Backend) -> None:
    store, _ = backend.open()
    await store.put("alice", a_state())
    await store.close()
    backend.opened.remove(store)
    restarted, _ = backend.open()
    kept = await restarted.get("alice")
    assert kept is not None and kept.topic == "opt-out-web"


@persistent("sqlite")
async def test_a_restart_does_not_bring_back_an_expired_conversation(backend: Backend) -> None:
    store, _ = backend.open()
    await store.put("alice", a_state())
    await store.close()
    backend.opened.remove(store)
    await backend.let_time_pass(backend.ttl + 1)  # the bot was down longer than the idle time
    restarted, _ = backend.open()
    assert await restarted.get("alice") is None
    assert await restarted.count() == 0


@persistent("redis")
async def test_replicas_on_one_redis_share_conversations(backend: Backend) -> None:
    first, _ = backend.open()
    second, _ = backend.open()
    await first.put("alice", a_state())
    assert (await second.get("alice")).topic == "opt-out-web"
    assert await second.delete("alice") is True
    assert await first.get("alice") is None


# ------------------------------------------------------------------ feedback

async def test_feedback_is_counted_by_topic_and_vote(backend: Backend) -> None:
    _, feedback = backend.open()
    await feedback.record("opt-out-web", "up")
    await feedback.record("opt-out-web", "up")
    await feedback.record("opt-out-web", "down")
    await feedback.record(None, "down")
    assert await feedback.counts() == {("opt-out-web", "up"): 2, ("opt-out-web", "down"): 1, ("none", "down"): 1}
    with pytest.raises(ValueError):
        await feedback.record("opt-out-web", "meh")  # type: ignore[arg-type]


@persistent("sqlite", "redis")
async def test_feedback_counts_survive_a_restart_and_are_shared(backend: Backend) -> None:
    store, feedback = backend.open()
    await feedback.record("retention", "up")
    await store.close()
    backend.opened.remove(store)
    _, restarted = backend.open()
    _, replica = backend.open()
    await restarted.record("retention", "up")
    await replica.record("retention", "down")
    assert await restarted.counts() == {("retention", "up"): 2, ("retention", "down"): 1}
    assert await replica.counts() == await restarted.counts()


# ------------------------------------------------------------------ choosing a backend

async def test_by_default_state_is_a_sqlite_file_in_the_data_dir(engine: Engine) -> None:
    assert engine.settings.state_url == "sqlite:///state.db"
    assert isinstance(engine.store, SqliteStore)
    assert (engine.settings.data_dir / "state.db").exists()


async def test_state_url_chooses_the_backend(settings: Any, tmp_path: Path, redis_server: RedisServer) -> None:
    store, feedback = open_state(settings.model_copy(update={"state_url": "memory://"}))
    assert isinstance(store, MemoryStore) and isinstance(feedback, FeedbackCounter)

    store, _ = open_state(settings.model_copy(update={"state_url": "sqlite:///chats/state.db", "data_dir": tmp_path}))
    await store.put("alice", a_state())
    await store.close()
    assert (tmp_path / "chats" / "state.db").exists()  # relative paths are under the data dir

    store, feedback = open_state(settings.model_copy(update={"state_url": redis_server.url}))
    await feedback.record("test-topic", "up")
    assert (await feedback.counts())[("test-topic", "up")] >= 1
    await store.close()


async def test_an_unreachable_redis_stops_start_up_with_a_clear_message(settings: Any) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    with pytest.raises(StateUnavailable) as error:
        open_state(settings.model_copy(update={"state_url": url}))
    message = str(error.value)
    assert "Cannot reach Redis at 127.0.0.1:" in message and "redis-server" in message
    assert "hunter2" not in message


async def test_an_unknown_state_url_is_refused_without_repeating_it(settings: Any) -> None:
    with pytest.raises(StateUnavailable) as error:
        open_state(settings.model_copy(update={"state_url": "postgres://bot:hunter2@db/state"}))
    assert "memory://" in str(error.value) and "hunter2" not in str(error.value)


# ------------------------------------------------------------------ through the engine

async def test_a_rebuilt_engine_keeps_the_follow_up_context(engine: Engine, tmp_path: Path) -> None:
    settings = engine.settings.model_copy(update={"state_url": f"sqlite:///{tmp_path / 'state.db'}"})
    store, feedback = open_state(settings)
    before = Engine(engine.knowledge, engine.index, settings, store=store, feedback=feedback)
    await before.answer("restart", QUESTION)
    await before.close()

    store, feedback = open_state(settings)
    after = Engine(engine.knowledge, engine.index, settings, store=store, feedback=feedback)
    answer = await after.answer("restart", FOLLOW_UP)
    assert not answer.abstained and answer.citations
    await after.close()


async def test_the_bot_keeps_answering_while_redis_is_down(engine: Engine, redis_server: RedisServer,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    store, feedback = open_redis(redis_server.url, 60, prefix=f"test-{uuid.uuid4().hex}:")
    bot = Engine(engine.knowledge, engine.index, engine.settings, store=store, feedback=feedback)
    try:
        redis_server.stop()
        with caplog.at_level(logging.INFO, logger="bot.state"):
            answer = await bot.answer("alice", QUESTION)
            assert not answer.abstained and answer.citations  # answered, just without memory
            follow_up = await bot.answer("alice", FOLLOW_UP)
            assert follow_up.abstained  # no context was kept to say where
            await feedback.record("opt-out-web", "up")  # a vote is lost, not an error
            with pytest.raises(StateUnavailable):
                await bot.forget("alice")  # never claim "nothing to delete" when we cannot know
        assert any("redis state unavailable" in r.getMessage() for r in caplog.records)
        assert not any(QUESTION in r.getMessage() or "alice" in r.getMessage() for r in caplog.records)
    finally:
        redis_server.start()

    async def follow_ups_work_again() -> bool:
        await bot.answer("alice", QUESTION)
        return bool((await bot.answer("alice", FOLLOW_UP)).citations)

    assert await eventually(follow_ups_work_again)
    assert await bot.forget("alice") is True
    await bot.close()
