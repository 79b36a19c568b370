"""Receive Telegram's updates over HTTPS (webhook mode), checking Telegram's secret token.

Telegram sends every update as a POST with the header
X-Telegram-Bot-Api-Secret-Token set to the secret given to setWebhook. A
request without that exact header is refused with 403 and never read as an
update. The server listens on plain HTTP: TLS ends at the proxy in front of it.
A request that is not a readable update (no or a wrong Content-Length, a
body that is not JSON, an update the library cannot read) gets status 400
and one log line.
"""

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024

Receive = Callable[[dict[str, object]], None]


class MalformedUpdate(ValueError):
    """A request with the right secret whose body is not an update the bot can read."""


class WebhookServer:
    """An HTTP server that hands each update with the right secret to `receive`."""

    def __init__(self, host: str, port: int, path: str, secret: str, receive: Receive) -> None:
        self.path = path or "/"
        self._secret = secret.encode()
        self._receive = receive
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.2,), name="telegram-webhook", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("telegram: webhook served on port %d at %s", self.port, self.path)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    def is_authentic(self, header: str | None) -> bool:
        return header is not None and hmac.compare_digest(header.encode(), self._secret)


def _handler_class(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != server.path:
                self._answer(404)
                return
            if not server.is_authentic(self.headers.get(SECRET_HEADER)):
                logger.warning(
                    "telegram: webhook request with a missing or invalid secret token rejected"
                )
                self._answer(403)
                return
            raw_length = self.headers.get("Content-Length") or "0"
            length = _content_length(raw_length)
            if length <= 0 or length > MAX_UPDATE_BYTES:
                self._reject(f"Content-Length {raw_length[:40]!r} is not 1..{MAX_UPDATE_BYTES}")
                return
            try:
                update = json.loads(self.rfile.read(length))
            except ValueError as error:
                self._reject(f"the body is not JSON: {error}")
                return
            if not isinstance(update, dict):
                self._reject(f"the body is a JSON {type(update).__name__}, not an object")
                return
            try:
                server._receive(update)
            except MalformedUpdate as error:
                self._reject(f"not a readable update: {error}")
                return
            self._answer(200)

        def _reject(self, reason: str) -> None:
            one_line = " ".join(reason.split())
            logger.warning("telegram: webhook request rejected with 400: %s", one_line[:300])
            self._answer(400)
            # What was not read of the body must not be taken for the next request.
            self.close_connection = True

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _content_length(raw: str) -> int:
    """Read a Content-Length header; -1 when it is not a plain decimal number."""
    value = raw.strip()
    return int(value) if value.isascii() and value.isdigit() else -1
