"""The command line as scripts and the independent evaluation use it: `chat --jsonl` and `ask`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bot(*args: str, stdin: str = "", timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_BOT_TOKEN")}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def test_jsonl_writes_exactly_one_json_object_per_input_line():
    lines = [
        {"chat_id": "a", "text": "How do I opt out of LinkedIn AI training?"},
        {"chat_id": "a", "text": "what about on my phone?"},
        {"chat_id": "b", "text": "What's the weather in Paris?"},
        {"chat_id": "c", "text": ""},
        {"chat_id": 7, "text": "Does Facebook train on my posts?"},
        {"text": "are my DMs used"},
        {"chat_id": "d", "text": None},
        {"chat_id": "e", "text": "<script>alert(1)</script> linkedin opt out"},
    ]
    stdin = "\n".join(json.dumps(line) for line in lines) + "\nthis is not json\n\n[1, 2]\n"
    result = run_bot("chat", "--jsonl", stdin=stdin)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(outputs) == len(lines) + 3  # every line answered, even the broken ones

    for out in outputs:
        assert isinstance(out["text"], str) and out["text"]
        assert isinstance(out["abstained"], bool)
        for citation in out["citations"]:
            assert {"n", "title", "publisher", "url", "published", "quote"} <= set(citation)

    opt_out, phone, weather, empty, facebook, dms, none_text, attack = outputs[:8]
    assert "Data for Generative AI Improvement" in opt_out["text"] and opt_out["citations"]
    assert phone["platform"] == "linkedin"  # follow-up state kept per chat_id
    assert weather["abstained"] and not weather["citations"]
    assert empty["abstained"]
    assert facebook["platform"] == "meta" and facebook["chat_id"] == "7"
    assert "private messages" in dms["text"].lower()
    assert none_text["abstained"] and "error" in none_text
    assert "<script>" not in attack["text"]
    assert all(out["abstained"] and "error" in out for out in outputs[8:])


def test_jsonl_keeps_logs_off_stdout_and_question_text_out_of_logs():
    secret_question = "Does LinkedIn use my zebra-striped-marker-42 posts?"
    result = run_bot("chat", "--jsonl", stdin=json.dumps({"chat_id": "x", "text": secret_question}) + "\n")
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 1
    json.loads(result.stdout)
    assert "zebra-striped-marker-42" not in result.stderr


def test_ask_prints_one_cited_answer():
    result = run_bot("ask", "When", "does", "LinkedIn", "start", "training", "AI", "on", "my", "data?")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3 November 2025" in result.stdout and "Sources:" in result.stdout


def test_ask_json_prints_the_whole_answer():
    result = run_bot("ask", "--json", "Does Facebook train on my posts?")
    answer = json.loads(result.stdout)
    assert answer["platform"] == "meta" and answer["citations"]
