"""Ranking facts for a message: dense similarity + BM25 + topic, platform and region boosts.

The weights and thresholds the engine decides with live in `Tuning`, in one place, set
against tests/eval (our evaluation set and a held-out set written blind).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.dialogue import Turn
from bot.index import SearchIndex
from bot.knowledge import Fact, Knowledge


@dataclass(frozen=True)
class Tuning:
    """Retrieval weights and decision thresholds (similarities are cosine, 0..1)."""

    lexical_weight: float = 0.12
    topic_boost: float = 0.08
    inherited_topic_boost: float = 0.08
    inherited_platform_boost: float = 0.10
    region_boost: float = 0.12
    region_mismatch_penalty: float = 0.08
    gap_penalty: float = 0.0  # gap facts' questions are written to be specific to the gap
    conflict_penalty: float = 0.03
    comparison_boost: float = 0.10
    strong_match: float = 0.72  # dense similarity that counts as "this is the question a fact answers"
    unknown_word_shift: float = 0.88  # below this, dropping unknown words changes what is asked
    min_fact_score: float = 0.46  # below this no fact answers
    min_fact_score_no_platform: float = 0.55
    min_passage_score: float = 0.58
    passage_margin: float = 0.08  # a passage must beat the best fact by this much to be preferred
    second_fact_margin: float = 0.06
    conflict_note_margin: float = 0.10
    yes_no_similarity: float = 0.72


@dataclass
class Scored:
    fact: Fact
    score: float
    dense: float
    first_question: float = 0.0


@dataclass(frozen=True)
class FactArrays:
    """The facts as numpy arrays, in the index's fact order, so ranking is a few vector operations."""

    facts: list[Fact]
    count: int
    owner: np.ndarray  # fact number of each vector row
    is_first_question: np.ndarray  # row holds the fact's first question (for yes/no answers)
    platform: np.ndarray
    topic: np.ndarray
    regions: np.ndarray  # facts x regions, True where the fact applies
    is_gap: np.ndarray
    is_conflict: np.ndarray
    platform_code: dict[str, int]
    topic_code: dict[str, int]
    region_code: dict[str, int]

    @classmethod
    def build(cls, knowledge: Knowledge, index: SearchIndex) -> FactArrays:
        by_id = knowledge.facts_by_id
        facts = [by_id[fid] for fid in index.fact_order]
        number = {fact.id: i for i, fact in enumerate(facts)}
        vocabulary = knowledge.vocabulary
        platform_code = {p: i for i, p in enumerate(vocabulary.platforms)}
        topic_code = {x: i for i, x in enumerate(vocabulary.topics)}
        region_code = {r: i for i, r in enumerate(vocabulary.regions)}
        owner = np.array([number[fid] for fid in index.fact_ids], dtype=np.int64)
        seen: set[str] = set()
        is_first = np.zeros(len(index.fact_ids), dtype=bool)
        for row, fid in enumerate(index.fact_ids):
            if fid not in seen:  # each fact's vectors start with its first question
                is_first[row] = True
                seen.add(fid)
        regions = np.zeros((len(facts), len(region_code)), dtype=bool)
        for i, fact in enumerate(facts):
            regions[i, [region_code[r] for r in fact.regions]] = True
        return cls(
            facts=facts, count=len(facts), owner=owner, is_first_question=is_first,
            platform=np.array([platform_code[x.platform] for x in facts]),
            topic=np.array([topic_code[x.topic] for x in facts]),
            regions=regions,
            is_gap=np.array([x.kind == "gap" for x in facts]),
            is_conflict=np.array([x.kind == "conflict" for x in facts]),
            platform_code=platform_code, topic_code=topic_code, region_code=region_code,
        )


class Ranker:
    """Scores every fact for a message, vectorised over facts with numpy."""

    def __init__(self, knowledge: Knowledge, index: SearchIndex, tuning: Tuning) -> None:
        self.index = index
        self.tuning = tuning
        self.arrays = FactArrays.build(knowledge, index)

    def rank(self, turn: Turn, query_vector: np.ndarray, query_text: str) -> list[Scored]:
        """Score every fact: dense similarity (best of its vectors) + BM25 + topic, platform and region boosts.

        Vectorised over facts with numpy: this runs on every message, beside the embedding it must not outweigh.
        """
        t, f = self.tuning, self.arrays
        scores, rows = self.index.fact_vectors.search(query_vector, min(self.index.fact_vectors.ntotal, 512))
        found = rows[0] >= 0
        rows, scores = rows[0][found], scores[0][found]
        owners = f.owner[rows]
        dense = np.full(f.count, -np.inf, dtype=np.float32)
        np.maximum.at(dense, owners, scores)
        first_question = np.zeros(f.count, dtype=np.float32)
        is_first = f.is_first_question[rows]
        first_question[owners[is_first]] = scores[is_first]

        score = dense.copy()
        lexical = self.index.fact_lexical.scores(query_text)
        if lexical.size and lexical.max() > 0:
            score += t.lexical_weight * lexical / lexical.max()
        keep = np.isfinite(dense)
        explicit = [f.platform_code[p] for p in turn.platforms if p in f.platform_code]
        if turn.platforms:
            allowed = np.isin(f.platform, explicit)
            if "comparison" in turn.topics or len(explicit) >= 2:
                allowed |= f.platform == f.platform_code["general"]
            keep &= allowed
        if turn.inherited_platform in f.platform_code:
            score += t.inherited_platform_boost * (f.platform == f.platform_code[turn.inherited_platform])
        asked = [f.topic_code[x] for x in turn.topics if x in f.topic_code]
        if asked:
            in_asked = np.isin(f.topic, asked)
            score += t.topic_boost * in_asked * np.where(f.topic == asked[0], 1.5, 1.0)
            # "Is LinkedIn the only one?" asks about everyone else
            score += t.comparison_boost * (in_asked & (f.platform == f.platform_code["general"]))
        else:
            in_asked = np.zeros(f.count, dtype=bool)
        if turn.inherited_topic in f.topic_code:
            # A bare follow-up ("What about Facebook?") carries no topic or region words of its own.
            bare = turn.understanding.looks_like_follow_up and not turn.regions
            inherited = ~in_asked & (f.topic == f.topic_code[turn.inherited_topic])
            score += t.inherited_topic_boost * (2 if bare else 1) * inherited
        score += self._region_adjustments(turn.regions)
        score -= t.gap_penalty * f.is_gap + t.conflict_penalty * f.is_conflict  # near ties: plain fact first

        candidates = np.nonzero(keep)[0]
        order = candidates[np.argsort(-score[candidates], kind="stable")][:80]
        ranked = [Scored(f.facts[i], float(score[i]), float(dense[i]), float(first_question[i])) for i in order]
        return ranked

    def _region_adjustments(self, regions: list[str]) -> np.ndarray | float:
        """Facts about the region asked go up; facts about other regions only go down."""
        if not regions:
            return 0.0
        f = self.arrays
        wanted = set(regions) | ({"eea"} if "eu" in regions else set())  # an EEA fact answers an EU question
        columns = [f.region_code[r] for r in wanted if r in f.region_code]
        matches = f.regions[:, columns].any(axis=1) if columns else np.zeros(f.count, dtype=bool)
        is_global = f.regions[:, f.region_code["global"]]
        return np.where(matches, self.tuning.region_boost,
                        np.where(is_global, 0.0, -self.tuning.region_mismatch_penalty))

