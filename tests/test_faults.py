"""When things go wrong around the bot, users still get their answers and the bot keeps running.

- The Bot API misbehaves (tests/standins/telegram_api.py injects the faults): 429 with
  retry_after, 500s, answers slower than the bot's timeout, connections dropped mid-request.
  Beyond what tests/test_telegram_e2e.py covers (one 429, two 500s, one dropped /help,
  slow answers within the timeout), these go past the timeout, drop the connection while
  an answer is being sent or fetched, and keep failing for longer than the retries last.
- The index cache is damaged or missing when `python -m bot chat --jsonl` starts: it is
  rebuilt, and the question is answered.
- A knowledge file is broken: start-up refuses, naming the file and line, rather than
  serving part of the knowledge.

Redis stopping and coming back is covered by tests/test_state.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.adapters import telegram as telegram_adapter
from bot.adapters.telegram import SORRY
from bot.index import build_search_index, cache_key
from bot.knowledge import DEFAULT_KNOWLEDGE_DIR, load_knowledge
from tests.standins.telegram_api import TelegramStandIn
from tests.test_telegram_e2e import LINKEDIN_QUESTION, TOKEN, fresh_user, links, running_bot, say, shown

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 600  # a process that rebuilds its index loads the model and embeds before answering


class ShortTimeouts(telegram_adapter.ApplicationBuilder):
    """The adapter's HTTP client with a 1-second read timeout instead of 20, so that a Bot API
    answer "slower than the timeout" takes seconds in a test, not half a minute."""

    def read_timeout(self, read_timeout):  # type: ignore[override]
        return super().read_timeout(1.0)


def sends_to(telegram: TelegramStandIn, user: int) -> list[int]:
    """The status of every sendMessage call to `user`'s chat (0: the connection was dropped)."""
    return [c.status for c in telegram.calls_to("sendMessage") if c.params.get("chat_id") == user]


# --- The Bot API misbehaves ---------------------------------------------------------------------


async def test_an_answer_sent_slower_than_the_timeout_is_retried_and_arrives(engine, monkeypatch):
    monkeypatch.setattr(telegram_adapter, "ApplicationBuilder", ShortTimeouts)
    async with running_bot(engine) as telegram:
        user = fresh_user()
        telegram.delay_next("sendMessage", seconds=3)  # past the 1 s timeout
        [first] = await say(telegram, user, LINKEDIN_QUESTION)
        assert links(first)
        assert len(telegram.calls_to("sendMessage")) >= 2, "the slow send timed out and was sent again"

        # The slow call may still land after the retry (the bot cannot know it did): then the user
        # sees the same answer twice. Losing it would be worse. Either way, nothing else goes wrong.
        await asyncio.sleep(3)
        await telegram.settle()
        copies = telegram.sent_to(user)
        assert 1 <= len(copies) <= 2 and all(copy["text"] == first["text"] for copy in copies)
        [later] = await say(telegram, user, "what about on my phone?")
        assert links(later), "the bot carried on answering"


async def test_a_connection_dropped_while_sending_an_answer_is_retried_and_the_answer_arrives_once(engine):
    async with running_bot(engine) as telegram:
        user = fresh_user()
        telegram.drop_next("sendChatAction")  # the typing indicator is lost: no matter
        telegram.drop_next("sendMessage", times=2)
        [reply] = await say(telegram, user, LINKEDIN_QUESTION)
        assert links(reply)
        await telegram.settle()
        assert len(telegram.sent_to(user)) == 1, "a dropped request never reached the server: exactly one answer"
        assert sends_to(telegram, user) == [0, 0, 200]


async def test_connections_dropped_while_fetching_updates_lose_no_message(engine):
    async with running_bot(engine) as telegram:
        user = fresh_user()
        telegram.drop_next("getUpdates", times=2)
        [reply] = await say(telegram, user, LINKEDIN_QUESTION)
        assert links(reply)
        assert [c.status for c in telegram.calls_to("getUpdates")].count(0) == 2


async def test_repeated_429s_are_each_waited_out(engine):
    async with running_bot(engine) as telegram:
        user = fresh_user()
        telegram.fail_next("sendMessage", times=2, status=429, retry_after=1)
        telegram.fail_next("sendChatAction", status=429, retry_after=1)
        [reply] = await say(telegram, user, LINKEDIN_QUESTION)
        assert links(reply)
        assert sends_to(telegram, user) == [429, 429, 200]


async def test_a_bot_api_that_keeps_failing_costs_one_answer_never_the_bot(engine):
    async with running_bot(engine) as telegram:
        user = fresh_user()
        telegram.fail_next("sendMessage", times=4, status=500)  # more than the retries cover
        [apology] = await say(telegram, user, LINKEDIN_QUESTION)
        assert shown(apology) == SORRY, "the user is told, once the API answers again"
        assert sends_to(telegram, user) == [500, 500, 500, 500, 200]

        [answer] = await say(telegram, user, LINKEDIN_QUESTION)
        assert links(answer), "the next question is answered as usual"


# --- Running the real process -------------------------------------------------------------------


def bot_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a fresh `python -m bot`: nothing from the developer's shell that changes settings."""
    cleared = ("TELEGRAM_", "DISCORD_", "LOG_", "STATE_URL", "DATA_DIR", "KNOWLEDGE_DIR", "INDEX_CACHE_DIR",
               "CONVERSATION_", "METRICS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(cleared)}
    return env | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "DATA_DIR": str(tmp_path / "data"),
                  "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **settings}


def chat_jsonl(env: dict[str, str], cwd: Path, *questions: str) -> subprocess.CompletedProcess:
    stdin = "".join(json.dumps({"chat_id": "faults", "text": q}) + "\n" for q in questions)
    return subprocess.run([sys.executable, "-m", "bot", "chat", "--jsonl"], input=stdin, capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=START_TIMEOUT)


# --- A damaged or missing index cache at start-up -----------------------------------------------


@pytest.fixture
def small_base(tmp_path: Path) -> Path:
    """A small valid knowledge base (the vocabulary, LinkedIn's web opt-out fact and its sources): quick to embed."""
    base = tmp_path / "knowledge"
    (base / "facts").mkdir(parents=True)
    (base / "sources").mkdir()
    shutil.copy(DEFAULT_KNOWLEDGE_DIR / "vocabulary.yaml", base)
    facts = yaml.safe_load((DEFAULT_KNOWLEDGE_DIR / "facts" / "linkedin-optout.yaml").read_text(encoding="utf-8"))
    fact = next(f for f in facts if f["id"] == "linkedin-optout-web")
    fact.pop("related", None)
    (base / "facts" / "linkedin-optout.yaml").write_text(yaml.safe_dump([fact], sort_keys=False, allow_unicode=True),
                                                         encoding="utf-8")
    for cited in fact["citations"]:
        shutil.copy(DEFAULT_KNOWLEDGE_DIR / "sources" / f"{cited['source']}.md", base / "sources")
    return base


@pytest.mark.parametrize("damage", ["corrupted", "missing"])
def test_chat_starts_with_a_damaged_or_missing_index_cache_by_rebuilding_it(engine, small_base, tmp_path, damage):
    cache = tmp_path / "index-cache"
    knowledge = load_knowledge(small_base)
    if damage == "corrupted":
        build_search_index(knowledge, cache, embedder=engine.index.embedder)  # a good cache, then ruined:
        for file in (cache / cache_key(knowledge)).iterdir():
            file.write_bytes(b"\x93NUMPY garbage \x00\xff" * 3)

    result = chat_jsonl(bot_env(tmp_path, KNOWLEDGE_DIR=str(small_base), INDEX_CACHE_DIR=str(cache)), tmp_path,
                        "How do I opt out of LinkedIn AI training on the web?")

    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    [answer] = [json.loads(line) for line in result.stdout.splitlines()]
    assert not answer["abstained"] and answer["citations"], answer["text"]
    assert "index built" in result.stderr
    if damage == "corrupted":
        assert "index cache unreadable" in result.stderr and "rebuilding" in result.stderr
    assert not build_search_index(knowledge, cache, embedder=engine.index.embedder).built, "a good cache was written"


# --- A broken knowledge base at start-up --------------------------------------------------------


def broken_base(tmp_path: Path, how: str) -> tuple[Path, str]:
    """A copy of the knowledge with one mistake in facts/meta.yaml; returns it and where the mistake is ("file:line")."""
    base = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_KNOWLEDGE_DIR, base)
    path = base / "facts" / "meta.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if how == "yaml syntax":
        number = next(i for i, line in enumerate(lines) if line.startswith("  platform:"))
        lines[number] = " " + lines[number]  # one space too many: the kind of slip an editor makes
        where = number + 1
    else:  # a quote that its source does not contain
        number = next(i for i, line in enumerate(lines) if line.lstrip().startswith("quote:"))
        lines[number] = lines[number].split("quote:")[0] + 'quote: "A sentence no source contains."\n'
        where = max(i for i in range(number) if lines[i].startswith("- id:")) + 1  # the fact's entry
    path.write_text("".join(lines), encoding="utf-8")
    return base, f"facts/meta.yaml:{where}"


def assert_refused(returncode: int | None, stderr: str, where: str) -> None:
    assert returncode not in (0, None), "start-up went ahead with a broken knowledge base"
    assert "Refusing to start" in stderr and where in stderr, stderr[-3000:]
    assert "Traceback" not in stderr


@pytest.mark.parametrize("how", ["yaml syntax", "quote"])
def test_chat_refuses_to_start_on_a_broken_knowledge_file_naming_file_and_line(tmp_path, how):
    base, where = broken_base(tmp_path, how)

    result = chat_jsonl(bot_env(tmp_path, KNOWLEDGE_DIR=str(base)), tmp_path, LINKEDIN_QUESTION)

    assert_refused(result.returncode, result.stderr, where)
    assert result.stdout == "", "no question is answered from part of the knowledge"


@pytest.mark.parametrize("how", ["yaml syntax", "quote"])
async def test_the_telegram_bot_refuses_to_start_on_a_broken_knowledge_file(tmp_path, how):
    base, where = broken_base(tmp_path, how)
    telegram = TelegramStandIn(TOKEN)
    await telegram.start()
    try:
        env = bot_env(tmp_path, KNOWLEDGE_DIR=str(base), TELEGRAM_BOT_TOKEN=TOKEN,
                      TELEGRAM_API_BASE_URL=telegram.base_url)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "telegram", cwd=tmp_path, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    finally:
        await telegram.close()

    assert_refused(process.returncode, stderr.decode(), where)
    assert telegram.calls == [], "it never connected to Telegram"
