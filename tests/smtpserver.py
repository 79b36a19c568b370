"""A real aiosmtpd SMTP server on 127.0.0.1 for tests, run on its own event loop in a thread.

It speaks plain SMTP, STARTTLS or implicit TLS, can require AUTH, records every
message with its envelope, and can reply to the next MAIL, RCPT or DATA command
with a chosen reply such as 421, 451 or 550.
"""

import asyncio
import contextlib
import email
import email.policy
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"
MODES = ("plain", "starttls", "tls")
FAILABLE_COMMANDS = ("MAIL", "RCPT", "DATA")
# How long a test waits for the server thread to start, stop or receive mail.
WAIT_TIMEOUT = 10.0


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted, with its envelope and how the session was secured."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    login: str | None

    def parsed(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@dataclass
class _Failure:
    command: str
    reply: str
    recipient: str | None


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 and a free port; use it as a context manager.

    `mode` is "plain", "starttls" (offered, not required) or "tls" (implicit).
    `certificate` is a trustme leaf certificate, needed by both TLS modes. With
    `users`, AUTH is required before MAIL; over plain SMTP aiosmtpd then offers
    no AUTH at all, as a careful server would.
    """

    def __init__(
        self,
        mode: str = "plain",
        *,
        certificate: trustme.LeafCert | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        if mode != "plain" and certificate is None:
            raise ValueError(f"mode {mode!r} needs a certificate")
        self.mode = mode
        self.users = dict(users or {})
        self.port = 0
        self._tls_context = _server_context(certificate) if certificate else None
        self._messages: list[ReceivedMessage] = []
        self._failures: list[_Failure] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def __enter__(self) -> "SmtpServer":
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=WAIT_TIMEOUT)
        return self

    def __exit__(self, *exc_info: object) -> None:
        future = asyncio.run_coroutine_threadsafe(self._stop(), self._loop)
        future.result(timeout=WAIT_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=WAIT_TIMEOUT)
        self._loop.close()

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._changed:
            return list(self._messages)

    def fail_next(self, command: str, reply: str, *, recipient: str | None = None) -> None:
        """Reply to the next `command` (MAIL, RCPT or DATA) with `reply`, e.g. "451 4.3.0 busy".

        With `recipient`, only the next RCPT for that address fails. A 421 reply
        also closes the connection, as RFC 5321 section 3.8 describes.
        """
        if command not in FAILABLE_COMMANDS:
            raise ValueError(f"cannot fail {command!r}; expected one of {FAILABLE_COMMANDS}")
        with self._changed:
            self._failures.append(_Failure(command, reply, recipient))

    def wait_for_messages(self, count: int, timeout: float = WAIT_TIMEOUT) -> list[ReceivedMessage]:
        """Return the recorded messages once there are `count`; fail the test on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"the SMTP server received {len(self._messages)} of {count} messages "
                        f"within {timeout} s"
                    )
                self._changed.wait(remaining)
            return list(self._messages)

    async def _start(self) -> None:
        implicit_tls = self._tls_context if self.mode == "tls" else None
        self._server = await self._loop.create_server(self._protocol, HOST, 0, ssl=implicit_tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():
            # aiosmtpd warns about AUTH without STARTTLS, not knowing about implicit TLS.
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return self._new_protocol()

    def _new_protocol(self) -> SMTP:
        return SMTP(
            _Handler(self),
            hostname="smtp.test",
            tls_context=self._tls_context if self.mode == "starttls" else None,
            authenticator=self._authenticate if self.users else None,
            auth_required=bool(self.users),
            # aiosmtpd only counts STARTTLS as TLS, so implicit TLS must allow AUTH itself.
            auth_require_tls=self.mode != "tls",
            loop=self._loop,
        )

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = data.login.decode("utf-8")
        if self.users.get(login) != data.password.decode("utf-8"):
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=login)

    def _take_failure(self, command: str, recipient: str | None = None) -> str | None:
        with self._changed:
            for failure in self._failures:
                if failure.command != command:
                    continue
                if failure.recipient is not None and failure.recipient != recipient:
                    continue
                self._failures.remove(failure)
                return failure.reply
        return None

    def _record(self, message: ReceivedMessage) -> None:
        with self._changed:
            self._messages.append(message)
            self._changed.notify_all()


class _Handler:
    """aiosmtpd handler hooks that apply the queued failures and record accepted mail."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        failure = self._failure(server, "MAIL")
        if failure:
            return failure
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        failure = self._failure(server, "RCPT", address)
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self._failure(server, "DATA")
        if failure:
            return failure
        assert envelope.mail_from is not None
        assert envelope.original_content is not None
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        self.owner._record(
            ReceivedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=envelope.original_content,
                tls=ssl_object is not None,
                login=session.auth_data if isinstance(session.auth_data, str) else None,
            )
        )
        return "250 2.0.0 OK: queued"

    def _failure(self, server: SMTP, command: str, recipient: str | None = None) -> str | None:
        reply = self.owner._take_failure(command, recipient)
        if reply and reply.startswith("421") and server.transport is not None:
            # Runs after aiosmtpd has written the reply, which close() still flushes.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return reply


def _server_context(certificate: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    return context


def closed_port() -> int:
    """Return a 127.0.0.1 port that was just bound and released, so nothing listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Yield the port of a 127.0.0.1 socket that accepts connections but never greets."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((HOST, 0))
        listener.listen(4)
        port: int = listener.getsockname()[1]
        yield port
