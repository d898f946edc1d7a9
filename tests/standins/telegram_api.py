"""A stand-in Telegram Bot API server on 127.0.0.1, for end-to-end tests.

It speaks just enough of the Bot API for python-telegram-bot's real HTTP stack:
getMe, getUpdates (long polling with offsets), sendMessage, editMessageText,
editMessageReplyMarkup, answerCallbackQuery, sendChatAction, set/getMyCommands,
setMyDescription, setMyShortDescription, deleteWebhook, setWebhook, close, logOut.

Tests queue updates as a user would cause them (`private_message`, `group_message`,
`press`), read what the bot did from `calls` and `sent`, and inject faults: the next
N calls of a method can answer 429 with retry_after, 500, respond slowly, or drop the
connection. Every call is recorded with its parameters, faulted ones included.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import web

BOT_ID = 7_000_000_001
BOT_USERNAME = "privacy_answers_test_bot"
MAX_MESSAGE_LENGTH = 4096

# Parameters PTB sends as plain strings; everything else arrives JSON-encoded in form bodies.
_STRING_PARAMS = {
    "text", "parse_mode", "callback_query_id", "description", "short_description", "action",
    "url", "secret_token", "language_code", "inline_message_id", "caption",
}


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    status: int = 200  # what the stand-in answered; 0 for a dropped connection


@dataclass
class _Fault:
    kind: str  # "status", "delay" or "drop"
    status: int = 500
    retry_after: int | None = None
    seconds: float = 0.0


@dataclass
class TelegramStandIn:
    token: str
    bot_username: str = BOT_USERNAME
    max_poll_wait: float = 0.25  # cap on getUpdates' long-poll wait, so shutdowns are quick
    calls: list[ApiCall] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)  # messages the bot sent, as Telegram stores them
    commands: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bot_user = {
            "id": BOT_ID, "is_bot": True, "first_name": "Privacy Answers", "username": self.bot_username,
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False,
        }
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._callback_ids = itertools.count(1)
        self._chats: dict[int, dict[str, Any]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._new_update = asyncio.Event()
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)  # access logs would contain the token
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # --- what users do --------------------------------------------------------------

    def private_message(self, user_id: int, text: str, first_name: str = "Ann") -> dict[str, Any]:
        update = self.private_update(user_id, text, first_name)
        self._queue(update)
        return update["message"]

    def private_update(self, user_id: int, text: str, first_name: str = "Ann") -> dict[str, Any]:
        """The update a private message makes, without queueing it (to post it to a webhook)."""
        chat = {"id": user_id, "type": "private", "first_name": first_name}
        return self._message_update(chat, self._user(user_id, first_name), text)

    def private_sticker(self, user_id: int) -> dict[str, Any]:
        """A message with no text at all."""
        message = self.private_message(user_id, "")
        del message["text"]
        message["sticker"] = {"file_id": "sticker-1", "file_unique_id": "s1", "type": "regular", "width": 512,
                              "height": 512, "is_animated": False, "is_video": False}
        return message

    def group_message(
        self, chat_id: int, user_id: int, text: str, reply_to: dict[str, Any] | None = None, first_name: str = "Bo"
    ) -> dict[str, Any]:
        chat = {"id": chat_id, "type": "supergroup", "title": "Privacy chat"}
        update = self._message_update(chat, self._user(user_id, first_name), text, reply_to)
        self._queue(update)
        return update["message"]

    def press(self, user_id: int, message: dict[str, Any], data: str) -> str:
        """Press an inline button under one of the bot's messages; returns the query id."""
        query_id = f"cbq-{next(self._callback_ids)}"
        query = {
            "id": query_id, "from": self._user(user_id, "Ann"), "chat_instance": f"ci-{message['chat']['id']}",
            "message": message, "data": data,
        }
        self._queue({"callback_query": query})
        return query_id

    def _message_update(
        self, chat: dict[str, Any], user: dict[str, Any], text: str, reply_to: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._chats[chat["id"]] = chat
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, "from": user, "text": text,
        }
        entities = _entities(text)
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return {"update_id": next(self._update_ids), "message": message}

    def _queue(self, update: dict[str, Any]) -> None:
        update.setdefault("update_id", next(self._update_ids))
        self._updates.append(update)
        self._new_update.set()

    @staticmethod
    def _user(user_id: int, first_name: str) -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}

    # --- faults ---------------------------------------------------------------------

    def fail_next(self, method: str, times: int = 1, status: int = 500, retry_after: int | None = None) -> None:
        """The next `times` calls of `method` answer with an error (429 + retry_after, 500, ...)."""
        for _ in range(times):
            self._faults[method].append(_Fault("status", status=status, retry_after=retry_after))

    def delay_next(self, method: str, times: int = 1, seconds: float = 2.0) -> None:
        for _ in range(times):
            self._faults[method].append(_Fault("delay", seconds=seconds))

    def drop_next(self, method: str, times: int = 1) -> None:
        """The next `times` calls of `method` have their connection closed without an answer."""
        for _ in range(times):
            self._faults[method].append(_Fault("drop"))

    # --- what the bot did -----------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["chat"]["id"] == chat_id]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Wait until `condition()` is truthy (re-checked after every API call); return its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not (result := condition()):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"stand-in: condition not met within {timeout} s; calls: {self._summary()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass
        return result

    async def wait_for_messages(self, chat_id: int, count: int = 1, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Wait until the bot has sent at least `count` messages to the chat; return them all."""
        return await self.wait_for(lambda: len(self.sent_to(chat_id)) >= count and self.sent_to(chat_id), timeout)

    async def settle(self, quiet_calls: int = 2) -> None:
        """Wait until the bot has polled `quiet_calls` more times: by then it has processed
        everything queued before (used to check that something did *not* happen)."""
        await self.wait_for(lambda: not self._updates)
        target = len(self.calls_to("getUpdates")) + quiet_calls
        await self.wait_for(lambda: len(self.calls_to("getUpdates")) >= target)

    def _summary(self) -> str:
        return ", ".join(f"{c.method}:{c.status}" for c in self.calls[-30:])

    # --- the HTTP side --------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await _read_params(request)
        call = ApiCall(method, params)
        self.calls.append(call)
        try:
            if request.match_info["token"] != self.token:
                call.status = 401
                return _error(401, "Unauthorized")
            fault = self._faults[method].popleft() if self._faults[method] else None
            if fault and fault.kind == "drop":
                call.status = 0
                assert request.transport is not None
                request.transport.abort()  # the client sees the connection close mid-request
                return web.Response()
            if fault and fault.kind == "status":
                call.status = fault.status
                extra = {"parameters": {"retry_after": fault.retry_after}} if fault.retry_after is not None else {}
                return _error(fault.status, "Too Many Requests" if fault.status == 429 else "Internal Server Error", extra)
            if fault and fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            endpoint = getattr(self, f"_api_{method}", None)
            if endpoint is None:
                call.status = 404
                return _error(404, "Not Found: method not found")
            try:
                result = await endpoint(params)
            except _ApiError as exc:
                call.status = 400
                return _error(400, exc.description)
            return web.json_response({"ok": True, "result": result})
        finally:
            self._changed.set()

    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        if offset:  # everything below the offset is confirmed: forget it
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        wait = min(float(params.get("timeout") or 0), self.max_poll_wait)
        if not self._updates and wait > 0:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), wait)
            except TimeoutError:
                pass
        return self._updates[: int(params.get("limit") or 100)]

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = _int(params.get("chat_id"))
        _check_text(params)
        chat = self._chats.get(chat_id, {"id": chat_id, "type": "private", "first_name": "?"})
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()), "chat": chat,
            "from": self.bot_user, "text": params["text"],
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self._messages[(chat_id, message["message_id"])] = message
        # What tests look at: the stored message plus how it was asked to be shown.
        self.sent.append(message | {key: params[key] for key in ("parse_mode", "link_preview_options",
                                                                 "reply_parameters") if key in params})
        return message

    async def _api_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self._message(params)
        _check_text(params)
        message["text"] = params["text"]
        message.pop("reply_markup", None)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self._message(params)
        message.pop("reply_markup", None)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_setMyCommands(self, params: dict[str, Any]) -> Any:
        self.commands = list(params.get("commands") or [])
        return True

    async def _api_getMyCommands(self, params: dict[str, Any]) -> Any:
        return self.commands

    async def _api_setMyDescription(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_setMyShortDescription(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_close(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_logOut(self, params: dict[str, Any]) -> Any:
        return True

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (_int(params.get("chat_id")), _int(params.get("message_id")))
        if key not in self._messages:
            raise _ApiError("Bad Request: message to edit not found")
        return self._messages[key]


class _ApiError(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _check_text(params: dict[str, Any]) -> None:
    """Refuse what Telegram refuses: empty or over-long text, and (in HTML mode) bad markup."""
    text = params.get("text") or ""
    if params.get("parse_mode") == "HTML":
        problem = html_problem(text)
        if problem:
            raise _ApiError(f"Bad Request: can't parse entities: {problem}")
        text = visible_text(text)
    if not text.strip():
        raise _ApiError("Bad Request: message text is empty")
    if _utf16(text) > MAX_MESSAGE_LENGTH:
        raise _ApiError("Bad Request: message is too long")


class _TelegramHtml(HTMLParser):
    """Checks text against Telegram's HTML parse mode: known tags only, properly nested."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.visible: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TELEGRAM_TAGS:
            self.problems.append(f"unsupported start tag \"{tag}\"")
        if tag == "a" and not dict(attrs).get("href"):
            self.problems.append("a link without href")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"unexpected end tag \"{tag}\"")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)


_TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                  "blockquote", "tg-spoiler", "span", "tg-emoji"}
_BAD_AMPERSAND = re.compile(r"&(?!(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);)")


def html_problem(text: str) -> str | None:
    """Why Telegram would reject `text` in HTML parse mode, or None if it would accept it."""
    if _BAD_AMPERSAND.search(text):
        return "an unescaped &"
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.problems:
        return parser.problems[0]
    if parser.open:
        return f"unclosed tag \"{parser.open[-1]}\""
    if re.search(r"[<>]", re.sub(r"</?[a-zA-Z][^<>]*>", "", text)):
        return "a stray < or >"
    return None


def visible_text(text: str) -> str:
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    return "".join(parser.visible)


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Parameters from a JSON body, a form body (values JSON-encoded except plain strings) or the query."""
    if request.content_type == "application/json":
        return dict(await request.json())
    raw: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        raw.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _STRING_PARAMS:
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def _entities(text: str) -> list[dict[str, Any]]:
    """What Telegram's clients attach: a bot_command at the start, mentions anywhere."""
    entities = []
    command = re.match(r"/\w+(@\w+)?", text)
    if command:
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16(command.group(0))})
    for mention in re.finditer(r"(?<!\w)@\w{5,32}", text):
        entities.append({"type": "mention", "offset": _utf16(text[: mention.start()]), "length": _utf16(mention.group(0))})
    return entities


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _error(status: int, description: str, extra: dict[str, Any] | None = None) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description, **(extra or {})}, status=status)
