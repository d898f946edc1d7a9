"""The index is cached by content hash: a start with a current cache never re-embeds,
a change to the knowledge rebuilds it, and a damaged cache is rebuilt rather than crashing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from bot.index import build_search_index, cache_key
from bot.knowledge import DEFAULT_KNOWLEDGE_DIR, load_knowledge


class CountingEmbedder:
    """The real embedder, counting how many texts it is asked to embed."""

    def __init__(self, real) -> None:
        self._real = real
        self.embedded = 0

    def embed(self, texts, batch_size=16):
        self.embedded += len(texts)
        return self._real.embed(texts, batch_size=batch_size)

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.fixture
def small_knowledge_dir(tmp_path_factory) -> Path:
    """A small but valid base: the vocabulary, one fact and the four sources it cites (quick to embed)."""
    target = tmp_path_factory.mktemp("kb") / "knowledge"
    (target / "facts").mkdir(parents=True)
    (target / "sources").mkdir()
    shutil.copy(DEFAULT_KNOWLEDGE_DIR / "vocabulary.yaml", target)
    facts = yaml.safe_load((DEFAULT_KNOWLEDGE_DIR / "facts" / "linkedin-optout.yaml").read_text())
    fact = next(f for f in facts if f["id"] == "linkedin-optout-web")
    fact.pop("related", None)
    (target / "facts" / "linkedin-optout.yaml").write_text(yaml.safe_dump([fact], sort_keys=False, allow_unicode=True))
    for citation in fact["citations"]:
        shutil.copy(DEFAULT_KNOWLEDGE_DIR / "sources" / f"{citation['source']}.md", target / "sources")
    return target


def test_a_current_cache_is_loaded_without_embedding_anything(engine, small_knowledge_dir, tmp_path):
    knowledge = load_knowledge(small_knowledge_dir)
    embedder = CountingEmbedder(engine.index.embedder)
    first = build_search_index(knowledge, tmp_path, embedder=embedder)
    assert first.built and embedder.embedded > 0
    embedder.embedded = 0
    second = build_search_index(knowledge, tmp_path, embedder=embedder)
    assert not second.built and embedder.embedded == 0
    assert second.fact_vectors.ntotal == first.fact_vectors.ntotal


def test_changing_the_knowledge_rebuilds_the_index(engine, small_knowledge_dir, tmp_path):
    embedder = CountingEmbedder(engine.index.embedder)
    before = load_knowledge(small_knowledge_dir)
    build_search_index(before, tmp_path, embedder=embedder)
    facts = small_knowledge_dir / "facts" / "linkedin-optout.yaml"
    facts.write_text(facts.read_text().replace("linkedin ai opt out", "linkedin ai opt-out please", 1))
    after = load_knowledge(small_knowledge_dir)
    assert cache_key(after) != cache_key(before)
    embedder.embedded = 0
    rebuilt = build_search_index(after, tmp_path, embedder=embedder)
    assert rebuilt.built and embedder.embedded > 0
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [cache_key(after)]  # old cache dropped


@pytest.mark.parametrize("damage", ["corrupt", "truncate", "missing"])
def test_a_damaged_cache_is_rebuilt_not_crashed(engine, small_knowledge_dir, tmp_path, damage):
    knowledge = load_knowledge(small_knowledge_dir)
    embedder = CountingEmbedder(engine.index.embedder)
    build_search_index(knowledge, tmp_path, embedder=embedder)
    vectors = tmp_path / cache_key(knowledge) / "facts.npy"
    if damage == "corrupt":
        vectors.write_bytes(b"not a numpy file")
    elif damage == "truncate":
        np.save(vectors, np.zeros((3, 384), dtype=np.float32))
    else:
        vectors.unlink()
    embedder.embedded = 0
    index = build_search_index(knowledge, tmp_path, embedder=embedder)
    assert index.built and embedder.embedded > 0
