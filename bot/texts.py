"""Fixed texts every front end shows: what the bot does, help, and what it stores.

Plain text; each front end escapes and formats it for its own medium.
"""

from __future__ import annotations

EXAMPLE_QUESTIONS = (
    "How do I stop LinkedIn using my data to train AI?",
    "Are my LinkedIn private messages used?",
    "Does Facebook train its AI on my posts?",
)

INTRO = (
    "I answer questions about platforms training AI on people's data — LinkedIn's change of "
    "3 November 2025 first, and also Meta (Facebook, Instagram), X/Grok, OpenAI (ChatGPT), "
    "Anthropic (Claude), Google Gemini, Reddit and Microsoft Copilot. Every answer names its "
    "sources, and when my sources don't say something, I tell you so instead of guessing."
)


def start_text() -> str:
    examples = "\n".join(f"• {q}" for q in EXAMPLE_QUESTIONS)
    return f"{INTRO}\n\nTry asking:\n{examples}\n\nYou can ask follow-up questions like \"what about on my phone?\"."


def help_text(command_prefix: str = "/", slash_commands_only: bool = False) -> str:
    """`slash_commands_only`: Discord, where the bot reads no messages and every question is an /ask."""
    p = command_prefix
    how_to_ask = ("Ask with /ask — follow-up /ask's in the same channel continue the conversation. Commands:\n"
                  if slash_commands_only else "Just type a question. Commands:\n")
    ask_line = (f"{p}ask question: — ask a question\n" if slash_commands_only
                else f"{p}ask <question> — ask a question (in groups, or mention me)\n")
    return (
        f"{INTRO}\n\n"
        + how_to_ask
        + ask_line
        + f"{p}optout <platform> — the steps to opt out of AI training on one platform\n"
        + f"{p}sources — what I know and how current it is\n"
        + f"{p}forget — delete our conversation so far\n"
        + f"{p}privacy — what I store about you and for how long\n"
        + f"{p}help — this message"
    )


def privacy_text(ttl_minutes: int) -> str:
    return (
        "What I store about you:\n"
        f"• To understand follow-up questions I keep this chat's topic, platform and last sources "
        f"(not your messages) for {ttl_minutes} minutes after your last message; then it is deleted.\n"
        "• /forget deletes it at once.\n"
        "• My logs record that a question was answered, never what you wrote.\n"
        "• 👍/👎 feedback records only the answer's topic and the vote — not who voted.\n"
        "I am not a lawyer; for decisions that matter, check the linked sources."
    )


FORGET_CONFIRMATION = "Done — I've deleted our conversation. Your next question starts fresh."
FORGET_NOTHING = "There was nothing to delete: I hold no conversation for this chat."
