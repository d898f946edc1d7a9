"""/healthz and /metrics: what an operator sees, and that none of it is anything a user wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.dialogue import ConversationState
from bot.engine import Engine
from bot.metrics import Metrics, MetricsServer
from bot.models import Answer
from tests.bot_process import free_port

MARKER = "wombat-teapot-5120"


@pytest.fixture
async def fresh_engine(engine: Engine, settings) -> AsyncIterator[Engine]:
    """The session's knowledge and index behind a new engine, so counts start at zero."""
    fresh = Engine(engine.knowledge, engine.index, settings)
    yield fresh
    await fresh.close()


@pytest.fixture
async def server(fresh_engine: Engine) -> AsyncIterator[MetricsServer]:
    running = MetricsServer(Metrics(fresh_engine), ["telegram"], "127.0.0.1", free_port())
    await running.start()
    yield running
    await running.stop()


async def get(server: MetricsServer, path: str, **headers: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{server.port}{path}",
                                                         headers=headers) as response:
        return response.status, response.headers["Content-Type"], await response.text()


def value(metrics: str, series: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in:\n{metrics}")


async def test_healthz_says_ok_while_serving_and_503_once_stopping(server: MetricsServer, engine: Engine) -> None:
    status, content_type, body = await get(server, "/healthz")
    assert status == 200 and content_type.startswith("application/json")
    assert '"status": "ok"' in body and f'"facts": {len(engine.knowledge.facts)}' in body

    server.stopping.set()  # SIGTERM: a load balancer stops sending traffic before the bots log out
    status, _, body = await get(server, "/healthz")
    assert status == 503 and '"stopping"' in body


async def test_metrics_count_answers_by_kind_abstentions_and_latency(server: MetricsServer,
                                                                     fresh_engine: Engine) -> None:
    await fresh_engine.answer("metrics-1", "How do I opt out of LinkedIn AI training?")
    await fresh_engine.answer("metrics-2", "What is a good recipe for lasagne?")
    await fresh_engine.answer("metrics-3", "?!")

    status, content_type, metrics = await get(server, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert value(metrics, 'bot_answers_total{kind="answer"}') == 1
    assert value(metrics, 'bot_answers_total{kind="out_of_scope"}') == 1
    assert value(metrics, 'bot_answers_total{kind="input_error"}') == 1
    assert value(metrics, 'bot_answers_total{kind="conflict"}') == 0, "every kind is there from the start"
    assert value(metrics, 'bot_abstentions_total{kind="out_of_scope"}') == 1
    assert value(metrics, "bot_answer_seconds_count") == 3
    assert value(metrics, 'bot_answer_seconds_bucket{le="+Inf"}') == 3
    assert value(metrics, "bot_knowledge_facts") == len(fresh_engine.knowledge.facts)


async def test_metrics_count_errors_by_exception_class(engine: Engine, settings) -> None:
    class UnreachableStore:
        async def get(self, chat_id: str) -> ConversationState | None:
            raise ConnectionError(f"lost the connection while reading {chat_id}")

        async def close(self) -> None:
            pass

    broken = Engine(engine.knowledge, engine.index, settings, store=UnreachableStore())  # type: ignore[arg-type]
    metrics = Metrics(broken)
    with pytest.raises(ConnectionError):
        await broken.answer("metrics-error", f"Does LinkedIn train on my posts? {MARKER}")
    await broken.close()

    page, _ = await metrics.exposition(None)
    assert value(page.decode(), 'bot_errors_total{kind="ConnectionError"}') == 1


async def test_feedback_votes_are_read_from_the_store_at_each_scrape(server: MetricsServer,
                                                                     fresh_engine: Engine) -> None:
    await fresh_engine.feedback.record("opt-out-web", "up")
    await fresh_engine.feedback.record("opt-out-web", "up")
    await fresh_engine.feedback.record(None, "down")
    _, _, metrics = await get(server, "/metrics")
    assert value(metrics, 'bot_feedback_votes_total{topic="opt-out-web",vote="up"}') == 2
    assert value(metrics, 'bot_feedback_votes_total{topic="none",vote="down"}') == 1

    await fresh_engine.feedback.record("opt-out-web", "up")
    _, _, metrics = await get(server, "/metrics")
    assert value(metrics, 'bot_feedback_votes_total{topic="opt-out-web",vote="up"}') == 3


async def test_no_label_can_carry_what_a_user_wrote(server: MetricsServer, fresh_engine: Engine) -> None:
    await fresh_engine.answer("metrics-text", f"How do I opt out of LinkedIn AI training? {MARKER}")
    server.metrics.observe(Answer(text=MARKER, body=MARKER, kind=MARKER, topic=MARKER), 0.1, None)
    await fresh_engine.feedback.record(MARKER, "up")  # a topic the knowledge doesn't have

    _, _, metrics = await get(server, "/metrics")
    assert MARKER not in metrics
    assert value(metrics, 'bot_answers_total{kind="other"}') == 1
    assert value(metrics, 'bot_feedback_votes_total{topic="other",vote="up"}') == 1


async def test_a_scraper_asking_for_openmetrics_gets_it(server: MetricsServer) -> None:
    _, content_type, metrics = await get(server, "/metrics", Accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert metrics.rstrip().endswith("# EOF")
