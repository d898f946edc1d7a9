"""The answer engine, as a user of any front end experiences it (real model, real index)."""

from __future__ import annotations

import pytest

from bot.dialogue import MemoryStore
from bot.engine import Engine
from bot.knowledge import quote_in_text


async def ask(engine: Engine, chat_id: str, text: str):
    return await engine.answer(chat_id, text)


# ------------------------------------------------------------------ cited answers

async def test_an_answer_gives_the_setting_path_and_names_its_sources(engine, chat_id):
    answer = await ask(engine, chat_id, "How do I opt out of LinkedIn using my data for AI training?")
    assert not answer.abstained and answer.platform == "linkedin"
    assert "Data for Generative AI Improvement" in answer.body
    assert "Use my data for training content creation AI models" in answer.body
    assert "[1]" in answer.body and answer.citations
    assert "Sources:" in answer.text
    for citation in answer.citations:
        assert citation.title and citation.publisher and citation.url.startswith("http") and citation.quote
        assert f"[{citation.n}]" in answer.text


async def test_every_quote_shown_is_really_in_its_source(engine, chat_id):
    questions = ["When does LinkedIn start training AI on my data?", "Does Facebook train on my posts?",
                 "How do I stop Grok training on my posts?", "Did the DPC approve LinkedIn's plan?"]
    for question in questions:
        answer = await ask(engine, chat_id, question)
        for citation in answer.citations:
            assert quote_in_text(citation.quote, engine.knowledge.sources[citation.source_id].text)


@pytest.mark.parametrize("question", [
    "linkdin ai opt out",
    "how do i opt otu of linkdin ai trainnig",
    "LINKEDIN AI TRAINING OPT OUT!!!",
    "stop linkedin using my profile for generative ai",
])
async def test_typos_and_shouting_still_find_the_linkedin_opt_out(engine, chat_id, question):
    answer = await ask(engine, chat_id, question)
    assert answer.platform == "linkedin" and "Data for Generative AI Improvement" in answer.body


async def test_facebook_is_understood_as_meta(engine, chat_id):
    answer = await ask(engine, chat_id, "Does Facebook train on my posts?")
    assert answer.platform == "meta" and not answer.abstained
    assert "27 May 2025" in answer.body or "May 27" in answer.body


async def test_dms_are_understood_as_private_messages(engine, chat_id):
    answer = await ask(engine, chat_id, "are my DMs used")
    assert not answer.abstained
    assert "private messages" in answer.body.lower()


@pytest.mark.parametrize("question, platform", [
    ("Does Twitter use my tweets for AI?", "x"),
    ("Can ChatGPT train on my chats?", "openai"),
    ("Does Claude use my conversations for training?", "anthropic"),
    ("Does Bard use my conversations?", "google"),
    ("Does Bing use my searches to train Copilot?", "microsoft"),
    ("Does Instagram use my photos for AI?", "meta"),
])
async def test_product_names_map_to_their_platform(engine, chat_id, question, platform):
    answer = await ask(engine, chat_id, question)
    assert answer.platform == platform and not answer.abstained


async def test_a_date_question_gets_the_date_first(engine, chat_id):
    answer = await ask(engine, chat_id, "When does LinkedIn start using my data to train AI?")
    first_sentence = answer.body.split(". ")[0]
    assert "3 November 2025" in first_sentence


async def test_a_yes_no_question_gets_a_direct_answer_first(engine, chat_id):
    answer = await ask(engine, chat_id, "Does LinkedIn use my private messages to train AI?")
    assert answer.body.startswith("No.") or answer.body.lower().startswith("linkedin says it does not")


async def test_time_sensitive_answers_say_as_of_when(engine, chat_id):
    answer = await ask(engine, chat_id, "When does LinkedIn start using my data to train AI?")
    assert answer.as_of and "As of" in answer.body


async def test_answers_are_short_enough_to_read_on_a_phone(engine, chat_id):
    for question in ["What data does LinkedIn use to train AI?", "What did regulators say about LinkedIn?",
                     "How do I object to Meta using my data?"]:
        answer = await ask(engine, chat_id, question)
        assert len(answer.body.split()) <= 260, question


# ------------------------------------------------------------------ disagreement between sources

async def test_india_is_answered_by_saying_who_says_what(engine, chat_id):
    answer = await ask(engine, chat_id, "Does LinkedIn's AI training apply to users in India?")
    assert not answer.abstained
    assert "NiftyTechFinds" in answer.body
    assert any(c.authority in {"official", "regulator", "news / law firm"} for c in answer.citations)


async def test_the_uk_is_confirmed_by_the_regulator(engine, chat_id):
    answer = await ask(engine, chat_id, "Is the UK included in LinkedIn's AI training?")
    assert not answer.abstained
    assert "ICO" in answer.body or "Information Commissioner" in answer.body


async def test_a_low_authority_claim_is_attributed_and_corrected(engine, chat_id):
    answer = await ask(engine, chat_id, "Does LinkedIn use my read receipts to train AI?")
    assert "LiProspect" in answer.body
    assert not answer.abstained


# ------------------------------------------------------------------ follow-ups

async def test_what_about_on_my_phone_keeps_the_platform(engine, chat_id):
    await ask(engine, chat_id, "How do I opt out of LinkedIn AI training?")
    answer = await ask(engine, chat_id, "what about on my phone?")
    assert answer.platform == "linkedin"
    assert "tap" in answer.body.lower() or "app" in answer.body.lower()


async def test_and_for_ads_moves_to_the_ads_setting(engine, chat_id):
    await ask(engine, chat_id, "How do I opt out of LinkedIn AI training?")
    answer = await ask(engine, chat_id, "and for ads?")
    assert answer.platform == "linkedin"
    assert "Share data with affiliates and partners" in answer.body or "Ads outside of LinkedIn" in answer.body


async def test_region_follow_ups_answer_in_context(engine, chat_id):
    await ask(engine, chat_id, "Which regions does LinkedIn's AI training change cover?")
    uk = await ask(engine, chat_id, "Is the UK one of them?")
    assert "ICO" in uk.body or "Information Commissioner" in uk.body
    india = await ask(engine, chat_id, "what about India?")
    assert "NiftyTechFinds" in india.body


async def test_naming_another_platform_does_not_inherit_the_previous_steps(engine, chat_id):
    meta = await ask(engine, chat_id, "How do I opt out of Meta AI training?")
    assert meta.platform == "meta"
    linkedin = await ask(engine, chat_id, "And LinkedIn?")
    assert linkedin.platform == "linkedin"
    assert "Data for Generative AI Improvement" in linkedin.body
    assert not any(c.source_id.startswith("meta-") for c in linkedin.citations)


async def test_where_did_you_read_that_shows_the_quotes(engine, chat_id):
    first = await ask(engine, chat_id, "Did the DPC approve LinkedIn's AI training?")
    answer = await ask(engine, chat_id, "where did you read that?")
    assert [c.source_id for c in answer.citations] == [c.source_id for c in first.citations]
    for citation in first.citations:
        assert citation.quote in answer.body


async def test_where_did_you_read_that_with_nothing_said_yet(engine, chat_id):
    answer = await ask(engine, chat_id, "where did you read that?")
    assert answer.abstained and not answer.citations


async def test_conversations_expire_after_the_idle_time(engine):
    now = [0.0]
    store = MemoryStore(ttl_seconds=30 * 60, clock=lambda: now[0])
    forgetful = Engine(engine.knowledge, engine.index, engine.settings, store=store)
    await forgetful.answer("idle", "How do I opt out of Meta AI training?")
    assert await store.get("idle") is not None
    now[0] += 31 * 60
    assert await store.get("idle") is None
    answer = await forgetful.answer("idle", "where did you read that?")
    assert answer.abstained and not answer.citations
    await forgetful.close()


async def test_forget_deletes_the_conversation(engine, chat_id):
    await ask(engine, chat_id, "How do I opt out of LinkedIn AI training?")
    assert await engine.forget(chat_id) is True
    assert await engine.store.get(chat_id) is None
    assert await engine.forget(chat_id) is False
    answer = await ask(engine, chat_id, "where did you read that?")
    assert answer.abstained


async def test_chats_do_not_see_each_others_state(engine):
    await engine.answer("alice", "How do I opt out of Meta AI training?")
    answer = await engine.answer("bob", "where did you read that?")
    assert answer.abstained and not answer.citations
    await engine.forget("alice")


# ------------------------------------------------------------------ honest abstention

@pytest.mark.parametrize("question", [
    "What's the weather in Paris tomorrow?",
    "Give me a recipe for banana bread",
    "What is the capital of Australia?",
    "Write me a poem about the sea",
    "Who founded LinkedIn?",
])
async def test_questions_outside_the_knowledge_are_declined(engine, chat_id, question):
    answer = await ask(engine, chat_id, question)
    assert answer.abstained and not answer.citations
    assert "LinkedIn" in answer.body  # says what it can answer instead


async def test_a_platform_no_source_covers_is_declined_plainly(engine, chat_id):
    answer = await ask(engine, chat_id, "Does TikTok share my data with the Chinese government?")
    assert answer.abstained and "TikTok" in answer.body and "don't cover" in answer.body


async def test_a_country_no_source_names_is_declined_with_what_is_known(engine, chat_id):
    answer = await ask(engine, chat_id, "Does LinkedIn's AI training change apply to members in Japan?")
    assert answer.abstained and "Japan" in answer.body
    assert "Hong Kong" in answer.body  # what the sources do say about regions


async def test_a_question_no_source_settles_says_the_sources_dont_say(engine, chat_id):
    answer = await ask(engine, chat_id, "What is LinkedIn's minimum age?")
    assert answer.abstained
    assert "don't say" in answer.body or "do not say" in answer.body or "No stored source" in answer.body


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("text", ["", "   ", "\n\t", "?!?!", "\u200b\u200b"])
async def test_empty_input_gets_a_clear_reply(engine, chat_id, text):
    answer = await ask(engine, chat_id, text)
    assert answer.abstained and answer.kind == "input_error" and "question" in answer.body.lower()


async def test_a_huge_message_gets_a_clear_reply(engine, chat_id):
    answer = await ask(engine, chat_id, "opt out " * 5000)
    assert answer.abstained and "too long" in answer.body


async def test_control_and_bidi_characters_are_ignored(engine, chat_id):
    answer = await ask(engine, chat_id, "How do I opt out of LinkedIn\u0000 AI\u202e training\u200b\u0007?")
    assert "Data for Generative AI Improvement" in answer.body
    assert not any(ch in answer.text for ch in "\u0000\u202e\u200b\u0007")


@pytest.mark.parametrize("attack", [
    "<script>alert('x')</script> How do I opt out of LinkedIn AI training?",
    "<b>bold</b> <a href='javascript:alert(1)'>link</a> linkedin opt out",
    "**[click](javascript:alert(1))** `code` linkedin opt out",
    "&lt;img src=x onerror=alert(1)&gt; linkedin ai opt out",
])
async def test_markup_in_a_question_is_never_echoed(engine, chat_id, attack):
    answer = await ask(engine, chat_id, attack)
    for fragment in ("<script", "<b>", "<a ", "javascript:", "onerror", "`code`", "alert("):
        assert fragment not in answer.text


@pytest.mark.parametrize("question", [
    "Wie kann ich verhindern, dass LinkedIn meine Daten für KI verwendet?",
    "¿Cómo evito que usen mis datos para entrenar la IA?",
    "私のデータはAIの学習に使われますか？",
])
async def test_other_languages_get_a_clear_reply(engine, chat_id, question):
    answer = await ask(engine, chat_id, question)
    assert answer.body and not answer.body.isspace()
    if answer.abstained:
        assert "English" in answer.body


async def test_non_text_input_does_not_raise(engine, chat_id):
    answer = await engine.answer(chat_id, None)  # type: ignore[arg-type]
    assert answer.abstained


# ------------------------------------------------------------------ helpers the front ends use

async def test_opt_out_gives_each_platforms_steps(engine, chat_id):
    for platform, _ in engine.platform_choices():
        answer = await engine.opt_out(chat_id, platform)
        assert answer.platform == platform and answer.citations, platform


async def test_the_sources_summary_says_how_current_the_knowledge_is(engine):
    summary = engine.sources_summary()
    assert "46" in summary.body and "2025" in summary.body


# ------------------------------------------------------------------ asking about something specific

async def test_a_subject_no_source_mentions_for_that_platform_is_not_answered_around(engine, chat_id):
    answer = await ask(engine, chat_id, "Does Grok train on my X direct messages?")
    assert answer.abstained and "private messages" in answer.body


async def test_the_same_subject_is_answered_where_a_source_covers_it(engine, chat_id):
    answer = await ask(engine, chat_id, "Does Meta use my WhatsApp messages to train its AI?")
    assert not answer.abstained and "private messages" in answer.body.lower()


async def test_a_writing_job_is_declined_even_when_it_names_a_platform(engine, chat_id):
    answer = await ask(engine, chat_id, "write me a linkedin post announcing my new job at a bank")
    assert answer.abstained and not answer.citations


async def test_a_product_of_an_uncovered_company_inside_a_covered_question_is_answered(engine, chat_id):
    answer = await ask(engine, chat_id, "We use Claude via the API on Amazon Bedrock at work. "
                                        "Does Anthropic's consumer training policy apply to us?")
    assert not answer.abstained and answer.platform == "anthropic"
    assert "Bedrock" in answer.body


async def test_a_region_named_in_passing_steers_to_the_regional_fact(engine, chat_id):
    answer = await ask(engine, chat_id, "I'm in Spain. Is my Copilot data used to train Microsoft's models?")
    assert "EEA" in answer.body or "European Economic Area" in answer.body


async def test_turn_that_off_after_the_ads_answer_means_the_ads_setting(engine, chat_id):
    await ask(engine, chat_id, "Does LinkedIn share my data with Microsoft for ads?")
    answer = await ask(engine, chat_id, "how do I turn that off")
    assert "Share data with affiliates and partners" in answer.body or "Ads outside of LinkedIn" in answer.body
