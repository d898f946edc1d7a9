"""Our evaluation set: at least 120 questions, >= 95% pass, every out-of-scope case abstains,
and no citation anywhere quotes text that is not in its source."""

from __future__ import annotations

import pytest

from eval_runner import count_questions, load_cases, run_all


@pytest.fixture(scope="module")
async def results(engine):
    return await run_all(engine)


def test_the_set_is_big_and_varied():
    cases = load_cases()
    assert count_questions(cases) >= 120
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids))
    for prefix in ("li-", "meta-", "x-", "openai-", "anthropic-", "google-", "reddit-", "ms-", "oos-", "bad-", "dlg-"):
        assert any(i.startswith(prefix) for i in ids), prefix


def test_at_least_95_percent_of_cases_pass(results):
    failures = [f"{r.case_id}: {'; '.join(r.problems)}" for r in results if not r.passed]
    rate = 1 - len(failures) / len(results)
    assert rate >= 0.95, f"{rate:.1%} passed; failing:\n" + "\n".join(failures)


def test_every_out_of_scope_question_abstains(results):
    wrong = [r.case_id for r in results if r.out_of_scope and not r.passed]
    assert not wrong, wrong


def test_no_citation_quotes_text_missing_from_its_source(results):
    assert sum(r.bad_citations for r in results) == 0
