"""PolicyQA (Ahmad et al., Findings of EMNLP 2020) through the engine's retrieval and quoting.

    .venv/bin/python scripts/bench_policyqa.py [--data PATH/test.json] [--no-docs]

Every passage (`context`) of the 20 test policies is indexed with the engine's own components:
the packaged all-MiniLM-L6-v2 Embedder + faiss IndexFlatIP (dense), bot.index.Lexical /
lexical_tokens (BM25), and the engine's hybrid = dense + weight × BM25 / best BM25 (Engine._rank,
lexical_weight 0.12; a sweep of weights is shown too). Each question searches only its own
policy's passages. A retrieved passage is a hit when it contains one of that example's gold
answer spans (the gold passage always does).

The quoted answer mirrors the engine: walk the hybrid ranking and quote the first passage's
best sentence by lexical overlap with the question (Engine._quotable_sentence itself: sentences
of ≥ 5 words, most shared stemmed content words first). It is scored with SQuAD v1.1 F1 / EM
(lower-case, strip punctuation and articles, collapse whitespace; max over gold answers; mean
over examples). Published reading-comprehension figures are handed the gold passage and extract
a span, so they are not directly comparable; the table also shows our quote taken from the gold
passage, which is the closest like-for-like.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys
import time
from math import comb
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

DEFAULT_DATA = Path("/work/shared/benchmarks/policyqa/test.json")
ENGINE_WEIGHT = 0.12  # Tuning.lexical_weight in bot/engine.py
SWEEP = [0.0, 0.05, 0.12, 0.25, 0.5, 1.0, 2.0]
KS = (1, 3, 5)
TARGET_RECALL3 = 0.82


# ---------------------------------------------------------------- SQuAD v1.1 scoring

def normalize_answer(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def best_over_gold(metric, prediction: str | None, golds: list[str]) -> float:
    if prediction is None:
        return 0.0
    return max(metric(prediction, g) for g in golds)


# ---------------------------------------------------------------- data

def load(path: Path):
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    policies = []  # each: {"title", "passages": [distinct context texts], "examples": [...]}
    for doc in data:
        passages: list[str] = []
        row_of: dict[str, int] = {}
        examples = []
        for paragraph in doc["paragraphs"]:
            context = paragraph["context"]
            if context not in row_of:
                row_of[context] = len(passages)
                passages.append(context)
            for qa in paragraph["qas"]:
                golds = [a["text"] for a in qa["answers"]]
                examples.append({"id": qa["id"], "question": qa["question"], "golds": golds,
                                 "gold_row": row_of[context], "category": qa["type"].split("|||")[0]})
        for ex in examples:  # every passage holding one of this example's gold spans is a hit
            ex["hits"] = sorted({i for i, p in enumerate(passages) if any(g and g in p for g in ex["golds"])}
                                | {ex["gold_row"]})
        policies.append({"title": doc["title"], "passages": passages, "examples": examples})
    return policies


# ---------------------------------------------------------------- retrieval

def rankings(policies, embedder, lexical_cls):
    import faiss

    all_passages = [p for pol in policies for p in pol["passages"]]
    questions = sorted({ex["question"] for pol in policies for ex in pol["examples"]})
    started = time.perf_counter()
    passage_vectors = embedder.embed(all_passages)
    embed_passages_s = time.perf_counter() - started
    started = time.perf_counter()
    question_vectors = dict(zip(questions, embedder.embed(questions)))
    embed_questions_s = time.perf_counter() - started
    offset = 0
    for pol in policies:
        n = len(pol["passages"])
        vectors = passage_vectors[offset:offset + n]
        offset += n
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        lexical = lexical_cls(pol["passages"])
        cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for ex in pol["examples"]:
            q = ex["question"]
            if q not in cache:
                scores, rows = index.search(question_vectors[q][None, :], n)
                dense = np.empty(n, dtype=np.float32)
                dense[rows[0]] = scores[0]
                cache[q] = (dense, lexical.scores(q))
            ex["dense"], ex["bm25"] = cache[q]
    return {"distinct_passages": len(all_passages), "distinct_questions": len(questions),
            "embed_passages_s": embed_passages_s, "embed_questions_s": embed_questions_s}


def hybrid_scores(ex, weight: float) -> np.ndarray:
    bm25 = ex["bm25"]
    top = float(bm25.max()) if bm25.size else 0.0
    return ex["dense"] + (weight * bm25 / top if top > 0 else 0.0)


def order(scores: np.ndarray) -> np.ndarray:
    return np.argsort(-scores, kind="stable")


def recall(examples, score_fn) -> dict[int, float]:
    found = {k: 0 for k in KS}
    for ex in examples:
        ranked = order(score_fn(ex))
        hits = set(ex["hits"])
        for k in KS:
            found[k] += bool(hits & set(ranked[:k].tolist()))
    return {k: found[k] / len(examples) for k in KS}


def random_recall(examples) -> dict[int, float]:
    out = {}
    for k in KS:
        total = 0.0
        for ex in examples:
            n, m = len(ex["dense"]), len(ex["hits"])
            kk = min(k, n)
            total += 1 - comb(n - m, kk) / comb(n, kk)
        out[k] = total / len(examples)
    return out


def ceiling(policies) -> dict[int, float]:
    """The best per-example recall any retriever can reach when it ranks a policy's passages once per
    question: examples sharing a (policy, question) share one ranking, but their gold passages differ.
    Greedy maximum coverage (exact for k = 1, near-optimal beyond)."""
    covered = {k: 0 for k in KS}
    total = 0
    for pol in policies:
        groups: dict[str, list[set[int]]] = collections.defaultdict(list)
        for ex in pol["examples"]:
            groups[ex["question"]].append(set(ex["hits"]))
        for hit_sets in groups.values():
            total += len(hit_sets)
            chosen: set[int] = set()
            for step in range(1, max(KS) + 1):
                uncovered = [h for h in hit_sets if not h & chosen]
                counts = collections.Counter(p for h in uncovered for p in h)
                if counts:
                    chosen.add(counts.most_common(1)[0][0])
                if step in KS:
                    covered[step] += sum(1 for h in hit_sets if h & chosen)
    return {k: covered[k] / total for k in KS}


# ---------------------------------------------------------------- quoting

def engine_quote(ranked_rows, passages, question, quotable) -> str | None:
    """As Engine._best_passage: the first passage in ranking order that yields a quotable sentence."""
    for row in ranked_rows:
        quote = quotable(passages[row], question, passages[row])
        if quote:
            return quote
    return None


def sentences_of(text: str, split) -> list[str]:
    return [s.strip() for s in split(text) if s.strip()]


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--docs", action=argparse.BooleanOptionalAction, default=True,
                        help="update docs/bench/latest.{json,md}")
    args = parser.parse_args()

    from bot.engine import Engine
    from bot.index import Embedder, Lexical
    from bot.logs import setup_logging

    setup_logging("WARNING")
    started = time.perf_counter()
    policies = load(args.data)
    examples = [ex for pol in policies for ex in pol["examples"]]
    embedder = Embedder()
    info = rankings(policies, embedder, Lexical)
    result = {"date": bl.now_iso(), "machine": bl.machine_info(), "data": str(args.data),
              "policies": len(policies), "examples": len(examples), **info,
              "passages_per_policy": [len(p["passages"]) for p in policies]}

    # Retrieval
    methods = {"lexical (BM25)": lambda ex: ex["bm25"], "dense (MiniLM + faiss)": lambda ex: ex["dense"],
               f"hybrid, engine weight {ENGINE_WEIGHT}": lambda ex: hybrid_scores(ex, ENGINE_WEIGHT)}
    retrieval = {name: recall(examples, fn) for name, fn in methods.items()}
    retrieval["random passages (chance)"] = random_recall(examples)
    retrieval["ceiling: best single ranking per (policy, question)"] = ceiling(policies)
    sweep = {w: recall(examples, lambda ex, w=w: hybrid_scores(ex, w)) for w in SWEEP}
    # Grouped: one (policy, question) counts once, a hit when any of its gold passages is retrieved.
    grouped_examples = []
    for pol in policies:
        groups: dict[str, dict] = {}
        for ex in pol["examples"]:
            g = groups.setdefault(ex["question"], {**ex, "hits": set()})
            g["hits"] = set(g["hits"]) | set(ex["hits"])
        grouped_examples += list(groups.values())
    grouped = recall(grouped_examples, lambda ex: hybrid_scores(ex, ENGINE_WEIGHT))
    by_category = collections.defaultdict(list)
    for ex in examples:
        by_category[ex["category"]].append(ex)
    categories = {c: {"examples": len(exs), "recall": recall(exs, lambda ex: hybrid_scores(ex, ENGINE_WEIGHT))}
                  for c, exs in sorted(by_category.items(), key=lambda kv: -len(kv[1]))}

    # Quoted-answer accuracy
    quotable = Engine._quotable_sentence
    compose_sentences = bl.split_sentences_fn()
    scores = collections.defaultdict(lambda: {"f1": [], "em": []})
    for pol in policies:
        passages = pol["passages"]
        for ex in pol["examples"]:
            q, golds = ex["question"], ex["golds"]
            ranked = order(hybrid_scores(ex, ENGINE_WEIGHT)).tolist()
            predictions = {
                "engine quote, hybrid top passage (retrieved)": engine_quote(ranked, passages, q, quotable),
                "engine quote from the gold passage": engine_quote([ex["gold_row"]], passages, q, quotable)
                or passages[ex["gold_row"]],
                "whole gold passage": passages[ex["gold_row"]],
            }
            for name, prediction in predictions.items():
                scores[name]["f1"].append(best_over_gold(f1_score, prediction, golds))
                scores[name]["em"].append(best_over_gold(exact_match, prediction, golds))
            # Ceiling of sentence quoting: the best sentence of the gold passage, chosen knowing the answer.
            sents = sentences_of(passages[ex["gold_row"]], compose_sentences) or [passages[ex["gold_row"]]]
            scores["best sentence of gold passage (oracle ceiling)"]["f1"].append(
                max(best_over_gold(f1_score, s, golds) for s in sents))
            scores["best sentence of gold passage (oracle ceiling)"]["em"].append(
                max(best_over_gold(exact_match, s, golds) for s in sents))
    answer_scores = {name: {"f1": 100 * float(np.mean(v["f1"])), "em": 100 * float(np.mean(v["em"]))}
                     for name, v in scores.items()}
    result.update(retrieval=retrieval, hybrid_sweep=sweep, grouped_by_question=grouped,
                  by_category=categories, answer_scores=answer_scores, seconds=time.perf_counter() - started)
    hybrid3 = retrieval[f"hybrid, engine weight {ENGINE_WEIGHT}"][3]
    result["target"] = {"hybrid_recall_at_3": hybrid3, "target": TARGET_RECALL3, "met": hybrid3 >= TARGET_RECALL3,
                        "margin": hybrid3 - TARGET_RECALL3}

    markdown = render(result)
    print(markdown)
    path = bl.save_results("bench_policyqa", result, markdown, args.docs)
    print(f"\nJSON: {path}" + ("  (docs/bench/latest.* updated)" if args.docs else ""))
    return 0


def render(r: dict) -> str:
    per = r["passages_per_policy"]
    lines = [bl.header_lines(r), "",
             f"Data: PolicyQA test split, {r['policies']} policies, {r['examples']:,} examples, "
             f"{r['distinct_passages']} distinct passages (2–63 per policy, median {int(np.median(per))}), "
             f"{r['distinct_questions']} distinct questions; each passage and question embedded once "
             f"({r['embed_passages_s']:.1f} s + {r['embed_questions_s']:.1f} s). Each question searches only its "
             "own policy. Hit = a retrieved passage contains one of the example's gold answer spans.", "",
             "### Passage recall (per example)", "",
             bl.table(["retrieval", "recall@1", "recall@3", "recall@5"],
                      [[name, v[1], v[3], v[5]] for name, v in r["retrieval"].items()], digits=3), "",
             "The ceiling row: a question is asked of many passages of the same policy (each its own example, with "
             "its own gold passage), but a retriever ranks the policy once for that question, so no retriever can "
             "put every one of those gold passages in its top k.", "",
             f"Grouped by (policy, question) — one count per distinct question, hit when any of its gold passages is "
             f"retrieved — hybrid {ENGINE_WEIGHT}: recall@1 {r['grouped_by_question'][1]:.3f}, "
             f"@3 {r['grouped_by_question'][3]:.3f}, @5 {r['grouped_by_question'][5]:.3f}.", "",
             "### Hybrid weight sweep (dense + w × BM25 / best BM25)", "",
             bl.table(["w", "recall@1", "recall@3", "recall@5"],
                      [[f"{w:g}" + (" (engine)" if w == ENGINE_WEIGHT else ""), v[1], v[3], v[5]]
                       for w, v in r["hybrid_sweep"].items()], digits=3), "",
             f"### Hybrid ({ENGINE_WEIGHT}) recall by OPP-115 category", "",
             bl.table(["category", "examples", "recall@1", "recall@3", "recall@5"],
                      [[c, v["examples"], v["recall"][1], v["recall"][3], v["recall"][5]]
                       for c, v in r["by_category"].items()], digits=3), "",
             "### Answer accuracy (SQuAD v1.1 F1 / EM, %) beside published figures", "",
             bl.table(["system", "F1", "EM", "setting"],
                      [[name, v["f1"], v["em"], "ours: retrieval within the policy, then a quoted sentence"
                        if "retrieved" in name else "ours: handed the gold passage"]
                       for name, v in r["answer_scores"].items()]
                      + [["BERT (bert-base-uncased, upstream)", 55.3, 27.6, "published: reading comprehension, "
                          "handed the gold passage, extracts a span"],
                         ["PrivBERT (PrivacyGLUE)", 59.3, 31.4, "published: same"],
                         ["PriBot (Harkous et al. 2018)", "—", "—", "published: 82% correct in top-3 (its own "
                          "question set, segment retrieval) — compare with recall@3 above, loosely"]], digits=1), "",
             "Not directly comparable: the published systems are handed the gold passage and trained to extract a "
             "short span (answers average ~12 words); the engine quotes a whole sentence, which caps EM and lowers "
             "F1 even when the right sentence is quoted (see the oracle ceiling row).", ""]
    t = r["target"]
    lines.append(f"**Target hybrid recall@3 ≥ {t['target']:.2f}: {t['hybrid_recall_at_3']:.3f} — "
                 f"{'met' if t['met'] else 'missed'} by {abs(t['margin']):.3f}.**")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
