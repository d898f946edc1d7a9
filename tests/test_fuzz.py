"""Whatever anyone types, the bot answers, and what it sends is well formed.

Property-based (hypothesis): any Unicode text up to 100,000 characters — controls, bidi
overrides, invisible characters, emoji, markup, URLs, injection attempts — goes through
the real engine and the Telegram and Discord renderers. The engine always gives a valid
Answer, never an exception; Telegram gets HTML it accepts, within 4096 characters per
message, with nothing from the input interpreted as markup; Discord gets messages within
every limit that can never ping @everyone or @here.

A planted tag, <zz_marker>, stands for anything a user or a source might write: it must
never reach Telegram unescaped.
"""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser

import discord
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import Answer, Citation
from bot.render import discord as discord_render
from bot.render import telegram as telegram_render

MAX_CHARS = 100_000
MARKER = "<zz_marker>"

# Pieces people (or attackers) paste: markup for both platforms, URLs, pings, bidi and
# invisible characters, template and SQL injections, real questions and follow-ups.
FRAGMENTS = [
    MARKER, "</zz_marker>", "<zz_marker", "<b>", "</b>", "<i>x</i>", '<a href="javascript:alert(1)">x</a>',
    "<script>alert(1)</script>", "<blockquote>", "</pre>", "<tg-spoiler>", "<!--", "-->", "<![CDATA[x]]>",
    "&", "&amp;", "&lt;", "&#60;", "&#x3c;zz_marker&#x3e;", "&nbsp", "<", ">", '"', "'",
    "[1]", "[2]", "[99]", "[click](https://evil.example/?a=1&b=2)", "https://example.org/p?x=<y>&z=\"q\"",
    "javascript:alert(1)", "data:text/html,<b>", "**bold**", "__u__", "`code`", "```py\n", "~~s~~",
    "||spoiler||", "> quote", "# heading", "-# small", "\\", "\\*", "@everyone", "@here", "@ everyone",
    "<@123456789012345678>", "<@!123456789012345678>", "<@&123456789012345678>", "<#123456789012345678>",
    "\u202e", "\u202d", "\u2066", "\u2069", "\u200b", "\u200d", "\ufeff", "\u00ad", "\x00", "\x1b[31m",
    "\x7f", "\r\n", "\n\n", "\n", "\t", "\u2028", "\u2029", "\u0085", "🙂", "👍🏽", "👨‍👩‍👧", "🇪🇺",
    "e\u0301", "ﷺ", "𒐫", "Z̴̡̢̛a̷l̶g̸o̵", "{{7*7}}", "${jndi:ldap://x}", "'; DROP TABLE conversations; --",
    "%s%n", "How do I stop LinkedIn using my data to train AI?", "what about on my phone?",
    "where did you read that?", "Does Meta train on my Instagram posts in the EU?", "/start", "/ask",
    "linkdin", "ai", "opt out",
]

# Every code point but lone surrogates (which no UTF-8 message can carry): controls,
# format and bidi characters, private use and unassigned code points included.
any_character = st.characters(exclude_categories=("Cs",))
short_texts = st.text(any_character, max_size=300)
mixed_texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(any_character, min_size=1, max_size=300)),
                       min_size=1, max_size=30).map("".join)


def _repeat(piece: str, length: int) -> str:
    """`piece` repeated up to `length` characters (huge texts without huge intermediate strings)."""
    return (piece * (length // len(piece) + 1))[:length]


# Lengths around the limits that matter: the engine's 2,000, a Telegram message's 4,096, the maximum.
lengths = st.one_of(st.integers(min_value=1, max_value=MAX_CHARS),
                    st.sampled_from([1_999, 2_000, 2_001, 4_096, 4_097, 10_000, 50_000, MAX_CHARS]))
huge_texts = st.builds(_repeat, st.one_of(st.sampled_from(FRAGMENTS), mixed_texts), lengths)
messages = st.one_of(short_texts, mixed_texts, huge_texts)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ENGINE_FUZZ = settings(FUZZ, max_examples=50)  # each example costs one or two real engine answers


# --- Telegram: what its HTML parse mode accepts ------------------------------------------------

# Telegram's tags, each with the attributes it may carry (https://core.telegram.org/bots/api#html-style).
TELEGRAM_TAGS = {"b": set(), "strong": set(), "i": set(), "em": set(), "u": set(), "ins": set(), "s": set(),
                 "strike": set(), "del": set(), "span": {"class"}, "tg-spoiler": set(), "a": {"href"},
                 "tg-emoji": {"emoji-id"}, "code": {"class"}, "pre": set(), "blockquote": {"expandable"}}
ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
TAG = re.compile(r"</?[a-z][a-z-]*(?:\s[^<>]*)?>")


class TelegramHtml(HTMLParser):
    """Parses one message as Telegram would: known tags only, properly nested, links to the web."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.visible: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"tag <{tag}> is not one Telegram knows")
        elif {name for name, _ in attrs} - TELEGRAM_TAGS[tag]:
            self.problems.append(f"<{tag}> with attributes {attrs}")
        if tag == "a" and not re.match(r"https?://", dict(attrs).get("href") or ""):
            self.problems.append(f"a link that is not a web address: {attrs}")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)

    def handle_comment(self, data: str) -> None:
        self.problems.append("an HTML comment")

    def handle_decl(self, decl: str) -> None:
        self.problems.append("a declaration")

    def unknown_decl(self, data: str) -> None:
        self.problems.append("a CDATA section or unknown declaration")

    def handle_pi(self, data: str) -> None:
        self.problems.append("a processing instruction")


def parse_telegram(message: str) -> str:
    """The text a Telegram user sees; fails the test if Telegram would refuse the message."""
    assert telegram_render.telegram_length(message) <= 4096, "over Telegram's 4096-character limit"
    assert message.strip(), "an empty message"
    assert MARKER not in message and "<zz_marker" not in message and "</zz_marker" not in message
    outside_tags = TAG.sub("", message)
    assert "<" not in outside_tags and ">" not in outside_tags, "a stray < or >"
    assert "&" not in ENTITY.sub("", message), "an & that does not start an entity Telegram knows"
    parser = TelegramHtml()
    parser.feed(message)
    parser.close()
    assert not parser.problems, parser.problems
    assert not parser.open, f"unclosed {parser.open}"
    return "".join(parser.visible)


def ink(text: str) -> str:
    """The characters of a text that show, in order (splitting into messages may move whitespace)."""
    return "".join(text.split())


# --- Discord: what it accepts, and what pings --------------------------------------------------

# @everyone, @here, and user or role mentions by id (Discord ids are 17-20 digit snowflakes).
PING = re.compile(r"@(everyone|here)|<@[!&]?\d{17,20}>")


def check_discord(messages: list[discord_render.DiscordMessage]) -> None:
    assert messages, "nothing to send"
    for message in messages:
        assert message.content or message.embeds, "an empty message"
        assert len(message.content or "") <= 2000
        assert len(message.embeds) <= 10
        assert sum(len(embed) for embed in message.embeds) <= 6000
        texts = [message.content or ""]
        for embed in message.embeds:
            payload = embed.to_dict()  # what goes over the wire
            assert len(payload.get("title", "")) <= 256
            assert len(payload.get("description", "")) <= 4096
            assert len(payload.get("footer", {}).get("text", "")) <= 2048
            assert len(payload.get("fields", [])) <= 25
            for field in payload.get("fields", []):
                assert 0 < len(field["name"]) <= 256 and 0 < len(field["value"]) <= 1024
            texts += [payload.get("title", ""), payload.get("description", ""), payload.get("footer", {}).get("text", "")]
            texts += [field["name"] + "\n" + field["value"] for field in payload.get("fields", [])]
        for text in texts:
            assert not PING.search(text), f"could ping: {PING.search(text).group(0)!r}"


# --- Answers built around the fuzzed text -------------------------------------------------------


def citation(n: int, text: str, url: str = "https://www.linkedin.com/help/linkedin/answer/a5538339") -> Citation:
    return Citation(n=n, source_id=f"source-{n}", title=text or "Untitled", publisher=text[:200] or "Publisher",
                    url=url, published="2025-09-18", quote=text or "A quote.", authority="official")


def answer_around(text: str, url: str) -> Answer:
    """An answer whose body and sources all carry the fuzzed text, as if echoed or quoted."""
    body = f"You asked: {text} [1] [2]"
    return Answer(text=body, body=body, citations=[citation(1, text), citation(2, text[:500], url)], as_of="2025-11-03")


urls = st.one_of(st.just("https://example.org/a_(b)?q=1&r=2"), st.sampled_from(FRAGMENTS),
                 st.builds(lambda tail: "https://example.org/" + tail, short_texts),
                 st.builds(lambda tail, n: _repeat("https://example.org/?" + tail, n), mixed_texts,
                           st.integers(min_value=1_000, max_value=3_000)))  # long, and escaping makes it longer


# --- The engine ---------------------------------------------------------------------------------

_chats = itertools.count(1)


@ENGINE_FUZZ
@given(text=messages, after_a_question=st.booleans())
async def test_any_message_gets_a_valid_answer_that_every_front_end_can_send(engine, text, after_a_question):
    chat = f"fuzz-{next(_chats)}"
    if after_a_question:  # so the text is also read as a follow-up, with conversation state
        await engine.answer(chat, "How do I stop LinkedIn using my data to train AI?")

    answer = await engine.answer(chat, text)

    assert isinstance(answer, Answer)
    Answer.model_validate(answer.model_dump())  # every field within its declared bounds
    assert answer.text.strip() and answer.body.strip()
    assert answer.abstained or answer.citations or answer.kind == "sources", "an answer without sources"
    for cited in answer.citations:
        assert cited.quote.strip() and cited.url.startswith("https://")
    assert len(answer.text) <= 20_000, "an answer never grows with the message it answers"
    for message in telegram_render.render_answer(answer) + telegram_render.render_quotes(answer.citations):
        parse_telegram(message)
    check_discord(discord_render.render_answer(answer, ref="0123abcd") + discord_render.render_quotes(answer.citations))


@pytest.mark.parametrize("text", ["", " ", "\u202e\u200b\ufeff", MARKER * 500, "?" * 2001, "a" * MAX_CHARS])
async def test_empty_invisible_and_oversized_messages_get_a_clear_reply(engine, text):
    answer = await engine.answer(f"fuzz-{next(_chats)}", text)
    assert answer.abstained and answer.kind == "input_error"
    assert "too long" in answer.text if len(text) > engine.settings.max_question_chars else "question" in answer.text


# --- Telegram -----------------------------------------------------------------------------------


@FUZZ
@given(text=messages, url=urls)
def test_telegram_messages_are_valid_html_within_the_limit_and_show_text_as_written(text, url):
    answer = answer_around(text, url)

    rendered = telegram_render.render_answer(answer)
    shown = "".join(parse_telegram(message) for message in rendered)
    assert ink(shown).startswith(ink(answer.body)), "the body is shown exactly as written, in order"

    for message in telegram_render.render_quotes(answer.citations):
        parse_telegram(message)

    plain = telegram_render.render_text(text) if text.strip() else []
    assert ink("".join(parse_telegram(message) for message in plain)) == ink(text)


# --- Discord ------------------------------------------------------------------------------------


@FUZZ
@given(text=messages, url=urls, as_of=st.one_of(st.none(), short_texts))
def test_discord_messages_fit_every_limit_and_never_ping_anyone(text, url, as_of):
    answer = answer_around(text, url).model_copy(update={"as_of": as_of})

    check_discord(discord_render.render_answer(answer, ref="0123abcd"))
    check_discord(discord_render.render_quotes(answer.citations))
    if text.strip():
        check_discord(discord_render.render_text(text))


def test_the_checks_themselves_catch_what_telegram_and_discord_would_refuse():
    """The checkers above would fail on the mistakes they exist to catch."""
    for bad in [MARKER, "<b>bold", "</b>", "<script>x</script>", "a & b", "1 < 2", '<a href="javascript:x">y</a>',
                "<b><i>x</b></i>", "x" * 4097, "🙂" * 2049]:
        with pytest.raises(AssertionError):
            parse_telegram(bad)
    assert parse_telegram('<b>ok</b> &lt;zz_marker&gt; &amp; <a href="https://x.example/?a=1&amp;b=2">[1]</a>') == \
        "ok <zz_marker> & [1]"
    for bad in ["@everyone", "hi @here", "<@123456789012345678>", "<@&123456789012345678>"]:
        with pytest.raises(AssertionError):
            check_discord([discord_render.DiscordMessage(content=bad)])
    with pytest.raises(AssertionError):
        check_discord([discord_render.DiscordMessage(embeds=[discord.Embed(description="x" * 4097)])])
