"""The answer every front end receives. Front ends decide only how it looks."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Citation(BaseModel):
    """One numbered source behind an answer, with the verbatim quote that supports it."""

    n: int = Field(ge=1)
    source_id: str
    title: str
    publisher: str
    url: str
    published: str | None = Field(description="ISO date, or None when the source shows no date")
    quote: str
    authority: str = Field(description="official, regulator, news / law firm, advocacy or blog / seed article")


class Answer(BaseModel):
    """A composed answer.

    `body` is the answer itself with [n] markers; `text` is the plain-text rendering
    (body plus a short source list) that the console and the JSON-lines protocol print.
    """

    text: str
    body: str
    citations: list[Citation] = []
    abstained: bool = False
    platform: str | None = None
    topic: str | None = None
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    as_of: str | None = Field(default=None, description="ISO date the facts were true as of, for time-sensitive answers")
    kind: str = Field(default="answer", description="answer, conflict, gap, passage, out_of_scope, clarify, sources, input_error")
    fact_ids: list[str] = []
