"""ImapSource, its mailbox state and its reconnect loop, against a real pymap server."""

import email
import email.policy
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from imapclient import IMAPClient
from pymap.backend.dict.mailbox import MailboxData
from pymap.parsing.specials.flag import Wildcard, get_system_flags
from sqlalchemy.orm import Session, sessionmaker

from mailbridge.errors import MailSourceError
from mailbridge.imap import ImapSource, parse_imap_url
from mailbridge.imap_fetch import BodyPart, estimate_decoded_size, parse_bodystructure
from mailbridge.poller import backoff_delays, run_with_reconnect
from mailbridge.sources import IncomingMail, MailboxPosition, OmittedPart
from store.mailboxes import load_state, record_position, start_mailbox
from store.models import MailboxState
from tests.conftest import CASES_DIR
from tests.imapserver import (
    PASSWORD,
    PymapServer,
    TlsFiles,
    imap_server,
    running_server,
    tls_files,
)

__all__ = ["imap_server", "tls_files"]  # fixtures, imported so pytest finds them

pytestmark = pytest.mark.imap

# How long a test polls for something a background thread or the server does.
POLL_TIMEOUT = 10.0
FETCH_OF_WHOLE_MESSAGE = re.compile(r"BODY(\.PEEK)?\[\]|\bRFC822\b(?!\.)", re.IGNORECASE)


def make_source(
    server: PymapServer,
    session_factory: sessionmaker[Session],
    folder: str = "INBOX",
    **options: object,
) -> ImapSource:
    settings: dict[str, object] = {"max_message_bytes": 1_000_000, "poll_interval": 0.1}
    settings.update(options)
    return ImapSource(server.url(folder), PASSWORD, session_factory, **settings)  # type: ignore[arg-type]


def make_message(subject: str, body: str = "Hello.", message_id: str | None = None) -> bytes:
    lines = [
        "From: Customer <customer@example.org>",
        "To: support@helpdesk.example.com",
        f"Subject: {subject}",
        "Date: Mon, 24 Mar 2025 09:00:00 +0100",
    ]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body, ""]
    return "\r\n".join(lines).encode()


def drain(source: ImapSource) -> list[IncomingMail]:
    return list(source.fetch_new())


def record(session_factory: sessionmaker[Session], mail: IncomingMail) -> None:
    assert mail.position is not None
    with session_factory.begin() as session:
        record_position(session, mail.position)


def state_of(session_factory: sessionmaker[Session], name: str) -> MailboxState:
    with session_factory() as session:
        state = load_state(session, name)
    assert state is not None, f"no MailboxState for {name}"
    return state


def subjects(mails: list[IncomingMail]) -> list[str]:
    return [str(parse(mail.raw)["Subject"]) for mail in mails]


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def folder_status(server: PymapServer, folder: str = "INBOX") -> dict[bytes, int]:
    with server.client() as client:
        response = client.select_folder(folder, readonly=True)
        client.logout()
    return {key: response[key] for key in (b"UIDVALIDITY", b"UIDNEXT")}


def flags_of(server: PymapServer, uid: int, folder: str = "INBOX") -> set[str]:
    with server.client() as client:
        client.select_folder(folder, readonly=True)
        response = client.fetch([uid], ["FLAGS"])
        client.logout()
    return {flag.decode() for flag in response[uid][b"FLAGS"]}


def wait_until(condition: Callable[[], bool], description: str) -> None:
    deadline = time.monotonic() + POLL_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {description}")
        time.sleep(0.02)


def case_file(case: str, name: str) -> Path:
    matches = sorted(CASES_DIR.glob(f"{case}-*/{name}"))
    assert matches, f"hard case {case} has no {name}"
    return matches[0]


@pytest.fixture
def source(
    imap_server: PymapServer, session_factory: sessionmaker[Session]
) -> Iterator[ImapSource]:
    created = make_source(imap_server, session_factory)
    yield created
    created.close()


# -- URL --


def test_url_defaults() -> None:
    url = parse_imap_url("imaps://support%40example.com@imap.example.com")
    assert url.port == 993
    assert url.folder == "INBOX"
    assert url.user == "support@example.com"
    assert url.implicit_tls


def test_url_plain_port_and_folder() -> None:
    url = parse_imap_url("imap://support%40example.com@127.0.0.1:1143/Support%20Mail")
    assert url.port == 1143
    assert url.folder == "Support Mail"
    assert not url.implicit_tls


def test_url_name_is_redacted() -> None:
    url = parse_imap_url("imaps://support%40example.com@imap.example.com:993/INBOX")
    assert url.redacted() == "imaps://support%40example.com@imap.example.com/INBOX"


@pytest.mark.parametrize(
    ("url", "fault"),
    [
        ("pop3://support%40example.com@host/INBOX", "scheme"),
        ("imaps://host/INBOX", "user name is missing"),
        ("imaps://support%40example.com@/INBOX", "host is missing"),
        ("imaps://support%40example.com@host:99999/INBOX", "port"),
        ("imaps://support%40example.com@host/INBOX?x=1", "query"),
    ],
)
def test_url_rejected(url: str, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        parse_imap_url(url)


def test_url_with_password_rejected_without_echo() -> None:
    with pytest.raises(ValueError) as caught:
        parse_imap_url("imaps://support%40example.com:hunter2@host/INBOX")
    assert "password" in str(caught.value)
    assert "hunter2" not in str(caught.value)


# -- mailbox state --


def test_record_position_only_raises(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        start_mailbox(session, "box", uidvalidity=7, last_uid=10)
    with session_factory.begin() as session:
        assert record_position(session, MailboxPosition("box", 7, 12))
    with session_factory.begin() as session:
        assert record_position(session, MailboxPosition("box", 7, 11))
    assert state_of(session_factory, "box").last_uid == 12


def test_record_position_other_uidvalidity(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        start_mailbox(session, "box", uidvalidity=7, last_uid=10)
    with session_factory.begin() as session:
        assert not record_position(session, MailboxPosition("box", 8, 50))
    assert state_of(session_factory, "box").last_uid == 10


# -- first connection, then new mail --


def test_first_connection_takes_no_old_mail(
    imap_server: PymapServer, source: ImapSource, session_factory: sessionmaker[Session]
) -> None:
    imap_server.append(make_message("Old mail"))
    status = folder_status(imap_server)

    assert drain(source) == []

    state = state_of(session_factory, source.name)
    assert state.uidvalidity == status[b"UIDVALIDITY"]
    assert state.last_uid == status[b"UIDNEXT"] - 1


def test_new_mail_yielded_once_oldest_first(
    imap_server: PymapServer, source: ImapSource, session_factory: sessionmaker[Session]
) -> None:
    imap_server.append(make_message("Old mail"))
    assert drain(source) == []
    first_date = datetime(2025, 3, 24, 8, 0, 5, tzinfo=UTC)
    second_date = datetime(2025, 3, 24, 8, 1, 0, tzinfo=UTC)
    imap_server.append(make_message("First"), internaldate=first_date)
    imap_server.append(make_message("Second"), internaldate=second_date)

    mails = drain(source)

    assert subjects(mails) == ["First", "Second"]
    assert [mail.received_at for mail in mails] == [first_date, second_date]
    assert all(mail.mailbox == source.name for mail in mails)
    assert mails[0].position is not None and mails[1].position is not None
    assert mails[0].position.uid < mails[1].position.uid
    assert mails[0].source_ref == f"uid {mails[0].position.uid}"
    for mail in mails:
        record(session_factory, mail)
    assert drain(source) == []
    assert state_of(session_factory, source.name).last_uid == mails[1].position.uid


def test_name_has_no_password(source: ImapSource) -> None:
    assert PASSWORD not in source.name
    assert source.name.startswith("imap://support%40example.com@127.0.0.1:")


# -- restart in the middle --


def test_restart_after_first_recorded(
    imap_server: PymapServer, source: ImapSource, session_factory: sessionmaker[Session]
) -> None:
    drain(source)
    imap_server.append(make_message("First"))
    imap_server.append(make_message("Second"))
    first, _ = drain(source)
    record(session_factory, first)
    source.close()

    restarted = make_source(imap_server, session_factory)
    try:
        assert subjects(drain(restarted)) == ["Second"]
    finally:
        restarted.close()


def test_restart_before_commit_yields_both(
    imap_server: PymapServer, source: ImapSource, session_factory: sessionmaker[Session]
) -> None:
    drain(source)
    imap_server.append(make_message("First"))
    imap_server.append(make_message("Second"))
    before_crash = drain(source)
    source.close()

    restarted = make_source(imap_server, session_factory)
    try:
        again = drain(restarted)
    finally:
        restarted.close()

    assert subjects(again) == ["First", "Second"]
    assert [mail.raw for mail in again] == [mail.raw for mail in before_crash]


# -- \Seen does not hide mail --


def test_seen_mail_still_yielded(imap_server: PymapServer, source: ImapSource) -> None:
    drain(source)
    imap_server.append(make_message("Read by a person"), flags=("\\Seen",))

    assert subjects(drain(source)) == ["Read by a person"]


def test_fetch_keeps_unseen(imap_server: PymapServer, source: ImapSource) -> None:
    drain(source)
    imap_server.append(make_message("Unread"))
    (mail,) = drain(source)

    assert mail.position is not None
    assert "\\Seen" not in flags_of(imap_server, mail.position.uid)


# -- acknowledge --


def test_acknowledge_sets_seen_without_keywords(
    imap_server: PymapServer, source: ImapSource
) -> None:
    drain(source)
    imap_server.append(make_message("Handled"))
    (mail,) = drain(source)

    source.acknowledge(mail)

    assert mail.position is not None
    assert "\\Seen" in flags_of(imap_server, mail.position.uid)


def test_acknowledge_sets_keyword(
    monkeypatch: pytest.MonkeyPatch,
    imap_server: PymapServer,
    source: ImapSource,
) -> None:
    # pymap's dict backend offers no keywords (no \* in PERMANENTFLAGS) unless patched.
    with_keywords = (get_system_flags() - {Wildcard}) | {Wildcard}
    monkeypatch.setattr(MailboxData, "permanent_flags", property(lambda self: with_keywords))
    drain(source)
    imap_server.append(make_message("Handled"))
    (mail,) = drain(source)

    source.acknowledge(mail)

    assert mail.position is not None
    flags = flags_of(imap_server, mail.position.uid)
    assert "$Threaddesk" in flags
    assert "\\Seen" not in flags


def test_acknowledge_failure_is_harmless(
    imap_server: PymapServer, source: ImapSource, caplog: pytest.LogCaptureFixture
) -> None:
    drain(source)
    imap_server.append(make_message("Handled"))
    (mail,) = drain(source)
    imap_server.drop()

    source.acknowledge(mail)

    assert any("flagging UID" in record.getMessage() for record in caplog.records)


# -- UIDVALIDITY change --


def test_uidvalidity_change_takes_recent_mail(
    imap_server: PymapServer, session_factory: sessionmaker[Session]
) -> None:
    imap_server.recreate_folder("Support")
    source = make_source(imap_server, session_factory, folder="Support")
    drain(source)
    old_uidvalidity = state_of(session_factory, source.name).uidvalidity
    source.close()

    imap_server.recreate_folder("Support")
    now = datetime.now(UTC).replace(microsecond=0)
    imap_server.append(
        make_message("Archive from 2020"),
        folder="Support",
        internaldate=datetime(2020, 1, 6, 12, 0, tzinfo=UTC),
    )
    imap_server.append(
        make_message("Old, already a ticket", message_id="<m-102@mail.example.net>"),
        folder="Support",
        internaldate=now - timedelta(hours=2),
        flags=("\\Seen",),
    )
    imap_server.append(make_message("New after migration"), folder="Support", internaldate=now)
    new_uidvalidity = folder_status(imap_server, "Support")[b"UIDVALIDITY"]
    assert new_uidvalidity != old_uidvalidity, "pymap reused the UIDVALIDITY"

    source = make_source(imap_server, session_factory, folder="Support")
    try:
        mails = drain(source)
        state = state_of(session_factory, source.name)
        assert subjects(mails) == ["Old, already a ticket", "New after migration"]
        assert all(mail.position is not None for mail in mails)
        assert {mail.position.uidvalidity for mail in mails if mail.position} == {new_uidvalidity}
        assert state.uidvalidity == new_uidvalidity
        assert mails[0].position is not None
        assert state.last_uid == mails[0].position.uid - 1

        for mail in mails:
            record(session_factory, mail)
    finally:
        source.close()

    reconnected = make_source(imap_server, session_factory, folder="Support")
    try:
        assert drain(reconnected) == []
    finally:
        reconnected.close()


# -- oversized message --


def test_oversized_mail_not_fetched_whole(
    imap_server: PymapServer, session_factory: sessionmaker[Session]
) -> None:
    source = make_source(imap_server, session_factory, max_message_bytes=200)
    drain(source)
    imap_server.append(case_file("033", "input.eml").read_bytes())
    imap_server.commands.clear()

    try:
        (mail,) = drain(source)
    finally:
        source.close()

    fetches = imap_server.commands_matching("FETCH")
    assert fetches, "the source sent no FETCH"
    assert [line for line in fetches if FETCH_OF_WHOLE_MESSAGE.search(line)] == []
    message = parse(mail.raw)
    assert message["Subject"] == "Screen recording of the bug"
    assert message["Message-ID"] == "<oversized-0001@mail.example.org>"
    body = message.get_body(("plain",))
    assert body is not None
    assert body.get_content().strip() == "The recording shows the crash at 0:42."
    assert list(message.iter_attachments()) == []
    assert mail.omitted_parts == [OmittedPart("bug-recording.mp4", "video/mp4", 73_398_000)]
    assert [note.code for note in mail.notes] == ["message-too-large"]


def test_oversized_mail_decodes_filenames(
    imap_server: PymapServer, session_factory: sessionmaker[Session]
) -> None:
    source = make_source(imap_server, session_factory, max_message_bytes=200)
    drain(source)
    imap_server.append(case_file("007", "input.eml").read_bytes())

    try:
        (mail,) = drain(source)
    finally:
        source.close()

    assert [part.filename for part in mail.omitted_parts] == [
        "Счёт № 42.pdf",
        "Überweisung März.jpg",
        "Договор поставки.txt",
        "Смета ремонта.doc",
        "Прайс.xlsx",
        "Гарантия.pdf",
        "evil.sh",
    ]
    body = parse(mail.raw).get_body(("plain",))
    assert body is not None


def test_oversized_alternative_keeps_both_texts(
    imap_server: PymapServer, session_factory: sessionmaker[Session]
) -> None:
    message = EmailMessage()
    message["From"] = "Customer <customer@example.org>"
    message["To"] = "support@helpdesk.example.com"
    message["Subject"] = "Nested parts"
    message.set_content("Plain words.\n")
    message.add_alternative("<p>Html words.</p>\n", subtype="html")
    message.add_attachment(b"\x00" * 3000, maintype="application", subtype="pdf", filename="a.pdf")
    source = make_source(imap_server, session_factory, max_message_bytes=1000)
    drain(source)
    imap_server.append(message.as_bytes(policy=email.policy.SMTP))

    try:
        (mail,) = drain(source)
    finally:
        source.close()

    rebuilt = parse(mail.raw)
    plain = rebuilt.get_body(("plain",))
    html = rebuilt.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "Plain words."
    assert html is not None and html.get_content().strip() == "<p>Html words.</p>"
    assert [part.filename for part in mail.omitted_parts] == ["a.pdf"]


def test_oversized_without_text_part(
    imap_server: PymapServer, session_factory: sessionmaker[Session]
) -> None:
    message = EmailMessage()
    message["Subject"] = "Only a file"
    message.set_content(b"\x01" * 3000, maintype="video", subtype="mp4", filename="clip.mp4")
    source = make_source(imap_server, session_factory, max_message_bytes=1000)
    drain(source)
    imap_server.append(message.as_bytes(policy=email.policy.SMTP))

    try:
        (mail,) = drain(source)
    finally:
        source.close()

    rebuilt = parse(mail.raw)
    assert rebuilt["Subject"] == "Only a file"
    assert rebuilt.get_content_type() == "text/plain"
    assert [part.filename for part in mail.omitted_parts] == ["clip.mp4"]


def test_base64_size_estimate() -> None:
    part = BodyPart(section="2", content_type="video/mp4", encoding="base64", size=100_439_000)
    # A 73,398,000-byte file in base64 with 76-character lines takes about 100,439,000 bytes.
    assert estimate_decoded_size(part) == pytest.approx(73_398_000, rel=0.001)


def test_bodystructure_disposition_list() -> None:
    structure = (
        b"application",
        b"pdf",
        (b"name", b"x.pdf"),
        None,
        None,
        b"base64",
        780,
        None,
        (b"attachment", (b"filename*", b"UTF-8''%C3%9Cber.pdf")),
        None,
        None,
    )
    part = parse_bodystructure(structure)
    assert part.disposition == "attachment"
    assert part.disposition_params == {"filename*": "UTF-8''%C3%9Cber.pdf"}


# -- connection drops --


def test_dropped_connection_raises(imap_server: PymapServer, source: ImapSource) -> None:
    drain(source)
    imap_server.drop()

    with pytest.raises(MailSourceError) as caught:
        drain(source)
    assert source.name in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_run_loop_reconnects_after_drop(
    imap_server: PymapServer,
    source: ImapSource,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="mailbridge.poller")
    handled: list[IncomingMail] = []
    stop = threading.Event()

    def handle_mail(mail: IncomingMail) -> None:
        record(session_factory, mail)
        handled.append(mail)

    loop = threading.Thread(
        target=run_with_reconnect,
        args=(source, handle_mail, stop),
        kwargs={"wait_timeout": 0.2, "delays": lambda: itertools.repeat(0.05)},
    )
    loop.start()
    try:
        wait_until(lambda: _has_state(session_factory, source.name), "the first connection")
        imap_server.drop()
        wait_until(lambda: _retry_logged(caplog, source.name), "a logged retry")
        imap_server.resume()
        imap_server.append(make_message("After the outage"))
        wait_until(lambda: len(handled) == 1, "the message after the outage")
    finally:
        stop.set()
        loop.join(POLL_TIMEOUT)

    assert not loop.is_alive()
    assert subjects(handled) == ["After the outage"]
    assert handled[0].position is not None
    assert "\\Seen" in flags_of(imap_server, handled[0].position.uid)


def _has_state(session_factory: sessionmaker[Session], name: str) -> bool:
    with session_factory() as session:
        return load_state(session, name) is not None


def _retry_logged(caplog: pytest.LogCaptureFixture, name: str) -> bool:
    return any("retrying" in r.getMessage() and name in r.getMessage() for r in caplog.records)


def test_backoff_grows_to_cap() -> None:
    delays = list(itertools.islice(backoff_delays(first=1.0, maximum=8.0), 8))
    assert 0.5 <= delays[0] <= 1.0
    assert 4.0 <= delays[3] <= 8.0
    assert all(4.0 <= delay <= 8.0 for delay in delays[4:])


# -- waiting --


def test_wait_returns_on_new_mail(imap_server: PymapServer, source: ImapSource) -> None:
    drain(source)
    waiter = threading.Thread(target=source.wait_for_mail, args=(60,))
    waiter.start()
    wait_until(lambda: bool(imap_server.commands_matching("IDLE")), "the IDLE command")

    imap_server.append(make_message("Wake up"))

    waiter.join(POLL_TIMEOUT)
    assert not waiter.is_alive()
    assert subjects(drain(source)) == ["Wake up"]


def test_wait_sees_mail_before_idle(
    imap_server: PymapServer, source: ImapSource, session_factory: sessionmaker[Session]
) -> None:
    drain(source)
    imap_server.append(make_message("Handled"))
    (handled,) = drain(source)
    record(session_factory, handled)
    imap_server.append(make_message("Arrived before IDLE"))
    # The STORE response reports the new message as EXISTS before IDLE starts.
    source.acknowledge(handled)
    waiter = threading.Thread(target=source.wait_for_mail, args=(60,))
    waiter.start()

    waiter.join(POLL_TIMEOUT)

    source.stop()
    assert not waiter.is_alive()
    assert subjects(drain(source)) == ["Arrived before IDLE"]


def test_wait_returns_on_stop(imap_server: PymapServer, source: ImapSource) -> None:
    drain(source)
    waiter = threading.Thread(target=source.wait_for_mail, args=(60,))
    waiter.start()
    wait_until(lambda: bool(imap_server.commands_matching("IDLE")), "the IDLE command")

    source.stop()

    waiter.join(POLL_TIMEOUT)
    assert not waiter.is_alive()


def test_wait_polls_without_idle(
    monkeypatch: pytest.MonkeyPatch, imap_server: PymapServer, source: ImapSource
) -> None:
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, capability: False)
    drain(source)
    imap_server.commands.clear()

    source.wait_for_mail(60)

    assert imap_server.commands_matching("IDLE") == []


def test_poll_wait_returns_on_stop(
    monkeypatch: pytest.MonkeyPatch,
    imap_server: PymapServer,
    session_factory: sessionmaker[Session],
) -> None:
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, capability: False)
    source = make_source(imap_server, session_factory, poll_interval=600)
    drain(source)
    waiter = threading.Thread(target=source.wait_for_mail, args=(600,))
    waiter.start()

    source.stop()

    waiter.join(POLL_TIMEOUT)
    source.close()
    assert not waiter.is_alive()


def test_wait_times_out(source: ImapSource) -> None:
    drain(source)
    source.wait_for_mail(0.2)
    assert drain(source) == []


# -- TLS --


def test_implicit_tls_with_ca_file(
    tls_files: TlsFiles, session_factory: sessionmaker[Session]
) -> None:
    with running_server(tls="implicit", tls_files=tls_files) as server:
        source = make_source(server, session_factory, ca_file=str(tls_files.ca_file))
        try:
            drain(source)
            server.append(make_message("Over TLS"))
            assert subjects(drain(source)) == ["Over TLS"]
        finally:
            source.close()


def test_starttls_with_ca_file(tls_files: TlsFiles, session_factory: sessionmaker[Session]) -> None:
    with running_server(tls="starttls", tls_files=tls_files) as server:
        source = make_source(server, session_factory, ca_file=str(tls_files.ca_file))
        try:
            drain(source)
            server.append(make_message("After STARTTLS"))
            assert subjects(drain(source)) == ["After STARTTLS"]
        finally:
            source.close()
        assert server.commands_matching("STARTTLS")


def test_tls_unknown_ca_rejected(
    tls_files: TlsFiles, session_factory: sessionmaker[Session]
) -> None:
    with running_server(tls="implicit", tls_files=tls_files) as server:
        source = make_source(server, session_factory)
        with pytest.raises(MailSourceError, match=r"SSL|certificate"):
            drain(source)
        assert not server.commands_matching("LOGIN")


# -- hard cases at the source level: refetch and migration --


def test_refetch_without_message_id_identical(imap_server: PymapServer, source: ImapSource) -> None:
    payload = json.loads(case_file("011", "payload.json").read_text())
    drain(source)
    for entry in payload["messages"]:
        internaldate = datetime.strptime(entry["internaldate"], "%d-%b-%Y %H:%M:%S %z")
        imap_server.append(case_file("011", entry["file"]).read_bytes(), internaldate=internaldate)

    first = drain(source)
    imap_server.drop()
    with pytest.raises(MailSourceError):
        drain(source)
    imap_server.resume()
    second = drain(source)

    assert [mail.raw for mail in first] == [
        case_file("011", entry["file"]).read_bytes() for entry in payload["messages"]
    ]
    assert [mail.raw for mail in second] == [mail.raw for mail in first]
    assert [mail.position for mail in second] == [mail.position for mail in first]
    assert first[0].received_at == datetime(2025, 3, 18, 8, 10, 5, tzinfo=UTC)


def test_uidvalidity_change_then_reconnect(
    imap_server: PymapServer, source: ImapSource, session_factory: sessionmaker[Session]
) -> None:
    payload = json.loads(case_file("031", "payload.json").read_text())
    before = payload["bot_state_before"]
    now = datetime.now(UTC).replace(microsecond=0)
    for offset, entry in enumerate(payload["session_B"]["messages"]):
        imap_server.append(
            case_file("031", entry["file"]).read_bytes(),
            internaldate=now - timedelta(hours=2) + timedelta(minutes=offset),
            flags=tuple(entry["flags"]),
        )
    status = folder_status(imap_server)
    uidvalidity = status[b"UIDVALIDITY"]
    # The stored watermark lies above the new UIDs, as after a real migration.
    last_uid = max(before["last_uid"], status[b"UIDNEXT"] - 1)
    with session_factory.begin() as session:
        start_mailbox(session, source.name, before["uidvalidity"], last_uid)

    session_b = drain(source)
    imap_server.drop()
    imap_server.resume()
    with pytest.raises(MailSourceError):
        drain(source)
    session_c = drain(source)

    assert [str(parse(mail.raw)["Message-ID"]) for mail in session_b] == [
        "<m-102@mail.example.net>",
        "<post-migration-0001@mail.example.org>",
    ]
    assert all(mail.position and mail.position.uid <= last_uid for mail in session_b)
    assert [mail.raw for mail in session_c] == [mail.raw for mail in session_b]
    assert [mail.position for mail in session_c] == [mail.position for mail in session_b]
    assert state_of(session_factory, source.name).uidvalidity == uidvalidity

    for mail in session_c:
        record(session_factory, mail)
    assert drain(source) == []
