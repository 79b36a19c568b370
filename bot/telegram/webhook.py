"""Receive Telegram's updates over HTTPS (webhook mode), checking Telegram's secret token.

Telegram sends every update as a POST with the header
X-Telegram-Bot-Api-Secret-Token set to the secret given to setWebhook. A
request without that exact header is refused with 403 and never read as an
update. The server listens on plain HTTP: TLS ends at the proxy in front of it.
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
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_UPDATE_BYTES:
                self._answer(400)
                return
            try:
                update = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400)
                return
            if not isinstance(update, dict):
                self._answer(400)
                return
            server._receive(update)
            self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
