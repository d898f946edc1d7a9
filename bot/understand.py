"""Read a user's message: clean it, fix typos, and find what it is about.

Everything matched here (platform names, misspellings, regions, topic words,
everyday synonyms) comes from knowledge/vocabulary.yaml; this module holds only
the matching machinery. It knows nothing of embeddings or front ends.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property

from rapidfuzz import process
from rapidfuzz.distance import OSA

from bot.knowledge import Knowledge, NamedTerm

# Characters that must never reach the engine: controls (but newline/tab), bidi overrides,
# zero-width and other invisible format characters, private-use and unassigned code points.
_DROP_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs"}
_KEEP = {"\n", "\t"}
_WORD = re.compile(r"[a-z0-9][a-z0-9'’.-]*[a-z0-9]|[a-z0-9]", re.IGNORECASE)


_MARKUP = [
    (re.compile(r"<[^>]{0,200}>"), " "),  # HTML tags: <b>, <script>, </a>
    (re.compile(r"\[([^\]]{0,200})\]\([^)]{0,500}\)"), r"\1"),  # Markdown links: keep the words
    (re.compile(r"(?i)\b(?:https?|javascript|data):\S*"), " "),  # URLs and script URLs
    (re.compile(r"[*_`~|>#]+"), " "),  # Markdown emphasis, code, quotes, headings
]


def strip_markup(text: str) -> str:
    """What a question says once HTML and Markdown decoration is removed (it is never echoed anyway)."""
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())


def clean_text(text: str) -> str:
    """NFKC-normalise, drop control/bidi/invisible characters, collapse whitespace."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if ch in _KEEP or unicodedata.category(ch) not in _DROP_CATEGORIES else " " for ch in text)
    return " ".join(text.split())


# Small closed-class word lists are language facts, not domain knowledge, so they live here.
ENGLISH_FUNCTION_WORDS = frozenset(
    "a an the and or but if of to in on at for from by with about as is are was were be been do does did "
    "can could will would should may might my me i you your it its this that these those what which who "
    "how when where why not no yes any all have has had there their they them we our us".split()
)
FOREIGN_FUNCTION_WORDS = frozenset(
    # German, French, Spanish, Italian, Portuguese, Dutch, Polish, Swedish function words
    "der die das und ist nicht ich wie mein meine meinen mich wird werden kann auf mit für dem den "
    "le la les est je mes mon ma des une pas pour que qui dans avec sur comment "
    "el los las es mis mi como qué por para con una del sobre puedo "
    "il gli della che sono non come posso per mio miei "
    "os não meus minha você pode "
    "het een niet mijn hoe kan ik "
    "jak nie moje czy się "
    "och inte mina hur jag".split()
)

# Words that carry no subject of their own ("please", "honestly"): never a reason to doubt a match.
_FILLER_WORDS = frozenset(
    "please pls plz thanks thank honestly actually really basically just quick quickly question questions hey hello "
    "hi okay ok yeah yes wondering wonder curious worried concerned anyone someone somebody guys folks tell "
    "explain know knowing want wants wanted need needs like would could should wanna gonna kinda sorta stuff thing "
    "things right now today currently still already also anyway anymore ever never exactly".split()
)

FOLLOW_UP_OPENERS = re.compile(
    r"^(and|also|what about|how about|what if|same for|and what about|and for|and on|and in|ok and|okay and|"
    r"is (it|that|the|this)|are (they|those|these|we)|does (it|that|this)|do (they|those)|"
    r"what about on|on my|in the app|for (ads|the app|mobile))\b",
    re.IGNORECASE,
)
WHERE_FROM = re.compile(
    r"\b(where did you (read|get|find|see|learn)|what('?s| is| are) (your|the) sources?|sources? for (that|this)|"
    r"how do you know|says who|who says( so)?|who (said|confirmed|confirms|claims|claimed|reported) (that|this|so|it)|"
    r"according to (whom|who)|cite|citation|proof|can you quote|show (me )?(the )?(quote|source))",
    re.IGNORECASE,
)
GREETING = re.compile(r"^(hi|hello|hey|hiya|yo|good (morning|afternoon|evening)|thanks|thank you|thx|cheers|ok|okay|cool|great)[!. ]*$",
                      re.IGNORECASE)
# A job rather than a question ("write me a LinkedIn post", "translate this"): not what the bot is for,
# unless it is plainly about AI training or privacy ("summarise LinkedIn's AI training changes").
TASK_REQUEST = re.compile(r"^(?:please\s+|can you\s+|could you\s+)?(?:write|compose|draft|generate|create|make|"
                          r"translate|rewrite|paraphrase|summari[sz]e|calculate|solve|code|build|design|plan|book|"
                          r"order|sing|draw)\b", re.IGNORECASE)
STRICTLY_ON_SUBJECT = re.compile(r"\b(?:train\w*|opt\w*|privacy|personal data|my data|policy|policies|gdpr)\b",
                                 re.IGNORECASE)
YES_NO_OPENERS = re.compile(r"^(do|does|did|is|are|was|were|will|would|can|could|has|have|should|may)\b", re.IGNORECASE)
# Words that flip a yes/no question's polarity relative to "Does X use Y?".
POLARITY_FLIPS = re.compile(r"\b(?:excluded|exclude|exempt|safe|protected|spared|kept out|left out|not|off limits|or)\b|n't",
                            re.IGNORECASE)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
LONG_MESSAGE_WORDS = 30


def question_part(text: str) -> str:
    """The question(s) of a long message ("...my friend says X. Is that true, and what should I do?")."""
    if len(text.split()) <= LONG_MESSAGE_WORDS:
        return text
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    questions = [s for s in sentences if s.rstrip().endswith("?")] or sentences[-1:]
    return " ".join(questions[-2:])


@dataclass
class Understanding:
    """What a message is about, as far as words alone can tell."""

    text: str  # cleaned text
    corrected: str  # with misspellings fixed, lower-case
    platforms: list[str] = field(default_factory=list)
    uncovered_platforms: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    uncovered_countries: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    expansions: list[str] = field(default_factory=list)
    relevant: bool = False  # mentions data, AI or privacy at all
    subjects: list[str] = field(default_factory=list)  # subject terms asked about ("private messages")
    is_task_request: bool = False  # "write me a post", "translate this": a job, not a question
    unknown_words: list[str] = field(default_factory=list)  # words no source or fact ever uses
    content_words: list[str] = field(default_factory=list)  # words that carry the question, platforms aside
    asks_where_from: bool = False
    is_greeting: bool = False
    looks_like_follow_up: bool = False
    is_yes_no: bool = False
    polarity_flipped: bool = False
    foreign: bool = False

    @property
    def search_text(self) -> str:
        """The question as searched: corrected words plus the sources' words for everyday terms."""
        return " ".join([self.corrected, *self.expansions])


class _Matcher:
    """Finds names from a vocabulary section in text: phrases, case-sensitive names and patterns."""

    def __init__(self, entries: dict[str, NamedTerm | list[str]]) -> None:
        self._rules: list[tuple[str, re.Pattern[str]]] = []
        for key, entry in entries.items():
            aliases = entry if isinstance(entry, list) else entry.aliases
            phrases = sorted({a.lower() for a in aliases if a.strip()}, key=len, reverse=True)
            if phrases:
                alternation = "|".join(re.escape(p) for p in phrases)
                # A plural or possessive still counts: "under-18s", "DMs", "Meta's".
                self._rules.append((key, re.compile(rf"(?<![\w/])(?:{alternation})(?:e?s|'s|’s)?(?![\w])",
                                                    re.IGNORECASE)))
            if isinstance(entry, NamedTerm):
                if entry.case_sensitive:
                    alternation = "|".join(re.escape(p) for p in entry.case_sensitive)
                    self._rules.append((key, re.compile(rf"(?<![\w])(?:{alternation})(?![\w])")))
                for pattern in entry.patterns:
                    self._rules.append((key, re.compile(pattern)))

    def find(self, *texts: str) -> list[str]:
        """Keys found, in order of first appearance in the first text that has them."""
        found: dict[str, int] = {}
        for text in texts:
            for key, rule in self._rules:
                match = rule.search(text)
                if match and key not in found:
                    found[key] = match.start()
        return sorted(found, key=found.get)


class Reader:
    """Builds an Understanding of each message from the knowledge's vocabulary."""

    def __init__(self, knowledge: Knowledge, known_words: frozenset[str] = frozenset()) -> None:
        vocabulary = knowledge.vocabulary
        self._vocabulary = vocabulary
        self._platforms = _Matcher({k: v for k, v in vocabulary.platforms.items()})
        self._uncovered_platforms = _Matcher(vocabulary.uncovered_platforms)
        self._regions = _Matcher({k: v for k, v in vocabulary.regions.items()})
        self._uncovered_countries = _Matcher(vocabulary.uncovered_countries)
        self._topics = _Matcher({k: v for k, v in vocabulary.topics.items()})
        self._terms = [(target, re.compile(rf"(?<![\w])(?:{'|'.join(re.escape(a.lower()) for a in aliases)})(?![\w])",
                                           re.IGNORECASE))
                       for target, aliases in vocabulary.terms.items() if aliases]
        self._relevance = _Matcher({"relevant": vocabulary.relevance_words})
        self._subjects = _Matcher({name: term.asked for name, term in vocabulary.subject_terms.items()})
        self._domain_words = self._collect_domain_words(knowledge)
        self._known_words = known_words | self._domain_words | ENGLISH_FUNCTION_WORDS
        self._domain_list = sorted(self._domain_words)
        self._corpus_words = self._domain_words | frozenset(
            w.lower() for source in knowledge.sources.values() for w in _WORD.findall(source.text))

    @staticmethod
    def _collect_domain_words(knowledge: Knowledge) -> frozenset[str]:
        vocabulary = knowledge.vocabulary
        texts: list[str] = []
        for section in (vocabulary.platforms, vocabulary.regions, vocabulary.topics):
            for term in section.values():
                texts.extend(term.aliases)
        for aliases in [*vocabulary.uncovered_platforms.values(), *vocabulary.uncovered_countries.values(),
                        *vocabulary.terms.values()]:
            texts.extend(aliases)
        texts.extend(vocabulary.terms)
        for fact in knowledge.facts:
            texts.extend(fact.questions)
            texts.append(fact.answer)
        return frozenset(w.lower() for t in texts for w in _WORD.findall(t) if len(w) >= 3 and not w.isdigit())

    @cached_property
    def _correction_cache(self) -> dict[str, str]:
        return {}

    def _correct(self, word: str) -> str:
        """Fix a misspelt domain word ("linkdin", "trainnig", "otu"); leave real words alone."""
        lower = word.lower()
        if len(lower) < 3 or lower in self._known_words or not lower.isalpha():
            return lower
        cached = self._correction_cache.get(lower)
        if cached is not None:
            return cached
        max_distance = 1 if len(lower) <= 5 else 2
        best = process.extractOne(lower, self._domain_list, scorer=OSA.distance, score_cutoff=max_distance)
        corrected = best[0] if best else lower
        if len(self._correction_cache) < 50_000:
            self._correction_cache[lower] = corrected
        return corrected

    def correct_text(self, text: str) -> str:
        return _WORD.sub(lambda m: self._correct(m.group(0)), text.lower())

    def _content_words(self, corrected: str) -> list[str]:
        platform_words = self._platform_words
        return [w for w in _WORD.findall(corrected)
                if len(w) >= 3 and w.isalpha() and w not in ENGLISH_FUNCTION_WORDS and w not in _FILLER_WORDS
                and w not in platform_words]

    @cached_property
    def _platform_words(self) -> frozenset[str]:
        return frozenset(w for term in self._vocabulary.platforms.values() for a in term.aliases
                         for w in _WORD.findall(a.lower()))

    def without_platforms(self, text: str) -> str:
        """A question with its platform names taken out, to ask it again of another platform."""
        return " ".join(w for w in text.split() if w.strip("?,.!:;'\"").lower().removesuffix("'s")
                        not in self._platform_words)

    def _unknown_words(self, corrected: str) -> list[str]:
        """Content words that appear nowhere in the knowledge: the question may be about something else."""
        return [w for w in _WORD.findall(corrected)
                if len(w) >= 3 and w.isalpha() and w not in self._corpus_words and w not in ENGLISH_FUNCTION_WORDS
                and w not in _FILLER_WORDS]

    def read(self, raw: str) -> Understanding:
        text = strip_markup(clean_text(raw))
        whole = self.correct_text(text)
        # In a long message with a story around it, the question itself is what to search for.
        focus = question_part(text)
        corrected = whole if focus == text else self.correct_text(focus)
        words = [w.lower() for w in _WORD.findall(text)]
        english = sum(w in ENGLISH_FUNCTION_WORDS for w in words)
        foreign = sum(w in FOREIGN_FUNCTION_WORDS for w in words)
        letters = [ch for ch in text if ch.isalpha()]
        non_latin = sum(not ("a" <= ch.lower() <= "z") and unicodedata.name(ch, "").find("LATIN") < 0 for ch in letters)
        is_foreign = bool(letters) and (non_latin > len(letters) * 0.5 or (foreign >= 2 and foreign > english))
        return Understanding(
            text=text,
            corrected=corrected,
            platforms=self._platforms.find(text, whole),
            uncovered_platforms=self._uncovered_platforms.find(text),
            regions=self._regions.find(text, whole),
            uncovered_countries=self._uncovered_countries.find(text),
            topics=list(dict.fromkeys(self._topics.find(corrected) + self._topics.find(whole))),
            relevant=bool(self._relevance.find(whole)),
            subjects=self._subjects.find(corrected),
            is_task_request=bool(TASK_REQUEST.match(text)) and not STRICTLY_ON_SUBJECT.search(whole),
            unknown_words=self._unknown_words(corrected),
            content_words=self._content_words(corrected),
            expansions=[target for target, rule in self._terms if rule.search(corrected)],
            asks_where_from=bool(WHERE_FROM.search(text)),
            is_greeting=bool(GREETING.match(text)),
            looks_like_follow_up=bool(FOLLOW_UP_OPENERS.match(text)) or len(words) <= 2,
            is_yes_no=bool(YES_NO_OPENERS.match(focus)),
            polarity_flipped=bool(POLARITY_FLIPS.search(focus)),
            foreign=is_foreign,
        )
