"""Shared helpers for the benchmark scripts (scripts/bench*.py): machine facts, the question
mix, percentiles, tables, and where results are written.

Benchmarks are scripts that print tables; nothing here asserts on wall-clock time.
Every comparison is made within one run, with the things compared measured interleaved,
because these machines are small (2 cores) and shared.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench-results"  # gitignored: every run
DOCS_DIR = ROOT / "docs" / "bench"  # committed: the latest full run of each benchmark
EVAL_FILES = [ROOT / "tests" / "eval" / "cases.yaml", ROOT / "tests" / "eval" / "heldout.yaml"]
PYTHON = sys.executable

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- machine

def machine_info() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        info["mem_total_mb"] = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                                        if ln.startswith("MemTotal"))) // 1024
    except (OSError, StopIteration):
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import faiss

        info["faiss"] = faiss.__version__
        info["faiss_omp_threads"] = faiss.omp_get_max_threads()
    except ImportError:
        pass
    try:
        info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def rss_mb(pid: int | str = "self") -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


# ---------------------------------------------------------------- question mix

def load_eval(paths: list[Path] = EVAL_FILES) -> tuple[list[str], list[list[str]]]:
    """The `ask` strings of the evaluation sets: single questions, and dialogues as lists of turns.

    Repeated-text stress cases (`ask_repeat`, 20,000+ characters) are left out: they are input
    checks answered before any retrieval, not questions.
    """
    import yaml

    singles: list[str] = []
    dialogues: list[list[str]] = []
    for path in paths:
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            if "dialogue" in case:
                turns = [t["ask"] for t in case["dialogue"] if isinstance(t.get("ask"), str)]
                if turns:
                    dialogues.append(turns)
            elif isinstance(case.get("ask"), str):
                singles.append(case["ask"])
    return singles, dialogues


def question_units(singles: list[str], dialogues: list[list[str]], seed: int) -> list[tuple[int, int, str]]:
    """One round of the mix in a shuffled order: (conversation number, turn number, text).

    Each single question is its own conversation; a dialogue's turns stay in order and in one
    conversation, so follow-ups are asked in context.
    """
    conversations = [[q] for q in singles] + [list(d) for d in dialogues]
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    return [(c, t, text) for c in order for t, text in enumerate(conversations[c])]


# ---------------------------------------------------------------- statistics

def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "median_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "p99_ms": pct(ms, 99),
            "mean_ms": float(np.mean(ms)) if ms else float("nan"), "min_ms": min(ms) if ms else float("nan")}


# ---------------------------------------------------------------- tables

def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if value != value:  # NaN
            return "—"
        return f"{value:,.{digits}f}"
    return str(value)


def table(headers: list[str], rows: list[list], digits: int = 2) -> str:
    """A Markdown table (also readable in a terminal)."""
    cells = [[fmt(c, digits) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    def line(items):
        return "| " + " | ".join(str(x).ljust(w) for x, w in zip(items, widths)) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


# ---------------------------------------------------------------- results

def save_results(name: str, result: dict, markdown: str, write_docs: bool) -> Path:
    """bench-results/<name>-<timestamp>.json (+ .md) always; docs/bench/latest.* when asked."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2, default=_json_default))
    path.with_suffix(".md").write_text(markdown + "\n")
    if write_docs:
        DOCS_DIR.mkdir(parents=True, exist_ok=True)
        latest_json = DOCS_DIR / "latest.json"
        try:
            combined = json.loads(latest_json.read_text())
        except (OSError, json.JSONDecodeError):
            combined = {}
        combined[name] = {"result": result, "markdown": markdown}
        latest_json.write_text(json.dumps(combined, indent=2, default=_json_default) + "\n")
        render_docs(combined)
    return path


ORDER = ["bench", "bench_growth", "bench_policyqa"]
TITLES = {"bench": "Speed, memory and concurrency (`scripts/bench.py`)",
          "bench_growth": "Growth and exact vs approximate search (`scripts/bench_growth.py`)",
          "bench_policyqa": "PolicyQA retrieval and quoted-answer accuracy (`scripts/bench_policyqa.py`)"}


def render_docs(combined: dict) -> None:
    parts = ["# Latest benchmark results", "",
             "Written by the scripts themselves (`python scripts/bench.py`, `python scripts/bench_growth.py`, "
             "`python scripts/bench_policyqa.py`); each section carries its own date and machine. "
             "Raw figures: `docs/bench/latest.json`; every run also lands in `bench-results/` (gitignored).", ""]
    for name in ORDER + sorted(set(combined) - set(ORDER)):
        if name not in combined:
            continue
        parts += [f"## {TITLES.get(name, name)}", "", combined[name]["markdown"].strip(), ""]
    (DOCS_DIR / "latest.md").write_text("\n".join(parts))


def header_lines(result: dict) -> str:
    m = result["machine"]
    return (f"Date: {result['date']} · Machine: {m['cpu_model']}, {m['cores']} cores, {m.get('mem_total_mb', '?')} MB, "
            f"Python {m['python']}, torch {m.get('torch', '?')} ({m.get('torch_threads', '?')} threads), "
            f"faiss {m.get('faiss', '?')} · load average at start {m.get('loadavg_at_start')}")


def _json_default(o):
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(type(o))


# ---------------------------------------------------------------- the engine, as it is today

class _RecordingIndex:
    """Wraps a faiss index and records the k of each search (to read the k the engine really uses)."""

    def __init__(self, inner, log: list[int]) -> None:
        self._inner, self._log = inner, log

    def search(self, x, k, *args, **kwargs):
        self._log.append(int(k))
        return self._inner.search(x, k, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


PROBE_QUESTION = "How do I opt out of LinkedIn using my data to train AI?"


def probe_search_k(engine) -> dict[str, int]:
    """The k the engine passes to the fact and passage searches, observed on one answer.

    Read from a live call rather than copied from the source, so the floor stays the engine's
    own search however the engine changes.
    """
    index = engine.index
    facts_log: list[int] = []
    passages_log: list[int] = []
    real_facts, real_passages = index.fact_vectors, index.passage_vectors
    index.fact_vectors = _RecordingIndex(real_facts, facts_log)
    index.passage_vectors = _RecordingIndex(real_passages, passages_log)
    try:
        engine.respond(PROBE_QUESTION, None)
    finally:
        index.fact_vectors, index.passage_vectors = real_facts, real_passages
    return {"fact_k": facts_log[0] if facts_log else min(real_facts.ntotal, 2048),
            "passage_k": passages_log[0] if passages_log else min(real_passages.ntotal, 16),
            "fact_searches_per_answer": len(facts_log), "passage_searches_per_answer": len(passages_log)}


def split_sentences_fn():
    """The engine's sentence splitter (bot.index.split_sentences; older engines: bot.engine.compose_sentences)."""
    try:
        from bot.index import split_sentences

        return split_sentences
    except ImportError:
        from bot.engine import compose_sentences

        return compose_sentences
