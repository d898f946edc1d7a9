"""The Telegram front end: a thin python-telegram-bot (v22) adapter over the engine.

It turns updates into engine calls and the engine's answers into Telegram messages
(via bot.render.telegram). It composes nothing itself. Everything is wired in
`build_application`; handlers are small async functions that find their services
(engine, rate limiter, answer memo) in `application.bot_data`, as PTB's rules-bot does.

Privacy: logs carry the chat type, command, latency and answer topic — never message
text, user ids or the token. The "Sources"/👍/👎 buttons keep only the answer's topic
and citations, under a short random id, for a limited time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from bot import texts
from bot.models import Answer, Citation
from bot.ratelimit import RATE_LIMIT_NOTICE, RateLimiter, Verdict
from bot.render.telegram import render_answer, render_quotes, render_text
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.engine import Engine

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]

COMMANDS = [
    BotCommand("start", "What I do, with example questions"),
    BotCommand("help", "How to ask and what the commands do"),
    BotCommand("ask", "Ask a question (in groups: /ask <question>)"),
    BotCommand("optout", "Steps to opt out of AI training on a platform"),
    BotCommand("sources", "What I know and how current it is"),
    BotCommand("forget", "Delete this chat's conversation state"),
    BotCommand("privacy", "What I store about you and for how long"),
]
SHORT_DESCRIPTION = "Cited answers on how platforms train AI on your data, and how to opt out."

ASK_HINT = "Ask me a question after the command, for example:\n/ask " + texts.EXAMPLE_QUESTIONS[0]
STALE_BUTTON = "This button has expired — ask the question again."
SORRY = "Sorry, something went wrong while answering. Please try again in a moment."
NOT_TEXT = "I can only read text. Please type your question."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do — or just type your question."
TOKEN_REJECTED = "Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather."


# --- services every handler shares --------------------------------------------------


@dataclass
class Remembered:
    """What the buttons under one answer need: never the question or the user."""

    topic: str | None
    citations: list[Citation]
    expires_at: float
    voted: bool = False


class AnswerMemo:
    """A bounded, expiring map from a short random id to a `Remembered` answer."""

    def __init__(self, ttl_seconds: float = 24 * 3600, max_entries: int = 10_000, clock=time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, Remembered] = OrderedDict()

    def remember(self, answer: Answer) -> str:
        key = secrets.token_urlsafe(6)  # 8 characters: fits easily in 64-byte callback data
        self._entries[key] = Remembered(answer.topic, list(answer.citations), self._clock() + self._ttl)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)  # oldest first
        return key

    def get(self, key: str) -> Remembered | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            del self._entries[key]
            return None
        return entry


@dataclass
class Services:
    engine: Engine
    settings: Settings
    limiter: RateLimiter
    memo: AnswerMemo = field(default_factory=AnswerMemo)


def _services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data["services"]


class RetryingRateLimiter(AIORateLimiter):
    """Telegram's own limits (AIORateLimiter, which also waits out 429 `retry_after`)
    plus a few retries with backoff when a call fails on the network or with a 5xx.

    Every Bot API call except getUpdates passes through here, so sends, edits, chat
    actions and callback answers all get the same treatment. (PTB retries getUpdates
    itself.) A timed-out send may in rare cases arrive twice; losing an answer is worse.
    """

    def __init__(self, network_retries: int = 3, backoff_seconds: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._network_retries = network_retries
        self._backoff = backoff_seconds

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):  # type: ignore[override]
        for attempt in range(self._network_retries + 1):
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            except BadRequest:  # a subclass of NetworkError, but retrying will not help
                raise
            except NetworkError as exc:
                if attempt == self._network_retries:
                    raise
                delay = self._backoff * 2**attempt
                logger.warning("%s failed (%s); retrying in %.1f s", endpoint, type(exc).__name__, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


# --- building and running ----------------------------------------------------------


def build_application(settings: Settings, engine: Engine) -> Application:
    """The one place the PTB application is configured."""
    _keep_secrets_out_of_logs(_token(settings))
    base_url = settings.telegram_api_base_url
    application = (
        ApplicationBuilder()
        .token(_token(settings))
        .base_url(base_url)
        .base_file_url(_file_url(base_url))
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                allow_sending_without_reply=True,
            )
        )
        .rate_limiter(RetryingRateLimiter(max_retries=3))  # max_retries: for 429s, after their retry_after
        .connect_timeout(10)
        .read_timeout(20)
        .write_timeout(20)
        .pool_timeout(10)
        .concurrent_updates(True)
        .post_init(_on_startup)
        .build()
    )
    limiter = RateLimiter(settings.rate_limit_messages, settings.rate_limit_window_seconds)
    application.bot_data["services"] = Services(engine=engine, settings=settings, limiter=limiter)

    application.add_handler(CommandHandler("start", on_start))
    application.add_handler(CommandHandler("help", on_help))
    application.add_handler(CommandHandler("privacy", on_privacy))
    application.add_handler(CommandHandler("sources", on_sources))
    application.add_handler(CommandHandler("forget", on_forget))
    application.add_handler(CommandHandler("optout", on_optout))
    application.add_handler(CommandHandler("ask", on_ask))
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, on_private_text))
    application.add_handler(MessageHandler(filters.ChatType.GROUPS & filters.TEXT & ~filters.COMMAND, on_group_text))
    application.add_handler(MessageHandler(filters.ChatType.PRIVATE, on_private_other))  # stickers, unknown /commands
    application.add_handler(CallbackQueryHandler(on_button))
    application.add_error_handler(on_error)
    return application


def run(settings: Settings, engine: Engine) -> None:
    """`python -m bot telegram`: long polling, or a webhook when TELEGRAM_WEBHOOK_URL is set."""
    token_or_exit(settings)
    application = build_application(settings, engine)
    try:
        if settings.telegram_webhook_url:
            application.run_webhook(**_webhook_options(settings), allowed_updates=ALLOWED_UPDATES)
        else:
            application.run_polling(allowed_updates=ALLOWED_UPDATES)
    except InvalidToken:
        print(f"error: {TOKEN_REJECTED}", file=sys.stderr)
        raise SystemExit(2) from None


def _webhook_options(settings: Settings) -> dict[str, Any]:
    url = settings.telegram_webhook_url or ""
    secret = settings.telegram_webhook_secret
    return {
        "listen": settings.telegram_webhook_listen,
        "port": settings.telegram_webhook_port,
        "url_path": urlparse(url).path.lstrip("/"),
        "webhook_url": url,
        # Telegram echoes this in a header, so strangers can't post fake updates.
        "secret_token": secret.get_secret_value() if secret else secrets.token_urlsafe(32),
    }


async def run_async(settings: Settings, engine: Engine, stop: asyncio.Event) -> None:
    """Long polling (or the webhook, when TELEGRAM_WEBHOOK_URL is set) inside a running loop, until `stop`."""
    application = build_application(settings, engine)
    try:
        async with application:  # initialize (getMe) ... shutdown
            await _on_startup(application)  # run_polling would call post_init; here we do
            await application.start()
            if settings.telegram_webhook_url:
                await application.updater.start_webhook(**_webhook_options(settings),
                                                        allowed_updates=ALLOWED_UPDATES)
            else:
                await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES,
                                                        error_callback=_log_polling_error)
            try:
                await stop.wait()
            finally:
                await application.updater.stop()
                await application.stop()
    except InvalidToken:
        raise InvalidToken(TOKEN_REJECTED) from None  # PTB's own message quotes the token


def token_or_exit(settings: Settings) -> str:
    """The token, or a clear message on stderr and exit status 2 (no traceback)."""
    token = _token(settings)
    if not token:
        print(
            "error: TELEGRAM_BOT_TOKEN is not set. Create a bot with @BotFather, then put its token "
            "in the environment or in .env (TELEGRAM_BOT_TOKEN=123456:ABC...).",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return token


def _token(settings: Settings) -> str:
    secret = settings.telegram_bot_token
    return secret.get_secret_value().strip() if secret else ""


def _file_url(base_url: str) -> str:
    """https://api.telegram.org/bot -> https://api.telegram.org/file/bot (same for self-hosted)."""
    root = base_url.rstrip("/").removesuffix("/bot")
    return f"{root}/file/bot"


def _keep_secrets_out_of_logs(token: str) -> None:
    # httpx logs every request URL at INFO, and Bot API URLs contain the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # PTB logs request parameters (message text included) at DEBUG.
    logging.getLogger("telegram").setLevel(logging.INFO)
    # PTB quotes a rejected token in its InvalidToken error, and logs that error (with its traceback)
    # while starting up: every PTB logger cuts the token out of what it logs.
    _token_filter.token = token
    for name in ["telegram", *list(logging.root.manager.loggerDict)]:
        if name == "telegram" or name.startswith("telegram."):
            logging.getLogger(name).addFilter(_token_filter)  # addFilter ignores a filter already there


class _RedactToken(logging.Filter):
    """Replaces the bot token in a log record's message and traceback."""

    token = ""

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.token:
            return True
        message = record.getMessage()
        if record.exc_info:  # format the traceback now, so the token can be cut out of it too
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        record.msg, record.args = message.replace(self.token, "<TELEGRAM_BOT_TOKEN>"), None
        if record.exc_text:
            record.exc_text = record.exc_text.replace(self.token, "<TELEGRAM_BOT_TOKEN>")
        return True


_token_filter = _RedactToken()


async def _on_startup(application: Application) -> None:
    """Register commands and descriptions. The bot's username was fetched with getMe
    by `initialize()` and is what recognises @mentions and /ask@botname."""
    bot = application.bot
    try:
        await bot.set_my_commands(COMMANDS)
        await bot.set_my_description(texts.INTRO[:512])
        await bot.set_my_short_description(SHORT_DESCRIPTION[:120])
    except TelegramError as exc:  # cosmetic: the bot works without them
        logger.warning("could not register commands or descriptions (%s)", type(exc).__name__)
    logger.info("telegram bot @%s is running", bot.username)


# --- commands ------------------------------------------------------------------------


async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _reply_fixed(update, context, "start", texts.start_text())


async def on_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _reply_fixed(update, context, "help", texts.help_text("/"))


async def on_privacy(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    minutes = max(1, _services(context).settings.conversation_ttl_seconds // 60)
    await _reply_fixed(update, context, "privacy", texts.privacy_text(minutes))


async def on_sources(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not await _admit(update, context):
        return
    answer = _services(context).engine.sources_summary()
    await _reply(update.effective_message, render_answer(answer))
    _log_handled(update, "sources", answer)


async def on_forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not await _admit(update, context):
        return
    existed = await _services(context).engine.forget(_chat_key(update))
    await _reply(update.effective_message, render_text(texts.FORGET_CONFIRMATION if existed else texts.FORGET_NOTHING))
    _log_handled(update, "forget")


async def on_optout(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/optout <platform> gives that platform's steps; without one, a button per platform."""
    if not await _admit(update, context):
        return
    engine = _services(context).engine
    wanted = _command_argument(update.effective_message)
    platform_id = engine.resolve_platform(wanted) if wanted else None
    if platform_id is None:
        intro = f"I have no opt-out steps for “{wanted}”. " if wanted else ""
        await _reply(
            update.effective_message,
            render_text(intro + "Which platform? Choose one:"),
            _platform_keyboard(engine.platform_choices()),
        )
        _log_handled(update, "optout")
        return
    await _send_opt_out(update, context, platform_id, reply_to=update.effective_message)


async def on_ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if not await _admit(update, context):
        return
    await _answer_question(update, context, _command_argument(update.effective_message), "ask")


# --- plain messages ------------------------------------------------------------------


async def on_private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In a private chat, any text is a question."""
    if not await _admit(update, context):
        return
    await _answer_question(update, context, update.effective_message.text or "", None)


async def on_group_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """In groups, answer only when addressed, so the bot never talks over people."""
    question = _addressed_question(update.effective_message, context)
    if question is None or not await _admit(update, context):
        return
    await _answer_question(update, context, question, None)


async def on_private_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if await _admit(update, context):
        unknown_command = (update.effective_message.text or "").startswith("/")
        await _reply(update.effective_message, render_text(UNKNOWN_COMMAND if unknown_command else NOT_TEXT))


def _addressed_question(message: Message, context: ContextTypes.DEFAULT_TYPE) -> str | None:
    """The question if the message mentions the bot or replies to it, else None."""
    bot = context.bot
    text = message.text or ""
    addressed = bool(message.reply_to_message and message.reply_to_message.from_user
                     and message.reply_to_message.from_user.id == bot.id)
    mentions = message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
    for entity, mention in mentions.items():
        if (entity.type == MessageEntity.MENTION and mention.lower() == f"@{bot.username}".lower()) or (
            entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id
        ):
            addressed = True
            text = text.replace(mention, " ", 1)
    return " ".join(text.split()) if addressed else None


# --- answering -----------------------------------------------------------------------


async def _answer_question(update: Update, context: ContextTypes.DEFAULT_TYPE, question: str, command: str | None) -> None:
    message = update.effective_message
    if not question.strip():
        await _reply(message, render_text(ASK_HINT))
        return
    started = time.perf_counter()
    async with _typing(context, message.chat_id):
        answer = await _services(context).engine.answer(_chat_key(update), question)
    await _reply(message, render_answer(answer), _answer_buttons(_services(context).memo, answer))
    _log_handled(update, command or "question", answer, started)


async def _send_opt_out(update: Update, context: ContextTypes.DEFAULT_TYPE, platform_id: str, reply_to: Message) -> None:
    started = time.perf_counter()
    services = _services(context)
    async with _typing(context, reply_to.chat_id):
        answer = await services.engine.opt_out(_chat_key(update), platform_id)
    await _reply(reply_to, render_answer(answer), _answer_buttons(services.memo, answer))
    _log_handled(update, "optout", answer, started)


@contextlib.asynccontextmanager
async def _typing(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> AsyncIterator[None]:
    """Show "typing…" while the engine works; Telegram clears it after ~5 s, so refresh it."""

    async def keep_typing() -> None:
        while True:
            await asyncio.sleep(4)
            await _chat_action(context, chat_id)

    await _chat_action(context, chat_id)  # before the engine runs: it may not yield at all
    refresher = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        refresher.cancel()


async def _chat_action(context: ContextTypes.DEFAULT_TYPE, chat_id: int) -> None:
    with contextlib.suppress(TelegramError):  # a missing indicator must not cost the answer
        await context.bot.send_chat_action(chat_id, ChatAction.TYPING)


def _answer_buttons(memo: AnswerMemo, answer: Answer) -> InlineKeyboardMarkup | None:
    """"Sources" (when there are quotes) and 👍/👎, all pointing at one memo entry."""
    if answer.kind == "input_error":
        return None
    return _buttons(memo.remember(answer), bool(answer.citations), with_votes=True)


def _buttons(key: str, with_sources: bool, with_votes: bool) -> InlineKeyboardMarkup | None:
    row = []
    if with_sources:
        row.append(InlineKeyboardButton("Sources", callback_data=f"s:{key}"))
    if with_votes:
        row.append(InlineKeyboardButton("👍", callback_data=f"v:{key}:up"))
        row.append(InlineKeyboardButton("👎", callback_data=f"v:{key}:down"))
    return InlineKeyboardMarkup([row]) if row else None


def _platform_keyboard(choices: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(label, callback_data=f"o:{platform_id}"[:64]) for platform_id, label in choices]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


# --- buttons -------------------------------------------------------------------------

ButtonHandler = Callable[[Update, ContextTypes.DEFAULT_TYPE, str], Coroutine[Any, Any, str | None]]


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every press is answered (answerCallbackQuery), even stale or unknown ones."""
    query = update.callback_query
    kind, _, rest = (query.data or "").partition(":")
    handlers: dict[str, ButtonHandler] = {"s": _show_sources, "v": _record_vote, "o": _choose_platform}
    toast: str | None = SORRY
    try:
        handler = handlers.get(kind)
        toast = await handler(update, context, rest) if handler else STALE_BUTTON
    finally:
        with contextlib.suppress(TelegramError):
            await query.answer(toast)


async def _show_sources(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str) -> str | None:
    entry = _services(context).memo.get(key)
    message = update.callback_query.message
    if entry is None or not isinstance(message, Message):
        return STALE_BUTTON
    await _reply(message, render_quotes(entry.citations))
    _log_handled(update, "sources-button")
    return None


async def _record_vote(update: Update, context: ContextTypes.DEFAULT_TYPE, rest: str) -> str | None:
    key, _, vote = rest.partition(":")
    entry = _services(context).memo.get(key)
    if entry is None or vote not in ("up", "down"):
        return STALE_BUTTON
    if entry.voted:
        return "Already rated — thank you."
    entry.voted = True
    await _services(context).engine.feedback.record(entry.topic, vote)  # topic and vote only
    with contextlib.suppress(BadRequest):  # e.g. the message is too old to edit
        await update.callback_query.edit_message_reply_markup(_buttons(key, bool(entry.citations), with_votes=False))
    _log_handled(update, f"vote-{vote}")
    return "Thanks for the feedback!"


async def _choose_platform(update: Update, context: ContextTypes.DEFAULT_TYPE, platform_id: str) -> str | None:
    message = update.callback_query.message
    known = {pid for pid, _ in _services(context).engine.platform_choices()}
    if platform_id not in known or not isinstance(message, Message):
        return STALE_BUTTON
    await _send_opt_out(update, context, platform_id, reply_to=message)
    return None


# --- sending, rate limit, errors, logs ---------------------------------------------


async def _reply(message: Message, chunks: list[str], markup: InlineKeyboardMarkup | None = None) -> None:
    """Send rendered chunks in order; buttons go under the last one.

    In groups the first chunk quotes the message it answers (PTB's default), so it is
    clear whom the bot is answering; HTML and no link previews come from `Defaults`.
    """
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        await message.reply_text(chunk, do_quote=None if i == 0 else False, reply_markup=markup if last else None)


async def _reply_fixed(update: Update, context: ContextTypes.DEFAULT_TYPE, command: str, text: str) -> None:
    if await _admit(update, context):
        await _reply(update.effective_message, render_text(text))
        _log_handled(update, command)


async def _admit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Per-user rate limit: over it, one polite notice per window, then silence."""
    user = update.effective_user
    if user is None:
        return True
    verdict = _services(context).limiter.check(str(user.id))
    if verdict is Verdict.NOTIFY:
        logger.info("rate limited chat_type=%s", _chat_type(update))
        await _reply(update.effective_message, render_text(RATE_LIMIT_NOTICE))
    return verdict is Verdict.ALLOWED


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the exception's type only (its message may quote the user); tell the user."""
    if update is None:  # run_polling routes getUpdates failures here
        _log_polling_error(context.error)
        return
    logger.error("update failed: %s", type(context.error).__name__)
    if isinstance(update, Update) and update.message is not None:
        with contextlib.suppress(Exception):  # the failure may have been the network itself
            await update.message.reply_text(escape(SORRY, quote=False))


def _log_polling_error(error: BaseException | None) -> None:
    """PTB keeps polling with backoff; one line is enough (its default is a traceback)."""
    logger.warning("fetching updates failed (%s); retrying", type(error).__name__)


def _log_handled(update: Update, command: str, answer: Answer | None = None, started: float | None = None) -> None:
    latency_ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    logger.info(
        "handled chat_type=%s command=%s topic=%s kind=%s latency_ms=%.0f",
        _chat_type(update), command, answer.topic if answer else None, answer.kind if answer else None, latency_ms,
    )


def _chat_key(update: Update) -> str:
    """Conversation state is per chat: a group shares one conversation."""
    return str(update.effective_chat.id)


def _chat_type(update: Update) -> str:
    return update.effective_chat.type if update.effective_chat else "unknown"


def _command_argument(message: Message) -> str:
    """Everything after "/command" or "/command@botname", newlines kept."""
    parts = (message.text or "").split(maxsplit=1)
    return parts[1].strip() if len(parts) > 1 else ""
