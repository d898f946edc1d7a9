"""How answers look on Discord: within every Discord limit, escaped, never pinging anyone.

Pure rendering: no bot, no network. Discord rejects a whole message when one limit is
broken, so every embed built here is checked against all of them.
"""

from __future__ import annotations

import re

import discord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import Answer, Citation
from bot.render import discord as render


def citation(n: int, *, title: str = "LinkedIn Help: Data for Generative AI Improvement", quote: str = "You can opt out.",
             url: str = "https://www.linkedin.com/help/linkedin/answer/a5538339", publisher: str = "LinkedIn") -> Citation:
    return Citation(n=n, source_id=f"source-{n}", title=title, publisher=publisher, url=url, published="2025-09-18",
                    quote=quote, authority="official")


def answer(body: str, citations: list[Citation] | None = None, **fields: object) -> Answer:
    return Answer(text=body, body=body, citations=citations or [], **fields)


def embeds_of(messages: list[render.DiscordMessage]) -> list[discord.Embed]:
    return [embed for message in messages for embed in message.embeds]


def assert_within_discord_limits(messages: list[render.DiscordMessage]) -> None:
    assert messages, "every answer produces at least one message"
    for message in messages:
        assert message.content or message.embeds, "no empty messages"
        assert len(message.content or "") <= 2000
        assert len(message.embeds) <= 10
        assert sum(len(embed) for embed in message.embeds) <= 6000
        for embed in message.embeds:
            assert len(embed.title or "") <= 256
            assert len(embed.description or "") <= 4096
            assert len(embed.footer.text or "") <= 2048
            assert len(embed.fields) <= 25
            for embed_field in embed.fields:
                assert 0 < len(embed_field.name or "") <= 256
                assert 0 < len(embed_field.value or "") <= 1024


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text).replace("@\u200b", "@")


# --- An ordinary answer ------------------------------------------------------------------------


def test_a_short_answer_is_one_embed_with_numbered_linked_sources_and_its_date() -> None:
    messages = render.render_answer(
        answer("Go to Settings > Data privacy and switch it off [1]. Your messages are not used [2].",
               [citation(1), citation(2, title="LinkedIn FAQ", url="https://www.linkedin.com/legal/faq")],
               as_of="2025-11-03"),
        ref="1a2b3c4d")

    assert len(messages) == 1
    [embed] = messages[0].embeds
    assert "switch it off [1]" in embed.description
    [sources] = embed.fields
    assert sources.name == "Sources"
    lines = sources.value.splitlines()
    assert lines[0].startswith("**[1]** [LinkedIn Help: Data for Generative AI Improvement]"
                               "(https://www.linkedin.com/help/linkedin/answer/a5538339)")
    assert lines[0].endswith("— LinkedIn, 2025-09-18")
    assert lines[1].startswith("**[2]** [LinkedIn FAQ](https://www.linkedin.com/legal/faq)")
    assert "As of 2025-11-03" in embed.footer.text
    assert_within_discord_limits(messages)


def test_the_buttons_find_their_answer_again_from_the_message_footer() -> None:
    [message] = render.render_answer(answer("An answer [1].", [citation(1)], as_of="2025-11-03"), ref="00ff00ff")
    posted = discord.Message.__new__(discord.Message)
    posted.embeds = message.embeds

    assert render.read_ref(posted) == "00ff00ff"
    assert render.read_ref(None) is None


def test_an_answer_without_sources_says_so_plainly_and_has_no_sources_field() -> None:
    [message] = render.render_answer(answer("My sources don't say.", abstained=True, kind="gap"))
    [embed] = message.embeds
    assert embed.description == "My sources don't say."
    assert embed.fields == []
    assert embed.colour == render.NO_ANSWER_COLOUR


# --- Long answers ------------------------------------------------------------------------------


def test_a_very_long_answer_continues_in_follow_up_messages_within_every_limit() -> None:
    paragraphs = [f"Paragraph {i}: " + "LinkedIn may use your profile data to train models. " * 30 for i in range(12)]
    body = "\n\n".join(paragraphs)  # about 19 000 characters
    many_sources = [citation(n, title=f"Source number {n} " + "with a long title " * 12) for n in range(1, 41)]

    messages = render.render_answer(answer(body, many_sources, as_of="2025-11-03"), ref="abcdef12")

    assert len(messages) > 1
    assert_within_discord_limits(messages)
    # Nothing is lost: the whole body, in order, and every source exactly once.
    descriptions = "\n\n".join(embed.description for embed in embeds_of(messages) if embed.description)
    assert unescape(descriptions).split() == body.split()
    source_text = "\n".join(f.value for embed in embeds_of(messages) for f in embed.fields)
    assert [int(n) for n in re.findall(r"^\*\*\[(\d+)\]\*\*", source_text, re.MULTILINE)] == list(range(1, 41))
    # The reference the buttons need is on the first message, where the buttons go.
    assert "ref abcdef12" in messages[0].embeds[0].footer.text


def test_a_single_enormous_word_is_cut_hard_but_never_inside_an_escape() -> None:
    body = "*" * 9000  # escapes to 18 000 characters of "\*"
    messages = render.render_answer(answer(body))

    assert_within_discord_limits(messages)
    for embed in embeds_of(messages):
        assert re.fullmatch(r"(\\\*)+", embed.description), "every piece holds whole escape sequences"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.text(min_size=1, max_size=12_000).filter(str.strip),
    titles=st.lists(st.text(min_size=1, max_size=400), max_size=30),
    quote=st.text(max_size=2_000),
    as_of=st.one_of(st.none(), st.text(max_size=300)),
)
def test_any_answer_fits_discords_limits(body: str, titles: list[str], quote: str, as_of: str | None) -> None:
    citations = [citation(n, title=title, quote=quote) for n, title in enumerate(titles, start=1)]
    item = answer(body, citations, as_of=as_of)

    assert_within_discord_limits(render.render_answer(item, ref="0123abcd"))
    assert_within_discord_limits(render.render_quotes(citations))


# --- Escaping ----------------------------------------------------------------------------------


def test_markdown_in_the_answer_is_shown_as_written() -> None:
    [message] = render.render_answer(answer("**not bold** _not italic_ `not code` ~~no~~ ||no spoiler||\n> not a quote"))
    description = message.embeds[0].description

    assert "\\*\\*not bold\\*\\*" in description
    assert "\\_not italic\\_" in description
    assert "\\`not code\\`" in description
    assert "\\|\\|no spoiler\\|\\|" in description
    assert "\\> not a quote" in description


def test_nobody_is_pinged_by_an_answer_or_a_source() -> None:
    hostile = "Hey @everyone and @here, ask <@123456789012345678> or <@&123456789012345678>"
    messages = render.render_answer(answer(hostile, [citation(1, title=hostile, publisher=hostile)]))
    messages += render.render_quotes([citation(1, title=hostile, quote=hostile, publisher=hostile)])
    messages += render.render_text(hostile)

    everything = "\n".join(
        [m.content or "" for m in messages]
        + [e.description or "" for e in embeds_of(messages)]
        + [f.name + f.value for e in embeds_of(messages) for f in e.fields]
    )
    assert "@everyone" not in everything and "@here" not in everything
    assert not re.search(r"<@[!&]?\d", everything)
    assert "@\u200beveryone" in everything  # still readable


def test_a_source_title_cannot_break_out_of_its_link() -> None:
    tricky = citation(1, title="Click [here](https://evil.example) now", url="https://example.org/a_(b)")
    line = render.citation_line(tricky)

    assert "](https://example.org/a_%28b%29)" in line
    unescaped = re.sub(r"\\.", "", line)  # drop escaped characters: what's left is live markdown
    assert unescaped.count("](") == 1 and unescaped.count("[") == 2  # "**[1]**" and the one link


def test_only_web_addresses_become_links() -> None:
    line = render.citation_line(citation(1, title="Not a link", url="javascript:alert(1)"))
    assert "](" not in line


# --- The Sources button and plain texts ---------------------------------------------------------


def test_the_sources_view_shows_each_quote_with_its_link() -> None:
    [message] = render.render_quotes([citation(1, quote="Members can opt out at any time."), citation(2)])
    [embed] = message.embeds

    assert [f.name for f in embed.fields] == ["[1] LinkedIn Help: Data for Generative AI Improvement",
                                             "[2] LinkedIn Help: Data for Generative AI Improvement"]
    assert embed.fields[0].value.startswith("> Members can opt out at any time.")
    assert "(https://www.linkedin.com/help/linkedin/answer/a5538339)" in embed.fields[0].value


def test_many_long_quotes_spread_over_several_messages() -> None:
    sources = [citation(n, quote="A long quote from the source. " * 100) for n in range(1, 31)]
    messages = render.render_quotes(sources)

    assert len(messages) > 1
    assert_within_discord_limits(messages)
    assert sum(len(e.fields) for e in embeds_of(messages)) == 30


def test_no_sources_means_a_plain_notice() -> None:
    [message] = render.render_quotes([])
    assert "no quotes" in message.content


def test_long_plain_texts_are_split_at_2000_characters() -> None:
    text = "\n".join(f"Line {i}: what I store and for how long." for i in range(200))
    messages = render.render_text(text)

    assert len(messages) > 1
    assert all(len(m.content) <= 2000 for m in messages)
    assert "\n".join(m.content for m in messages).split() == text.split()
