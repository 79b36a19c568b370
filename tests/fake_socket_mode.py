"""A fake Slack Socket Mode end for tests: a websocket server on 127.0.0.1 that sends envelopes.

Slack's Socket Mode works the other way round from HTTP: the app calls
apps.connections.open with its app-level token, connects to the ws URL it
gets, receives a `hello`, and then each request comes as a JSON envelope
({envelope_id, type, payload, accepts_response_payload}). The app
acknowledges an envelope by sending back {"envelope_id": ...}, with a
`payload` when its listener returned a body. This server uses the
`websockets` package's threaded server; `send` delivers an envelope to the
connected app and `wait_for_ack` returns the app's acknowledgement.
"""

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

HOST = "127.0.0.1"
WAIT_TIMEOUT = 10.0
TICKET = "fake-ticket"
# How long `close` waits for the server thread once the server is shut down.
CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Envelope:
    """One request sent to the app: its id, its type and what the app acknowledged."""

    envelope_id: str
    kind: str
    payload: dict[str, Any]


class FakeSocketMode:
    """A Socket Mode server for one app at a time; use it as a context manager."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._connections: list[ServerConnection] = []
        self._acks: dict[str, dict[str, Any]] = {}
        self._received: list[Any] = []
        self._paths: list[str] = []
        self._numbers = itertools.count(1)
        # The server replies to the client's keepalive pings and sends none of its own.
        self._server: Server = serve(self._serve_connection, HOST, 0, ping_interval=None)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-socket-mode", daemon=True
        )

    def __enter__(self) -> "FakeSocketMode":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection, stop accepting new ones and wait for the server's threads."""
        self._server.shutdown()
        self._thread.join(CLOSE_TIMEOUT)
        if self._thread.is_alive():
            raise AssertionError(f"the fake Socket Mode server did not stop in {CLOSE_TIMEOUT} s")

    @property
    def url(self) -> str:
        port = self._server.socket.getsockname()[1]
        return f"ws://{HOST}:{port}/link/?ticket={TICKET}&app_id=A0APP"

    def paths(self) -> list[str]:
        """Return the request path of every connection the app opened, in order."""
        with self._changed:
            return list(self._paths)

    def received(self) -> list[Any]:
        """Return every message the app sent, parsed from JSON, in order."""
        with self._changed:
            return list(self._received)

    def wait_connected(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until an app is connected and has been sent `hello`; fail the test on timeout."""
        self._wait(lambda: bool(self._connections), timeout, "no app connected")

    def wait_disconnected(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until no app is connected; fail the test on timeout."""
        self._wait(lambda: not self._connections, timeout, "the app is still connected")

    def send(
        self, kind: str, payload: dict[str, Any], accepts_response_payload: bool = False
    ) -> Envelope:
        """Send an envelope of `kind` (events_api, interactive, slash_commands) to the app."""
        envelope_id = f"env-{next(self._numbers):04d}"
        message = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            message.update(retry_attempt=0, retry_reason="")
        with self._changed:
            connection = self._connections[-1]
        connection.send(json.dumps(message))
        return Envelope(envelope_id, kind, payload)

    def wait_for_ack(self, envelope: Envelope, timeout: float = WAIT_TIMEOUT) -> dict[str, Any]:
        """Return the app's acknowledgement of `envelope`; fail the test on timeout."""
        self._wait(
            lambda: envelope.envelope_id in self._acks,
            timeout,
            f"no acknowledgement of {envelope.kind} envelope {envelope.envelope_id}",
        )
        with self._changed:
            return self._acks[envelope.envelope_id]

    def _serve_connection(self, connection: ServerConnection) -> None:
        connection.send(json.dumps(_hello()))
        with self._changed:
            self._paths.append(connection.request.path if connection.request else "")
            self._connections.append(connection)
            self._changed.notify_all()
        try:
            for raw in connection:
                self._record(raw)
        except ConnectionClosed:
            pass  # the app went away without a closing handshake
        finally:
            with self._changed:
                self._connections.remove(connection)
                self._changed.notify_all()

    def _record(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        with self._changed:
            self._received.append(message)
            if isinstance(message, dict) and "envelope_id" in message:
                self._acks[str(message["envelope_id"])] = message
            self._changed.notify_all()

    def _wait(self, condition: Callable[[], bool], timeout: float, failure: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{failure} within {timeout} s")
                self._changed.wait(remaining)


def _hello() -> dict[str, Any]:
    """Return the first message Slack sends on a new Socket Mode connection."""
    return {
        "type": "hello",
        "num_connections": 1,
        "debug_info": {"host": "fake-socket-mode", "approximate_connection_time": 3600},
        "connection_info": {"app_id": "A0APP"},
    }
