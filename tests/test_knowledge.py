"""The knowledge base is valid, and the validator catches every kind of defect loudly.

Each defect test feeds the validator a broken copy of the real base and checks that
the error names the file and the entry, so a maintainer knows what to fix.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.knowledge import DEFAULT_KNOWLEDGE_DIR, KnowledgeError, load_knowledge, normalise_for_quote, quote_in_text

ROOT = Path(__file__).resolve().parent.parent
SHARED_SOURCES = ROOT.parent / "shared" / "sources"


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge(DEFAULT_KNOWLEDGE_DIR)


@pytest.fixture
def broken_copy(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(DEFAULT_KNOWLEDGE_DIR, target)
    return target


def _facts_file(base: Path, name: str = "linkedin-optout.yaml") -> Path:
    return base / "facts" / name


def _edit_first_fact(base: Path, change) -> str:
    path = _facts_file(base)
    facts = yaml.safe_load(path.read_text())
    change(facts[0])
    path.write_text(yaml.safe_dump(facts, sort_keys=False, allow_unicode=True))
    return facts[0].get("id", "")


def _problems(base: Path) -> str:
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(base)
    return str(caught.value)


# ------------------------------------------------------------------ the real base

def test_the_whole_base_is_valid(knowledge):
    assert len(knowledge.sources) == 46
    assert len(knowledge.facts) >= 150


def test_every_stored_source_is_curated_with_an_id_and_authority(knowledge):
    stored = {p.stem for p in SHARED_SOURCES.glob("*.md") if p.name != "INDEX.md"} if SHARED_SOURCES.exists() else set()
    if stored:
        assert stored == set(knowledge.sources)
    for source in knowledge.sources.values():
        assert source.id and 1 <= source.authority <= 5 and source.url.startswith("http")
    assert knowledge.sources["linkedin-help-gai-improvement-setting"].authority == 1
    assert knowledge.sources["linkedin-ico-statement"].authority == 2
    assert knowledge.sources["seed-niftytechfinds-linkedin-ai-training"].authority == 5


def test_every_quote_occurs_in_its_source_file(knowledge):
    for fact in knowledge.facts:
        for citation in fact.citations:
            source_file = DEFAULT_KNOWLEDGE_DIR / "sources" / f"{citation.source}.md"
            assert quote_in_text(citation.quote, source_file.read_text(encoding="utf-8")), (fact.id, citation.quote)


def test_quotes_also_occur_in_the_original_stored_pages(knowledge):
    if not SHARED_SOURCES.exists():
        pytest.skip("shared/sources is not beside this checkout")
    for fact in knowledge.facts:
        for citation in fact.citations:
            original = (SHARED_SOURCES / f"{citation.source}.md").read_text(encoding="utf-8")
            assert quote_in_text(citation.quote, original), (fact.id, citation.quote)


def test_every_source_is_cited_and_every_platform_has_facts(knowledge):
    cited = {c.source for f in knowledge.facts for c in f.citations}
    assert cited == set(knowledge.sources)
    platforms = {f.platform for f in knowledge.facts}
    assert {"linkedin", "meta", "x", "openai", "anthropic", "google", "reddit", "microsoft"} <= platforms


def test_conflicts_and_gaps_are_facts_of_their_own(knowledge):
    kinds = {f.kind for f in knowledge.facts}
    assert {"fact", "conflict", "gap"} <= kinds
    india = [f for f in knowledge.facts if "in" in f.regions and f.kind == "conflict"]
    assert india, "the India disagreement must be a conflict fact"
    assert any("NiftyTechFinds" in f.answer for f in india)


def test_normalising_folds_whitespace_quote_marks_and_dashes():
    assert normalise_for_quote("“Opt out”  —\nnow") == normalise_for_quote('"Opt out" - now')
    assert quote_in_text("it's on by default", "Note: it’s on\nby   default.")
    assert not quote_in_text("it is on by default", "Note: it's on by default.")


def test_validate_command_exits_zero_on_the_real_base():
    result = subprocess.run([sys.executable, "-m", "bot", "validate"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "knowledge base is valid" in result.stdout


# ------------------------------------------------------------------ each defect, caught

def test_a_quote_missing_from_its_source_is_caught(broken_copy):
    fact_id = _edit_first_fact(broken_copy, lambda f: f["citations"][0].update(quote="LinkedIn deletes everything at once."))
    report = _problems(broken_copy)
    assert "linkedin-optout.yaml" in report and fact_id in report and "quote not found" in report


def test_an_unknown_source_id_is_caught(broken_copy):
    fact_id = _edit_first_fact(broken_copy, lambda f: f["citations"][0].update(source="no-such-source"))
    report = _problems(broken_copy)
    assert fact_id in report and "unknown source id 'no-such-source'" in report


def test_a_fact_without_citations_is_caught(broken_copy):
    fact_id = _edit_first_fact(broken_copy, lambda f: f.update(citations=[]))
    report = _problems(broken_copy)
    assert fact_id in report and "citations" in report


def test_a_missing_required_field_is_caught(broken_copy):
    fact_id = _edit_first_fact(broken_copy, lambda f: f.pop("topic"))
    report = _problems(broken_copy)
    assert fact_id in report and "topic" in report and "missing" in report


def test_an_unknown_topic_or_platform_is_caught(broken_copy):
    fact_id = _edit_first_fact(broken_copy, lambda f: f.update(topic="horoscopes", platform="myspace"))
    report = _problems(broken_copy)
    assert fact_id in report and "unknown topic 'horoscopes'" in report and "unknown platform 'myspace'" in report


def test_a_duplicate_id_is_caught(broken_copy):
    path = _facts_file(broken_copy)
    facts = yaml.safe_load(path.read_text())
    facts.append(dict(facts[0]))
    path.write_text(yaml.safe_dump(facts, sort_keys=False, allow_unicode=True))
    report = _problems(broken_copy)
    assert "duplicate id" in report and facts[0]["id"] in report


def test_a_source_no_fact_cites_is_caught(broken_copy):
    extra = broken_copy / "sources" / "linkedin-uncited-example.md"
    extra.write_text("---\nid: linkedin-uncited-example\nauthority: 3\ntitle: T\npublisher: P\nurl: https://example.org\n"
                     "published: null\nkind: news\nplatforms: [linkedin]\n---\nSome text nobody cites.\n")
    report = _problems(broken_copy)
    assert "linkedin-uncited-example" in report and "not cited by any fact" in report


def test_a_malformed_file_is_refused_naming_file_and_line(broken_copy):
    path = _facts_file(broken_copy)
    lines = path.read_text().splitlines()
    lines.insert(4, "  questions: [unclosed")
    path.write_text("\n".join(lines))
    report = _problems(broken_copy)
    assert "linkedin-optout.yaml:" in report and "not valid YAML" in report


def test_validate_command_fails_loudly_on_a_broken_base(broken_copy):
    _edit_first_fact(broken_copy, lambda f: f["citations"][0].update(source="no-such-source"))
    result = subprocess.run([sys.executable, "-m", "bot", "validate"], capture_output=True, text=True, cwd=ROOT,
                            env={**__import__("os").environ, "KNOWLEDGE_DIR": str(broken_copy)})
    assert result.returncode != 0
    assert "no-such-source" in result.stderr and "linkedin-optout.yaml" in result.stderr
