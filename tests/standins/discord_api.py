"""A stand-in for Discord on 127.0.0.1: the HTTP API a bot uses and the gateway websocket.

It serves just what discord.py needs to log in, sync application commands, connect to the
gateway and answer interactions, and records every HTTP call so tests can assert on
what the bot sent. Tests drive it like a user would: `send_command` types a slash command,
`press_button` clicks a button on a message the bot posted.

    async with DiscordStandIn() as discord_api:
        ...  # point the bot at discord_api.api_url
        await discord_api.wait_until_connected()
        interaction = await discord_api.send_command("ask", question="...")
        calls = await discord_api.wait_for_calls(interaction, lambda calls: len(calls) >= 2)
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10"
HEARTBEAT_INTERVAL_MS = 41_250
EPHEMERAL = 1 << 6

# Interaction callback types (https://discord.com/developers/docs/interactions/receiving-and-responding)
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7

_snowflakes = itertools.count(1_300_000_000_000_000_000)


def snowflake() -> str:
    return str(next(_snowflakes))


@dataclass
class Call:
    """One HTTP request the bot made."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    json: Any
    authorization: str | None


@dataclass
class User:
    id: str = field(default_factory=snowflake)
    username: str = "alice"

    def payload(self, bot: bool = False) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "global_name": self.username, "discriminator": "0",
                "avatar": None, "bot": bot, "public_flags": 0}


@dataclass
class Interaction:
    """An interaction the stand-in sent; its id and token tie later HTTP calls to it."""

    id: str
    token: str
    payload: dict[str, Any]


class DiscordStandIn:
    def __init__(self, *, token: str = "stand-in-token", guild_id: str | None = None) -> None:
        self.token = token
        self.application_id = snowflake()
        self.bot_user = User(id=self.application_id, username="privacy-answers")
        self.guild_id = guild_id or snowflake()
        self.calls: list[Call] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}  # guild id (None: global) -> commands
        self.messages: dict[str, dict[str, Any]] = {}  # message id -> message payload
        self.identifies: list[dict[str, Any]] = []
        self._interactions: dict[str, dict[str, Any]] = {}  # token -> the interaction payload sent
        self._originals: dict[str, str] = {}  # interaction token -> id of its original response message
        self._changed = asyncio.Condition()
        self._socket: web.WebSocketResponse | None = None
        self._sequence = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{path:.*}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._socket is not None and not self._socket.closed:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> DiscordStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- waiting ----------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Wait until `condition()` is truthy (re-checked after every call and gateway event)."""

        async def waiting() -> Any:
            async with self._changed:
                while not (result := condition()):
                    await self._changed.wait()
                return result

        return await asyncio.wait_for(waiting(), timeout)

    async def wait_until_connected(self, timeout: float = 30.0) -> None:
        """The bot has identified on the gateway and received READY."""
        await self.wait_until(lambda: self._socket is not None and self.identifies, timeout)

    def calls_for(self, interaction: Interaction) -> list[Call]:
        """The HTTP calls that answered one interaction: its callback, followups and edits."""
        return [c for c in self.calls if interaction.token in c.path.split("/")]

    async def wait_for_calls(self, interaction: Interaction, enough: Callable[[list[Call]], bool],
                             timeout: float = 30.0) -> list[Call]:
        await self.wait_until(lambda: enough(self.calls_for(interaction)), timeout)
        return self.calls_for(interaction)

    # --- what a user does --------------------------------------------------------------------

    async def send_command(self, name: str, *, user: User | None = None, channel_id: str | None = None,
                           in_guild: bool = True, **options: str) -> Interaction:
        """A user runs `/name option:value ...`."""
        data = {
            "id": self._command_id(name), "name": name, "type": 1,
            "options": [{"name": key, "type": 3, "value": value} for key, value in options.items()],
        }
        return await self._interact(2, data, user=user, channel_id=channel_id, in_guild=in_guild)

    async def press_button(self, message: dict[str, Any], custom_id: str, *, user: User | None = None) -> Interaction:
        """A user clicks the button `custom_id` on a message the bot posted."""
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, data, user=user, channel_id=message["channel_id"], message=message,
                                    in_guild="guild_id" in message)

    def original_message(self, interaction: Interaction) -> dict[str, Any] | None:
        """The message the interaction's original response became, if any."""
        message_id = self._originals.get(interaction.token)
        return self.messages.get(message_id) if message_id else None

    async def _interact(self, kind: int, data: dict[str, Any], *, user: User | None, channel_id: str | None,
                        in_guild: bool, message: dict[str, Any] | None = None) -> Interaction:
        user = user or User()
        channel_id = channel_id or snowflake()
        payload: dict[str, Any] = {
            "id": snowflake(), "application_id": self.application_id, "type": kind, "token": f"itoken{snowflake()}",
            "version": 1, "data": data, "channel_id": channel_id, "locale": "en-US",
            "app_permissions": "2248473465835073", "entitlements": [], "attachment_size_limit": 8 * 1024 * 1024,
            "authorizing_integration_owners": {"0": self.guild_id} if in_guild else {"1": user.id},
            "context": 0 if in_guild else 1,
        }
        if in_guild:
            payload |= {
                "guild_id": self.guild_id, "guild_locale": "en-US",
                "channel": {"id": channel_id, "type": 0, "guild_id": self.guild_id, "name": "general",
                            "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None},
                "member": {"user": user.payload(), "roles": [], "joined_at": _now(), "deaf": False, "mute": False,
                           "flags": 0, "permissions": "2248473465835073"},
            }
        else:
            payload |= {"channel": {"id": channel_id, "type": 1, "recipients": [user.payload()]},
                        "user": user.payload()}
        if message is not None:
            payload["message"] = message
        self._interactions[payload["token"]] = payload
        await self.dispatch("INTERACTION_CREATE", payload)
        return Interaction(id=payload["id"], token=payload["token"], payload=payload)

    def _command_id(self, name: str) -> str:
        for commands in self.commands.values():
            for command in commands:
                if command["name"] == name:
                    return command["id"]
        return snowflake()

    # --- gateway --------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH (op 0) event to the connected bot."""
        if self._socket is None or self._socket.closed:
            raise RuntimeError("no bot is connected to the stand-in gateway")
        self._sequence += 1
        await self._socket.send_json({"op": 0, "t": event, "s": self._sequence, "d": data})

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        async for message in socket:
            if message.type != WSMsgType.TEXT:
                continue  # the stand-in never compresses, so the bot only sends text
            frame = json.loads(message.data)
            if frame["op"] == 1:  # HEARTBEAT
                await socket.send_json({"op": 11})
            elif frame["op"] == 2:  # IDENTIFY
                await self._identified(socket, frame["d"])
            elif frame["op"] == 6:  # RESUME
                self._socket = socket
                await self.dispatch("RESUMED", {})
                await self._notify()
        if self._socket is socket:
            self._socket = None
        return socket

    async def _identified(self, socket: web.WebSocketResponse, identify: dict[str, Any]) -> None:
        if identify.get("token") != self.token:
            await socket.close(code=4004, message=b"Authentication failed.")
            return
        self._socket = socket
        self._sequence = 0
        await self.dispatch("READY", {
            "v": 10, "user": self.bot_user.payload(bot=True), "guilds": [], "session_id": snowflake(),
            "resume_gateway_url": self.gateway_url, "application": {"id": self.application_id, "flags": 0},
            "private_channels": [], "relationships": [], "presences": [],
        })
        self.identifies.append({k: v for k, v in identify.items() if k != "token"})
        await self._notify()

    # --- HTTP API -------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        body = await request.json() if request.can_read_body else None
        self.calls.append(Call(request.method, path, dict(request.query), body, request.headers.get("Authorization")))
        try:
            if not path.startswith(("/interactions/", "/webhooks/")) and not self._authorised(request):
                return _json({"message": "401: Unauthorized", "code": 0}, status=401)
            return self._route(request.method, path.strip("/").split("/"), body)
        finally:
            await self._notify()

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    def _route(self, method: str, parts: list[str], body: Any) -> web.Response:
        match (method, parts):
            case ("GET", ["users", "@me"]):
                return _json(self.bot_user.payload(bot=True))
            case ("GET", ["oauth2", "applications", "@me"]):
                return _json(self._application())
            case ("GET", ["gateway", "bot"]):
                return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": {
                    "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})
            case ("PUT", ["applications", _, "commands"]):
                return _json(self._save_commands(None, body))
            case ("PUT", ["applications", _, "guilds", guild_id, "commands"]):
                return _json(self._save_commands(guild_id, body))
            case ("GET", ["applications", _, "commands"]):
                return _json(self.commands.get(None, []))
            case ("GET", ["applications", _, "guilds", guild_id, "commands"]):
                return _json(self.commands.get(guild_id, []))
            case ("POST", ["interactions", interaction_id, token, "callback"]):
                return _json(self._callback(interaction_id, token, body))
            case ("POST", ["webhooks", _, token]):
                return _json(self._new_message(token, body or {}))
            case ("GET", ["webhooks", _, token, "messages", message_id]):
                return self._found(self.messages.get(self._originals.get(token, "") if message_id == "@original"
                                                     else message_id))
            case ("PATCH", ["webhooks", _, token, "messages", message_id]):
                return self._found(self._edit(token, message_id, body or {}))
            case ("DELETE", ["webhooks", _, token, "messages", message_id]):
                target = self._originals.get(token) if message_id == "@original" else message_id
                return web.Response(status=204 if self.messages.pop(target or "", None) else 404)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _application(self) -> dict[str, Any]:
        return {"id": self.application_id, "name": "Privacy answers", "description": "", "icon": None,
                "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64, "flags": 0,
                "owner": User(username="owner").payload(), "team": None, "summary": "",
                "interactions_endpoint_url": None}

    def _save_commands(self, guild_id: str | None, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        saved = [{**command, "id": self._existing_id(guild_id, command["name"]), "application_id": self.application_id,
                  "version": snowflake(), "default_member_permissions": None,
                  **({"guild_id": guild_id} if guild_id else {})} for command in commands]
        self.commands[guild_id] = saved
        return saved

    def _existing_id(self, guild_id: str | None, name: str) -> str:
        for command in self.commands.get(guild_id, []):
            if command["name"] == name:
                return command["id"]
        return snowflake()

    def _callback(self, interaction_id: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        kind, data = body["type"], body.get("data") or {}
        message = None
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            message = self._new_message(token, data, loading=kind == DEFERRED_CHANNEL_MESSAGE)
            self._originals[token] = message["id"]
        return {
            "interaction": {"id": interaction_id, "type": 2, "response_message_id": message and message["id"],
                            "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
                            "response_message_ephemeral": bool(data.get("flags", 0) & EPHEMERAL)},
            "resource": {"type": kind, **({"message": message} if message else {})},
        }

    def _new_message(self, token: str, data: dict[str, Any], loading: bool = False) -> dict[str, Any]:
        interaction = self._interactions.get(token, {})
        message = {
            "id": snowflake(), "channel_id": interaction.get("channel_id", snowflake()), "type": 20,
            "author": self.bot_user.payload(bot=True), "content": data.get("content") or "",
            "embeds": data.get("embeds") or [], "components": data.get("components") or [],
            "flags": (data.get("flags") or 0) | (1 << 7 if loading else 0), "timestamp": _now(),
            "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
            "attachments": [], "pinned": False, "application_id": self.application_id,
        }
        if "guild_id" in interaction:
            message["guild_id"] = interaction["guild_id"]
        self.messages[message["id"]] = message
        return message

    def _edit(self, token: str, message_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        target = self._originals.get(token) if message_id == "@original" else message_id
        message = self.messages.get(target or "")
        if message is not None:
            message |= {key: data[key] for key in ("content", "embeds", "components") if key in data}
            message["flags"] &= ~(1 << 7)  # no longer "thinking"
            message["edited_timestamp"] = _now()
        return message

    @staticmethod
    def _found(message: dict[str, Any] | None) -> web.Response:
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return _json(message)


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly "application/json" (no charset).
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
