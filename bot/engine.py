"""The answer engine: understand → retrieve → compose. One object every front end calls.

    engine = Engine.from_settings(settings)
    answer = await engine.answer(chat_id, text)

It knows nothing of Telegram, Discord or the console. The CPU-bound part (embedding
the question, searching, composing) runs on one worker thread so an event loop that
hosts several front ends stays responsive while it works.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bot import compose
from bot.dialogue import ConversationState, ConversationStore, MemoryStore, Turn, resolve_turn
from bot.feedback import FeedbackCounter
from bot.index import SearchIndex, build_search_index, lexical_tokens, split_sentences
from bot.knowledge import Fact, Knowledge, load_knowledge, quote_in_text
from bot.models import Answer
from bot.settings import Settings
from bot.texts import EXAMPLE_QUESTIONS, INTRO
from bot.ranking import Ranker, Scored, Tuning
from bot.understand import POLARITY_FLIPS, Reader, Understanding

log = logging.getLogger(__name__)

# Topics specific enough that, when a platform has no fact on them, the sources don't say.
SPECIFIC_TOPICS = {"deletion", "retention", "fines", "licensing", "human-review", "temporary-chat", "minors",
                   "user-agreement", "ads-sharing", "ads-opt-out", "objection-form", "non-users", "affiliates"}

# Topics whose words alone show a question is on subject ("Is LinkedIn the only company doing this?").
# Left out: topics signalled by everyday words ("how do I", "when", "where", "link", "app", "password").
ANCHORING_TOPICS = {"comparison", "objection-form", "legal-basis", "regulators", "fines", "criticism", "licensing",
                    "minors", "temporary-chat", "human-review", "ads-sharing", "ads-opt-out", "user-agreement",
                    "non-users", "affiliates", "retroactivity", "default-setting", "setting-scope"}

# "LinkedIn and Meta", "ChatGPT or Claude", "both": a question about several platforms at once.
COORDINATION = re.compile(r"\b(and|or|both|vs|versus|compared?|each)\b|,", re.IGNORECASE)




class Engine:
    def __init__(self, knowledge: Knowledge, index: SearchIndex, settings: Settings,
                 store: ConversationStore | None = None, feedback: FeedbackCounter | None = None,
                 tuning: Tuning = Tuning()) -> None:
        self.knowledge = knowledge
        self.index = index
        self.settings = settings
        self.store = store or MemoryStore(settings.conversation_ttl_seconds)
        self.feedback = feedback or FeedbackCounter()
        self.tuning = tuning
        self.reader = Reader(knowledge, index.embedder.known_words())
        self._facts = knowledge.facts_by_id
        self.ranker = Ranker(knowledge, index, tuning)
        self._subject_mentions = {name: [m.lower() for m in term.answer_mentions]
                                  for name, term in knowledge.vocabulary.subject_terms.items()}
        self._platform_topics: dict[str, set[str]] = {}
        for fact in knowledge.facts:
            self._platform_topics.setdefault(fact.platform, set()).add(fact.topic)
        self._observers: list[Callable[[Answer | None, float, str | None], None]] = []
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")

    @classmethod
    def from_settings(cls, settings: Settings, store: ConversationStore | None = None) -> Engine:
        """Open the state store (STATE_URL), load and validate the knowledge (refusing a broken base),
        then load or build the index."""
        from bot.state import open_state

        feedback = None
        if store is None:
            # First, so an unreachable Redis is reported before the slow model loading.
            store, feedback = open_state(settings)
        knowledge = load_knowledge(settings.knowledge_dir)
        index = build_search_index(knowledge, settings.index_cache_dir, settings.approximate_index_threshold)
        log.info("index %s in %.2fs: %d facts, %d passages", "built" if index.built else "loaded from cache",
                 index.seconds, len(knowledge.facts), len(index.passages))
        return cls(knowledge, index, settings, store=store, feedback=feedback)

    # ------------------------------------------------------------ public API

    def add_observer(self, observer: Callable[[Answer | None, float, str | None], None]) -> None:
        """Call `observer(answer, seconds, error_kind)` after every answer (metrics; never message text)."""
        self._observers.append(observer)

    async def answer(self, chat_id: str, text: str) -> Answer:
        started = time.perf_counter()
        try:
            state = await self.store.get(chat_id)
            loop = asyncio.get_running_loop()
            answer, new_state = await loop.run_in_executor(self._worker, self.respond, text, state)
            if new_state is not None:
                await self.store.put(chat_id, new_state)
        except Exception as error:
            self._notify(None, time.perf_counter() - started, type(error).__name__)
            raise
        self._notify(answer, time.perf_counter() - started, None)
        return answer

    def _notify(self, answer: Answer | None, seconds: float, error_kind: str | None) -> None:
        for observer in self._observers:
            try:
                observer(answer, seconds, error_kind)
            except Exception:  # noqa: BLE001 - a broken metrics hook must never break answering
                log.exception("answer observer failed")

    async def forget(self, chat_id: str) -> bool:
        return await self.store.delete(chat_id)

    def platform_choices(self) -> list[tuple[str, str]]:
        return [(pid, term.name or pid) for pid, term in self.knowledge.vocabulary.platforms.items() if pid != "general"]

    def resolve_platform(self, text: str) -> str | None:
        """The platform a name refers to ("insta", "linkdin", "ChatGPT", "meta"), if any."""
        return next((p for p in self.reader.read(text).platforms if p != "general"), None)

    async def opt_out(self, chat_id: str, platform_id: str) -> Answer:
        if platform_id not in dict(self.platform_choices()):
            return compose.compose_plain(self._covered_platforms_line("I don't know that platform."),
                                         abstained=True, kind="input_error")
        name = self.knowledge.vocabulary.platforms[platform_id].name
        return await self.answer(chat_id, f"How do I opt out of {name} using my data for AI training, on the web and in the app?")

    def sources_summary(self) -> Answer:
        sources = self.knowledge.sources.values()
        by_authority: dict[str, int] = {}
        for s in sources:
            by_authority[s.authority_label] = by_authority.get(s.authority_label, 0) + 1
        counts = ", ".join(f"{n} {label}" for label, n in sorted(by_authority.items(), key=lambda kv: -kv[1]))
        platforms = ", ".join(name for _, name in self.platform_choices())
        current = compose.human_date(self.knowledge.current_as_of)
        body = (f"I answer from {len(self.knowledge.facts)} curated facts drawn from {len(self.knowledge.sources)} "
                f"stored public sources ({counts}). They cover {platforms}. The newest dated source is from "
                f"{current}; some help pages carry no date. Where sources disagree I say which is more "
                "authoritative: official pages first, then regulators, news and law firms, advocacy groups, "
                "and blogs last. The official LinkedIn AI FAQ itself was not among the stored pages, so its "
                "wording comes from verbatim quotes in other sources.")
        return compose.compose_plain(body, abstained=False, kind="sources")

    async def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        await self.store.close()

    # ------------------------------------------------------------ one message

    def respond(self, raw_text: str, state: ConversationState | None) -> tuple[Answer, ConversationState | None]:
        """Answer one message given the chat's state; returns the answer and the state to keep."""
        if not isinstance(raw_text, str):
            raw_text = ""
        if len(raw_text) > self.settings.max_question_chars:
            return compose.compose_plain(
                f"That message is too long for me (over {self.settings.max_question_chars:,} characters). "
                "Please ask one question in a sentence or two.", abstained=True, kind="input_error"), state
        understanding = self.reader.read(raw_text)
        if not understanding.text or not any(ch.isalnum() for ch in understanding.text):
            return compose.compose_plain("Please type a question — for example: " + EXAMPLE_QUESTIONS[0],
                                         abstained=True, kind="input_error"), state
        language_note = ("I can only answer questions in English for now. Please ask in English — for example: "
                         + EXAMPLE_QUESTIONS[0])
        if understanding.foreign and not understanding.platforms:
            return compose.compose_plain(language_note, abstained=True, kind="language"), state
        if understanding.is_greeting:
            return compose.compose_plain(f"Hello! {INTRO}\n\nFor example: {EXAMPLE_QUESTIONS[0]}",
                                         abstained=True, kind="smalltalk"), state
        if understanding.asks_where_from and not understanding.platforms:
            return compose.compose_where_from(state.citations if state else []), state
        if understanding.is_task_request:
            return compose.compose_plain(self._covered_platforms_line(
                "I can't help with that: I only answer questions, from my sources."), abstained=True,
                kind="out_of_scope"), state
        if understanding.uncovered_platforms and not understanding.platforms:
            names = " and ".join(understanding.uncovered_platforms)
            return compose.compose_plain(self._covered_platforms_line(
                f"My sources don't cover {names}, so I can't tell you whether or how it uses your data for AI "
                "training."), abstained=True, kind="gap"), state

        turn = resolve_turn(understanding, state, self._facts)
        answer = self._decide(turn)
        answer = self._note_uncovered(understanding, answer)
        if understanding.foreign:
            # A platform name was recognised in another language: answer only when confident, and say why English.
            if answer.abstained:
                return compose.compose_plain(language_note, abstained=True, kind="language"), state
            note = "I can only answer in English; here is what I found for the platform you named.\n\n"
            answer = answer.model_copy(update={"body": note + answer.body, "text": note + answer.text})
        return answer, self._next_state(turn, answer, state)

    # ------------------------------------------------------------ understanding in context

    def _query_text(self, turn: Turn) -> str:
        """The text searched: the question, plus the platform a follow-up inherits ("what about on my phone?").

        The inherited topic is not added to the text: it would drown a short follow-up; it boosts instead.
        """
        context = []
        if turn.inherited_platform:
            context.append(self.knowledge.vocabulary.platforms[turn.inherited_platform].name or "")
        u = turn.understanding
        bare = len(u.content_words) <= 2 and not turn.regions and not u.topics
        if turn.inherited_topic and turn.previous_fact and (turn.platforms or bare):
            # "What about Facebook?" after "Are my LinkedIn DMs used?": ask the same question of Facebook;
            # "and if I don't?": a follow-up with no words of its own leans on the question before.
            context.append(self.reader.without_platforms(self._facts[turn.previous_fact].questions[0]))
        return " ".join([turn.understanding.search_text, *context]) if turn.platforms else \
            " ".join([*context, turn.understanding.search_text])

    # ------------------------------------------------------------ deciding what to say

    def _decide(self, turn: Turn) -> Answer:
        t = self.tuning
        u = turn.understanding
        query_text = self._query_text(turn)
        vector = self.index.embedder.embed_one(query_text)
        ranked = self.ranker.rank(turn, vector, query_text)
        platform = (turn.platforms[0] if turn.platforms else turn.inherited_platform)
        best = ranked[0] if ranked else None
        passage = self._best_passage(vector, query_text, turn)

        if best is None or not self._is_on_subject(turn, best, vector, query_text):
            return self._cannot_answer(turn, turn.platforms[0] if turn.platforms else None)
        missing_topic = self._topic_platform_lacks(turn, platform, best)
        if missing_topic:
            return self._cannot_answer(turn, platform, missing_topic)
        best, missing_subject = self._subject_fact(turn, ranked)
        if best is None:
            return self._cannot_answer(turn, platform or ranked[0].fact.platform, subject=missing_subject)
        if best is not ranked[0]:
            ranked = [best, *[s for s in ranked if s is not best]]

        threshold = t.min_fact_score if (platform or turn.topics) else t.min_fact_score_no_platform
        fact_ok = best.score >= threshold
        passage_ok = passage is not None and passage[1] >= t.min_passage_score and bool(platform)
        if passage_ok and (not fact_ok or passage[1] > best.score + t.passage_margin):
            quoted = self._quote_passage(passage[0], query_text)
            if quoted:
                source_id, quote = quoted
                return compose.compose_passage(self.knowledge, self.knowledge.sources[source_id], quote,
                                               platform=platform, confidence=passage[1])
        if not fact_ok:
            return self._cannot_answer(turn, platform)

        if u.uncovered_countries and (best.fact.topic == "regions" or "global" not in best.fact.regions):
            # No source names this country: say so, then what the sources say about everywhere else.
            country = u.uncovered_countries[0]
            elsewhere = next((s.fact for s in ranked if s.fact.platform == best.fact.platform
                              and s.fact.topic == "regions" and s.fact.kind == "fact" and "global" in s.fact.regions),
                             best.fact)
            return compose.compose_facts(
                self.knowledge, [elsewhere], lead=f"My sources don't say anything specific about {country}. "
                                                  "What they do say: ",
                confidence=best.score, abstained=True, kind="gap")

        facts = self._one_fact_per_platform(turn, ranked, threshold) or [best.fact]
        second = self._second_fact(turn, ranked) if len(facts) == 1 else None
        if second:
            facts.append(second)
        notes = self._conflict_notes(ranked, facts)
        return compose.compose_facts(self.knowledge, facts, lead=self._yes_no_lead(u, best), notes=notes,
                                     confidence=best.score)

    def _note_uncovered(self, u: Understanding, answer: Answer) -> Answer:
        """"Does TikTok do this like LinkedIn?": answer for LinkedIn, but say plainly TikTok isn't covered.
        ("Claude on Amazon Bedrock" needs no note: the answer itself names it.)"""
        missing = [name for name in u.uncovered_platforms if name.split(" ")[0].lower() not in answer.body.lower()]
        if not missing or answer.abstained:
            return answer
        note = f"My sources don't cover {' or '.join(missing)}. "
        return answer.model_copy(update={"body": note + answer.body, "text": note + answer.text})

    def _subject_fact(self, turn: Turn, ranked: list[Scored]) -> tuple[Scored | None, str | None]:
        """The best fact that mentions what the question singles out ("DMs"), or the subject none mentions."""
        best = ranked[0]
        for subject in turn.understanding.subjects:
            mentions = self._subject_mentions[subject]
            if best.fact.kind == "gap" or any(m in best.fact.answer.lower() for m in mentions):
                continue  # a gap fact already says the sources don't say
            alternative = next((s for s in ranked[1:12] if s.fact.platform == best.fact.platform
                                and s.score >= best.score - 0.15
                                and any(m in s.fact.answer.lower() for m in mentions)), None)
            if alternative is None:
                return None, subject
            best = alternative
        return best, None

    def _is_on_subject(self, turn: Turn, best: Scored, vector: np.ndarray, query_text: str) -> bool:
        """Is this a question about data, AI or privacy that the knowledge could answer at all?"""
        u = turn.understanding
        anchored = (u.relevant or bool(turn.regions) or bool(u.topics and turn.inherited_platform)
                    or bool(set(u.topics) & ANCHORING_TOPICS)
                    or bool(u.platforms and turn.inherited_topic) or best.dense >= self.tuning.strong_match)
        if not anchored:
            return False  # "Who founded LinkedIn?", "a recipe for lasagne" after a LinkedIn question
        if u.unknown_words:
            # "Who founded LinkedIn?": most of what is asked is something no source mentions.
            if len(u.unknown_words) * 2 >= max(1, len(u.content_words)):
                return False
            # "Can the police read my LinkedIn messages?": if dropping the words no source uses changes
            # the question's meaning, the question is about something the sources don't cover.
            unknown = set(u.unknown_words)
            reduced = " ".join(w for w in u.corrected.split() if w.strip("?,.!:;'\"").lower() not in unknown)
            if query_text == u.corrected:
                original, without = vector[0], self.index.embedder.embed_one(reduced)[0]
            else:  # one batch of two costs about as much as one embedding (scripts/bench.py)
                original, without = self.index.embedder.embed([u.corrected, reduced], batch_size=2)
            if float(original @ without) < self.tuning.unknown_word_shift:
                return False
        return True

    def _topic_platform_lacks(self, turn: Turn, platform: str | None, best: Scored) -> str | None:
        """A specific topic asked about that the platform has no fact on ("delete my Facebook account")."""
        if not platform or best.fact.topic in turn.topics:
            return None
        asked = [t for t in turn.understanding.topics if t in SPECIFIC_TOPICS]
        have = self._platform_topics.get(platform, set())
        if asked and not any(t in have for t in asked):
            return asked[0]
        return None

    def _one_fact_per_platform(self, turn: Turn, ranked: list[Scored], threshold: float) -> list[Fact]:
        """"Do LinkedIn and Meta both ...?": the best fact for each platform named (unless a comparison fact leads)."""
        if (len(turn.platforms) < 2 or ranked[0].fact.platform == "general"
                or not COORDINATION.search(turn.understanding.text)):
            return []
        # "Does LinkedIn share my data with Microsoft?" or "Reddit's deal with Google": one fact covers both.
        top_answer = ranked[0].fact.answer.lower()
        others = [p for p in turn.platforms if p != ranked[0].fact.platform]
        if all(any(alias in top_answer for alias in self._platform_names(p)) for p in others):
            return []
        chosen = []
        for platform in turn.platforms[:3]:
            best = next((s for s in ranked if s.fact.platform == platform and s.fact.kind != "gap"), None)
            if best and best.score >= threshold:
                chosen.append(best.fact)
        return chosen if len(chosen) >= 2 else []

    def _platform_names(self, platform: str) -> list[str]:
        term = self.knowledge.vocabulary.platforms[platform]
        return [a.lower() for a in term.aliases if len(a) > 3]

    def _second_fact(self, turn: Turn, ranked: list[Scored]) -> Fact | None:
        """A second fact when the question asks about two topics and the first fact covers only one."""
        best = ranked[0]
        if len(turn.topics) < 2 or best.fact.kind == "gap":
            return None
        for candidate in ranked[1:6]:
            fact = candidate.fact
            if (fact.topic in turn.topics and fact.topic != best.fact.topic and fact.platform == best.fact.platform
                    and fact.kind == "fact" and candidate.score >= best.score - self.tuning.second_fact_margin * 2):
                return fact
        return None

    def _conflict_notes(self, ranked: list[Scored], chosen: list[Fact]) -> list[Fact]:
        """Where sources disagree on what was asked, say so: the best close conflict fact, once."""
        main = chosen[0]
        if main.kind != "fact":
            return []
        for candidate in ranked[1:8]:
            fact = candidate.fact
            if (fact.kind == "conflict" and fact.platform == main.platform and fact.topic == main.topic
                    and candidate.score >= ranked[0].score - self.tuning.conflict_note_margin):
                return [fact]
        return []

    def _yes_no_lead(self, u: Understanding, best: Scored) -> str:
        fact = best.fact
        if not (u.is_yes_no and fact.yes_no and best.first_question >= self.tuning.yes_no_similarity):
            return ""
        # Only when the question is asked the same way round as the fact's own question: "Are my DMs
        # excluded?" or "used, or excluded?" flip or split the polarity, and a wrong "Yes." is worse than none.
        if u.polarity_flipped or POLARITY_FLIPS.search(fact.questions[0]):
            return ""
        return "Yes. " if fact.yes_no == "yes" else "No. "

    def _best_passage(self, vector: np.ndarray, query_text: str, turn: Turn) -> tuple[int, float] | None:
        """The best source passage about the platform asked (row, score); quoted only if it is used."""
        index = self.index
        k = min(index.passage_vectors.ntotal, 16)
        if k == 0:
            return None
        scores, rows = index.passage_vectors.search(vector, k)
        wanted_platforms = set(turn.platforms) or ({turn.inherited_platform} if turn.inherited_platform else set())
        for score, row in zip(scores[0], rows[0]):
            if row < 0:
                continue
            source = self.knowledge.sources[index.passages[row].source_id]
            if wanted_platforms and not wanted_platforms & set(source.platforms):
                continue
            return int(row), float(score)
        return None

    def _quote_passage(self, row: int, query_text: str) -> tuple[str, str] | None:
        passage = self.index.passages[row]
        quote = self._quotable_sentence(passage.text, query_text, self.knowledge.sources[passage.source_id].text)
        return (passage.source_id, quote) if quote else None

    @staticmethod
    def _quotable_sentence(passage: str, query_text: str, source_text: str) -> str | None:
        """The sentence of the passage that shares most words with the question, if it is verbatim."""
        wanted = set(lexical_tokens(query_text))
        sentences = [s.strip() for s in split_sentences(passage) if len(s.split()) >= 5]
        sentences.sort(key=lambda s: len(wanted & set(lexical_tokens(s))), reverse=True)
        for sentence in sentences[:3]:
            if quote_in_text(sentence, source_text):
                return sentence
        return None

    def _cannot_answer(self, turn: Turn, platform: str | None, topic: str | None = None,
                       subject: str | None = None) -> Answer:
        vocabulary = self.knowledge.vocabulary
        if platform and platform != "general":
            name = vocabulary.platforms[platform].name
            thing = subject or (vocabulary.topics[topic].label if topic else None)
            about = f" about {thing} for {name}" if thing else ""
            body = self._covered_platforms_line(
                f"My sources don't say anything{about}, so I can't answer that reliably. What they cover for "
                f"{name} is how it uses people's data to train AI: what data, where, how to opt out, and what "
                "regulators said.")
            return compose.compose_plain(body, abstained=True, kind="gap", platform=platform)
        return compose.compose_plain(self._covered_platforms_line(
            "I can't answer that: it is outside what my sources cover."), abstained=True, kind="out_of_scope")

    def _covered_platforms_line(self, opening: str) -> str:
        names = ", ".join(name for _, name in self.platform_choices())
        return (f"{opening} I answer questions about how platforms use people's data to train AI — {names} — "
                f"for example: \"{EXAMPLE_QUESTIONS[0]}\"")

    def _next_state(self, turn: Turn, answer: Answer, previous: ConversationState | None) -> ConversationState:
        state = previous.model_copy(deep=True) if previous else ConversationState()
        if answer.kind in {"answer", "conflict", "gap", "passage"}:
            platform = answer.platform if answer.platform and answer.platform != "general" else None
            state.platform = platform or (turn.platforms[0] if turn.platforms else state.platform)
            if answer.topic:
                state.topic = answer.topic
            if turn.regions:
                state.region = turn.regions[0]
            if answer.citations:
                state.citations = answer.citations
                state.fact_ids = answer.fact_ids
        state.updated_at = time.monotonic()
        return state

