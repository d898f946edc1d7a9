"""How the engine grows: knowledge at 1×, 10× and 100×, and exact vs approximate faiss search.

    .venv/bin/python scripts/bench_growth.py            # ~10-15 minutes on 2 cores; updates docs/bench/
    .venv/bin/python scripts/bench_growth.py --quick    # smaller sizes, fewer queries; bench-results/ only
    .venv/bin/python scripts/bench_growth.py --embed-10x  # also really embed the 10× knowledge (slow)

Part A — the whole engine with the knowledge grown to N× its indexed size (facts + passages),
by adding synthetic passages through build_search_index(..., extra_passages=...). A synthetic
passage is a re-windowed, re-ordered copy of a real source's sentences (every sentence stays
verbatim, so quoting behaves as with real passages). Each size runs in a fresh process, so memory
is the RSS growth of that process. 1× is built for real (embedding everything into an empty
cache). Embedding 10× and 100× takes far too long on 2 cores, so by default their passage vectors
are *synthetic*: perturbed copies of real passage vectors (noise + a mix of another passage); the
index, BM25 and engine are then built and timed for real, and the embedding time is *estimated*
from the embedding throughput measured in the same process. Per-answer latency is the engine
(engine.respond) beside the floor (embed + fact search), interleaved, in the same process.
The engine picks exact or HNSW by its own threshold (settings.approximate_index_threshold).

Part B — exact (IndexFlatIP) vs approximate (HNSW via bot.index.vector_index with a threshold of
0) search: single-query latency and recall@10 against exact search, at growing sizes, using
synthetic vectors made by perturbing the real fact and passage vectors, queried with the real
embedded evaluation questions. Both indexes grow incrementally, interleaved queries (exact, HNSW
at each efSearch, exact, ...). From it: the size where exact search costs more than ~1 ms or
~10% of the floor while HNSW keeps recall@10 ≥ 0.95, and whether the 50,000 default is right.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

EF_SEARCH = [16, 32, 64, 128]
ENGINE_EF = 64  # the efSearch every size is compared at (bot.index.vector_index's choice is shown too)


def engine_ef_search(size: int, dimension: int = 384) -> int | None:
    """The efSearch bot.index.vector_index gives an HNSW index of `size` vectors, read by calling it with
    a stand-in faiss (nothing is built) and a zero-copy array of that many rows."""
    import types

    import bot.index as bi

    class Stub:
        def __init__(self, *args) -> None:
            self.hnsw = types.SimpleNamespace(efConstruction=None, efSearch=None)

        def add(self, vectors) -> None:
            pass

    real = bi.faiss
    bi.faiss = types.SimpleNamespace(IndexHNSWFlat=Stub, IndexFlatIP=Stub, METRIC_INNER_PRODUCT=real.METRIC_INNER_PRODUCT)
    try:
        fake = np.lib.stride_tricks.as_strided(np.zeros(dimension, dtype=np.float32), (size, dimension), (0, 4))
        return bi.vector_index(fake, approximate_threshold=0).hnsw.efSearch
    finally:
        bi.faiss = real


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- synthetic material

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“'])")


def synthetic_passages(knowledge, count: int, seed: int):
    """Re-windowed copies of real sources: 2-5 consecutive sentences from a random place, sometimes
    shuffled; every sentence verbatim from its source."""
    from bot.index import Passage, split_passages

    rng = random.Random(seed)
    per_source = []
    for source in knowledge.sources.values():
        sentences = [s for p in split_passages(source.id, source.text) for s in _SENTENCE.split(p.text)
                     if len(s.split()) >= 4]
        if len(sentences) >= 3:
            per_source.append((source.id, sentences))
    out = []
    for _ in range(count):
        source_id, sentences = per_source[rng.randrange(len(per_source))]
        length = rng.randint(2, min(5, len(sentences)))
        start = rng.randrange(len(sentences) - length + 1)
        chosen = sentences[start:start + length]
        if rng.random() < 0.5:
            rng.shuffle(chosen)
        out.append(Passage(source_id, " ".join(chosen)))
    return out


def perturbed_vectors(base: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Synthetic unit vectors near the real ones: v = b_i + a·b_j + noise, normalised.

    a ~ U(0, 0.5), noise norm ~ U(0.4, 0.9): cosine to the nearest real vector ~0.75-0.93. Gaussian
    noise spreads points in all 384 dimensions, which is harder for HNSW than real text, whose
    vectors lie closer to a low-dimensional surface: recall here is, if anything, pessimistic.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((count, base.shape[1]), dtype=np.float32)
    for start in range(0, count, 50_000):
        n = min(50_000, count - start)
        i = rng.integers(0, len(base), n)
        j = rng.integers(0, len(base), n)
        a = rng.uniform(0, 0.5, (n, 1)).astype(np.float32)
        noise = rng.standard_normal((n, base.shape[1])).astype(np.float32)
        noise *= (rng.uniform(0.4, 0.9, (n, 1)) / np.linalg.norm(noise, axis=1, keepdims=True)).astype(np.float32)
        v = base[i] + a * base[j] + noise
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[start:start + n] = v
    return out


# ---------------------------------------------------------------- Part A worker (one size per process)

def worker(multiple: int, embed: bool, questions: int, seed: int) -> dict:
    from bot.engine import Engine
    from bot.index import (Embedder, Lexical, SearchIndex, _fact_texts, all_passages, build_search_index,
                           fact_document, vector_index)
    from bot.knowledge import load_knowledge
    from bot.logs import setup_logging
    from bot.settings import Settings

    setup_logging("WARNING")
    settings = Settings(_env_file=None)
    knowledge = load_knowledge(settings.knowledge_dir)
    embedder = Embedder()
    embedder.embed_one("warm up")
    base_facts = len(_fact_texts(knowledge)[1])
    base_passages = len(all_passages(knowledge))
    base_total = base_facts + base_passages
    extra_count = (multiple - 1) * base_total
    extras = synthetic_passages(knowledge, extra_count, seed) if extra_count else []
    threshold = settings.approximate_index_threshold
    rss_before = bl.rss_mb()["VmRSS"]
    result = {"multiple": multiple, "vectors": base_total + extra_count, "extra_passages": extra_count,
              "embedded_for_real": embed or multiple == 1, "threshold": threshold}

    if embed or multiple == 1:
        with tempfile.TemporaryDirectory(prefix="growth-") as cache:
            started = time.perf_counter()
            index = build_search_index(knowledge, Path(cache), threshold, embedder=embedder,
                                       extra_passages=extras or None)
            result["build_s"] = time.perf_counter() - started
        result["build_kind"] = "measured (embed + index)"
        result["embed_rate_per_s"] = (base_total + extra_count) / result["build_s"]
    else:
        # Real vectors for today's knowledge (from the cache), synthetic vectors for the extra passages.
        current = build_search_index(knowledge, settings.index_cache_dir, threshold, embedder=embedder)
        fact_vectors = current.fact_vectors.reconstruct_n(0, current.fact_vectors.ntotal)
        real_passages = current.passage_vectors.reconstruct_n(0, current.passage_vectors.ntotal)
        # Embedding throughput on a sample of the synthetic passages, to estimate the embedding time.
        sample = [p.text for p in extras[:256]]
        started = time.perf_counter()
        embedder.embed(sample)
        rate = len(sample) / (time.perf_counter() - started)
        _, fact_texts = _fact_texts(knowledge)
        started = time.perf_counter()
        embedder.embed(fact_texts[:256])
        fact_rate = 256 / (time.perf_counter() - started)
        extra_vectors = perturbed_vectors(real_passages, extra_count, seed)
        passages = current.passages + extras
        started = time.perf_counter()
        fact_order = [f.id for f in knowledge.facts]
        index = SearchIndex(
            fact_ids=current.fact_ids, fact_order=fact_order,
            fact_vectors=vector_index(fact_vectors, threshold),
            fact_lexical=Lexical([fact_document(knowledge, fid) for fid in fact_order]),
            passages=passages,
            passage_vectors=vector_index(np.concatenate([real_passages, extra_vectors]), threshold),
            passage_lexical=Lexical([p.text for p in passages]),
            embedder=embedder, built=True, seconds=0.0)
        index_s = time.perf_counter() - started
        estimated_embed = base_facts / fact_rate + (base_passages + extra_count) / rate
        result.update(build_s=index_s + estimated_embed, index_only_s=index_s, estimated_embed_s=estimated_embed,
                      embed_rate_per_s=rate, build_kind="index measured + embedding estimated")
        del current, fact_vectors, real_passages, extra_vectors
    result["rss_delta_mb"] = bl.rss_mb()["VmRSS"] - rss_before
    result["peak_rss_mb"] = bl.rss_mb()["VmHWM"]
    result["passage_index"] = type(index.passage_vectors).__name__
    result["fact_index"] = type(index.fact_vectors).__name__

    engine = Engine(knowledge, index, settings)
    singles, dialogues = bl.load_eval()
    units = bl.question_units(singles, dialogues, seed=seed)[:questions]
    ks = bl.probe_search_k(engine)
    k_facts, k_pass = ks["fact_k"], ks["passage_k"]
    result["search_k"] = ks
    times = {"floor": [], "respond": [], "passage_search": []}
    states: dict[int, object] = {}
    for warm in units[:20]:
        engine.respond(warm[2], None)
    for n, (conv, _, text) in enumerate(units):
        order = ["floor", "respond"] if n % 2 == 0 else ["respond", "floor"]
        for name in order:
            started = time.perf_counter()
            if name == "floor":
                vector = embedder.embed_one(text)
                index.fact_vectors.search(vector, k_facts)
            else:
                _, states[conv] = engine.respond(text, states.get(conv))
            times[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        index.passage_vectors.search(vector, k_pass)
        times["passage_search"].append(time.perf_counter() - started)
    result["latency"] = {k: bl.summary_ms(v) for k, v in times.items()}
    result["latency"]["median_ratio"] = result["latency"]["respond"]["median_ms"] / result["latency"]["floor"]["median_ms"]
    result["latency"]["p95_ratio_vs_floor_p95"] = result["latency"]["respond"]["p95_ms"] / result["latency"]["floor"]["p95_ms"]
    return result


def part_a(multiples: list[int], embed_10x: bool, questions: int) -> list[dict]:
    out = []
    for multiple in multiples:
        embed = multiple == 1 or (multiple == 10 and embed_10x)
        say(f"part A: knowledge x{multiple} ({'embedding for real' if embed else 'synthetic vectors'})")
        cmd = [bl.PYTHON, __file__, "--worker", str(multiple), "--questions", str(questions)] + (["--embed"] if embed else [])
        proc = subprocess.run(cmd, cwd=bl.ROOT, capture_output=True, text=True,
                              env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        if proc.returncode != 0:
            raise RuntimeError(f"worker x{multiple} failed:\n{proc.stderr[-3000:]}")
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


# ---------------------------------------------------------------- Part B: exact vs HNSW

def part_b(sizes: list[int], queries: int, seed: int) -> dict:
    import faiss

    from bot.index import build_search_index, vector_index
    from bot.knowledge import load_knowledge
    from bot.logs import setup_logging
    from bot.settings import Settings

    setup_logging("WARNING")
    settings = Settings(_env_file=None)
    index = build_search_index(load_knowledge(settings.knowledge_dir), settings.index_cache_dir,
                               settings.approximate_index_threshold)
    base = np.concatenate([index.fact_vectors.reconstruct_n(0, index.fact_vectors.ntotal),
                           index.passage_vectors.reconstruct_n(0, index.passage_vectors.ntotal)])
    singles, dialogues = bl.load_eval()
    texts = [t for _, _, t in bl.question_units(singles, dialogues, seed=seed) if t.strip()][:queries]
    query_vectors = index.embedder.embed(texts)

    # The floor, measured here too (medians before and after the sweep are reported).
    def floor_ms(n: int = 60) -> float:
        k = fact_k
        for t in texts[:10]:  # warm-up
            index.embedder.embed_one(t)
        ts = []
        for t in texts[:n]:
            time.sleep(0.02)  # as between messages: idle OpenMP threads (faiss's, torch's) stop spinning
            started = time.perf_counter()
            index.fact_vectors.search(index.embedder.embed_one(t), k)
            ts.append(time.perf_counter() - started)
        return bl.pct(ts, 50) * 1000

    from bot.engine import Engine

    fact_k = bl.probe_search_k(Engine(load_knowledge(settings.knowledge_dir), index, settings))["fact_k"]
    floor_before = floor_ms()
    engine_threads = faiss.omp_get_max_threads()  # as bot.index leaves it
    default_threads = os.cpu_count() or 2  # faiss's own default: one OpenMP thread per core
    vectors = perturbed_vectors(base, max(sizes), seed)
    vectors[:len(base)] = base  # the real vectors are part of every size
    rss0 = bl.rss_mb()["VmRSS"]
    exact = faiss.IndexFlatIP(base.shape[1])
    hnsw = vector_index(vectors[:1], approximate_threshold=0)  # HNSW exactly as the engine makes it
    hnsw.reset()
    rows = []
    have = 0
    hnsw_build_total = exact_build_total = 0.0
    for size in sizes:
        chunk = vectors[have:size]
        started = time.perf_counter()
        exact.add(chunk)
        exact_build_total += time.perf_counter() - started
        started = time.perf_counter()
        hnsw.add(chunk)
        hnsw_build_total += time.perf_counter() - started
        have = size
        say(f"part B: {size:,} vectors (HNSW build so far {hnsw_build_total:.0f} s)")
        truth = exact.search(query_vectors, 10)[1]
        recall = {}
        for ef in EF_SEARCH:
            hnsw.hnsw.efSearch = ef
            found = hnsw.search(query_vectors, 10)[1]
            recall[ef] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth)]))
        # Single-query latency (nq = 1, as the engine searches), interleaved, alternating order.
        # "exact" runs with faiss's default OpenMP threads (what the engine does today), "exact-1t" with one.
        times = {"exact": [], "exact-1t": [], **{ef: [] for ef in EF_SEARCH}}
        names = ["exact", "exact-1t", *EF_SEARCH]
        for qi in range(len(query_vectors)):
            q = query_vectors[qi:qi + 1]
            for name in (names if qi % 2 == 0 else names[::-1]):
                if name in ("exact", "exact-1t"):
                    faiss.omp_set_num_threads(1 if name == "exact-1t" else default_threads)
                    started = time.perf_counter()
                    exact.search(q, 16)
                    elapsed = time.perf_counter() - started
                    faiss.omp_set_num_threads(engine_threads)
                else:
                    hnsw.hnsw.efSearch = name
                    started = time.perf_counter()
                    hnsw.search(q, 16)
                    elapsed = time.perf_counter() - started
                times[name].append(elapsed)
        hnsw.hnsw.efSearch = ENGINE_EF
        rows.append({
            "vectors": size,
            "exact_median_ms": bl.pct(times["exact"], 50) * 1000, "exact_p95_ms": bl.pct(times["exact"], 95) * 1000,
            "exact_1t_median_ms": bl.pct(times["exact-1t"], 50) * 1000,
            "exact_1t_p95_ms": bl.pct(times["exact-1t"], 95) * 1000,
            "hnsw": {ef: {"median_ms": bl.pct(times[ef], 50) * 1000, "p95_ms": bl.pct(times[ef], 95) * 1000,
                          "recall_at_10": recall[ef]} for ef in EF_SEARCH},
            "exact_mb_nominal": size * base.shape[1] * 4 / 1e6,
            "hnsw_mb_nominal": (size * base.shape[1] * 4 + size * 32 * 2 * 4 * 1.1) / 1e6,
            "rss_delta_mb_both": bl.rss_mb()["VmRSS"] - rss0,
            "hnsw_build_s_cumulative": hnsw_build_total,
            "exact_build_s_cumulative": exact_build_total,
            "loadavg": os.getloadavg()[0],
        })
    floor_after = floor_ms()
    return {"sizes": sizes, "queries": len(query_vectors), "floor_median_ms_before": floor_before,
            "floor_median_ms_after": floor_after, "rows": rows, "M": 32, "efConstruction": 80,
            "faiss_default_threads": default_threads, "engine_faiss_threads": engine_threads,
            "engine_ef_by_size": {size: engine_ef_search(size) for size in sizes}}


def _hnsw(row: dict, ef: int | None) -> float | None:
    h = row["hnsw"]
    found = h.get(ef, h.get(str(ef))) if ef is not None else None
    return found["recall_at_10"] if found else None


def _first_crossing(sizes: list[int], values: list[float], limit: float) -> int | None:
    """The size where a measured curve first passes `limit`, interpolated between measured sizes."""
    previous = (0, 0.0)
    for size, value in zip(sizes, values):
        if value > limit:
            s0, v0 = previous
            return int(s0 + (size - s0) * (limit - v0) / (value - v0)) if value > v0 else size
        previous = (size, value)
    return None


def recommend(b: dict, threshold_default: int | None = None) -> dict:
    if threshold_default is None:
        from bot.settings import Settings

        threshold_default = Settings(_env_file=None).approximate_index_threshold
    rows = b["rows"]
    floor = float(np.median([b["floor_median_ms_before"], b["floor_median_ms_after"]]))
    sizes = [r["vectors"] for r in rows]
    out = {"floor_median_ms": floor, "default": threshold_default}
    for key, column in (("default_threads", "exact_median_ms"), ("one_thread", "exact_1t_median_ms")):
        values = [r[column] for r in rows]
        at_1ms = _first_crossing(sizes, values, 1.0)
        at_10pct = _first_crossing(sizes, values, 0.1 * floor)
        faster = [r["vectors"] for r in rows if r["hnsw"][ENGINE_EF]["median_ms"] < r[column]]
        out[key] = {"exact_exceeds_1ms_at": at_1ms, "exact_exceeds_10pct_floor_at": at_10pct,
                    "hnsw_faster_from": min(faster) if faster else None}
    # Smallest efSearch that keeps recall@10 >= 0.95, per size.
    out["ef_for_recall_95"] = {r["vectors"]: next((ef for ef in EF_SEARCH if r["hnsw"][ef]["recall_at_10"] >= 0.95), None)
                               for r in rows}
    engine_ef = [r["hnsw"][ENGINE_EF]["recall_at_10"] for r in rows]
    out["min_recall_at_engine_ef"] = min(engine_ef)
    out["engine_ef_recall_ok_up_to"] = max((r["vectors"] for r in rows if r["hnsw"][ENGINE_EF]["recall_at_10"] >= 0.95),
                                           default=None)
    # Recall at the efSearch the engine itself would pick for each size.
    by_size = {int(k): v for k, v in b.get("engine_ef_by_size", {}).items()}
    out["engine_choice_recall"] = {r["vectors"]: {"ef": by_size.get(r["vectors"]),
                                                  "recall_at_10": _hnsw(r, by_size.get(r["vectors"]))}
                                   for r in rows if by_size.get(r["vectors"]) is not None}
    # The switch: where exact search with one thread (the recommended faiss setting) passes ~1 ms or 10% of
    # the floor, whichever comes first.
    candidates = [x for x in (out["one_thread"]["exact_exceeds_1ms_at"], out["one_thread"]["exact_exceeds_10pct_floor_at"])
                  if x is not None]
    crossing = min(candidates) if candidates else sizes[-1]
    out["recommended_threshold"] = max(10_000, int(round(crossing, -4)))
    # What exact search costs at the default threshold (interpolated).
    out["exact_ms_at_default"] = {
        "default_threads": float(np.interp(threshold_default, sizes, [r["exact_median_ms"] for r in rows])),
        "one_thread": float(np.interp(threshold_default, sizes, [r["exact_1t_median_ms"] for r in rows]))}
    r = out["recommended_threshold"]
    out["default_verdict"] = ("about right" if 0.5 * r <= threshold_default <= 2 * r else
                              "too high" if threshold_default > 2 * r else "too low")
    return out


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--embed-10x", action="store_true", help="really embed the 10× knowledge (many minutes)")
    parser.add_argument("--sizes", help="Part B sizes, comma-separated (default 10k..500k)")
    parser.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--embed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--questions", type=int, default=200, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.worker:
        print(json.dumps(worker(args.worker, args.embed, args.questions, seed=args.worker), default=bl._json_default))
        return 0

    quick = args.quick
    write_docs = (not quick) if args.docs is None else args.docs
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes else
             [5_000, 10_000, 25_000, 50_000, 100_000] if quick else
             [5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000])
    started = time.perf_counter()
    result = {"date": bl.now_iso(), "machine": bl.machine_info(), "quick": quick}
    result["part_a"] = part_a([1, 10] if quick else [1, 10, 100], args.embed_10x, 100 if quick else 200)
    say("part B: exact vs HNSW")
    result["part_b"] = part_b(sizes, 100 if quick else 200, seed=11)
    result["recommendation"] = recommend(result["part_b"])
    result["seconds"] = time.perf_counter() - started
    result["loadavg_at_end"] = list(os.getloadavg())
    markdown = render(result)
    print(markdown)
    path = bl.save_results("bench_growth", result, markdown, write_docs)
    print(f"\nJSON: {path}" + ("  (docs/bench/latest.* updated)" if write_docs else ""))
    return 0


def render(r: dict) -> str:
    a, b, rec = r["part_a"], r["part_b"], r["recommendation"]
    lines = [bl.header_lines(r) + f" · load average at end {[round(x, 2) for x in r['loadavg_at_end']]}", "",
             "### Part A — the engine with the knowledge at 1×, 10×, 100×", "",
             bl.table(["size", "vectors", "passage index", "build s", "how build was measured", "RSS delta MB",
                       "peak RSS MB", "floor median ms", "engine median ms", "engine p95 ms", "median ÷ floor",
                       "passage search median ms"],
                      [[f"{x['multiple']}×", x["vectors"], x["passage_index"], x["build_s"], x["build_kind"],
                        x["rss_delta_mb"], x["peak_rss_mb"], x["latency"]["floor"]["median_ms"],
                        x["latency"]["respond"]["median_ms"], x["latency"]["respond"]["p95_ms"],
                        x["latency"]["median_ratio"], x["latency"]["passage_search"]["median_ms"]] for x in a]), "",
             "Growth adds synthetic passages (re-windowed real sentences, verbatim), so the fact index stays at "
             "today's size; sizes above 1× use synthetic (perturbed) passage vectors unless embedded for real, "
             "with the embedding time estimated from the throughput measured in the same process "
             + ", ".join(f"{x['multiple']}×: {x['embed_rate_per_s']:.0f} texts/s" for x in a) + ". "
             f"The engine's own threshold ({a[0]['threshold']:,} vectors) chooses the passage index.", "",
             f"### Part B — exact (IndexFlatIP) vs HNSW (M=32, efConstruction=80; engine efSearch={ENGINE_EF}), "
             f"single-query k=16 latency, recall@10 vs exact, {b['queries']} real questions", ""]
    headers = ["vectors", f"exact median ms ({b['faiss_default_threads']} OpenMP threads, faiss default)",
               "exact p95 ms", "exact median ms (1 thread)", "exact p95 ms (1 thread)"]
    for ef in EF_SEARCH:
        headers += [f"HNSW ef={ef} median ms", f"recall@10 ef={ef}"]
    headers += ["HNSW build s (cumulative)", "exact MB", "HNSW MB (nominal)", "load avg"]
    rows = []
    for x in b["rows"]:
        row = [x["vectors"], x["exact_median_ms"], x["exact_p95_ms"], x["exact_1t_median_ms"], x["exact_1t_p95_ms"]]
        for ef in EF_SEARCH:
            h = x["hnsw"][ef] if ef in x["hnsw"] else x["hnsw"][str(ef)]
            row += [h["median_ms"], f"{h['recall_at_10']:.3f}"]
        row += [x["hnsw_build_s_cumulative"], x["exact_mb_nominal"], x["hnsw_mb_nominal"], x["loadavg"]]
        rows.append(row)
    d, o = rec["default_threads"], rec["one_thread"]
    def size(v):
        return f"~{v:,} vectors" if v is not None else "no measured size"
    lines += [bl.table(headers, rows, digits=3), "",
              "Vectors: today's real fact and passage vectors plus synthetic ones (real vector + a share of "
              "another + Gaussian noise, normalised; isotropic noise makes HNSW's job harder than real text, so "
              "recall here is if anything pessimistic). Queries: the evaluation questions, really embedded.", "",
              "### Recommendation", "",
              f"- Floor in this run (embed + fact search, median): {rec['floor_median_ms']:.1f} ms.",
              f"- The engine runs faiss on {b.get('engine_faiss_threads', '?')} OpenMP thread(s). "
              f"Exact search with faiss's default {b['faiss_default_threads']} threads "
              f"passes 1 ms at {size(d['exact_exceeds_1ms_at'])} and 10% of the floor at "
              f"{size(d['exact_exceeds_10pct_floor_at'])}; with one thread at {size(o['exact_exceeds_1ms_at'])} and "
              f"{size(o['exact_exceeds_10pct_floor_at'])}. HNSW (ef={ENGINE_EF}) is faster than one-thread exact "
              f"search from {size(o['hnsw_faster_from'])}.",
              f"- HNSW recall@10 at ef={ENGINE_EF}: lowest {rec['min_recall_at_engine_ef']:.3f}; ≥ 0.95 up to "
              f"{size(rec['engine_ef_recall_ok_up_to'])}. Smallest efSearch keeping recall@10 ≥ 0.95: "
              + ", ".join(f"{int(k):,}: {v if v is not None else f'> {EF_SEARCH[-1]}'}"
                          for k, v in rec["ef_for_recall_95"].items()) + ".",
              "- Recall@10 at the efSearch the engine picks for each size (bot.index.vector_index): "
              + ", ".join(f"{int(k):,}: ef {v['ef']} → {v['recall_at_10']:.3f}" for k, v in
                          rec.get("engine_choice_recall", {}).items() if v["recall_at_10"] is not None) + ".",
              f"- At the current threshold ({rec['default']:,} vectors) exact search costs "
              f"{rec['exact_ms_at_default']['one_thread']:.1f} ms with one thread "
              f"({rec['exact_ms_at_default']['one_thread'] / rec['floor_median_ms']:.0%} of the floor) and "
              f"{rec['exact_ms_at_default']['default_threads']:.1f} ms with faiss's default threads "
              f"({rec['exact_ms_at_default']['default_threads'] / rec['floor_median_ms']:.0%}).",
              f"- **Switch to HNSW past ~{rec['recommended_threshold']:,} vectors per index (where one-thread exact "
              f"search passes ~1 ms or 10% of the floor, whichever comes first). The current "
              f"approximate_index_threshold = {rec['default']:,} is {rec['default_verdict']}. Run faiss single-query "
              "searches on one OpenMP thread, and raise efSearch with the size (see the recall columns).**"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
