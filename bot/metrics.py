"""The optional health and metrics endpoint (METRICS_PORT), on 127.0.0.1 unless METRICS_HOST says otherwise.

    GET /healthz   200 {"status": "ok", ...} while serving; 503 {"status": "stopping"} once shutting down
    GET /metrics   Prometheus text format (or OpenMetrics, if the scraper asks for it)

It runs as a small aiohttp app inside the bot's own event loop, so a scrape reads the same
feedback store the front ends write to. Every label is drawn from a fixed set (answer kinds,
knowledge topics, votes, exception class names): no message text, no user, no chat.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.models import Answer

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

# Answer.kind values the engine produces; anything else is counted as "other" so labels stay bounded.
ANSWER_KINDS = ("answer", "conflict", "gap", "passage", "out_of_scope", "clarify", "sources", "input_error",
                "language", "smalltalk")
VOTES = ("up", "down")
# Answers take tens of milliseconds on a warm CPU; the tail is the first question after start-up.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class FeedbackCollector(Collector):
    """👍/👎 counts by topic, read from the engine's feedback store just before each scrape.

    The store is async (SQLite or Redis), and `collect()` is not, so the handler refreshes
    a snapshot first; the counts live in the store, so they survive restarts and replicas share them.
    """

    def __init__(self, topics: Iterable[str]) -> None:
        self._topics = set(topics) | {"none"}
        self.snapshot: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily("bot_feedback_votes", "Votes on answers, by the answer's topic",
                                     labels=["topic", "vote"])
        totals: dict[tuple[str, str], int] = {}
        for (topic, vote), count in self.snapshot.items():
            if vote in VOTES:
                key = (topic if topic in self._topics else "other", vote)
                totals[key] = totals.get(key, 0) + count
        for (topic, vote), count in sorted(totals.items()):
            family.add_metric([topic, vote], count)
        yield family


class Metrics:
    """Prometheus metrics for one engine; `observe` is the engine's answer observer."""

    def __init__(self, engine: Engine, registry: CollectorRegistry | None = None) -> None:
        self.engine = engine
        self.registry = registry or CollectorRegistry()
        self.answers = Counter("bot_answers", "Answers given, by kind", ["kind"], registry=self.registry)
        self.abstentions = Counter("bot_abstentions", "Answers that abstained (no reliable answer), by kind",
                                   ["kind"], registry=self.registry)
        self.latency = Histogram("bot_answer_seconds", "Time to answer one message, in seconds",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.errors = Counter("bot_errors", "Messages that failed with an error, by exception class", ["kind"],
                              registry=self.registry)
        self.facts = Gauge("bot_knowledge_facts", "Facts in the loaded knowledge base", registry=self.registry)
        self.facts.set(len(engine.knowledge.facts))
        for kind in ANSWER_KINDS:  # zeros from the start, so rates work before the first answer of a kind
            self.answers.labels(kind)
        self.feedback = FeedbackCollector(engine.knowledge.vocabulary.topics)
        self.registry.register(self.feedback)
        engine.add_observer(self.observe)

    def observe(self, answer: Answer | None, seconds: float, error_kind: str | None) -> None:
        self.latency.observe(seconds)
        if answer is None:
            self.errors.labels(_label(error_kind or "unknown")).inc()
            return
        kind = answer.kind if answer.kind in ANSWER_KINDS else "other"
        self.answers.labels(kind).inc()
        if answer.abstained:
            self.abstentions.labels(kind).inc()

    async def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The metrics page and its content type, with feedback counts fresh from the store."""
        try:
            self.feedback.snapshot = await self.engine.feedback.counts()
        except Exception as error:  # noqa: BLE001 - a store hiccup must not take the other metrics down
            log.warning("could not read feedback counts for /metrics (%s)", type(error).__name__)
            self.errors.labels("FeedbackUnavailable").inc()
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def _label(name: str) -> str:
    """Exception class names are code, not text; still, keep labels short and plain."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)[:64]


class MetricsServer:
    """/healthz and /metrics on host:port, in the running event loop."""

    def __init__(self, metrics: Metrics, front_ends: Sequence[str], host: str, port: int,
                 stopping: asyncio.Event | None = None) -> None:
        self.metrics = metrics
        self.front_ends = list(front_ends)
        self.host = host
        self.port = port
        # Set from the first SIGTERM on: /healthz says 503 so a load balancer stops sending traffic.
        self.stopping = stopping or asyncio.Event()
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        # No access log: a health check every few seconds is noise, and paths are all there is to log.
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()  # OSError (port taken) propagates: serve() reports it and exits non-zero
        log.info("health and metrics on http://%s:%d (/healthz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        if self.stopping.is_set():
            return web.json_response({"status": "stopping"}, status=503)
        engine = self.metrics.engine
        return web.json_response({"status": "ok", "facts": len(engine.knowledge.facts),
                                  "front_ends": self.front_ends})

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = await self.metrics.exposition(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})
