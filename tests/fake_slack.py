"""A fake Slack for tests: a Web API on 127.0.0.1 recording calls, and signed requests to the app.

The Web API fake answers the methods threaddesk calls, counts messages'
timestamps up from a fixed start, and can be set to fail the next call of
a method with an HTTP error (429 with Retry-After, 500) or a Slack error
(`msg_too_long`). It keeps the channel messages it posted for
conversations.history, and takes files_upload_v2's three steps: an upload
URL on its own server (the method name `file_upload` in calls and
failures), then the completion, which records the file's bytes and name.
A call to any other method is recorded and fails the test when the fake is
closed. `SlackRequests` sends events, interactions and slash commands to
the app's /slack/events URL, signed as Slack signs them.
"""

import json
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
from bot.slack.server import SlackHttpServer
from handlers.config import Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.people import Directory
from handlers.replies import ReplySettings
from mailbridge.smtp import MailSender
from store.blobs import BlobStore
from store.models import ChatThread, Ticket
from tests.intake_support import OWN_ADDRESS

HOST = "127.0.0.1"
WAIT_TIMEOUT = 10.0
BOT_USER = "UBOT"
BOT_ID = "BBOT"
TEAM = "T0TEAM"
# Form fields that slack_sdk sends as JSON text inside a form body.
JSON_FIELDS = ("blocks", "view", "metadata", "attachments", "files")
UPLOAD_PATH = "/upload/"


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
class _Failure:
    method: str
    status: int
    error: str
    retry_after: int | None


@dataclass
class FakeSlack:
    """A fake Slack Web API; use it as a context manager."""

    locales: dict[str, str] = field(default_factory=dict)
    max_section_length: int | None = None
    _calls: list[Call] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _unexpected: list[str] = field(default_factory=list)
    _ts: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition)
    # Top-level messages per channel, oldest first, each with the wall-clock time it was posted.
    _history: dict[str, list[tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    _upload_slots: dict[str, _UploadSlot] = field(default_factory=dict)
    _uploads: list[UploadedFile] = field(default_factory=list)

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
        self, method: str, status: int, *, retry_after: int | None = None, error: str = ""
    ) -> None:
        """Answer the next call of `method` with HTTP `status` (429 sends Retry-After)."""
        with self._changed:
            self._failures.append(_Failure(method, status, error or f"http_{status}", retry_after))

    def error_next(self, method: str, error: str) -> None:
        """Answer the next call of `method` with HTTP 200 and `{"ok": false, "error": error}`."""
        self.fail_next(method, 200, error=error)

    def _handle(
        self, method: str, args: dict[str, Any], authorization: str | None, data: bytes = b""
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._changed:
            self._calls.append(Call(method, args, authorization))
            self._changed.notify_all()
            failure = next((f for f in self._failures if f.method == method), None)
            if failure is not None:
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
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": BOT_ID, "team_id": TEAM}
        if method == "chat.postMessage":
            if self._is_too_long(args):
                return {"ok": False, "error": "msg_too_long"}
            ts = self._next_ts()
            self._remember_message(args, ts)
            return {"ok": True, "channel": args.get("channel"), "ts": ts}
        if method == "conversations.history":
            return self._conversation_history(args)
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
        return None

    def _remember_message(self, args: dict[str, Any], ts: str) -> None:
        if args.get("thread_ts"):
            return  # a reply: conversations.history lists only the channel's own messages
        message: dict[str, Any] = {"type": "message", "ts": ts, "text": args.get("text", "")}
        if args.get("metadata"):
            message["metadata"] = args["metadata"]
        with self._changed:
            self._history.setdefault(str(args.get("channel")), []).append((time.time(), message))

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

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._changed:
            file_id = f"F{len(self._upload_slots) + 1:08d}"
            self._upload_slots[file_id] = _UploadSlot(
                str(args.get("filename", "")), int(args.get("length", 0))
            )
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
        files = [{"id": entry.get("id"), "title": entry.get("title")} for entry in args["files"]]
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
        body = {
            "token": "legacy",
            "team_id": TEAM,
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        }
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
        return self.interaction(
            {
                "type": "block_actions",
                "user": {"id": user, "team_id": TEAM},
                "team": {"id": TEAM},
                "api_app_id": "A0APP",
                "token": "legacy",
                "trigger_id": "trigger-1",
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": self.channel,
                },
                "channel": {"id": self.channel},
                "message": {"ts": message_ts},
                "response_url": self.response_url,
                "actions": [clicked],
            }
        )

    def submit_view(self, user: str, view: dict[str, Any], values: dict[str, Any]) -> AppResponse:
        return self.interaction(
            {
                "type": "view_submission",
                "user": {"id": user, "team_id": TEAM},
                "team": {"id": TEAM},
                "api_app_id": "A0APP",
                "token": "legacy",
                "trigger_id": "trigger-2",
                "view": {**view, "id": "V0VIEW", "state": {"values": values}},
            }
        )

    def command(self, user: str, text: str) -> AppResponse:
        body = urlencode(
            {
                "token": "legacy",
                "team_id": TEAM,
                "channel_id": self.channel,
                "user_id": user,
                "command": "/desk",
                "text": text,
                "response_url": self.response_url,
                "trigger_id": "trigger-3",
            }
        )
        return self.post(body, "application/x-www-form-urlencoded")


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_TIMEOUT) -> None:
    """Poll `condition` until it holds; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


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
        client = WebClient(token=BOT_TOKEN, base_url=fake.api_url)
        self.messenger = SlackMessenger(client, CHANNEL, self.translator, blobs)
        self.dispatcher = Dispatcher(
            session_factory, [self.messenger], self.translator, directory, mail_sender, blobs
        )
        reply_settings = ReplySettings(
            blobs=blobs,
            support_address=OWN_ADDRESS,
            support_name="Example Support",
            own_addresses=frozenset({OWN_ADDRESS}),
        )
        self.app, self.desk = build_slack_app(
            SlackCredentials(BOT_TOKEN, SIGNING_SECRET),
            session_factory,
            directory,
            rules,
            reply_settings,
            wake or self._count_wake,
            api_url=fake.api_url,
        )
        self.server = SlackHttpServer(self.app, 0, host=HOST)
        self.server.start()
        self.requests = SlackRequests(
            f"http://{HOST}:{self.server.port}/slack/events", SIGNING_SECRET, fake.response_url()
        )

    def close(self) -> None:
        self.server.stop()
        self.desk.pending.close()
        self.desk.executor.shutdown(wait=True)

    def deliver(self) -> None:
        """Deliver the outbox until nothing more is due."""
        while self.dispatcher.deliver_pending():
            pass

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
