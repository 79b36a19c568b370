"""A fake Slack for tests: a Web API on 127.0.0.1 recording calls, and signed requests to the app.

The Web API fake answers the methods threaddesk calls, counts messages'
timestamps up from a fixed start, and can be set to fail the next call of
a method with an HTTP error (429 with Retry-After, 500) or a Slack error
(`msg_too_long`). It rejects a message that breaks a Block Kit limit with
`invalid_blocks`, as Slack does. It keeps the messages it posted, as the
bot user, for conversations.history and conversations.replies, and takes
files_upload_v2's three steps: an upload URL on its own server (the
method name `file_upload` in calls and failures), then the completion,
which records each file's bytes and name and shares all the files of the
call in one message of its thread. `reject_upload` makes the upload URL of
one file name fail, as Slack rejects a file type that a workspace does not
allow.
apps.connections.open returns `socket_mode_url`, where a test serves
Socket Mode (tests/fake_socket_mode.py). A call to any other method is
recorded and fails the test when the fake is closed. `SlackRequests` sends
events, interactions and slash commands to the app's /slack/events URL,
signed as Slack signs them.
"""

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.app import SlackCredentials, build_slack_app
from bot.slack.messenger import SlackMessenger
from bot.slack.mrkdwn import unescape
from bot.slack.server import SlackHttpServer
from handlers.config import Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.people import Directory
from mailbridge.smtp import MailSender
from store.blobs import BlobStore
from store.models import ChatThread, Ticket
from tests.intake_support import reply_settings

HOST = "127.0.0.1"
WAIT_TIMEOUT = 10.0
BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T0TEAM"
# Form fields that slack_sdk sends as JSON text inside a form body.
JSON_FIELDS = ("blocks", "view", "metadata", "attachments", "files")
UPLOAD_PATH = "/upload/"
# Slack's Block Kit limits that the fake checks in messages (Block Kit reference, per block type).
MAX_MESSAGE_BLOCKS = 50
SECTION_TEXT_MAX = 3000
SECTION_FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
HEADER_TEXT_MAX = 150
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
SELECT_OPTIONS_MAX = 100
OPTION_TEXT_MAX = 75
OPTION_VALUE_MAX = 150
# Methods whose `blocks` are checked against those limits.
BLOCK_METHODS = ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url")


@dataclass(frozen=True)
class Call:
    """One request the fake received: the API method, its arguments and the Authorization header."""

    method: str
    args: dict[str, Any]
    authorization: str | None

    def texts(self) -> list[str]:
        """Return every `text` field of the call: the message's and each text object's."""
        found: list[str] = []
        _collect_texts(self.args, found)
        return found


@dataclass(frozen=True)
class UploadedFile:
    """A file that files.completeUploadExternal shared: where, under which name, and its bytes."""

    channel: str
    thread_ts: str | None
    filename: str
    title: str | None
    data: bytes


@dataclass
class _UploadSlot:
    """An upload URL handed out by files.getUploadURLExternal, and the bytes posted to it."""

    filename: str
    length: int
    data: bytes | None = None


@dataclass
class _Rejection:
    """How a file name's upload URL fails: with `error`, `times` more times (None: always)."""

    error: str
    times: int | None


@dataclass
class _Failure:
    method: str
    status: int
    error: str
    retry_after: int | None
    skip: int = 0


@dataclass
class FakeSlack:
    """A fake Slack Web API; use it as a context manager."""

    locales: dict[str, str] = field(default_factory=dict)
    max_section_length: int | None = None
    # The ws:// URL that apps.connections.open returns; with None the call fails.
    socket_mode_url: str | None = None
    _calls: list[Call] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _unexpected: list[str] = field(default_factory=list)
    _ts: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)
    # Top-level messages per channel, oldest first, each with the wall-clock time it was posted.
    _history: dict[str, list[tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    # Replies per (channel, thread ts), oldest first.
    _replies: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    # The Block Kit limits broken by each message rejected with invalid_blocks.
    _rejected_blocks: list[list[str]] = field(default_factory=list)
    _upload_slots: dict[str, _UploadSlot] = field(default_factory=dict)
    _uploads: list[UploadedFile] = field(default_factory=list)
    _rejections: dict[str, _Rejection] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer((HOST, 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> "FakeSlack":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT_TIMEOUT)
        if self._unexpected and exc_info[0] is None:
            raise AssertionError(f"calls to unknown Slack methods: {self._unexpected}")

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/api/"

    def response_url(self, name: str = "command") -> str:
        return f"http://{HOST}:{self._server.server_address[1]}/response/{name}"

    def uploads(self) -> list[UploadedFile]:
        """Return the files shared by files.completeUploadExternal, in order."""
        with self._changed:
            return list(self._uploads)

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
                        f"the fake Slack received {len(calls)} of {count} {method} calls "
                        f"within {timeout} s; all calls: {[c.method for c in self._calls]}"
                    )
                self._changed.wait(remaining)

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        retry_after: int | None = None,
        error: str = "",
        skip: int = 0,
    ) -> None:
        """Answer the next call of `method` after `skip` more with HTTP `status`.

        A 429 sends Retry-After. Failures of one method queue up in the order
        they were set, each answering one call.
        """
        failure = _Failure(method, status, error or f"http_{status}", retry_after, skip)
        with self._changed:
            self._failures.append(failure)

    def reject_upload(
        self, filename: str, error: str = "file_type_not_allowed", times: int | None = None
    ) -> None:
        """Fail files.getUploadURLExternal for `filename` with `error`, `times` times or always."""
        with self._changed:
            self._rejections[filename] = _Rejection(error, times)

    def error_next(self, method: str, error: str, skip: int = 0) -> None:
        """Answer the next call of `method`, after `skip` more, with HTTP 200 and `error`."""
        self.fail_next(method, 200, error=error, skip=skip)

    def add_reply(self, channel: str, thread_ts: str, message: dict[str, Any]) -> str:
        """Add a reply that someone else wrote in a thread; return its ts."""
        reply = {**message, "ts": self._next_ts()}
        self._store_message(channel, thread_ts, reply)
        return str(reply["ts"])

    def rejected_blocks(self) -> list[list[str]]:
        """Return the broken limits of every message rejected with invalid_blocks, in order."""
        with self._changed:
            return list(self._rejected_blocks)

    def thread_replies(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Return the replies in a thread, oldest first, as conversations.replies lists them."""
        with self._changed:
            return [dict(reply) for reply in self._replies.get((channel, thread_ts), [])]

    def _handle(
        self, method: str, args: dict[str, Any], authorization: str | None, data: bytes = b""
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._changed:
            self._calls.append(Call(method, args, authorization))
            self._changed.notify_all()
            failure = next((f for f in self._failures if f.method == method), None)
            if failure is not None and failure.skip > 0:
                failure.skip -= 1
                failure = None
            elif failure is not None:
                self._failures.remove(failure)
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            return failure.status, headers, {"ok": False, "error": failure.error}
        answer = self._answer(method, args, data)
        if answer is None:
            with self._changed:
                self._unexpected.append(method)
            return 404, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, answer

    def _answer(self, method: str, args: dict[str, Any], data: bytes) -> dict[str, Any] | None:
        if method in BLOCK_METHODS:
            broken = block_kit_violations(args.get("blocks") or [])
            if broken:
                with self._changed:
                    self._rejected_blocks.append(broken)
                return {"ok": False, "error": "invalid_blocks", "errors": broken}
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": BOT_ID, "team_id": TEAM}
        if method == "apps.connections.open":
            if self.socket_mode_url is None:
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_mode_url}
        if method == "chat.postMessage":
            if self._is_too_long(args):
                return {"ok": False, "error": "msg_too_long"}
            ts = self._next_ts()
            self._remember_message(args, ts)
            return {"ok": True, "channel": args.get("channel"), "ts": ts}
        if method == "conversations.history":
            return self._conversation_history(args)
        if method == "conversations.replies":
            return self._conversation_replies(args)
        if method == "files.getUploadURLExternal":
            return self._upload_url(args)
        if method == "file_upload":
            return self._receive_upload(str(args["file_id"]), data)
        if method == "files.completeUploadExternal":
            return self._complete_upload(args)
        if method == "chat.update":
            if self._is_too_long(args):
                return {"ok": False, "error": "msg_too_long"}
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", ""))}}
        if method in ("views.open", "views.update"):
            return {"ok": True, "view": {"id": "V0VIEW", "hash": "h1"}}
        if method == "users.info":
            user = str(args.get("user", ""))
            return {"ok": True, "user": {"id": user, "locale": self.locales.get(user, "en-US")}}
        if method == "response_url":
            return {"ok": True}
        if method == "chat.getPermalink":
            return {"ok": True, "permalink": self.permalink(args["channel"], args["message_ts"])}
        return None

    def permalink(self, channel: str, ts: str) -> str:
        """Return the permalink that chat.getPermalink gives for message `ts` in `channel`."""
        return f"{self.api_url.removesuffix('/api/')}/archives/{channel}/p{ts.replace('.', '')}"

    def _remember_message(self, args: dict[str, Any], ts: str) -> None:
        message: dict[str, Any] = {
            "type": "message",
            "ts": ts,
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "text": args.get("text", ""),
        }
        if args.get("blocks"):
            message["blocks"] = args["blocks"]
        if args.get("metadata"):
            message["metadata"] = args["metadata"]
        self._store_message(str(args.get("channel")), args.get("thread_ts"), message)

    def _store_message(self, channel: str, thread_ts: str | None, message: dict[str, Any]) -> None:
        """Keep a message for conversations.history, or a reply for conversations.replies."""
        with self._changed:
            if thread_ts:
                message["thread_ts"] = thread_ts
                self._replies.setdefault((channel, thread_ts), []).append(message)
            else:
                self._history.setdefault(channel, []).append((time.time(), message))

    def _conversation_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Answer newest first, within `limit` and `oldest`.

        The fake's ts values count up from a fixed past time, so `oldest` is
        compared with the wall-clock time at which each message was posted.
        """
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        oldest = float(args.get("oldest") or 0)
        limit = int(args.get("limit") or 100)
        with self._changed:
            posted = list(self._history.get(str(args.get("channel")), []))
        newest_first = [message for at, message in reversed(posted) if at >= oldest]
        messages = []
        for message in newest_first[:limit]:
            shown = dict(message)
            if not with_metadata:
                shown.pop("metadata", None)
            messages.append(shown)
        return {"ok": True, "messages": messages, "has_more": len(newest_first) > limit}

    def _conversation_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """Answer the thread's root message, then its replies oldest first, a page at a time.

        The cursor is the index of the page's first reply; every page starts
        with the root message, as Slack's does.
        """
        channel, thread_ts = str(args.get("channel")), str(args.get("ts"))
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = int(args.get("limit") or 1000)
        start = int(args.get("cursor") or 0)
        with self._changed:
            root = next(
                (m for _, m in self._history.get(channel, []) if m["ts"] == thread_ts), None
            )
            replies = list(self._replies.get((channel, thread_ts), []))
        if root is None:
            return {"ok": False, "error": "thread_not_found"}
        page = replies[start : start + limit]
        messages = []
        for message in [root, *page]:
            shown = dict(message)
            if not with_metadata:
                shown.pop("metadata", None)
            messages.append(shown)
        has_more = start + limit < len(replies)
        cursor = str(start + limit) if has_more else ""
        return {
            "ok": True,
            "messages": messages,
            "has_more": has_more,
            "response_metadata": {"next_cursor": cursor},
        }

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = str(args.get("filename", ""))
        with self._changed:
            rejection = self._rejections.get(filename)
            if rejection is not None and rejection.times != 0:
                if rejection.times is not None:
                    rejection.times -= 1
                return {"ok": False, "error": rejection.error}
            file_id = f"F{len(self._upload_slots) + 1:08d}"
            self._upload_slots[file_id] = _UploadSlot(filename, int(args.get("length", 0)))
        port = self._server.server_address[1]
        return {
            "ok": True,
            "file_id": file_id,
            "upload_url": f"http://{HOST}:{port}{UPLOAD_PATH}{file_id}",
        }

    def _receive_upload(self, file_id: str, data: bytes) -> dict[str, Any]:
        with self._changed:
            slot = self._upload_slots.get(file_id)
            if slot is None or len(data) != slot.length:
                return {"ok": False, "error": "invalid_upload"}
            slot.data = data
        return {"ok": True}

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        shared = []
        with self._changed:
            for entry in args.get("files") or []:
                slot = self._upload_slots.get(str(entry.get("id")))
                if slot is None or slot.data is None:
                    return {"ok": False, "error": "file_not_found"}
                shared.append(
                    UploadedFile(
                        channel=str(args.get("channel_id")),
                        thread_ts=args.get("thread_ts"),
                        filename=slot.filename,
                        title=entry.get("title"),
                        data=slot.data,
                    )
                )
            self._uploads.extend(shared)
        files = [
            {
                "id": entry.get("id"),
                "name": upload.filename,
                "title": entry.get("title"),
                "size": len(upload.data),
                "user": BOT_USER,
            }
            for entry, upload in zip(args["files"], shared, strict=True)
        ]
        share: dict[str, Any] = {"type": "message", "ts": self._next_ts(), "user": BOT_USER}
        share.update(text="", files=files, upload=True)
        self._store_message(str(args.get("channel_id")), args.get("thread_ts"), share)
        return {"ok": True, "files": files}

    def _is_too_long(self, args: dict[str, Any]) -> bool:
        if self.max_section_length is None:
            return False
        sections = [b for b in args.get("blocks") or [] if b.get("type") == "section"]
        return any(
            len(b.get("text", {}).get("text", "")) > self.max_section_length for b in sections
        )

    def _next_ts(self) -> str:
        with self._changed:
            self._ts += 1
            return f"1700000000.{self._ts:06d}"


def block_kit_violations(blocks: list[dict[str, Any]]) -> list[str]:
    """Return each Block Kit limit that a message's `blocks` break, described for a test failure."""
    broken = []
    if len(blocks) > MAX_MESSAGE_BLOCKS:
        broken.append(f"{len(blocks)} blocks, more than {MAX_MESSAGE_BLOCKS}")
    for index, block in enumerate(blocks):
        broken.extend(f"block {index}: {problem}" for problem in _block_violations(block))
    return broken


def _block_violations(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    problems = []
    if kind == "section":
        problems += _too_long("text", block.get("text"), SECTION_TEXT_MAX)
        fields = block.get("fields") or []
        if len(fields) > SECTION_FIELDS_MAX:
            problems.append(f"{len(fields)} fields, more than {SECTION_FIELDS_MAX}")
        for field_object in fields:
            problems += _too_long("field", field_object, FIELD_TEXT_MAX)
    elif kind == "header":
        problems += _too_long("header", block.get("text"), HEADER_TEXT_MAX)
    elif kind == "context":
        elements = block.get("elements") or []
        if len(elements) > CONTEXT_ELEMENTS_MAX:
            problems.append(f"{len(elements)} context elements, more than {CONTEXT_ELEMENTS_MAX}")
    elif kind == "actions":
        elements = block.get("elements") or []
        if len(elements) > ACTIONS_ELEMENTS_MAX:
            problems.append(f"{len(elements)} actions, more than {ACTIONS_ELEMENTS_MAX}")
        for element in elements:
            problems += _element_violations(element)
    return problems


def _element_violations(element: dict[str, Any]) -> list[str]:
    problems = []
    if element.get("type") == "button":
        problems += _too_long("button text", element.get("text"), BUTTON_TEXT_MAX)
        if len(str(element.get("value", ""))) > BUTTON_VALUE_MAX:
            problems.append(f"button value longer than {BUTTON_VALUE_MAX}")
    options = element.get("options") or []
    if len(options) > SELECT_OPTIONS_MAX:
        problems.append(f"{len(options)} options, more than {SELECT_OPTIONS_MAX}")
    for option in options:
        problems += _too_long("option text", option.get("text"), OPTION_TEXT_MAX)
        if len(str(option.get("value", ""))) > OPTION_VALUE_MAX:
            problems.append(f"option value longer than {OPTION_VALUE_MAX}")
    return problems


def _too_long(name: str, text_object: Any, limit: int) -> list[str]:
    text = text_object.get("text", "") if isinstance(text_object, dict) else ""
    if len(text) > limit:
        return [f"{name} of {len(text)} characters, more than {limit}"]
    return []


def _handler_class(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._serve(self.rfile.read(length))

        def _serve(self, body: bytes) -> None:
            url = urlparse(self.path)
            authorization = self.headers.get("Authorization")
            if url.path.startswith(UPLOAD_PATH):
                # The file's bytes, as files_upload_v2 posts them to the upload URL.
                file_id = url.path.removeprefix(UPLOAD_PATH)
                upload_args = {"file_id": file_id, "length": len(body)}
                status, headers, answer = fake._handle(
                    "file_upload", upload_args, authorization, body
                )
                self._send(status, headers, answer)
                return
            if url.path.startswith("/response/"):
                method = "response_url"
            else:
                method = url.path.removeprefix("/api/")
            args = _parse_args(url.query, body, self.headers.get("Content-Type") or "")
            status, headers, answer = fake._handle(method, args, authorization)
            self._send(status, headers, answer)

        def _send(self, status: int, headers: dict[str, str], answer: dict[str, Any]) -> None:
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _parse_args(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    args: dict[str, Any] = {key: values[-1] for key, values in parse_qs(query).items()}
    if content_type.startswith("application/json") and body:
        args.update(json.loads(body))
    elif body:
        args.update({key: values[-1] for key, values in parse_qs(body.decode()).items()})
    for name in JSON_FIELDS:
        if isinstance(args.get(name), str):
            args[name] = json.loads(args[name])
    return args


def _collect_texts(value: Any, found: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                found.append(item)
            else:
                _collect_texts(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect_texts(item, found)


def text_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Yield every Block Kit text object ({"type": "plain_text" or "mrkdwn", "text": ...})."""
    if isinstance(value, dict):
        if value.get("type") in ("plain_text", "mrkdwn") and isinstance(value.get("text"), str):
            yield value
        for item in value.values():
            yield from text_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from text_objects(item)


@dataclass(frozen=True)
class AppResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class SlackRequests:
    """Send Slack's requests to our app's /slack/events URL, signed with the signing secret."""

    url: str
    signing_secret: str
    response_url: str
    channel: str = "C0SUPPORT"
    _event_number: int = 0

    def post(self, body: str, content_type: str, **headers: str) -> AppResponse:
        timestamp = str(int(time.time()))
        signature = SignatureVerifier(self.signing_secret).generate_signature(
            timestamp=timestamp, body=body
        )
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            method="POST",
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": str(signature),
                **headers,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=WAIT_TIMEOUT) as response:
                return AppResponse(response.status, response.read())
        except urllib.error.HTTPError as error:
            return AppResponse(error.code, error.read())

    def event(
        self, event: dict[str, Any], event_id: str | None = None, retry_num: int | None = None
    ) -> AppResponse:
        if event_id is None:
            self._event_number += 1
            event_id = f"Ev{self._event_number:06d}"
        body = event_callback(event, event_id)
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(json.dumps(body), "application/json", **headers)

    def thread_message(
        self, user: str, text: str, thread_ts: str, event_id: str | None = None, **fields: Any
    ) -> AppResponse:
        """Send a message event for `text` written by `user` in the thread `thread_ts`."""
        self._event_number += 1
        event = {
            "type": "message",
            "channel": self.channel,
            "user": user,
            "text": text,
            "ts": f"1700001000.{self._event_number:06d}",
            "thread_ts": thread_ts,
            "channel_type": "channel",
            **fields,
        }
        return self.event(event, event_id=event_id)

    def interaction(self, payload: dict[str, Any]) -> AppResponse:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def click(
        self, user: str, action: dict[str, Any], message_ts: str, selected: str | None = None
    ) -> AppResponse:
        """Click a button (or choose option value `selected` of a select) on a channel message."""
        payload = block_actions(user, action, self.channel, message_ts, self.response_url, selected)
        return self.interaction(payload)

    def submit_view(self, user: str, view: dict[str, Any], values: dict[str, Any]) -> AppResponse:
        view_state = {**view, "id": "V0VIEW", "state": {"values": values}}
        return self.interaction(
            interaction_payload("view_submission", user, "trigger-2", view=view_state)
        )

    def submit_reply(self, user: str, view: dict[str, Any], text: str) -> AppResponse:
        """Submit the Reply modal `view` as `user` with `text` typed in its message box."""
        values = {"reply": {"text": {"type": "plain_text_input", "value": text}}}
        return self.submit_view(user, view, values)

    def command(self, user: str, text: str) -> AppResponse:
        body = urlencode(slash_command(user, text, self.channel, self.response_url))
        return self.post(body, "application/x-www-form-urlencoded")


def event_callback(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """Return the Events API body that carries `event`, over HTTP or in a Socket Mode envelope."""
    return {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": "A0APP",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": event,
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
    }


def interaction_payload(kind: str, user: str, trigger_id: str, **fields: Any) -> dict[str, Any]:
    """Return an interaction payload of type `kind` from `user`, with `fields` added."""
    return {
        "type": kind,
        "user": {"id": user, "team_id": TEAM},
        "team": {"id": TEAM},
        "api_app_id": "A0APP",
        "token": "legacy",
        "trigger_id": trigger_id,
        **fields,
    }


def block_actions(
    user: str,
    action: dict[str, Any],
    channel: str,
    message_ts: str,
    response_url: str,
    selected: str | None = None,
) -> dict[str, Any]:
    """Return the block_actions payload of a click on `action` of a message in `channel`."""
    clicked = {
        "action_id": action["action_id"],
        "block_id": "b",
        "type": action["type"],
        "action_ts": str(time.time()),
    }
    if selected is not None:
        clicked["selected_option"] = {"value": selected}
    else:
        clicked["value"] = action.get("value", "")
    return interaction_payload(
        "block_actions",
        user,
        "trigger-1",
        container={"type": "message", "message_ts": message_ts, "channel_id": channel},
        channel={"id": channel},
        message={"ts": message_ts},
        response_url=response_url,
        actions=[clicked],
    )


def slash_command(user: str, text: str, channel: str, response_url: str) -> dict[str, str]:
    """Return the fields of a `/desk` command, as Slack sends them in a form or an envelope."""
    return {
        "token": "legacy",
        "team_id": TEAM,
        "channel_id": channel,
        "user_id": user,
        "command": "/desk",
        "text": text,
        "response_url": response_url,
        "trigger_id": "trigger-3",
    }


def card_action(card: dict[str, Any], action_id: str) -> dict[str, Any]:
    """Return the control `action_id` of `card`, the arguments of a chat.postMessage call."""
    for block in card["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return dict(element)
    raise AssertionError(f"no control {action_id} on the card")


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_TIMEOUT) -> None:
    """Poll `condition` until it holds; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


def free_port() -> int:
    """Return a port on 127.0.0.1 that was free a moment ago, for a threaddesk process to serve."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
CHANNEL = "C0SUPPORT"


class SlackTestDesk:
    """threaddesk's Slack side against a fake Slack: the messenger, the outbox and the bolt app.

    The app is served over HTTP on 127.0.0.1; `requests` sends it signed
    requests. `wake` defaults to counting the wake-up calls.
    """

    def __init__(
        self,
        fake: FakeSlack,
        session_factory: sessionmaker[Session],
        data_dir: Path,
        rules: Rules,
        mail_sender: MailSender | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.fake = fake
        self.session_factory = session_factory
        self.translator = Translator(rules.locale, rules.timezone)
        self.wakes = 0
        blobs = BlobStore(data_dir)
        directory = Directory(rules)
        self._delivery_parts = (directory, mail_sender, blobs)
        self.restart_delivery()
        self.app, self.desk = build_slack_app(
            SlackCredentials(BOT_TOKEN, SIGNING_SECRET),
            session_factory,
            directory,
            rules,
            reply_settings(data_dir),
            wake or self._count_wake,
            api_url=fake.api_url,
        )
        self.server = SlackHttpServer(self.app, 0, host=HOST)
        self.server.start()
        self.requests = SlackRequests(
            f"http://{HOST}:{self.server.port}/slack/events", SIGNING_SECRET, fake.response_url()
        )

    def restart_delivery(self) -> None:
        """Make a new messenger and dispatcher, which remember nothing, as after a restart."""
        directory, mail_sender, blobs = self._delivery_parts
        client = WebClient(token=BOT_TOKEN, base_url=self.fake.api_url)
        self.messenger = SlackMessenger(client, CHANNEL, self.translator, blobs)
        self.dispatcher = Dispatcher(
            self.session_factory, [self.messenger], self.translator, directory, mail_sender, blobs
        )

    def __enter__(self) -> "SlackTestDesk":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.server.stop()
        self.desk.pending.close()
        self.desk.executor.shutdown(wait=True)

    def deliver(self) -> None:
        """Deliver the outbox until nothing more is due."""
        while self.dispatcher.deliver_pending():
            pass

    def desk_command(self, user: str, text: str) -> str:
        """Run `/desk text` as `user` and return the text of its private (ephemeral) answer."""
        count = len(self.fake.calls("response_url")) + 1
        response = self.requests.command(user, text)
        assert response.status == 200
        answer = self.fake.wait_for("response_url", count)[-1]
        assert answer.args["response_type"] == "ephemeral"
        return "\n".join(unescape(o["text"]) for o in text_objects(answer.args["blocks"]))

    def card_ts(self, number: int) -> str:
        with self.session_factory() as session:
            ts = session.scalar(
                select(ChatThread.thread_id)
                .join(Ticket, Ticket.id == ChatThread.ticket_id)
                .where(Ticket.number == number)
            )
        assert ts is not None, f"ticket #{number} has no Slack thread"
        return ts

    def card_action(self, action_id: str, call_index: int = -1) -> dict[str, Any]:
        """Return the control `action_id` of a card posted or updated (the latest by default)."""
        block = self.card_action_block(call_index)
        return next(e for e in block["elements"] if e["action_id"] == action_id)

    def _count_wake(self) -> None:
        self.wakes += 1

    def card_action_block(self, call_index: int = -1) -> dict[str, Any]:
        """Return the actions block of a card posted or updated (the latest by default)."""
        cards = [
            call
            for call in self.fake.calls()
            if call.method in ("chat.postMessage", "chat.update")
            and any(block.get("type") == "actions" for block in call.args.get("blocks") or [])
        ]
        return next(b for b in cards[call_index].args["blocks"] if b["type"] == "actions")
