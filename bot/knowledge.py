"""Load and validate the curated knowledge base in knowledge/.

The base is three kinds of hand-edited files:
- knowledge/sources/*.md   one stored source each: YAML front matter + its text
- knowledge/facts/*.yaml   the facts the bot answers from, each citing verbatim quotes
- knowledge/vocabulary.yaml platforms, topics, regions and the words people use for them

`load_knowledge` refuses a broken base: it raises KnowledgeError listing every
problem with the file, the line and the entry, so nothing partial is ever served.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_KNOWLEDGE_DIR = Path(__file__).resolve().parent.parent / "knowledge"

AUTHORITY_LABELS = {1: "official", 2: "regulator", 3: "news / law firm", 4: "advocacy", 5: "blog / seed article"}
SOURCE_KINDS = {"official", "regulator", "news", "advocacy", "blog"}


# ---------------------------------------------------------------- text normalising

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ",
})
_SPACE = re.compile(r"\s+")
_BLOCKQUOTE = re.compile(r"(?m)^\s*>\s?")


def normalise_for_quote(text: str) -> str:
    """Fold the differences a copy-paste introduces: whitespace, quote marks, dashes, ellipses."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = _BLOCKQUOTE.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def quote_in_text(quote: str, text: str) -> bool:
    return normalise_for_quote(quote) in normalise_for_quote(text)


# ---------------------------------------------------------------- models

class Source(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    authority: int = Field(ge=1, le=5)
    title: str
    publisher: str
    url: str
    published: date | None = None
    kind: str
    platforms: list[str]
    note: str | None = None
    text: str = ""
    path: str = ""

    @property
    def authority_label(self) -> str:
        return AUTHORITY_LABELS[self.authority]

    @property
    def published_label(self) -> str:
        return self.published.isoformat() if self.published else "undated"


class QuoteRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    quote: str = Field(min_length=8)


class Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    platform: str
    topic: str
    regions: list[str] = Field(min_length=1)
    kind: Literal["fact", "conflict", "gap"] = "fact"
    questions: list[str] = Field(min_length=1)
    answer: str = Field(min_length=10)
    yes_no: Literal["yes", "no"] | None = None
    as_of: date | None = None
    citations: list[QuoteRef] = Field(min_length=1)
    related: list[str] = []
    file: str = ""
    line: int = 0

    @field_validator("answer")
    @classmethod
    def _collapse(cls, value: str) -> str:
        return " ".join(value.split())


class NamedTerm(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    label: str | None = None
    aliases: list[str] = []
    case_sensitive: list[str] = []
    patterns: list[str] = []


class SubjectTerm(BaseModel):
    """When a question asks about one of `asked`, the answer must mention one of `answer_mentions`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    asked: list[str]
    answer_mentions: list[str]


class Vocabulary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    platforms: dict[str, NamedTerm]
    uncovered_platforms: dict[str, list[str]]
    regions: dict[str, NamedTerm]
    uncovered_countries: dict[str, list[str]]
    topics: dict[str, NamedTerm]
    relevance_words: list[str] = []
    subject_terms: dict[str, SubjectTerm] = {}
    terms: dict[str, list[str]]


@dataclass(frozen=True)
class Knowledge:
    sources: dict[str, Source]
    facts: list[Fact]
    vocabulary: Vocabulary
    content_hash: str
    directory: Path

    @property
    def facts_by_id(self) -> dict[str, Fact]:
        return {fact.id: fact for fact in self.facts}

    @property
    def current_as_of(self) -> date:
        """The newest dated source: how current the knowledge is."""
        return max(s.published for s in self.sources.values() if s.published)


@dataclass
class Problem:
    file: str
    line: int
    entry: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.entry}: {self.message}"


@dataclass
class KnowledgeError(Exception):
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        head = f"the knowledge base has {len(self.problems)} problem(s):"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


# ---------------------------------------------------------------- YAML with line numbers

class _LineLoader(yaml.SafeLoader):
    """A YAML loader that records, for each mapping, the line it starts on."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping


def _read_yaml(path: Path, problems: list[Problem], relative: str) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problems.append(Problem(relative, line, "file", f"is not valid YAML ({getattr(error, 'problem', error)})"))
    except UnicodeDecodeError:
        problems.append(Problem(relative, 0, "file", "is not UTF-8 text"))
    return None


def _strip_lines(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_strip_lines(v) for v in value]
    return value


def _pydantic_problems(error: ValidationError, relative: str, line: int, entry: str) -> list[Problem]:
    out = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "entry"
        message = "is missing (required field)" if item["type"] == "missing" else item["msg"]
        out.append(Problem(relative, line, entry, f"{location}: {message}"))
    return out


# ---------------------------------------------------------------- loading

def _load_sources(directory: Path, problems: list[Problem]) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    source_dir = directory / "sources"
    for path in sorted(source_dir.glob("*.md")):
        relative = str(path.relative_to(directory.parent)) if directory.parent in path.parents else str(path)
        text = path.read_text(encoding="utf-8", errors="replace")
        parts = text.split("---\n", 2)
        if len(parts) < 3 or parts[0].strip():
            problems.append(Problem(relative, 1, "front matter", "the file must start with '---' YAML front matter"))
            continue
        try:
            meta = yaml.safe_load(parts[1]) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            problems.append(Problem(relative, (mark.line + 2) if mark else 1, "front matter", f"is not valid YAML ({error})"))
            continue
        if not isinstance(meta, dict):
            problems.append(Problem(relative, 1, "front matter", "must be a YAML mapping"))
            continue
        entry = f"source {meta.get('id', path.stem)!r}"
        try:
            source = Source(**meta, text=parts[2], path=str(path))
        except ValidationError as error:
            problems.extend(_pydantic_problems(error, relative, 1, entry))
            continue
        if source.id != path.stem:
            problems.append(Problem(relative, 1, entry, f"id must equal the file name ({path.stem!r})"))
        if source.kind not in SOURCE_KINDS:
            problems.append(Problem(relative, 1, entry, f"unknown kind {source.kind!r} (one of {sorted(SOURCE_KINDS)})"))
        if not source.text.strip():
            problems.append(Problem(relative, 1, entry, "has no text"))
        if source.id in sources:
            problems.append(Problem(relative, 1, entry, "duplicate source id"))
        sources[source.id] = source
    if not sources:
        problems.append(Problem(str(source_dir), 0, "sources", "no source files found"))
    return sources


def _load_vocabulary(directory: Path, problems: list[Problem]) -> Vocabulary | None:
    path = directory / "vocabulary.yaml"
    relative = f"{directory.name}/vocabulary.yaml"
    if not path.exists():
        problems.append(Problem(relative, 0, "file", "is missing"))
        return None
    raw = _read_yaml(path, problems, relative)
    if raw is None:
        return None
    try:
        vocabulary = Vocabulary(**_strip_lines(raw))
    except (ValidationError, TypeError) as error:
        if isinstance(error, ValidationError):
            problems.extend(_pydantic_problems(error, relative, 1, "vocabulary"))
        else:
            problems.append(Problem(relative, 1, "vocabulary", str(error)))
        return None
    for section in ("platforms", "regions", "uncovered_platforms", "uncovered_countries"):
        for key, term in getattr(vocabulary, section).items():
            for pattern in getattr(term, "patterns", []):
                try:
                    re.compile(pattern)
                except re.error as error:
                    problems.append(Problem(relative, 0, f"{section}.{key}", f"bad pattern {pattern!r}: {error}"))
    return vocabulary


def _load_facts(directory: Path, problems: list[Problem]) -> list[Fact]:
    facts: list[Fact] = []
    for path in sorted((directory / "facts").glob("*.yaml")):
        relative = f"{directory.name}/facts/{path.name}"
        raw = _read_yaml(path, problems, relative)
        if raw is None:
            continue
        if not isinstance(raw, list):
            problems.append(Problem(relative, 1, "file", "must be a YAML list of facts"))
            continue
        for index, item in enumerate(raw, start=1):
            if not isinstance(item, dict):
                problems.append(Problem(relative, 0, f"entry #{index}", "must be a mapping with id, platform, topic, ..."))
                continue
            line = item.get("__line__", 0)
            entry = f"fact {item.get('id', f'#{index}')!r}"
            try:
                facts.append(Fact(**_strip_lines(item), file=relative, line=line))
            except ValidationError as error:
                problems.extend(_pydantic_problems(error, relative, line, entry))
    return facts


_MARKER = re.compile(r"\[(\d+)\]")


def _check_facts(facts: list[Fact], sources: dict[str, Source], vocabulary: Vocabulary | None,
                 problems: list[Problem]) -> None:
    seen: dict[str, Fact] = {}
    cited: set[str] = set()
    for fact in facts:
        def bad(message: str, fact: Fact = fact) -> None:
            problems.append(Problem(fact.file, fact.line, f"fact {fact.id!r}", message))

        if fact.id in seen:
            bad(f"duplicate id (first defined in {seen[fact.id].file}:{seen[fact.id].line})")
        seen[fact.id] = fact
        if vocabulary is not None:
            if fact.platform not in vocabulary.platforms:
                bad(f"unknown platform {fact.platform!r} (one of {sorted(vocabulary.platforms)})")
            if fact.topic not in vocabulary.topics:
                bad(f"unknown topic {fact.topic!r} (one of {sorted(vocabulary.topics)})")
            for region in fact.regions:
                if region not in vocabulary.regions:
                    bad(f"unknown region {region!r} (one of {sorted(vocabulary.regions)})")
        for number, citation in enumerate(fact.citations, start=1):
            source = sources.get(citation.source)
            if source is None:
                bad(f"citation {number}: unknown source id {citation.source!r}")
                continue
            cited.add(source.id)
            if not quote_in_text(citation.quote, source.text):
                bad(f"citation {number}: quote not found in {source.id}: {citation.quote[:80]!r}")
        for marker in {int(m) for m in _MARKER.findall(fact.answer)}:
            if not 1 <= marker <= len(fact.citations):
                bad(f"answer refers to [{marker}] but the fact has {len(fact.citations)} citation(s)")
    for fact in facts:
        for other in fact.related:
            if other not in seen:
                problems.append(Problem(fact.file, fact.line, f"fact {fact.id!r}", f"related fact {other!r} does not exist"))
    for source_id, source in sources.items():
        if source_id not in cited:
            problems.append(Problem(Path(source.path).name, 1, f"source {source_id!r}", "is not cited by any fact"))


def content_hash(directory: Path) -> str:
    """A hash of every knowledge file: the index cache is keyed by it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in {".md", ".yaml", ".yml"}):
        if path.name == "README.md" and path.parent == directory:
            continue  # the maintainer guide is not knowledge
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def load_knowledge(directory: Path | str = DEFAULT_KNOWLEDGE_DIR) -> Knowledge:
    """Load the whole base, or raise KnowledgeError naming every problem found."""
    directory = Path(directory)
    problems: list[Problem] = []
    if not directory.is_dir():
        raise KnowledgeError([Problem(str(directory), 0, "knowledge", "directory not found")])
    sources = _load_sources(directory, problems)
    vocabulary = _load_vocabulary(directory, problems)
    facts = _load_facts(directory, problems)
    if not facts:
        problems.append(Problem(f"{directory.name}/facts", 0, "facts", "no facts found"))
    _check_facts(facts, sources, vocabulary, problems)
    if problems or vocabulary is None:
        raise KnowledgeError(problems)
    return Knowledge(sources=sources, facts=facts, vocabulary=vocabulary,
                     content_hash=content_hash(directory), directory=directory)
