"""The Discord front end: slash commands and buttons over the engine (discord.py 2.x).

A thin adapter. It keys conversations by (channel, user), acknowledges every interaction
once and in time, and hands answers to `bot.render.discord` to be drawn. It never
composes an answer, and it never logs what anyone wrote, nor the token.

    python -m bot discord      # DISCORD_BOT_TOKEN, optional DISCORD_GUILD_ID / DISCORD_API_BASE_URL
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import sys
import time
import traceback
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot import texts
from bot.feedback import FeedbackCounter, Vote
from bot.models import Answer, Citation
from bot.ratelimit import RATE_LIMIT_NOTICE, RateLimiter, Verdict
from bot.render import discord as render
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://discord.com/api/v10"

SOURCES_BUTTON_ID = "answer:sources"
UP_BUTTON_ID = "answer:up"
DOWN_BUTTON_ID = "answer:down"

NO_PINGS = discord.AllowedMentions.none()

SOURCES_GONE = (
    "The sources for this answer are no longer available (I keep them for a day, and not across "
    "restarts). Use /sources to see what I know, or ask again to get the answer with its sources."
)
SOMETHING_WENT_WRONG = "Sorry, something went wrong while answering that. Please try again in a moment."
THANKS_FOR_FEEDBACK = "Thanks — your feedback is recorded (anonymously: only the answer's topic and your vote)."


# --- Remembering answers for their buttons ------------------------------------------------------


class RecentAnswers:
    """What the buttons under recent answers need (topic, citations), by a short reference.

    Bounded and expiring, in memory: after a day or a restart the Sources button says
    the sources are gone and points to /sources instead.
    """

    def __init__(self, ttl_seconds: float = 24 * 3600, max_answers: int = 5_000, clock=time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_answers
        self._clock = clock
        self._answers: OrderedDict[str, tuple[float, str | None, list[Citation]]] = OrderedDict()

    def remember(self, answer: Answer) -> str:
        ref = secrets.token_hex(4)
        self._answers[ref] = (self._clock(), answer.topic, list(answer.citations))
        while len(self._answers) > self._max:
            self._answers.popitem(last=False)
        return ref

    def recall(self, ref: str | None) -> tuple[str | None, list[Citation]] | None:
        if ref is None or ref not in self._answers:
            return None
        saved_at, topic, citations = self._answers[ref]
        if self._clock() - saved_at > self._ttl:
            del self._answers[ref]
            return None
        return topic, citations


# --- Sending -------------------------------------------------------------------------------------


def conversation_key(interaction: discord.Interaction) -> str:
    """One conversation per user per channel: in a server channel everyone has their own."""
    return f"discord:{interaction.channel_id}:{interaction.user.id}"


async def defer(interaction: discord.Interaction, *, public: bool) -> None:
    """Acknowledge now and answer later: Discord shows "thinking…" and allows 15 minutes."""
    await interaction.response.defer(thinking=True, ephemeral=not public)
    interaction.extras["pending"] = "public" if public else "private"


async def send_private(interaction: discord.Interaction, messages: list[render.DiscordMessage]) -> None:
    """Ephemeral messages: the first answers the interaction, the rest follow it."""
    first, *rest = messages
    pending = interaction.extras.pop("pending", None)
    if not interaction.response.is_done():
        await interaction.response.send_message(first.content, embeds=first.embeds, ephemeral=True,
                                                allowed_mentions=NO_PINGS)
    elif pending == "private":
        await interaction.edit_original_response(content=first.content, embeds=first.embeds,
                                                 allowed_mentions=NO_PINGS)
    else:
        if pending == "public":
            # The notice would take over the public "thinking…" message; remove that first.
            await interaction.delete_original_response()
        rest = messages
    for message in rest:
        await interaction.followup.send(message.content, embeds=message.embeds, ephemeral=True,
                                        allowed_mentions=NO_PINGS)


async def send_public_answer(interaction: discord.Interaction, messages: list[render.DiscordMessage],
                             view: discord.ui.View) -> None:
    """After a public defer: the first message replaces "thinking…", the rest follow it."""
    first, *rest = messages
    await interaction.edit_original_response(content=first.content, embeds=first.embeds, view=view,
                                             allowed_mentions=NO_PINGS)
    interaction.extras.pop("pending", None)
    for message in rest:
        await interaction.followup.send(message.content, embeds=message.embeds, allowed_mentions=NO_PINGS)


async def report_failure(interaction: discord.Interaction, error: BaseException, where: str) -> None:
    """Log the failure (type and code location only: no message text) and tell the user privately."""
    error = getattr(error, "original", error)  # app_commands wraps the real error
    location = "".join(traceback.format_tb(error.__traceback__)).rstrip()
    log.error("discord %s failed with %s\n%s", where, type(error).__name__, location)
    try:
        await send_private(interaction, render.render_text(SOMETHING_WENT_WRONG))
    except discord.HTTPException as notice_error:
        log.warning("discord %s: could not tell the user about the failure (%s)", where, type(notice_error).__name__)


# --- The buttons under an answer --------------------------------------------------------------


class AnswerButtons(discord.ui.View):
    """Sources, 👍 and 👎 under an answer; persistent, so presses work after a restart.

    One instance, registered in `setup_hook`, handles presses on every answer: the
    answer is found again through the reference in the message's footer.
    """

    def __init__(self, answers: RecentAnswers, feedback: FeedbackCounter, *, with_sources: bool = True) -> None:
        super().__init__(timeout=None)
        self.answers = answers
        self.feedback = feedback
        if not with_sources:
            self.remove_item(self.sources)

    def for_message(self, answer: Answer) -> AnswerButtons:
        """A copy that only carries the buttons on a message.

        Stopped, so discord.py doesn't keep one view per message forever: the registered
        instance answers the presses.
        """
        copy = AnswerButtons(self.answers, self.feedback, with_sources=bool(answer.citations))
        copy.stop()
        return copy

    @discord.ui.button(label="Sources", emoji="📚", style=discord.ButtonStyle.secondary, custom_id=SOURCES_BUTTON_ID)
    async def sources(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        saved = self.answers.recall(render.read_ref(interaction.message))
        if saved is None:
            await send_private(interaction, render.render_text(SOURCES_GONE))
            return
        _topic, citations = saved
        await send_private(interaction, render.render_quotes(citations))

    @discord.ui.button(emoji="👍", style=discord.ButtonStyle.secondary, custom_id=UP_BUTTON_ID)
    async def up(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._vote(interaction, "up")

    @discord.ui.button(emoji="👎", style=discord.ButtonStyle.secondary, custom_id=DOWN_BUTTON_ID)
    async def down(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._vote(interaction, "down")

    async def _vote(self, interaction: discord.Interaction, vote: Vote) -> None:
        saved = self.answers.recall(render.read_ref(interaction.message))
        topic = saved[0] if saved else None  # after a restart the topic is unknown; the vote still counts
        await send_private(interaction, render.render_text(THANKS_FOR_FEEDBACK))  # acknowledge first
        await self.feedback.record(topic, vote)

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]) -> None:
        await report_failure(interaction, error, f"button {getattr(item, 'custom_id', '?')}")


# --- Slash commands ----------------------------------------------------------------------------


class Commands(commands.Cog):
    """/ask, /optout, /sources, /forget, /help, /privacy."""

    def __init__(self, bot: PrivacyBot) -> None:
        self.engine = bot.engine
        self.settings = bot.settings
        self.limiter = bot.limiter
        self.answers = bot.answers
        self.buttons = bot.buttons
        # The platforms come from the knowledge, so /optout's choices are filled in at start-up.
        choices = [app_commands.Choice(name=label[:100], value=pid) for pid, label in self.engine.platform_choices()]
        if len(choices) > 25:
            log.warning("Discord allows 25 choices; /optout offers the first 25 of %d platforms", len(choices))
        app_commands.choices(platform=choices[:25])(self.optout)

    @app_commands.command(description="Ask a question about platforms training AI on your data")
    @app_commands.describe(question="For example: How do I stop LinkedIn using my data to train AI?")
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        if await self._cooling_down(interaction):
            return
        await defer(interaction, public=True)  # before the engine: Discord allows 3 seconds
        answer = await self.engine.answer(conversation_key(interaction), question)
        await self._send_answer(interaction, answer, "/ask")

    @app_commands.command(description="The steps to opt out of AI training on one platform")
    @app_commands.describe(platform="The platform")
    async def optout(self, interaction: discord.Interaction, platform: str) -> None:
        if await self._cooling_down(interaction):
            return
        await defer(interaction, public=True)
        answer = await self.engine.opt_out(conversation_key(interaction), platform)
        await self._send_answer(interaction, answer, "/optout")

    @app_commands.command(description="What I know and how current it is")
    async def sources(self, interaction: discord.Interaction) -> None:
        await send_private(interaction, render.render_answer(self.engine.sources_summary()))

    @app_commands.command(description="Delete our conversation so far")
    async def forget(self, interaction: discord.Interaction) -> None:
        await defer(interaction, public=False)  # the store may be remote
        forgotten = await self.engine.forget(conversation_key(interaction))
        text = texts.FORGET_CONFIRMATION if forgotten else texts.FORGET_NOTHING
        await send_private(interaction, render.render_text(text))

    @app_commands.command(name="help", description="What I can do and how to ask")
    async def help_(self, interaction: discord.Interaction) -> None:
        await send_private(interaction, render.render_text(texts.help_text("/", slash_commands_only=True)))

    @app_commands.command(description="What I store about you and for how long")
    async def privacy(self, interaction: discord.Interaction) -> None:
        minutes = max(1, self.settings.conversation_ttl_seconds // 60)
        await send_private(interaction, render.render_text(texts.privacy_text(minutes)))

    async def _cooling_down(self, interaction: discord.Interaction) -> bool:
        """Over the per-user limit: say so privately (every interaction needs an answer)."""
        user_id = str(interaction.user.id)
        if self.limiter.check(user_id) is Verdict.ALLOWED:
            return False
        wait = max(1, round(self.limiter.retry_after(user_id)))
        notice = f"{RATE_LIMIT_NOTICE}\n(You can ask again in about {wait} second{'s' if wait != 1 else ''}.)"
        await send_private(interaction, render.render_text(notice))
        return True

    async def _send_answer(self, interaction: discord.Interaction, answer: Answer, where: str) -> None:
        ref = self.answers.remember(answer)
        await send_public_answer(interaction, render.render_answer(answer, ref=ref), self.buttons.for_message(answer))
        log.info("discord %s answered (kind=%s, citations=%d)", where, answer.kind, len(answer.citations))


# --- The bot -----------------------------------------------------------------------------------


class PrivacyBot(commands.Bot):
    """A commands.Bot handed its dependencies; `setup_hook` wires the commands and buttons."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice here: skip the warnings
        super().__init__(command_prefix=commands.when_mentioned, help_command=None,
                         intents=discord.Intents.default(), allowed_mentions=NO_PINGS)
        self.settings = settings
        self.engine = engine
        self.limiter = RateLimiter(settings.rate_limit_messages, settings.rate_limit_window_seconds)
        self.answers = RecentAnswers()
        self.buttons = AnswerButtons(self.answers, engine.feedback)

    @property
    def uses_own_api(self) -> bool:
        return self.settings.discord_api_base_url.rstrip("/") != DEFAULT_API_BASE_URL

    async def setup_hook(self) -> None:
        await self.add_cog(Commands(self))
        self.add_view(self.buttons)  # persistent: handles presses on answers sent before a restart
        self.tree.error(self.on_app_command_error)
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """To one server at once while developing (DISCORD_GUILD_ID), else globally (can take a while)."""
        if self.settings.discord_guild_id:
            guild = discord.Object(id=self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to guild %s", len(synced), self.settings.discord_guild_id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d global commands", len(synced))

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        name = interaction.command.name if interaction.command else "unknown command"
        await report_failure(interaction, error, f"/{name}")

    async def login(self, token: str) -> None:
        if self.uses_own_api:
            # discord.py builds every REST URL (webhooks and interactions too) from Route.BASE.
            discord.http.Route.BASE = self.settings.discord_api_base_url.rstrip("/")
        await super().login(token)

    async def connect(self, *, reconnect: bool = True) -> None:
        if self.uses_own_api:
            # discord.py dials a built-in gateway address; take that API's own from GET /gateway/bot.
            _shards, url, _limits = await self.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        await super().connect(reconnect=reconnect)


def build_bot(settings: Settings, engine: Engine) -> PrivacyBot:
    return PrivacyBot(settings, engine)


# --- Running -------------------------------------------------------------------------------------


def require_token(settings: Settings) -> str:
    """The bot token, or a clear message and exit status 2 (no traceback)."""
    token = settings.discord_bot_token.get_secret_value().strip() if settings.discord_bot_token else ""
    if not token:
        print("DISCORD_BOT_TOKEN is not set. Put it in the environment or in a .env file (see docs/discord.md).",
              file=sys.stderr)
        raise SystemExit(2)
    return token


async def run_async(settings: Settings, engine: Engine, stop: asyncio.Event) -> None:
    """Run the bot inside a running event loop until `stop` is set."""
    token = require_token(settings)
    bot = build_bot(settings, engine)
    async with bot:
        running = asyncio.create_task(bot.start(token), name="discord-bot")
        stopping = asyncio.create_task(stop.wait(), name="discord-stop")
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # stopped, cancelled or failed: either way, log out and close the connections
            stopping.cancel()
            if not running.done():
                await bot.close()  # bot.start returns once closed
        await running  # re-raises a login failure or a fatal gateway error


def run(settings: Settings, engine: Engine) -> None:
    """Run the bot until SIGINT or SIGTERM (blocking)."""
    require_token(settings)  # fail before any connection is made

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_async(settings, engine, stop)

    try:
        asyncio.run(main())
    except discord.LoginFailure:
        print("Discord rejected DISCORD_BOT_TOKEN. Copy the token again from the Developer Portal (Bot page).",
              file=sys.stderr)
        raise SystemExit(2) from None
