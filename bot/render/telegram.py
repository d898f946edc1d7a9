"""Answers as Telegram HTML messages. Pure functions: no I/O, no answer logic.

Telegram's HTML parse mode knows a handful of tags and rejects anything else that looks
like markup, so every string that comes from a user or a source goes through
`html.escape`; the only tags are the ones made here. Long texts are split *before*
rendering — at paragraphs, then lines, sentences, words — so a split can never fall
inside a tag, and every message is checked against Telegram's 4096-character limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from html import escape

from bot.models import Answer, Citation

MAX_MESSAGE_LENGTH = 4096  # Telegram's limit for one text message
MAX_TITLE_CHARS = 200
MAX_QUOTE_CHARS = 700

_MARKER = re.compile(r"\[(\d{1,3})\]")
# Separators to split an over-long text at, best first; each stays with the piece before it.
_SPLIT_POINTS = (re.compile(r"(?<=\n)"), re.compile(r"(?<=[.!?;:] )"), re.compile(r"(?<= )"))


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji can count twice)."""
    return len(text.encode("utf-16-le")) // 2


def render_answer(answer: Answer, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """The answer body with [n] markers as numbered links, then a short source list."""
    urls = {c.n: c.url for c in answer.citations if _is_web_url(c.url)}
    blocks: list[str] = []
    for paragraph in _paragraphs(answer.body):
        blocks += _split_to_fit(paragraph, lambda text: _link_markers(escape(text, quote=False), urls), limit)
    if answer.citations:
        blocks += _source_list(answer.citations)  # the body itself says "as of" when it matters
    return _pack(blocks, limit)


def render_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """A fixed or plain text (help, notices), escaped and split like an answer."""
    blocks: list[str] = []
    for paragraph in _paragraphs(text):
        blocks += _split_to_fit(paragraph, lambda part: escape(part, quote=False), limit)
    return _pack(blocks, limit)


def render_quotes(citations: Sequence[Citation], limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """The "Sources" view: each source with the verbatim quote behind the answer."""
    if not citations:
        return render_text("This answer has no quoted sources.", limit)
    blocks = ["<b>What the sources say</b>"] + [_quote_block(citation, limit) for citation in citations]
    return _pack(blocks, limit)


def _quote_block(citation: Citation, limit: int) -> str:
    """A source line and its quote in one message: only a pathological URL or text that escapes to
    several times its length (every "&" becomes "&amp;") needs the link dropped or the quote shortened."""
    for link, quote_chars in ((True, MAX_QUOTE_CHARS), (False, MAX_QUOTE_CHARS), (False, 200), (False, 40)):
        quote = escape(_shorten(citation.quote, quote_chars), quote=False)
        block = f"{_source_line(citation, link=link)}\n<blockquote>{quote}</blockquote>"
        if telegram_length(block) <= limit:
            break
    return block


def _source_list(citations: Sequence[Citation]) -> list[str]:
    """One line per source; numbers that cite the same source share its line ("[2][3] ...")."""
    by_source: dict[str, list[Citation]] = {}
    for citation in citations:
        by_source.setdefault(citation.source_id, []).append(citation)
    lines = ["<b>Sources</b>"] + [_source_line(group[0], numbers=[c.n for c in group]) for group in by_source.values()]
    text = "\n".join(lines)
    return [text] if telegram_length(text) <= MAX_MESSAGE_LENGTH else lines


def _source_line(citation: Citation, link: bool = True, numbers: list[int] | None = None) -> str:
    """`[n] Title — Publisher, date`, the title linking to the source."""
    title = escape(_shorten(citation.title, MAX_TITLE_CHARS), quote=False)
    if link and _is_web_url(citation.url) and len(escape(citation.url, quote=True)) <= 2000:
        title = f'<a href="{escape(citation.url, quote=True)}">{title}</a>'
    details = escape(_shorten(citation.publisher, MAX_TITLE_CHARS), quote=False)
    if citation.published:
        details += f", {escape(citation.published, quote=False)}"
    label = "".join(f"[{n}]" for n in numbers or [citation.n])
    return f"{label} {title} — {details}"


def _link_markers(escaped: str, urls: dict[int, str]) -> str:
    """Turn [n] into a link to citation n; markers without a known source stay as text."""

    def link(match: re.Match[str]) -> str:
        url = urls.get(int(match.group(1)))
        return f'<a href="{escape(url, quote=True)}">{match.group(0)}</a>' if url else match.group(0)

    return _MARKER.sub(link, escaped)


def _split_to_fit(text: str, render: Callable[[str], str], limit: int) -> list[str]:
    """Render `text`, first splitting the plain text into pieces whose rendering fits."""
    rendered = render(text)
    if telegram_length(rendered) <= limit:
        return [rendered] if text.strip() else []
    for split_point in _SPLIT_POINTS:
        parts = [p for p in split_point.split(text) if p]
        if len(parts) > 1:
            break
    else:  # one unbroken token longer than a message: cut it in half
        half = len(text) // 2
        parts = [text[:half], text[half:]]
    pieces: list[str] = []
    current = ""
    for part in parts:
        if current and telegram_length(render(current + part)) > limit:
            pieces.append(current)
            current = part
        else:
            current += part
    pieces.append(current)
    if len(pieces) == 1:  # even the first part alone is too long: halve and retry
        half = len(text) // 2
        pieces = [text[:half], text[half:]]
    return [html for piece in pieces for html in _split_to_fit(piece.strip(), render, limit)]


def _pack(blocks: list[str], limit: int) -> list[str]:
    """Join rendered blocks into as few messages as fit, never splitting a block."""
    messages: list[str] = []
    for block in blocks:
        if messages and telegram_length(messages[-1] + "\n\n" + block) <= limit:
            messages[-1] += "\n\n" + block
        else:
            messages.append(block)
    return messages


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _shorten(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    if " " in cut[max_chars // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def _is_web_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))
