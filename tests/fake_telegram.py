"""A fake Telegram Bot API on 127.0.0.1 that the real python-telegram-bot talks to.

It records every call, serves getUpdates from a queue the test fills, and
answers the methods threaddesk uses as Telegram does, including its
refusals: HTML that does not parse, a text over 4,096 characters, button
data over 64 bytes, a topic name over 128 characters, a topic in a group
without topics, an edit that changes nothing ("message is not modified"). It
can answer the next call of a method with an error such as 429 with
retry_after. A call to any other method fails the test when the fake closes.

Forum topics can be closed and reopened: closing a closed topic or
reopening an open one is refused with TOPIC_NOT_MODIFIED, an unknown topic
with TOPIC_ID_INVALID, and a message to a closed topic with TOPIC_CLOSED
unless the bot may manage topics, as in Telegram.

Files come as multipart/form-data: sendDocument in its `document` field,
sendMediaGroup as parts that the `media` list names with attach:// URIs.
Each file sent is recorded with its name and bytes (`uploads`); an empty
file, a file over `upload_limit` bytes, a group of fewer than 2 or more than
10 items, or documents mixed with other media are refused as Telegram does.
"""

import contextlib
import html
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

HOST = "127.0.0.1"
WAIT_TIMEOUT = 10.0
# The longest a getUpdates call waits for an update before it answers with none.
LONG_POLL_CAP = 0.5
BOT_USER_ID = 7000001
BOT_USERNAME = "threaddesk_bot"
SUPPORT_CHAT = -1001234567890
TOKEN = "123456:TEST-telegram-token"
# Fields python-telegram-bot sends as JSON text inside a form body.
JSON_FIELDS = (
    "reply_markup",
    "commands",
    "scope",
    "reply_parameters",
    "link_preview_options",
    "allowed_updates",
    "show_alert",
    "media",
)
ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "tg-spoiler",
        "span",
        "blockquote",
        "tg-emoji",
    }
)
_TAG = re.compile(r"<(/?)([a-zA-Z-]+)(?:\s[^<>]*)?>")
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|lt|gt|amp|quot);")
MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
TOPIC_NAME_LIMIT = 128
CALLBACK_ANSWER_LIMIT = 200
# The Bot API's limit for an uploaded file, and the size of a media group.
UPLOAD_LIMIT = 50_000_000
GROUP_MIN = 2
GROUP_MAX = 10
ATTACH_PREFIX = "attach://"
_DISPOSITION_PARAM = re.compile(r';\s*([a-zA-Z*]+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class FilePart:
    """A file of a multipart request: its form field, its name and type, and its bytes."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Upload:
    """A file the fake accepted, where it went and in which call.

    `group` is the media_group_id of a sendMediaGroup call, None for sendDocument.
    """

    method: str
    chat_id: str
    topic_id: int | None
    reply_to: int | None
    filename: str
    data: bytes
    message_id: int
    group: str | None


@dataclass(frozen=True)
class Call:
    """One request the fake received: the method, its arguments and the token in the URL."""

    method: str
    args: dict[str, Any]
    token: str


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    retry_after: int | None


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


@dataclass
class FakeTelegram:
    """A fake Bot API server; use it as a context manager."""

    forum: bool = True
    next_message_id: int = 100
    can_read_all_group_messages: bool = False
    upload_limit: int = UPLOAD_LIMIT
    # The bot's membership in every group, as getChatMember returns it.
    bot_status: str = "administrator"
    bot_can_manage_topics: bool = True
    _calls: list[Call] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _unexpected: list[str] = field(default_factory=list)
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _next_update_id: int = 1
    _messages: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    _uploads: list[Upload] = field(default_factory=list)
    # Every topic the bot opened, by chat and id, and whether it is closed now.
    _topics: dict[tuple[str, int], bool] = field(default_factory=dict)
    _next_group: int = 1
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer((HOST, 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> "FakeTelegram":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT_TIMEOUT)
        if self._unexpected and exc_info[0] is None:
            raise AssertionError(f"calls to unknown Bot API methods: {self._unexpected}")

    @property
    def api_url(self) -> str:
        """The base URL to give python-telegram-bot; it appends the token and the method."""
        return f"http://{HOST}:{self._server.server_address[1]}/bot"

    def calls(self, method: str | None = None) -> list[Call]:
        with self._changed:
            return [call for call in self._calls if method is None or call.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = WAIT_TIMEOUT) -> list[Call]:
        """Return the calls of `method` once there are `count`; fail the test on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                calls = [call for call in self._calls if call.method == method]
                if len(calls) >= count:
                    return calls
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"the fake Telegram received {len(calls)} of {count} {method} calls "
                        f"within {timeout} s; all calls: {[c.method for c in self._calls]}"
                    )
                self._changed.wait(remaining)

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        retry_after: int | None = None,
        description: str = "",
    ) -> None:
        """Answer the next call of `method` with HTTP `status`; a 429 carries `retry_after`."""
        if not description:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if status == 429
                else f"Bad Request: error {status}"
            )
        with self._changed:
            self._failures.append(_Failure(method, status, description, retry_after))

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update for getUpdates; give it the next update_id unless it has one."""
        with self._changed:
            if "update_id" not in update:
                update = {**update, "update_id": self._next_update_id}
            self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
            self._updates.append(update)
            self._changed.notify_all()
            return int(update["update_id"])

    def pending_updates(self) -> int:
        """Return how many queued updates the bot has not confirmed with a later offset."""
        with self._changed:
            return len(self._updates)

    def message(self, chat_id: int | str, message_id: int) -> dict[str, Any] | None:
        """Return a message the bot sent, as it stands after its edits."""
        with self._changed:
            stored = self._messages.get((str(chat_id), message_id))
            return dict(stored) if stored is not None else None

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        """Return the text of every sendMessage call, to `chat_id` if given, in order."""
        return [
            str(call.args.get("text"))
            for call in self.calls("sendMessage")
            if chat_id is None or str(call.args.get("chat_id")) == str(chat_id)
        ]

    def is_topic_closed(self, chat_id: int | str, topic_id: int) -> bool:
        """Return whether a topic the bot opened is closed now."""
        with self._changed:
            return self._topics[(str(chat_id), topic_id)]

    def uploads(self) -> list[Upload]:
        """Return every file the fake accepted, in the order it took them."""
        with self._changed:
            return list(self._uploads)

    def _handle(self, method: str, args: dict[str, Any], token: str) -> tuple[int, dict[str, Any]]:
        with self._changed:
            self._calls.append(Call(method, args, token))
            self._changed.notify_all()
            failure = next((f for f in self._failures if f.method == method), None)
            if failure is not None:
                self._failures.remove(failure)
        if failure is not None:
            return failure.status, _error(failure.status, failure.description, failure.retry_after)
        handler = self._methods().get(method)
        if handler is None:
            with self._changed:
                self._unexpected.append(method)
            return 404, _error(404, "Not Found: method not found")
        try:
            return 200, {"ok": True, "result": handler(args)}
        except ApiError as error:
            return error.status, _error(error.status, error.description, error.retry_after)

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "getMe": lambda args: self._bot_user(),
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getUpdates": self._get_updates,
            "deleteWebhook": lambda args: True,
            "setWebhook": lambda args: True,
            "setMyCommands": self._set_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_reply_markup,
            "answerCallbackQuery": self._answer_callback,
            "createForumTopic": self._create_topic,
            "closeForumTopic": lambda args: self._set_topic_closed(args, True),
            "reopenForumTopic": lambda args: self._set_topic_closed(args, False),
            "sendDocument": self._send_document,
            "sendMediaGroup": self._send_media_group,
        }

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_USER_ID,
            "is_bot": True,
            "first_name": "threaddesk",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": False,
        }

    def _get_chat(self, args: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(args["chat_id"])
        return {
            "id": chat_id,
            "type": "supergroup" if chat_id < 0 else "private",
            "title": "Helpdesk",
            "is_forum": self.forum,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _get_chat_member(self, args: dict[str, Any]) -> dict[str, Any]:
        """Return the bot's own membership: `bot_status`, with every right but Manage topics set."""
        if int(args["user_id"]) != BOT_USER_ID:
            raise ApiError(400, "Bad Request: user not found")
        member: dict[str, Any] = {"status": self.bot_status, "user": self._bot_user()}
        if self.bot_status == "administrator":
            rights = (
                "can_manage_chat can_delete_messages can_manage_video_chats "
                "can_restrict_members can_change_info can_invite_users can_post_stories "
                "can_edit_stories can_delete_stories can_pin_messages"
            )
            member.update(dict.fromkeys(rights.split(), True))
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                can_promote_members=False,
                can_manage_topics=self.bot_can_manage_topics,
            )
        return member

    def _get_updates(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(args.get("offset") or 0)
        wait = min(float(args.get("timeout") or 0), LONG_POLL_CAP)
        deadline = time.monotonic() + wait
        with self._changed:
            self._updates = [u for u in self._updates if int(u["update_id"]) >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
                self._updates = [u for u in self._updates if int(u["update_id"]) >= offset]
            return list(self._updates)

    def _set_my_commands(self, args: dict[str, Any]) -> bool:
        for command in args["commands"]:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command["command"]):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"]) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        return True

    def _send_message(self, args: dict[str, Any]) -> dict[str, Any]:
        text = str(args.get("text", ""))
        _check_text(text, args.get("parse_mode"))
        _check_markup(args.get("reply_markup"))
        chat_id = str(args["chat_id"])
        with self._changed:
            message_id = self.next_message_id
            self.next_message_id += 1
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": self._bot_user(),
            "text": _plain(text) if args.get("parse_mode") == "HTML" else text,
        }
        topic = args.get("message_thread_id")
        if topic is not None:
            self._check_topic_open(chat_id, int(topic))
            message["message_thread_id"] = int(topic)
            message["is_topic_message"] = True
        stored = {**message, "html": text, "reply_markup": args.get("reply_markup")}
        with self._changed:
            self._messages[(chat_id, message_id)] = stored
        return message

    def _send_document(self, args: dict[str, Any]) -> dict[str, Any]:
        document = args.get("document")
        if not isinstance(document, FilePart):
            raise ApiError(400, "Bad Request: there is no document in the request")
        self._check_file(document)
        return self._store_documents("sendDocument", args, [document], None)[0]

    def _send_media_group(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        media = args.get("media")
        if not isinstance(media, list) or not GROUP_MIN <= len(media) <= GROUP_MAX:
            raise ApiError(400, "Bad Request: media group must contain 2-10 items")
        if any(item.get("type") != "document" for item in media) and any(
            item.get("type") == "document" for item in media
        ):
            raise ApiError(400, "Bad Request: document can't be mixed with other media types")
        files = []
        for item in media:
            name = str(item.get("media", ""))
            part = args.get(name.removeprefix(ATTACH_PREFIX))
            if not name.startswith(ATTACH_PREFIX) or not isinstance(part, FilePart):
                raise ApiError(400, f"Bad Request: file {name!r} is not in the request")
            self._check_file(part)
            files.append(part)
        with self._changed:
            group = str(self._next_group)
            self._next_group += 1
        return self._store_documents("sendMediaGroup", args, files, group)

    def _check_file(self, part: FilePart) -> None:
        if not part.data:
            raise ApiError(400, "Bad Request: file must be non-empty")
        if len(part.data) > self.upload_limit:
            raise ApiError(413, "Request Entity Too Large")

    def _store_documents(
        self, method: str, args: dict[str, Any], files: list[FilePart], group: str | None
    ) -> list[dict[str, Any]]:
        chat_id = str(args["chat_id"])
        topic = args.get("message_thread_id")
        topic_id = int(topic) if topic is not None else None
        reply = args.get("reply_parameters")
        reply_to = int(reply["message_id"]) if isinstance(reply, dict) else None
        sent = []
        with self._changed:
            for part in files:
                message_id = self.next_message_id
                self.next_message_id += 1
                message: dict[str, Any] = {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "chat": _chat(chat_id),
                    "from": self._bot_user(),
                    "document": {
                        "file_id": f"file-{message_id}",
                        "file_unique_id": f"unique-{message_id}",
                        "file_name": part.filename,
                        "mime_type": part.content_type,
                        "file_size": len(part.data),
                    },
                }
                if topic_id is not None:
                    message["message_thread_id"] = topic_id
                    message["is_topic_message"] = True
                if group is not None:
                    message["media_group_id"] = group
                self._messages[(chat_id, message_id)] = dict(message)
                self._uploads.append(
                    Upload(
                        method,
                        chat_id,
                        topic_id,
                        reply_to,
                        part.filename,
                        part.data,
                        message_id,
                        group,
                    )
                )
                sent.append(message)
        return sent

    def _edit_message_text(self, args: dict[str, Any]) -> dict[str, Any]:
        text = str(args.get("text", ""))
        _check_text(text, args.get("parse_mode"))
        _check_markup(args.get("reply_markup"))
        return self._edit(args, {"html": text, "reply_markup": args.get("reply_markup")})

    def _edit_reply_markup(self, args: dict[str, Any]) -> dict[str, Any]:
        _check_markup(args.get("reply_markup"))
        return self._edit(args, {"reply_markup": args.get("reply_markup")})

    def _edit(self, args: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
        key = (str(args["chat_id"]), int(args["message_id"]))
        with self._changed:
            stored = self._messages.get(key)
            if stored is None:
                raise ApiError(400, "Bad Request: message to edit not found")
            if all(stored.get(name) == value for name, value in change.items()):
                raise ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content "
                    "and reply markup are exactly the same as a current content and reply "
                    "markup of the message",
                )
            stored.update(change)
            if "html" in change:
                stored["text"] = _plain(change["html"])
            return {k: v for k, v in stored.items() if k not in ("html", "reply_markup")}

    def _answer_callback(self, args: dict[str, Any]) -> bool:
        if len(str(args.get("text") or "")) > CALLBACK_ANSWER_LIMIT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    def _create_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.forum:
            raise ApiError(400, "Bad Request: the chat is not a forum")
        name = str(args.get("name", ""))
        if not 1 <= len(name) <= TOPIC_NAME_LIMIT:
            raise ApiError(400, "Bad Request: TOPIC_TITLE_INVALID")
        with self._changed:
            topic = self.next_message_id
            self.next_message_id += 1
            self._topics[(str(args["chat_id"]), topic)] = False
        return {"message_thread_id": topic, "name": name, "icon_color": 7322096}

    def _set_topic_closed(self, args: dict[str, Any], closed: bool) -> bool:
        key = (str(args["chat_id"]), int(args["message_thread_id"]))
        with self._changed:
            if key not in self._topics:
                raise ApiError(400, "Bad Request: TOPIC_ID_INVALID")
            if self._topics[key] == closed:
                raise ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
            self._topics[key] = closed
        return True

    def _check_topic_open(self, chat_id: str, topic: int) -> None:
        """Refuse a message to a closed topic unless the bot may manage topics."""
        with self._changed:
            closed = self._topics.get((chat_id, topic), False)
        if closed and not self.bot_can_manage_topics:
            raise ApiError(400, "Bad Request: TOPIC_CLOSED")


def _error(status: int, description: str, retry_after: int | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        answer["parameters"] = {"retry_after": retry_after}
    return answer


def _chat(chat_id: str) -> dict[str, Any]:
    number = int(chat_id)
    if number > 0:
        return {"id": number, "type": "private", "first_name": "Person"}
    return {"id": number, "type": "supergroup", "title": "Helpdesk"}


def _check_text(text: str, parse_mode: object) -> None:
    if parse_mode == "HTML":
        _check_html(text)
        plain = _plain(text)
    else:
        plain = text
    if not plain.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if len(plain.encode("utf-16-le")) // 2 > MESSAGE_LIMIT:
        raise ApiError(400, "Bad Request: message is too long")


def _check_html(text: str) -> None:
    """Refuse HTML that Telegram cannot parse: an unknown tag, a bare `<` or `&`."""
    position = 0
    while True:
        start = text.find("<", position)
        if start == -1:
            break
        match = _TAG.match(text, start)
        if match is None or match.group(2).lower() not in ALLOWED_TAGS:
            raise ApiError(
                400, f"Bad Request: can't parse entities: unsupported start tag at {start}"
            )
        position = match.end()
    for index, character in enumerate(text):
        if character == "&" and _ENTITY.match(text, index) is None:
            raise ApiError(400, f"Bad Request: can't parse entities: bare & at {index}")


def _plain(text: str) -> str:
    return html.unescape(_TAG.sub("", text))


def _check_markup(markup: object) -> None:
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _handler_class(fake: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._serve(self.rfile.read(length))

        def _serve(self, body: bytes) -> None:
            url = urlparse(self.path)
            token, _, method = url.path.removeprefix("/bot").partition("/")
            args = _parse_args(url.query, body, self.headers.get("Content-Type") or "")
            status, answer = fake._handle(method, args, token)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            # The bot may give up on a long poll while it stops.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _parse_args(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    args: dict[str, Any] = {key: values[-1] for key, values in parse_qs(query).items()}
    if content_type.startswith("application/json") and body:
        args.update(json.loads(body))
    elif content_type.startswith("multipart/form-data"):
        args.update(_parse_multipart(body, content_type))
    elif body:
        form = parse_qs(body.decode(), keep_blank_values=True)
        args.update({key: values[-1] for key, values in form.items()})
    for name in JSON_FIELDS:
        if isinstance(args.get(name), str):
            args[name] = json.loads(args[name])
    return args


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """Read a multipart/form-data body: text fields as str, files as FilePart.

    Names are read as UTF-8 from quoted parameters, which is how httpx writes
    them (non-ASCII as is, `"` as %22 and a backslash escaped).
    """
    boundary = content_type.split("boundary=", 1)[1].split(";", 1)[0].strip().strip('"')
    args: dict[str, Any] = {}
    delimiter = b"--" + boundary.encode()
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        params = {
            key.lower(): re.sub(r"\\(.)", r"\1", value)
            for key, value in _DISPOSITION_PARAM.findall(headers.get("content-disposition", ""))
        }
        field_name = params.get("name", "")
        if "filename" in params:
            content = headers.get("content-type", "application/octet-stream")
            args[field_name] = FilePart(field_name, params["filename"], content, data)
        else:
            args[field_name] = data.decode()
    return args


def user(
    user_id: int, first_name: str, username: str | None = None, language: str = "en"
) -> dict[str, Any]:
    """Return a Telegram user as updates carry it."""
    found: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if username is not None:
        found["username"] = username
    found["language_code"] = language
    return found


def message_update(
    sender: dict[str, Any],
    text: str,
    *,
    chat_id: int = SUPPORT_CHAT,
    topic_id: int | None = None,
    reply_to: dict[str, Any] | None = None,
    message_id: int = 1,
) -> dict[str, Any]:
    """Return an update with a person's text message, in a topic or replying to a message."""
    chat: dict[str, Any] = (
        {"id": chat_id, "type": "supergroup", "title": "Helpdesk"}
        if chat_id < 0
        else {"id": chat_id, "type": "private", "first_name": sender["first_name"]}
    )
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": chat,
        "from": sender,
        "text": text,
    }
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    if topic_id is not None:
        message["message_thread_id"] = topic_id
        message["is_topic_message"] = True
        chat["is_forum"] = True
    if reply_to is not None:
        message["reply_to_message"] = reply_to
    return {"message": message}


def callback_update(
    sender: dict[str, Any],
    data: str,
    message: dict[str, Any],
    query_id: str,
) -> dict[str, Any]:
    """Return an update with a button press on `message` (a message the bot sent)."""
    return {
        "callback_query": {
            "id": query_id,
            "from": sender,
            "message": message,
            "chat_instance": "-5550001112223334445",
            "data": data,
        }
    }


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_TIMEOUT) -> None:
    """Poll `condition` until it holds; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)
