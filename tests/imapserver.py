"""A real pymap IMAP server on 127.0.0.1 for tests, run in a background thread.

The server keeps its mailboxes (pymap's in-memory `dict` backend) across
`drop()` and `resume()`, so a test can cut every connection, bring the
listener back on the same port and find the same mail. It records each
command line a client sends, which lets a test prove what was fetched.
"""

import asyncio
import contextlib
import ssl
import threading
import uuid
from argparse import Namespace
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from imapclient import IMAPClient
from proxyprotocol.sock import SocketInfo
from pymap.backend.dict import Config, DictBackend, Login
from pymap.concurrent import Subsystem
from pymap.context import connection_exit
from pymap.imap import IMAPConnection
from pymap.imap.state import ConnectionState
from pysasl.hashing import BuiltinHash

USER = "support@example.com"
PASSWORD = "s3cret-test-password"
HOST = "127.0.0.1"
# How long a test waits for the server thread to complete a control request.
CONTROL_TIMEOUT = 10.0

_Result = TypeVar("_Result")


class _QuietConfig(Config):
    """The dict backend's settings with a fixed greeting.

    pymap's own greeting calls socket.getfqdn(), which may ask a DNS server.
    """

    @property
    def greeting(self) -> bytes:
        return b"pymap test server ready"


class _RecordingConnection(IMAPConnection):
    """A pymap connection that hands every command line it reads to a recorder."""

    recorder: Callable[[bytes], None] = staticmethod(lambda line: None)

    async def readline(self) -> memoryview:
        line = await super().readline()
        self.recorder(bytes(line))
        return line


@dataclass
class TlsFiles:
    """A throwaway certificate authority and a server certificate for 127.0.0.1."""

    ca_file: Path
    cert_file: Path
    key_file: Path


class PymapServer:
    """A pymap server with one user, listening on 127.0.0.1.

    `tls` is "none" (plain IMAP, LOGIN allowed), "starttls" (plain port, LOGIN
    only after STARTTLS) or "implicit" (TLS from the first byte, as on port
    993). pymap itself offers only STARTTLS, so implicit TLS is done here by
    the listening socket.
    """

    def __init__(self, *, tls: str = "none", tls_files: TlsFiles | None = None) -> None:
        if tls != "none" and tls_files is None:
            raise ValueError(f"tls={tls!r} needs tls_files")
        self.tls = tls
        self.tls_files = tls_files
        self.port = 0
        self.commands: list[str] = []
        self._commands_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._backend: DictBackend | None = None
        self._config: _QuietConfig | None = None

    # -- lifecycle, called from the test thread --

    def start(self) -> None:
        self._thread.start()
        self._call(self._init_backend())
        self._call(self._listen())

    def drop(self) -> None:
        """Stop listening and cut every open connection, keeping the mail."""
        self._call(self._drop())

    def resume(self) -> None:
        """Listen again on the same port."""
        self._call(self._listen())

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._drop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CONTROL_TIMEOUT)
        self._loop.close()

    # -- what tests use --

    def url(self, folder: str = "INBOX", *, scheme: str | None = None) -> str:
        chosen = scheme or ("imaps" if self.tls == "implicit" else "imap")
        return f"{chosen}://{USER.replace('@', '%40')}@{HOST}:{self.port}/{folder}"

    def client(self) -> IMAPClient:
        """Return a logged-in client for setting up mail, separate from the source under test."""
        if self.tls == "implicit":
            client = IMAPClient(HOST, self.port, ssl=True, ssl_context=self._client_context())
        else:
            client = IMAPClient(HOST, self.port, ssl=False)
            if self.tls == "starttls":
                client.starttls(self._client_context())
        client.login(USER, PASSWORD)
        return client

    def append(
        self,
        raw: bytes,
        *,
        folder: str = "INBOX",
        internaldate: datetime | None = None,
        flags: tuple[str, ...] = (),
    ) -> None:
        with self.client() as client:
            client.append(folder, raw, flags=flags, msg_time=internaldate)
            client.logout()

    def recreate_folder(self, folder: str) -> None:
        """Delete and create `folder` again, which gives it a new UIDVALIDITY."""
        with self.client() as client:
            if client.folder_exists(folder):
                client.delete_folder(folder)
            client.create_folder(folder)
            client.logout()

    def commands_matching(self, word: str) -> list[str]:
        with self._commands_lock:
            return [line for line in self.commands if word.upper() in line.upper()]

    # -- the server thread --

    def _call(self, coroutine: Awaitable[_Result]) -> _Result:
        future: Future[_Result] = asyncio.run_coroutine_threadsafe(
            _as_coroutine(coroutine), self._loop
        )
        return future.result(CONTROL_TIMEOUT)

    async def _init_backend(self) -> None:
        args = Namespace(
            host=HOST,
            port=0,
            debug=False,
            cert=None,
            key=None,
            tls=self.tls == "starttls",
            demo_data=False,
            demo_user=USER,
            demo_password=PASSWORD,
            passlib_cfg=None,
            proxy_protocol=None,
            inherited_sockets=None,
        )
        overrides: dict[str, Any] = {
            "invalid_user_sleep": 0.0,
            "cpu_subsystem": Subsystem.for_asyncio(),
            # pysasl's default of 500,000 PBKDF2 rounds makes every LOGIN slow.
            "hash_context": BuiltinHash(rounds=1000),
        }
        if self.tls == "starttls":
            overrides["ssl_context"] = self._server_context()
        config = _QuietConfig.from_args(args, **overrides)
        config.apply_context()
        login = Login(config)
        await DictBackend._add_demo_user(config, login)
        self._config = config
        self._backend = DictBackend(login, config)

    async def _listen(self) -> None:
        ssl_context = self._server_context() if self.tls == "implicit" else None
        self._server = await asyncio.start_server(
            self._serve, host=HOST, port=self.port, ssl=ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _drop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._backend is not None and self._config is not None
        self._config.apply_context()
        self._writers.add(writer)
        connection = _RecordingConnection(
            self._config.commands,
            self._config,
            reader,
            writer,
            SocketInfo.get(writer, None, unique_id=uuid.uuid4().bytes),
        )
        connection.recorder = self._record
        state = ConnectionState(self._backend.login, self._config)
        try:
            async with contextlib.AsyncExitStack() as stack:
                connection_exit.set(stack)
                stack.enter_context(contextlib.closing(connection))
                await connection.run(state)
        except (ConnectionError, ssl.SSLError, EOFError):
            pass
        finally:
            self._writers.discard(writer)

    def _record(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        with self._commands_lock:
            self.commands.append(text)

    def _server_context(self) -> ssl.SSLContext:
        assert self.tls_files is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_files.cert_file, self.tls_files.key_file)
        return context

    def _client_context(self) -> ssl.SSLContext:
        assert self.tls_files is not None
        return ssl.create_default_context(cafile=str(self.tls_files.ca_file))


async def _as_coroutine(awaitable: Awaitable[_Result]) -> _Result:
    return await awaitable


def make_tls_files(folder: Path) -> TlsFiles:
    """Write a throwaway CA and a certificate for 127.0.0.1 signed by it into `folder`."""
    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert(HOST, "localhost")
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    authority.cert_pem.write_to_path(str(files.ca_file))
    certificate.cert_chain_pems[0].write_to_path(str(files.cert_file))
    certificate.private_key_pem.write_to_path(str(files.key_file))
    return files


@contextlib.contextmanager
def running_server(**options: Any) -> Iterator[PymapServer]:
    server = PymapServer(**options)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def imap_server() -> Iterator[PymapServer]:
    """A plain-IMAP pymap server with one empty INBOX."""
    with running_server() as server:
        yield server


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path)
