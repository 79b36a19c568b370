"""The IMAP folder mail source: new UIDs above a watermark that survives restarts and migrations."""

import ipaddress
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError
from sqlalchemy.orm import Session, sessionmaker

from mailbridge.errors import MailSourceError
from mailbridge.imap_fetch import fetch_partial, parse_bodystructure
from mailbridge.message import ParseNote
from mailbridge.sources import IncomingMail, MailboxPosition
from store.mailboxes import load_state, reset_uidvalidity, start_mailbox

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"imap": 143, "imaps": 993}
DEFAULT_FOLDER = "INBOX"
CONNECT_TIMEOUT = 30.0
READ_TIMEOUT = 120.0
# RFC 2177 section 3: servers may drop a client idle for 30 minutes, so IDLE
# is renewed before that.
IDLE_RENEW_SECONDS = 28 * 60
# How often a waiting IDLE looks at the stop event; this bounds how late
# stop() takes effect.
IDLE_CHECK_SLICE = 0.5
# After a UIDVALIDITY change, mail that arrived this long before the last
# recorded activity is still taken, because SEARCH SINCE compares dates only
# and in the server's time zone (RFC 3501 section 6.4.4).
UIDVALIDITY_CHANGE_MARGIN = timedelta(days=1)
# Errors that mean the connection is unusable: socket and TLS failures, and
# imapclient's errors, which include the server's BYE and protocol aborts.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, IMAPClientError, EOFError)

_Result = TypeVar("_Result")


@dataclass(frozen=True)
class ImapUrl:
    """The parts of an `imap://` or `imaps://` mailbox URL; the password is never part of it."""

    scheme: str
    host: str
    port: int
    user: str
    folder: str

    @property
    def implicit_tls(self) -> bool:
        return self.scheme == "imaps"

    def redacted(self) -> str:
        """Return the URL without a password, in a stable form fit to name the mailbox."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == DEFAULT_PORTS[self.scheme] else f":{self.port}"
        user = quote(self.user, safe="")
        return f"{self.scheme}://{user}@{host}{port}/{quote(self.folder, safe='')}"


def parse_imap_url(url: str) -> ImapUrl:
    """Parse `imaps://user%40example.com@host[:port]/FOLDER`; raise ValueError naming the fault.

    Error messages never repeat the URL, because it may carry a password.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS:
        raise ValueError(
            f"invalid IMAP URL: scheme {parts.scheme!r} is not supported; use imaps:// or imap://"
        )
    if parts.password is not None:
        raise ValueError(
            "invalid IMAP URL: it contains a password; remove it and set "
            "THREADDESK_IMAP_PASSWORD instead"
        )
    if not parts.username:
        raise ValueError(
            "invalid IMAP URL: the user name is missing; write it before the host, "
            "with @ in it as %40 (imaps://support%40example.com@imap.example.com/INBOX)"
        )
    if not parts.hostname:
        raise ValueError("invalid IMAP URL: the host is missing")
    if parts.query or parts.fragment:
        raise ValueError("invalid IMAP URL: a query (?...) or fragment (#...) is not allowed")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError("invalid IMAP URL: the port is not a number from 1 to 65535") from None
    folder = unquote(parts.path.lstrip("/")) or DEFAULT_FOLDER
    return ImapUrl(parts.scheme, parts.hostname, port, unquote(parts.username), folder)


@dataclass(frozen=True)
class SelectedFolder:
    """The folder's state as SELECT reported it."""

    uidvalidity: int
    uidnext: int | None
    allows_keywords: bool
    permanent_flags: frozenset[str]
    exists: int = 0


class ImapSource:
    """New mail of one IMAP folder, above a UID watermark kept in the database.

    `name` is the redacted URL and is the key of the folder's MailboxState.
    Messages are read with BODY.PEEK and never judged by \\Seen, so a person
    reading the mailbox does not make mail disappear from intake.
    """

    def __init__(
        self,
        url: str,
        password: str,
        session_factory: sessionmaker[Session],
        *,
        max_message_bytes: int,
        ca_file: str | None = None,
        poll_interval: float = 60,
        flag: str = "$Threaddesk",
    ) -> None:
        self.url = parse_imap_url(url)
        self.name = self.url.redacted()
        self._password = password
        self._session_factory = session_factory
        self.max_message_bytes = max_message_bytes
        self.ca_file = ca_file
        self.poll_interval = poll_interval
        self.flag = flag
        self._client: IMAPClient | None = None
        self._selected: SelectedFolder | None = None
        # The UIDVALIDITY and UIDNEXT of the last fetch_new that ran to its
        # end: every UID below that UIDNEXT has been considered.
        self._considered: tuple[int, int | None] | None = None
        self._idle_logged_for: IMAPClient | None = None
        self._stop = threading.Event()

    # -- MailSource --

    def fetch_new(self) -> Iterator[IncomingMail]:
        """Yield the folder's new messages, oldest first.

        Raises MailSourceError when the connection fails.
        """
        selected = self._guarded("SELECT", self._select)
        for uid in self._uids_to_fetch(selected):
            mail = self._guarded(f"FETCH UID {uid}", partial(self._fetch_one, uid, selected))
            if mail is not None:
                yield mail
        self._considered = (selected.uidvalidity, selected.uidnext)

    def acknowledge(self, mail: IncomingMail) -> None:
        """Flag the message on the server; a failure is logged and otherwise ignored.

        By now the watermark and the identity key of the stored message stop
        a second ticket, so the flag is only a courtesy to people reading the
        mailbox.
        """
        position = mail.position
        if position is None or position.mailbox != self.name:
            return
        try:
            selected = self._selected or self._select()
            if selected.uidvalidity != position.uidvalidity:
                logger.info(
                    "mailbox %s: UID %d not flagged: UIDVALIDITY is now %d, not %d",
                    self.name,
                    position.uid,
                    selected.uidvalidity,
                    position.uidvalidity,
                )
                return
            flag = self._acknowledge_flag(selected)
            assert self._client is not None
            self._client.add_flags([position.uid], [flag], silent=True)
        except CONNECTION_ERRORS as error:
            self._drop_connection()
            logger.warning(
                "mailbox %s: flagging UID %d failed: %s", self.name, position.uid, _describe(error)
            )

    def wait_for_mail(self, timeout: float) -> None:
        """Wait with IDLE (RFC 2177) when the server offers it, else sleep up to `poll_interval`.

        Returns early when stop() is called. Raises MailSourceError when the
        connection fails.
        """
        if self._stop.is_set():
            return
        deadline = time.monotonic() + timeout
        if self._guarded("SEARCH", self._has_unconsidered_mail):
            return
        uses_idle = self._guarded("CAPABILITY", self._supports_idle)
        if not uses_idle:
            self._stop.wait(min(timeout, self.poll_interval))
            return
        self._guarded("IDLE", lambda: self._idle_until(deadline))

    def stop(self) -> None:
        """Make a running or later wait_for_mail return promptly."""
        self._stop.set()

    def close(self) -> None:
        client = self._client
        self._client = None
        self._selected = None
        if client is None:
            return
        try:
            client.logout()
        except CONNECTION_ERRORS as error:
            logger.debug("mailbox %s: LOGOUT failed: %s", self.name, _describe(error))
            _shutdown_quietly(client)

    # -- connection --

    def _guarded(self, action: str, step: Callable[[], _Result]) -> _Result:
        try:
            return step()
        except CONNECTION_ERRORS as error:
            self._drop_connection()
            raise MailSourceError(
                f"mailbox {self.name}: {action} failed: {_describe(error)}"
            ) from error

    def _connection(self) -> IMAPClient:
        if self._client is None:
            self._client = self._connect()
            self._idle_logged_for = None
        return self._client

    def _connect(self) -> IMAPClient:
        context = self._ssl_context()
        client = IMAPClient(
            self.url.host,
            self.url.port,
            ssl=self.url.implicit_tls,
            ssl_context=context,
            timeout=SocketTimeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        )
        try:
            self._secure_and_login(client, context)
        except BaseException:
            _shutdown_quietly(client)
            raise
        client.normalise_times = False
        logger.info("mailbox %s: connected", self.name)
        return client

    def _secure_and_login(self, client: IMAPClient, context: ssl.SSLContext) -> None:
        if not self.url.implicit_tls:
            if b"STARTTLS" in client.capabilities():
                client.starttls(context)
            elif _is_loopback(self.url.host):
                logger.warning(
                    "mailbox %s: the server offers no STARTTLS; logging in without TLS "
                    "because it is on this machine",
                    self.name,
                )
            else:
                # Anyone on the path could read a password sent in clear text, so
                # a remote server without STARTTLS is refused rather than trusted.
                raise ssl.SSLError(
                    f"the server offers no STARTTLS, and the password is not sent in clear "
                    f"text to {self.url.host}; use imaps:// or enable STARTTLS on the server"
                )
        client.login(self.url.user, self._password)

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return context

    def _drop_connection(self) -> None:
        client = self._client
        self._client = None
        self._selected = None
        if client is not None:
            _shutdown_quietly(client)

    def _select(self) -> SelectedFolder:
        client = self._connection()
        response = client.select_folder(self.url.folder, readonly=False)
        permanent_flags = frozenset(_text(flag) for flag in response.get(b"PERMANENTFLAGS", ()))
        uidnext = response.get(b"UIDNEXT")
        self._selected = SelectedFolder(
            uidvalidity=int(response[b"UIDVALIDITY"]),
            uidnext=int(uidnext) if uidnext is not None else None,
            allows_keywords="\\*" in permanent_flags,
            permanent_flags=permanent_flags,
            exists=int(response.get(b"EXISTS", 0)),
        )
        return self._selected

    # -- which UIDs --

    def _uids_to_fetch(self, selected: SelectedFolder) -> list[int]:
        with self._session_factory() as session:
            state = load_state(session, self.name)
        if state is None or state.uidvalidity is None:
            self._start(selected)
            return []
        if state.uidvalidity == selected.uidvalidity:
            return self._uids_above(selected, state.last_uid)
        return self._uids_after_uidvalidity_change(selected, state.uidvalidity, state.updated_at)

    def _start(self, selected: SelectedFolder) -> None:
        """Record the first connection: mail already in the folder is not taken."""
        last_uid = self._guarded("SEARCH", lambda: self._highest_uid(selected))
        with self._session_factory.begin() as session:
            start_mailbox(session, self.name, selected.uidvalidity, last_uid)
        logger.info(
            "mailbox %s: first connection; mail up to UID %d stays untouched", self.name, last_uid
        )

    def _highest_uid(self, selected: SelectedFolder) -> int:
        if selected.uidnext is not None:
            return selected.uidnext - 1
        uids = self._connection().search(["ALL"])
        return max(uids, default=0)

    def _uids_above(self, selected: SelectedFolder, last_uid: int) -> list[int]:
        if selected.uidnext is not None and selected.uidnext <= last_uid + 1:
            return []
        found = self._guarded(
            "SEARCH", lambda: self._connection().search(["UID", f"{last_uid + 1}:*"])
        )
        # "N:*" always matches the highest UID, even one at or below N (RFC 3501 section 6.4.8).
        return sorted(uid for uid in found if uid > last_uid)

    def _uids_after_uidvalidity_change(
        self, selected: SelectedFolder, stored_uidvalidity: int, updated_at: datetime
    ) -> list[int]:
        since = (updated_at - UIDVALIDITY_CHANGE_MARGIN).date()
        found = self._guarded("SEARCH", lambda: self._search_since(since))
        uids = sorted(found)
        # The new watermark sits just below the first candidate, so a crash
        # before the candidates are stored takes them again instead of the
        # whole folder.
        # NOTE: after such a crash, an older message whose UID lies between
        # two candidates is taken too. Intake's identity key stops a
        # duplicate, but a message that never was a ticket becomes one.
        if uids:
            watermark = uids[0] - 1
        else:
            watermark = self._guarded("SEARCH", lambda: self._highest_uid(selected))
        logger.warning(
            "mailbox %s: UIDVALIDITY changed from %d to %d; taking %d messages since %s",
            self.name,
            stored_uidvalidity,
            selected.uidvalidity,
            len(uids),
            since.isoformat(),
        )
        with self._session_factory.begin() as session:
            reset_uidvalidity(session, self.name, selected.uidvalidity, watermark)
        return uids

    def _search_since(self, since: date) -> list[int]:
        found: list[int] = self._connection().search(["SINCE", since])
        return found

    # -- one message --

    def _fetch_one(self, uid: int, selected: SelectedFolder) -> IncomingMail | None:
        client = self._connection()
        response = client.fetch([uid], ["RFC822.SIZE", "INTERNALDATE", "BODYSTRUCTURE", "FLAGS"])
        data = response.get(uid)
        if data is None:
            logger.info("mailbox %s: UID %d was expunged before it was fetched", self.name, uid)
            return None

        size = int(data.get(b"RFC822.SIZE") or 0)
        flags = {_text(flag) for flag in data.get(b"FLAGS", ())}
        if self.flag in flags:
            logger.info(
                "mailbox %s: UID %d already carries %s; intake will find it stored",
                self.name,
                uid,
                self.flag,
            )
        mail = IncomingMail(
            raw=b"",
            mailbox=self.name,
            received_at=_as_utc(data.get(b"INTERNALDATE")),
            position=MailboxPosition(self.name, selected.uidvalidity, uid),
            source_ref=f"uid {uid}",
        )
        if size > self.max_message_bytes:
            self._fill_partial(mail, client, uid, size, data[b"BODYSTRUCTURE"])
        else:
            mail.raw = self._fetch_whole(client, uid)
        return mail

    def _fetch_whole(self, client: IMAPClient, uid: int) -> bytes:
        response = client.fetch([uid], ["BODY.PEEK[]"])
        raw: bytes = response.get(uid, {}).get(b"BODY[]") or b""
        return raw

    def _fill_partial(
        self, mail: IncomingMail, client: IMAPClient, uid: int, size: int, bodystructure: Any
    ) -> None:
        root = parse_bodystructure(bodystructure)
        mail.raw, mail.omitted_parts = fetch_partial(client, uid, root, self.max_message_bytes)
        mail.notes.append(
            ParseNote(
                "message-too-large",
                {"size": size, "max_message_bytes": self.max_message_bytes, "uid": uid},
            )
        )
        logger.info(
            "mailbox %s: UID %d has %d bytes, over %d; fetched its header and text parts, "
            "left %d parts on the server",
            self.name,
            uid,
            size,
            self.max_message_bytes,
            len(mail.omitted_parts),
        )

    # -- acknowledge and wait --

    def _acknowledge_flag(self, selected: SelectedFolder) -> str:
        if selected.allows_keywords or self.flag in selected.permanent_flags:
            return self.flag
        return "\\Seen"

    def _has_unconsidered_mail(self) -> bool:
        """Check for mail that arrived after the last fetch_new but before IDLE starts.

        Such mail may have been announced by an EXISTS response to an earlier
        command, and IDLE would not announce it again.
        """
        selected = self._selected or self._select()
        if self._considered is None:
            return False
        # A server may announce new mail with an untagged EXISTS on any command
        # (SELECT, SEARCH, STORE), and then not again during IDLE. Such
        # announcements wait in the connection, and NOOP collects new ones.
        if _take_exists_announcement(self._connection(), selected.exists):
            return True
        _, responses = self._connection().noop()
        if _announces_mail(responses):
            return True
        uidvalidity, uidnext = self._considered
        if selected.uidvalidity != uidvalidity:
            return True
        if uidnext is None:
            # Some servers (pymap among them) send no UIDNEXT on SELECT; the stored
            # watermark gives the highest UID already taken.
            with self._session_factory() as session:
                state = load_state(session, self.name)
            uidnext = (state.last_uid if state is not None else 0) + 1
        found = self._connection().search(["UID", f"{uidnext}:*"])
        return any(uid >= uidnext for uid in found) or _take_exists_announcement(
            self._connection(), selected.exists
        )

    def _supports_idle(self) -> bool:
        return bool(self._connection().has_capability("IDLE"))

    def _idle_until(self, deadline: float) -> None:
        client = self._connection()
        client.idle()
        if client is not self._idle_logged_for:
            self._idle_logged_for = client
            logger.info("mailbox %s: waiting for new mail with IDLE", self.name)
        try:
            started = time.monotonic()
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= deadline:
                    return
                if now - started >= IDLE_RENEW_SECONDS:
                    client.idle_done()
                    client.idle()
                    started = now
                responses = client.idle_check(timeout=min(IDLE_CHECK_SLICE, deadline - now))
                if _announces_mail(responses):
                    return
                if not responses and _read_past_idle_check(client):
                    return
        finally:
            client.idle_done()


def _is_loopback(host: str) -> bool:
    """Return True for a host on this machine, where traffic never leaves it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _take_exists_announcement(client: IMAPClient, known_count: int) -> bool:
    """Return True when a command's untagged EXISTS reported more messages than `known_count`.

    A server may answer a command with an untagged EXISTS for mail that
    arrived meanwhile, and then not announce it again during IDLE. imapclient
    discards those responses, but the stdlib imaplib connection underneath
    keeps them in `untagged_responses` until someone takes them.
    """
    untagged = client._imap.untagged_responses
    counts = untagged.pop("EXISTS", None) or []
    untagged.pop("RECENT", None)
    return any(_as_count(count) > known_count for count in counts)


def _as_count(value: object) -> int:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return int(text) if text.isdigit() else 0


def _read_past_idle_check(client: IMAPClient) -> bool:
    """Return True when a line arrived after idle_check; raise EOFError when the server hung up.

    imapclient's idle_check (4.x) swallows the end of the stream and returns
    no responses, so a dropped connection would look like a quiet mailbox
    until the IDLE deadline. After idle_check has read every complete line, a
    socket that is still readable holds the end of the stream or a line that
    has just arrived; reading one line tells them apart.
    """
    sock = client.socket()
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False

    previous_timeout = sock.gettimeout()
    sock.settimeout(IDLE_CHECK_SLICE)
    try:
        line = client._imap.readline()
    except (TimeoutError, BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(previous_timeout)

    if not line:
        raise EOFError("the server closed the connection during IDLE")
    return True


def _announces_mail(responses: list[Any]) -> bool:
    return any(
        isinstance(response, tuple) and len(response) > 1 and response[1] in (b"EXISTS", b"RECENT")
        for response in responses
    )


def _as_utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        # imapclient returns a naive time only when INTERNALDATE had no zone.
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, socket.timeout | TimeoutError):
        return f"timed out ({text})"
    return f"{type(error).__name__}: {text}"


def _shutdown_quietly(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except CONNECTION_ERRORS as error:
        logger.debug("closing an IMAP connection failed: %s", _describe(error))
