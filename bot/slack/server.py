"""Serve the Slack app: over HTTP at /slack/events with /healthz beside it, or over Socket Mode.

HTTP mode uses the standard library's WSGI server with one thread per
request and bolt's WSGI adapter, so it needs no web framework. Bolt checks
each request's signature (X-Slack-Signature) and returns 401 for a bad one.
"""

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# How often the server thread checks for `stop`; it bounds how long stopping takes.
POLL_SECONDS = 0.1
# A health check returns its details and whether the service is ready.
HealthCheck = Callable[[], tuple[bool, Mapping[str, object]]]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        logger.debug("http: " + format, *args)


def slack_wsgi_app(app: App, health: HealthCheck | None = None) -> "WSGIApplication":
    """Return a WSGI application serving Slack's requests and the health check."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") == "GET":
            ready, details = health() if health is not None else (True, {})
            body = json.dumps({"status": "ok" if ready else "starting", **details}).encode()
            status = "200 OK" if ready else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        return slack(environ, start_response)

    return application


class SlackHttpServer:
    """The HTTP endpoint of the Slack app, served by a background thread until `stop`."""

    def __init__(
        self, app: App, port: int, host: str = "0.0.0.0", health: HealthCheck | None = None
    ) -> None:
        self._server = make_server(
            host,
            port,
            slack_wsgi_app(app, health),
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_SECONDS,), name="slack-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info("slack: serving %s and %s on port %d", EVENTS_PATH, HEALTH_PATH, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        logger.info("slack: HTTP server on port %d stopped", self.port)


def start_socket_mode(app: App, app_token: str) -> SocketModeHandler:
    """Connect to Slack over Socket Mode in the background; call `close()` on the result to stop."""
    handler = SocketModeHandler(app, app_token, web_client=app.client)
    handler.connect()  # type: ignore[no-untyped-call]
    logger.info("slack: connected over Socket Mode")
    return handler
