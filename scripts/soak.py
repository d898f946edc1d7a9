#!/usr/bin/env python3
"""Soak test: many questions through one `python -m bot chat --jsonl` process.

    .venv/bin/python scripts/soak.py                      # 20,000 questions (the figure for the closing note)
    .venv/bin/python scripts/soak.py --questions 1500     # what CI runs (tests/test_soak.py)

Questions come from tests/eval/cases.yaml — single questions and multi-turn dialogues,
each conversation in a chat of its own, many with a follow-up ("where did you read
that?", "what about on my phone?") and some with a word no earlier message had, as real
traffic brings. The process runs with a short conversation TTL (2 s by default) in a
fresh data directory, with the default SQLite state unless --state-url says otherwise.

Measured, and the bound each must keep (exit status 1 when one is broken):
- resident memory (VmRSS, /proc/<pid>/status) after warm-up and at the end: growth <= 5%;
- open file descriptors (/proc/<pid>/fd): no growth;
- conversation state bounded by its TTL: a chat from the start has no state left at the
  end (its "where did you read that?" finds nothing), while one from a moment ago does
  until its TTL passes; with SQLite, the rows kept are no more than the chats active
  within the TTL plus the store's purge interval;
- every question answered, one line per line, no errors or tracebacks in the log.
Also printed: answers per second after warm-up.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import select
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "eval" / "cases.yaml"
ANSWER_TIMEOUT = 300.0  # seconds for one answer; the first waits for the model and index to load
FOLLOW_UPS = ["where did you read that?", "what about on my phone?", "and in the EU?", "who confirmed that?",
              "what about Facebook?", "is that on by default?"]
OPENING = "How do I opt out of LinkedIn using my data to train AI?"  # the first chat: an answer with sources
WHERE_FROM = "where did you read that?"
NO_STATE = "I haven't given you an answer with sources in this chat yet"


# --- the traffic ---------------------------------------------------------------------------------


def conversations(seed: int) -> itertools.cycle:
    """Endless conversations (lists of messages) drawn from the evaluation set."""
    cases = yaml.safe_load(CASES.read_text(encoding="utf-8"))
    dialogues: list[list[str]] = []
    for case in cases:
        turns = case.get("dialogue") or [case]
        asked = [turn["ask"] for turn in turns if "ask" in turn]  # long `ask_repeat` cases test input limits
        if asked:
            dialogues.append(asked)
    random.Random(seed).shuffle(dialogues)
    return itertools.cycle(dialogues)


def traffic(total: int, seed: int):
    """(chat id, text) pairs: each conversation in a fresh chat, a third of them followed up,
    every fifth question carrying a word seen nowhere before (a new typo, a name)."""
    rng = random.Random(seed)
    source = conversations(seed)
    sent = 0
    for chat_number in itertools.count(1):
        messages = [OPENING] if chat_number == 1 else list(next(source))
        if rng.random() < 1 / 3:
            messages.append(rng.choice(FOLLOW_UPS))
        for text in messages:
            if sent == total:
                return
            if sent % 5 == 4:
                text = f"{text} (asking for Kim{sent})"
            yield f"soak-{chat_number}", text
            sent += 1


# --- the process ---------------------------------------------------------------------------------


@dataclass
class Reading:
    answered: int
    rss_kib: int
    fds: int
    at: float  # time.monotonic() when taken


@dataclass
class Bot:
    """`python -m bot chat --jsonl`, answered line by line."""

    process: subprocess.Popen
    log: Path
    readings: list[Reading] = field(default_factory=list)

    def ask(self, chat_id: str, text: str) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps({"chat_id": chat_id, "text": text}, ensure_ascii=False) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], ANSWER_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            raise SystemExit(f"soak: no answer from the bot (exit status {self.process.poll()}); log:\n{self.tail()}")
        return json.loads(line)

    def read(self, answered: int) -> Reading:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        reading = Reading(answered, rss, len(os.listdir(f"/proc/{self.process.pid}/fd")), time.monotonic())
        self.readings.append(reading)
        return reading

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_bot(workdir: Path, ttl: int, state_url: str) -> Bot:
    cleared = ("TELEGRAM_", "DISCORD_", "LOG_", "STATE_URL", "DATA_DIR", "CONVERSATION_", "METRICS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(cleared)}
    env |= {"PYTHONPATH": str(ROOT), "CONVERSATION_TTL_SECONDS": str(ttl), "STATE_URL": state_url,
            "DATA_DIR": str(workdir / "data"), "LOG_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = workdir / "bot-stderr.log"
    process = subprocess.Popen([sys.executable, "-m", "bot", "chat", "--jsonl"], cwd=workdir, env=env, text=True,
                               encoding="utf-8", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=log.open("w"), bufsize=1)
    return Bot(process, log)


# --- checks --------------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    warm: str
    end: str
    bound: str
    ok: bool | None  # None: a figure, not a check


def sqlite_rows(database: Path, ttl: float) -> tuple[int, int]:
    """(rows kept, rows still within the TTL) in the SQLite state file, read alongside the running bot."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        total = connection.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
        live = connection.execute("SELECT COUNT(*) FROM conversations WHERE updated_at > ?",
                                  (time.time() - ttl,)).fetchone()[0]
    return total, live


def purge_interval() -> float:
    try:
        from bot.state.sqlite_backend import PURGE_EVERY_SECONDS
    except ImportError:  # an older layout: the SQLite store purged at most once a minute
        return 60.0
    return float(PURGE_EVERY_SECONDS)


def print_table(title: str, rows: list[Row]) -> None:
    print(title)
    header = ("", "after warm-up", "at end", "bound", "result")
    table = [header] + [(r.what, r.warm, r.end, r.bound,
                         "-" if r.ok is None else ("ok" if r.ok else "BROKEN")) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=None, help="questions before the first reading "
                        "(default: a tenth, at least 500 and at most 2,000)")
    parser.add_argument("--ttl", type=int, default=2, help="CONVERSATION_TTL_SECONDS for the run")
    parser.add_argument("--state-url", default="sqlite:///state.db", help="STATE_URL (sqlite under a fresh DATA_DIR)")
    parser.add_argument("--max-rss-growth", type=float, default=5.0, help="percent")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(2_000, max(500, args.questions // 10))
    if not 0 < warmup < args.questions:
        parser.error("--warmup must be between 0 and --questions")

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        workdir = Path(tmp)
        bot = start_bot(workdir, args.ttl, args.state_url)
        problems: list[str] = []
        last_seen: dict[str, float] = {}  # chat id -> when its last message was answered
        kinds: dict[str, int] = {}
        try:
            checkpoints = {warmup} | {warmup + (args.questions - warmup) * k // 4 for k in range(1, 5)}
            started = measured_from = time.monotonic()
            for answered, (chat_id, text) in enumerate(traffic(args.questions, args.seed), start=1):
                reply = bot.ask(chat_id, text)
                last_seen[chat_id] = time.time()
                if "error" in reply or not reply.get("text"):
                    problems.append(f"question {answered} got an error: {reply.get('error') or reply}")
                kinds[reply.get("kind", "?")] = kinds.get(reply.get("kind", "?"), 0) + 1
                if answered in checkpoints:
                    bot.read(answered)
                    if answered == warmup:
                        measured_from = time.monotonic()
                if answered % 1000 == 0:  # progress, on stderr
                    print(f"{answered:,} answered", end="\r" if sys.stderr.isatty() else "\n", file=sys.stderr,
                          flush=True)
            elapsed = time.monotonic() - measured_from
            total_elapsed = time.monotonic() - started
            if sys.stderr.isatty():
                print(file=sys.stderr)

            # Conversation state within its TTL: kept while fresh, gone once the TTL has passed.
            state_rows: list[Row] = []
            database = workdir / "data" / args.state_url.removeprefix("sqlite:///")
            if args.state_url.startswith("sqlite:///") and not args.state_url.startswith("sqlite:////"):
                kept, live = sqlite_rows(database, args.ttl)
                window = args.ttl + purge_interval() + 10
                recent = sum(1 for seen in last_seen.values() if seen >= time.time() - window)
                state_rows.append(Row("state rows kept (SQLite)", "", f"{kept:,}",
                                      f"<= {recent:,} chats active in the last {window:.0f} s "
                                      f"(of {len(last_seen):,})", kept <= recent))
                fresh = sum(1 for seen in last_seen.values() if seen >= time.time() - args.ttl - 1)
                state_rows.append(Row("state rows within the TTL", "", f"{live:,}",
                                      f"<= {fresh:,} chats active in the last {args.ttl + 1} s", live <= fresh))
            control = "soak-control"
            bot.ask(control, OPENING)
            kept_while_fresh = bool(bot.ask(control, WHERE_FROM)["citations"])
            time.sleep(args.ttl + 1)
            early = bot.ask("soak-1", WHERE_FROM)
            late = bot.ask(control, WHERE_FROM)
            forgotten = NO_STATE in early["text"] and not early["citations"] and NO_STATE in late["text"]
            state_rows.append(Row("state after its TTL", "", "forgotten" if forgotten else "KEPT",
                                  f"first chat and a fresh one forgotten after {args.ttl} s", forgotten))
            state_rows.append(Row("state within its TTL", "", "kept" if kept_while_fresh else "LOST",
                                  "a follow-up finds its sources", kept_while_fresh))
            if args.state_url.startswith("sqlite:///") and not args.state_url.startswith("sqlite:////"):
                _, live_after = sqlite_rows(database, args.ttl)
                state_rows.append(Row("state rows within the TTL, after it", "", f"{live_after:,}", "0",
                                      live_after == 0))
            final = bot.read(args.questions)
        finally:
            if bot.process.stdin:
                bot.process.stdin.close()
            try:
                bot.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                bot.process.kill()
                bot.process.wait()
        log = bot.log.read_text(errors="replace")

    warm = bot.readings[0]
    growth = (final.rss_kib - warm.rss_kib) / warm.rss_kib * 100
    progression = " -> ".join(f"{r.rss_kib / 1024:.0f}" for r in bot.readings)
    quarters = bot.readings[:5]  # warm-up, then after each quarter of the measured questions
    pace = " -> ".join(f"{(b.answered - a.answered) / (b.at - a.at):.0f}" for a, b in zip(quarters, quarters[1:]))
    rows = [
        Row("resident memory (VmRSS)", f"{warm.rss_kib / 1024:,.1f} MiB", f"{final.rss_kib / 1024:,.1f} MiB",
            f"growth <= {args.max_rss_growth:g}%", growth <= args.max_rss_growth),
        Row("  growth", "", f"{growth:+.2f}%", f"MiB along the run: {progression}", None),
        Row("open file descriptors", f"{warm.fds}", f"{final.fds}", "no growth", final.fds <= warm.fds),
        Row("answers per second", "", f"{(args.questions - warmup) / elapsed:,.1f}",
            f"{args.questions - warmup:,} answers after warm-up in {elapsed:,.1f} s", None),
        Row("  by quarter", "", pace, "answers per second in each quarter after warm-up", None),
        *state_rows,
        Row("questions answered", "", f"{args.questions:,}",
            f"one line each, no errors ({len(problems)})", not problems),
    ]
    log_problems = [line for line in log.splitlines() if "Traceback" in line or " ERROR " in line]
    rows.append(Row("log", "", f"{len(log_problems)} error line(s)", "no errors or tracebacks", not log_problems))
    print_table(f"soak: {args.questions:,} questions ({warmup:,} warm-up) through one `python -m bot chat --jsonl` "
                f"in {total_elapsed:,.0f} s; {len(last_seen):,} chats; STATE_URL={args.state_url}, "
                f"CONVERSATION_TTL_SECONDS={args.ttl}", rows)
    print("  answer kinds: " + ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])))
    for problem in (problems[:5] + log_problems[:5]):
        print(f"  problem: {problem}")
    broken = [row.what.strip() for row in rows if row.ok is False]
    if broken:
        print(f"soak: bound broken: {', '.join(broken)}")
        return 1
    print("soak: every bound held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
