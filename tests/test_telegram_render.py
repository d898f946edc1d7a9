"""How an answer looks in Telegram: cited, escaped, and split to fit.

Every rendered message is checked with the stand-in's copy of Telegram's HTML rules
(`html_problem`): a message Telegram would refuse is a message the user never sees.
"""

from __future__ import annotations

import re

import pytest

from bot.models import Answer, Citation
from bot.render.telegram import MAX_MESSAGE_LENGTH, render_answer, render_quotes, render_text, telegram_length
from bot.texts import EXAMPLE_QUESTIONS, help_text, privacy_text, start_text
from tests.standins.telegram_api import visible_text, html_problem


def citation(n: int, **changes: object) -> Citation:
    fields = dict(
        n=n, source_id=f"source-{n}", title=f"Source number {n}", publisher="LinkedIn Help",
        url=f"https://www.linkedin.com/help/answer/{n}?lang=en&x=1", published="2025-10-01",
        quote="Go to Settings & Privacy > Data privacy and turn the setting off.", authority="official",
    )
    fields.update(changes)
    return Citation(**fields)


def answer(body: str, citations: list[Citation] | None = None, **changes: object) -> Answer:
    return Answer(text=body, body=body, citations=citations if citations is not None else [citation(1)], **changes)


def assert_valid_messages(messages: list[str]) -> None:
    assert messages, "nothing rendered"
    for message in messages:
        assert telegram_length(message) <= MAX_MESSAGE_LENGTH
        assert html_problem(message) is None, (html_problem(message), message[:300])


def test_citation_markers_become_numbered_links_to_their_sources():
    cited = answer("Turn it off in settings [1]. Regulators approved it [2].", [citation(1), citation(2)])
    [message] = render_answer(cited)
    assert '<a href="https://www.linkedin.com/help/answer/1?lang=en&amp;x=1">[1]</a>' in message
    assert '<a href="https://www.linkedin.com/help/answer/2?lang=en&amp;x=1">[2]</a>' in message
    assert_valid_messages([message])


def test_a_marker_without_a_matching_source_stays_plain_text():
    [message] = render_answer(answer("Says so [1], or maybe [7].", [citation(1)]))
    assert "[7]" in message and 'href="[7]"' not in message
    assert message.count("<a ") == 2  # the [1] marker and the source list entry


def test_the_source_list_names_title_publisher_and_date():
    [message] = render_answer(answer("Body [1].", [citation(1, title="Data for Generative AI Improvement")]))
    sources = message.split("<b>Sources</b>", 1)[1]
    assert "Data for Generative AI Improvement</a> — LinkedIn Help, 2025-10-01" in sources


def test_numbers_citing_the_same_source_share_one_line():
    same = [citation(1), citation(2, source_id="source-1", url=citation(1).url), citation(3)]
    [message] = render_answer(answer("A [1][2]. B [3].", same))
    sources = visible_text(message.split("<b>Sources</b>", 1)[1])
    assert "[1][2] Source number 1 — LinkedIn Help" in sources
    assert "[3] Source number 3" in sources and "[2] Source number 2" not in sources


def test_a_source_without_a_date_shows_none():
    [message] = render_answer(answer("Body [1].", [citation(1, published=None)]))
    assert message.rstrip().endswith("— LinkedIn Help")


def test_an_answer_without_citations_has_no_source_list():
    [message] = render_answer(answer("My sources don't say.", [], abstained=True, kind="gap"))
    assert "Sources" not in message and "<a " not in message


INJECTION = '<b>bold</b> <script>alert("x")</script> Tom & Jerry *star* _under_ `code` [click](https://evil.example) &amp;'


def test_markup_from_users_and_sources_is_escaped_and_shown_literally():
    sneaky_source = citation(1, title=INJECTION, publisher="<i>Pub</i> & Co", quote=INJECTION,
                             url='https://example.org/?a="x"&b=<y>')
    rendered = render_answer(answer(f"You asked: {INJECTION} [1]", [sneaky_source])) + render_quotes([sneaky_source])
    assert_valid_messages(rendered)
    for message in rendered:
        assert "<script>" not in message and "<b>bold" not in message and "<i>Pub" not in message
        assert INJECTION in visible_text(message)  # the user sees exactly what was written
    assert 'href="https://example.org/?a=&quot;x&quot;&amp;b=&lt;y&gt;"' in rendered[0]


def test_only_web_links_become_links():
    [message] = render_answer(answer("See [1].", [citation(1, url="javascript:alert(1)")]))
    assert "javascript:" not in message
    assert_valid_messages([message])


def test_long_answers_split_at_paragraph_boundaries_under_the_limit():
    paragraphs = [f"Paragraph {i} says <this> & that [1]. " + "More words follow here. " * 40 for i in range(30)]
    messages = render_answer(answer("\n\n".join(paragraphs), [citation(1)]))
    assert len(messages) > 1
    assert_valid_messages(messages)
    shown = "\n\n".join(visible_text(m) for m in messages)
    for paragraph in paragraphs:  # each paragraph arrives whole, inside a single message
        assert sum(paragraph.strip() in visible_text(m) for m in messages) == 1
    assert [int(n) for n in re.findall(r"Paragraph (\d+) ", shown)] == list(range(30))  # in order
    assert "Sources" in visible_text(messages[-1])


def test_a_paragraph_longer_than_a_message_is_split_between_sentences():
    paragraph = " ".join(f"Sentence {i} is cited [1]." for i in range(600))
    messages = render_answer(answer(paragraph, [citation(1)]))
    assert len(messages) > 1
    assert_valid_messages(messages)
    for message in messages[:-1]:
        assert visible_text(message).rstrip().endswith("[1].")  # cut after a sentence, not inside one
    assert sum(m.count(">[1]</a>") for m in messages) == 600  # every marker is still a link


def test_one_unbroken_token_longer_than_a_message_still_fits():
    messages = render_answer(answer("x" * 10_000, []))
    assert_valid_messages(messages)
    assert "".join(visible_text(m) for m in messages) == "x" * 10_000


def test_length_is_counted_as_telegram_counts_it():
    # Emoji are two UTF-16 code units each: 3000 of them do not fit in one 4096-unit message.
    messages = render_answer(answer("🙂" * 3000, []))
    assert len(messages) == 2
    assert_valid_messages(messages)


def test_the_quotes_view_shows_each_quote_escaped_and_shortened():
    long_quote = "A very long quote & more. " * 100
    messages = render_quotes([citation(1), citation(2, quote=long_quote)])
    assert_valid_messages(messages)
    text = "\n".join(messages)
    assert text.count("<blockquote>") == 2
    assert "Settings &amp; Privacy &gt; Data privacy" in text
    assert "…</blockquote>" in text  # the long quote was shortened, not dropped


def test_many_quotes_are_spread_over_several_messages():
    citations = [citation(n, quote=f"Quote {n}: " + "words " * 150) for n in range(1, 31)]
    messages = render_quotes(citations)
    assert len(messages) > 1
    assert_valid_messages(messages)
    assert sum(m.count("<blockquote>") for m in messages) == 30


def test_fixed_texts_are_escaped_and_kept_whole():
    for text in (start_text(), help_text("/"), privacy_text(30)):
        [message] = render_text(text)
        assert_valid_messages([message])
        assert visible_text(message) == "\n\n".join(p.strip() for p in re.split(r"\n\s*\n", text))
    assert "/ask &lt;question&gt;" in render_text(help_text("/"))[0]


@pytest.mark.parametrize("question", [*EXAMPLE_QUESTIONS, "what about on my phone?", "Is the sky blue?"])
async def test_real_answers_render_as_valid_telegram_messages(engine, question):
    real = await engine.answer(f"render-{question}", question)
    messages = render_answer(real)
    assert_valid_messages(messages)
    if real.citations:
        assert f'">[{real.citations[0].n}]</a>' in messages[0] or "Sources" in messages[-1]
        assert_valid_messages(render_quotes(real.citations))
