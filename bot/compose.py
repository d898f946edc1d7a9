"""Turn chosen facts (or a source passage) into an Answer with numbered citations.

Pure functions: no retrieval, no state, no front-end formatting. The text is plain;
each front end escapes and formats it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from bot.knowledge import Fact, Knowledge, Source
from bot.models import Answer, Citation

_MARKER = re.compile(r"\[(\d+)\]")
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)")
MONTHS = ("January February March April May June July August September October November December").split()


def human_date(value: date) -> str:
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


@dataclass
class CitationList:
    """Numbers citations across the facts of one answer, reusing a number for the same quote."""

    knowledge: Knowledge

    def __post_init__(self) -> None:
        self.citations: list[Citation] = []
        self._numbers: dict[tuple[str, str], int] = {}

    def number(self, source: Source, quote: str) -> int:
        key = (source.id, quote)
        if key not in self._numbers:
            self._numbers[key] = len(self.citations) + 1
            self.citations.append(Citation(
                n=self._numbers[key], source_id=source.id, title=source.title, publisher=source.publisher,
                url=source.url, published=source.published.isoformat() if source.published else None,
                quote=quote, authority=source.authority_label))
        return self._numbers[key]

    def fact_text(self, fact: Fact, text: str | None = None) -> str:
        """The fact's answer (or part of it) with its own [n] renumbered for this answer."""
        text = fact.answer if text is None else text
        local = [self.number(self.knowledge.sources[c.source], c.quote) for c in fact.citations]
        if not _MARKER.search(text):
            return f"{text} " + "".join(f"[{n}]" for n in local)
        return _MARKER.sub(lambda m: f"[{local[int(m.group(1)) - 1]}]", text)


def first_sentence(text: str) -> str:
    match = _FIRST_SENTENCE.match(text)
    sentence = match.group(1) if match else text
    # keep the markers that close the sentence: "... default [3]." style or "... default. [3]"
    rest = text[len(sentence):]
    trailing = re.match(r"(\s*\[\d+\])+", rest)
    return sentence + (trailing.group(0) if trailing else "")


def short_publisher(publisher: str) -> str:
    """ "Gulf News (Lekshmy Pavithran, Assistant Online Editor)" → "Gulf News": the notes stay in the citation."""
    return publisher.split(" (")[0].strip() or publisher


def short_title(title: str, limit: int = 90) -> str:
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def source_list(citations: list[Citation]) -> str:
    """One line per source, carrying every number that cites it: "[2][5] Title — Publisher (news, date). url"."""
    by_source: dict[str, list[Citation]] = {}
    for c in citations:
        by_source.setdefault(c.source_id, []).append(c)
    lines = []
    for group in by_source.values():
        c = group[0]
        numbers = "".join(f"[{x.n}]" for x in group)
        lines.append(f"{numbers} {short_title(c.title)} — {short_publisher(c.publisher)} "
                     f"({c.authority}, {c.published or 'undated'}). {c.url}")
    return "Sources:\n" + "\n".join(lines)


def finish(body: str, citations: list[Citation], **fields) -> Answer:
    text = body if not citations else f"{body}\n\n{source_list(citations)}"
    return Answer(text=text, body=body, citations=citations, **fields)


def compose_facts(knowledge: Knowledge, facts: list[Fact], *, lead: str = "", notes: list[Fact] | None = None,
                  confidence: float, abstained: bool = False, kind: str | None = None) -> Answer:
    """The direct answer first (`lead` plus the first fact), then any further facts and notes."""
    numbering = CitationList(knowledge)
    paragraphs = []
    for i, fact in enumerate(facts):
        text = numbering.fact_text(fact)
        paragraphs.append(f"{lead}{text}" if i == 0 and lead else text)
    for note in notes or []:
        paragraphs.append("Sources disagree here: " + numbering.fact_text(note, first_sentence(note.answer)))
    dated = [f.as_of for f in facts if f.as_of]
    as_of = max(dated) if dated else None
    if as_of:
        paragraphs.append(f"(As of {human_date(as_of)}, according to the sources cited.)")
    main = facts[0]
    return finish(
        "\n\n".join(paragraphs), numbering.citations,
        abstained=abstained or main.kind == "gap",
        platform=main.platform, topic=main.topic, confidence=round(min(max(confidence, 0.0), 1.0), 3),
        as_of=as_of.isoformat() if as_of else None,
        kind=kind or ("gap" if main.kind == "gap" else main.kind if main.kind == "conflict" else "answer"),
        fact_ids=[f.id for f in [*facts, *(notes or [])]],
    )


def compose_passage(knowledge: Knowledge, source: Source, quote: str, *, platform: str | None,
                    confidence: float) -> Answer:
    numbering = CitationList(knowledge)
    n = numbering.number(source, quote)
    body = (f"My curated facts don't answer that directly. The closest thing in my sources is this, from "
            f"{source.publisher} ({source.authority_label}): \"{quote}\" [{n}]")
    return finish(body, numbering.citations, abstained=False, platform=platform, topic=None,
                  confidence=round(min(max(confidence, 0.0), 1.0), 3), kind="passage")


def compose_where_from(citations: list[Citation]) -> Answer:
    if not citations:
        return finish("I haven't given you an answer with sources in this chat yet. Ask me a question first.", [],
                      abstained=True, kind="sources")
    lines = [f"[{c.n}] {c.publisher}: \"{c.quote}\"" for c in citations]
    body = "Here is what I read, word for word:\n" + "\n".join(lines)
    return finish(body, citations, kind="sources", confidence=1.0)


def compose_plain(body: str, *, abstained: bool, kind: str, platform: str | None = None) -> Answer:
    return finish(body, [], abstained=abstained, kind=kind, platform=platform)
