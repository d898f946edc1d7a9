"""Answer → Discord messages: embeds within Discord's limits, escaped, split when too long.

Pure functions: nothing here talks to Discord. The adapter sends what these return.

Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits):
message content 2000; embed description 4096, 25 fields, field name 256, field value 1024,
footer 2048, and 6000 characters across one message's embeds. Every message built here
carries at most one embed, so the 6000 applies to each embed on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import discord

from bot.models import Answer, Citation

CONTENT_LIMIT = 2000
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELDS_PER_EMBED = 25
EMBED_TOTAL_LIMIT = 6000

# Long titles, publishers and quotes are cut so one source never crowds out the rest.
TITLE_CHARS = 150
PUBLISHER_CHARS = 80
QUOTE_CHARS = 700
LINK_URL_CHARS = 400
FOOTER_CHARS = 200

ANSWER_COLOUR = discord.Colour.blurple()
NO_ANSWER_COLOUR = discord.Colour.light_grey()

# The footer carries the answer's reference so the buttons find their answer after a restart.
_REF_PATTERN = re.compile(r"\bref ([0-9a-f]{6,32})\b")


@dataclass
class DiscordMessage:
    """One message to send: plain content, or one embed (never both)."""

    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)


# --- Escaping ---------------------------------------------------------------------------


def escape(text: str) -> str:
    """Text shown as written: no markdown, no @everyone / @here / user or role pings."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def _escape_label(text: str) -> str:
    """Text inside a masked link's [label]: brackets too, so it cannot close the link early."""
    # Walk escape pairs as units so an escaped backslash before a bracket stays escaped.
    return re.sub(r"\\.|[\[\]]", lambda m: m[0] if len(m[0]) == 2 else "\\" + m[0], escape(text))


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _link(label: str, url: str) -> str:
    """A masked link, or just the label when the URL is not a plain, short web address."""
    if not re.match(r"https?://", url) or len(url) > LINK_URL_CHARS:
        return label
    safe_url = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
    return f"[{label}]({safe_url})"


# --- Splitting ----------------------------------------------------------------------------


def split_text(text: str, limit: int) -> list[str]:
    """Cut text into pieces of at most `limit` characters, at the gentlest break available.

    Paragraphs first, then lines, sentences and words; a single overlong word is cut
    hard, never right after a backslash (that would break an escape sequence).
    """
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _best_cut(rest, limit)
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _best_cut(text: str, limit: int) -> int:
    window = text[: limit + 1]
    for separator in ("\n\n", "\n", ". ", " "):
        at = window.rfind(separator)
        if at > limit // 3:  # a break too early would leave tiny pieces
            return at + 1 if separator == ". " else at  # keep the full stop
    return _safe_cut(text, limit)


def _safe_cut(text: str, limit: int) -> int:
    """`limit`, moved back so the piece doesn't end inside an escape sequence."""
    cut = limit
    while cut > 1 and text[cut - 1] == "\\":
        cut -= 1
    return cut


def _fit(escaped: str, limit: int) -> str:
    """Already-escaped text cut to `limit` characters, with an ellipsis when cut."""
    if len(escaped) <= limit:
        return escaped
    return escaped[: _safe_cut(escaped, limit - 1)] + "…"


# --- Answers ------------------------------------------------------------------------------


def citation_line(citation: Citation) -> str:
    """`**[1]** [Title](url) — Publisher, 2025-09-18`, escaped."""
    title = _link(_escape_label(_shorten(citation.title, TITLE_CHARS)), citation.url)
    source = escape(_shorten(citation.publisher, PUBLISHER_CHARS))
    if citation.published:
        source += f", {escape(citation.published)}"
    return f"**[{citation.n}]** {title} — {source}"


def footer_text(answer: Answer, ref: str | None) -> str | None:
    parts = []
    if answer.as_of:
        parts.append(f"As of {answer.as_of}")
    if ref:
        parts.append(f"ref {ref}")
    return _shorten(" · ".join(parts), FOOTER_CHARS) or None


def read_ref(message: discord.Message | None) -> str | None:
    """The answer reference written into a message's footer by `render_answer`, if any."""
    if message is None:
        return None
    for embed in message.embeds:
        match = _REF_PATTERN.search(embed.footer.text or "")
        if match:
            return match.group(1)
    return None


def render_answer(answer: Answer, *, ref: str | None = None) -> list[DiscordMessage]:
    """The answer as one embed, continued in more messages when it doesn't fit.

    The body goes in the description; the numbered sources go in "Sources" fields; the
    first embed's footer carries the "as of" date and the reference the buttons use.
    """
    colour = NO_ANSWER_COLOUR if answer.abstained else ANSWER_COLOUR
    embeds = [discord.Embed(description=text, colour=colour) for text in split_text(escape(answer.body), DESCRIPTION_LIMIT)]
    embeds = embeds or [discord.Embed(colour=colour)]
    footer = footer_text(answer, ref)
    if footer:
        embeds[0].set_footer(text=footer)
    fields = _group_lines([citation_line(c) for c in answer.citations], "Sources", "Sources (continued)")
    _add_fields(embeds, fields, colour)
    return [DiscordMessage(embeds=[embed]) for embed in embeds]


def _group_lines(lines: Iterable[str], name: str, continued_name: str) -> list[tuple[str, str]]:
    """Lines gathered into as few fields as fit (value ≤ 1024 each)."""
    fields: list[tuple[str, str]] = []
    current = ""
    for line in lines:
        line = line[:FIELD_VALUE_LIMIT]
        if current and len(current) + 1 + len(line) > FIELD_VALUE_LIMIT:
            fields.append((continued_name if fields else name, current))
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        fields.append((continued_name if fields else name, current))
    return fields


def _add_fields(embeds: list[discord.Embed], fields: list[tuple[str, str]], colour: discord.Colour) -> None:
    """Fields go on the last embed while it has room, then on new embeds."""
    for name, value in fields:
        last = embeds[-1]
        if len(last.fields) >= FIELDS_PER_EMBED or len(last) + len(name) + len(value) > EMBED_TOTAL_LIMIT:
            last = discord.Embed(colour=colour)
            embeds.append(last)
        last.add_field(name=name, value=value, inline=False)


# --- The Sources button -------------------------------------------------------------------


def render_quotes(citations: list[Citation]) -> list[DiscordMessage]:
    """Each source with the words it says, as fields; several embeds when there are many."""
    if not citations:
        return render_text("This answer doesn't rest on any sources, so there are no quotes to show.")
    embeds = [discord.Embed(title="Sources and what they say", colour=ANSWER_COLOUR)]
    _add_fields(embeds, [_quote_field(c) for c in citations], ANSWER_COLOUR)
    return [DiscordMessage(embeds=[embed]) for embed in embeds]


def _quote_field(citation: Citation) -> tuple[str, str]:
    name = _fit(f"[{citation.n}] " + escape(_shorten(citation.title, TITLE_CHARS)), FIELD_NAME_LIMIT)
    source = _escape_label(_shorten(citation.publisher, PUBLISHER_CHARS))
    if citation.published:
        source += f", {escape(citation.published)}"
    link_line = _link(source, citation.url)
    # The quote gives way to the link: what's left of 1024 after the link and "> ".
    quote = _fit(escape(_shorten(citation.quote, QUOTE_CHARS)), FIELD_VALUE_LIMIT - len(link_line) - 3)
    return name, f"> {quote}\n{link_line}" if quote else link_line


# --- Plain texts ----------------------------------------------------------------------------


def render_text(text: str) -> list[DiscordMessage]:
    """A plain text (help, privacy, notices) as escaped message content, split at 2000."""
    return [DiscordMessage(content=piece) for piece in split_text(escape(text), CONTENT_LIMIT)]
