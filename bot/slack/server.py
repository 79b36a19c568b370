"""Serve the Slack app: over HTTP at /slack/events with /healthz beside it, or over Socket Mode.

HTTP mode uses the standard library's WSGI server with one thread per
request and bolt's WSGI adapter, so it needs no web framework. Bolt checks
each request's signature (X-Slack-Signature) and returns 401 for a bad one.
In Socket Mode the same server serves only /healthz.
"""

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from mailbridge.poller import backoff_delays

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
# How often the server thread checks for `stop`; it bounds how long stopping takes.
POLL_SECONDS = 0.1
# Connections the kernel queues before they are accepted; Linux caps it at net.core.somaxconn.
LISTEN_BACKLOG = 128
# A health check returns its details and whether the service is ready.
HealthCheck = Callable[[], tuple[bool, Mapping[str, object]]]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # The listen backlog. socketserver's default of 5 makes the kernel reset
    # connections when a burst of clicks arrives faster than they are accepted.
    request_queue_size = LISTEN_BACKLOG


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        logger.debug("http: " + format, *args)


def slack_wsgi_app(app: App | None, health: HealthCheck | None = None) -> "WSGIApplication":
    """Return a WSGI application serving Slack's requests and the health check.

    Without `app` (Socket Mode) every other path returns 404.
    """
    slack = SlackRequestHandler(app, path=EVENTS_PATH) if app is not None else None

    def application(environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") == "GET":
            ready, details = health() if health is not None else (True, {})
            body = json.dumps({"status": "ok" if ready else "starting", **details}).encode()
            status = "200 OK" if ready else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        if slack is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        return slack(environ, start_response)

    return application


class SlackHttpServer:
    """The HTTP endpoint of the Slack app, served by a background thread until `stop`."""

    def __init__(
        self,
        app: App | None,
        port: int,
        host: str = "0.0.0.0",
        health: HealthCheck | None = None,
    ) -> None:
        self._serves_events = app is not None
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
        paths = f"{EVENTS_PATH} and {HEALTH_PATH}" if self._serves_events else HEALTH_PATH
        logger.info("slack: serving %s on port %d", paths, self.port)

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


def confirm_token(
    client: WebClient,
    on_ready: Callable[[], None],
    stop: threading.Event,
    delays: Callable[[], Iterator[float]] = backoff_delays,
) -> None:
    """Call auth.test until it succeeds, then call `on_ready`; give up when `stop` is set.

    A failure (a wrong token, a network error, a rate limit) is logged and
    retried after a growing delay, because the token may be fixed or Slack
    may come back while the service runs.
    """
    retry_delays = delays()
    while not stop.is_set():
        try:
            answer = client.auth_test()
        except (SlackClientError, OSError) as error:
            delay = next(retry_delays)
            logger.warning(
                "slack: auth.test failed: %s; retrying in %.1f s", _describe(error), delay
            )
            stop.wait(delay)
            continue
        logger.info(
            "slack: auth.test passed for bot user %s in team %s",
            answer.get("user_id"),
            answer.get("team_id"),
        )
        on_ready()
        return


def _describe(error: Exception) -> str:
    """Return Slack's error code for an API error, else the error's text."""
    if isinstance(error, SlackApiError) and error.response is not None:
        return f"{error.response.get('error')} (HTTP {error.response.status_code})"
    return str(error) or type(error).__name__
