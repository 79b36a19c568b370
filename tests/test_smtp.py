"""SmtpSender against a real aiosmtpd server, SMTP URL parsing, and the FileOutbox fallback."""

import email
import email.policy
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from mailbridge.file_outbox import FileOutbox, message_id_filename
from mailbridge.message import Address
from mailbridge.outgoing import OutgoingEmail, ReplyRequest, compose_reply, make_message_id
from mailbridge.smtp import (
    SmtpConfigError,
    SmtpPermanentError,
    SmtpSender,
    SmtpTemporaryError,
    parse_smtp_url,
)
from tests.smtpserver import SmtpServer, closed_port, silent_server

USER = "support@helpdesk.example.com"
PASSWORD = "Pa55-word-not-for-logs"
CUSTOMER = "marta@example.org"
COLLEAGUE = "olga@example.org"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def certificate(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("127.0.0.1")


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def reply(*recipients: str, message_id: str | None = None) -> OutgoingEmail:
    return compose_reply(
        ReplyRequest(
            ticket_number=6021,
            ticket_subject="Cannot export report",
            support_address=USER,
            support_name="Helpdesk",
            agent_name="Sveta",
            to=[Address("", item) for item in recipients or (CUSTOMER,)],
            text="Please try the export again.",
            message_id=message_id or make_message_id("helpdesk.example.com"),
            sent_at=datetime(2025, 3, 18, 10, 0, tzinfo=UTC),
        )
    )


def assert_no_password(text: str) -> None:
    assert PASSWORD not in text


# Delivery


def test_plain_delivers_envelope(plain_server: SmtpServer) -> None:
    outgoing = reply()
    SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None).send(outgoing)
    [received] = plain_server.wait_for_messages(1)
    assert received.mail_from == USER
    assert received.rcpt_tos == (CUSTOMER,)
    assert received.tls is False
    assert received.parsed()["Message-ID"] == outgoing.message_id


def test_plain_delivers_exact_bytes(plain_server: SmtpServer) -> None:
    outgoing = reply()
    SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None).send(outgoing)
    [received] = plain_server.wait_for_messages(1)
    assert received.data.rstrip(b"\r\n") == outgoing.as_bytes().rstrip(b"\r\n")


def test_starttls_with_ca_file(certificate: trustme.LeafCert, ca_file: Path) -> None:
    with SmtpServer("starttls", certificate=certificate) as server:
        sender = SmtpSender(f"smtp+starttls://127.0.0.1:{server.port}", None, ca_file=ca_file)
        sender.send(reply())
        [received] = server.wait_for_messages(1)
    assert received.tls is True


def test_smtps_with_ca_file(certificate: trustme.LeafCert, ca_file: Path) -> None:
    with SmtpServer("tls", certificate=certificate) as server:
        sender = SmtpSender(f"smtps://127.0.0.1:{server.port}", None, ca_file=ca_file)
        sender.send(reply())
        [received] = server.wait_for_messages(1)
    assert received.tls is True


def test_starttls_auth_logs_in(certificate: trustme.LeafCert, ca_file: Path) -> None:
    with SmtpServer("starttls", certificate=certificate, users={USER: PASSWORD}) as server:
        url = f"smtp+starttls://support%40helpdesk.example.com@127.0.0.1:{server.port}"
        SmtpSender(url, PASSWORD, ca_file=ca_file).send(reply())
        [received] = server.wait_for_messages(1)
    assert received.login == USER


def test_smtps_auth_logs_in(certificate: trustme.LeafCert, ca_file: Path) -> None:
    with SmtpServer("tls", certificate=certificate, users={USER: PASSWORD}) as server:
        url = f"smtps://support%40helpdesk.example.com@127.0.0.1:{server.port}"
        SmtpSender(url, PASSWORD, ca_file=ca_file).send(reply())
        [received] = server.wait_for_messages(1)
    assert received.login == USER


def test_partial_refusal_reported(plain_server: SmtpServer) -> None:
    plain_server.fail_next("RCPT", "550 5.1.1 no such user", recipient=COLLEAGUE)
    sender = SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None)
    report = sender.send(reply(CUSTOMER, COLLEAGUE))
    [received] = plain_server.wait_for_messages(1)
    assert received.rcpt_tos == (CUSTOMER,)
    assert report.refused == {COLLEAGUE: (550, "5.1.1 no such user")}


def test_accepted_send_reports_nothing_refused(plain_server: SmtpServer) -> None:
    report = SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None).send(reply())
    assert report.refused == {}


# Failures


@pytest.mark.parametrize("command", ["MAIL", "RCPT", "DATA"])
def test_451_is_temporary(plain_server: SmtpServer, command: str) -> None:
    plain_server.fail_next(command, "451 4.3.0 try again later")
    sender = SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None)
    with pytest.raises(SmtpTemporaryError, match="451"):
        sender.send(reply())
    assert plain_server.messages == []


def test_421_on_rcpt_is_temporary(plain_server: SmtpServer) -> None:
    plain_server.fail_next("RCPT", "421 4.3.2 shutting down")
    sender = SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None)
    with pytest.raises(SmtpTemporaryError, match="421"):
        sender.send(reply())


def test_550_on_rcpt_is_permanent(plain_server: SmtpServer) -> None:
    plain_server.fail_next("RCPT", "550 5.1.1 mailbox unavailable")
    sender = SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None)
    with pytest.raises(SmtpPermanentError) as caught:
        sender.send(reply())
    assert caught.value.code == 550
    assert "mailbox unavailable" in str(caught.value)


def test_554_on_data_is_permanent(plain_server: SmtpServer) -> None:
    plain_server.fail_next("DATA", "554 5.7.1 message rejected as spam")
    sender = SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None)
    with pytest.raises(SmtpPermanentError, match="554"):
        sender.send(reply())


def test_mixed_refusals_are_temporary(plain_server: SmtpServer) -> None:
    # One recipient may accept later, so the whole message is retried.
    plain_server.fail_next("RCPT", "550 5.1.1 unknown", recipient=CUSTOMER)
    plain_server.fail_next("RCPT", "450 4.2.1 mailbox busy", recipient=COLLEAGUE)
    sender = SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None)
    with pytest.raises(SmtpTemporaryError, match="450"):
        sender.send(reply(CUSTOMER, COLLEAGUE))


def test_connection_refused_is_temporary() -> None:
    sender = SmtpSender(f"smtp://127.0.0.1:{closed_port()}", None)
    with pytest.raises(SmtpTemporaryError, match="ConnectionRefusedError"):
        sender.send(reply())


def test_silent_server_times_out() -> None:
    with silent_server() as port:
        sender = SmtpSender(f"smtp://127.0.0.1:{port}", None, timeout=0.5)
        with pytest.raises(SmtpTemporaryError, match="timed out"):
            sender.send(reply())


def test_starttls_missing_fails_clearly(plain_server: SmtpServer) -> None:
    sender = SmtpSender(f"smtp+starttls://127.0.0.1:{plain_server.port}", None)
    with pytest.raises(SmtpTemporaryError, match="does not offer STARTTLS"):
        sender.send(reply())
    assert plain_server.messages == []


def test_untrusted_certificate_fails(certificate: trustme.LeafCert) -> None:
    with SmtpServer("tls", certificate=certificate) as server:
        sender = SmtpSender(f"smtps://127.0.0.1:{server.port}", None)
        with pytest.raises(SmtpTemporaryError, match="THREADDESK_CA_FILE"):
            sender.send(reply())
        assert server.messages == []


def test_auth_over_plain_not_offered() -> None:
    with SmtpServer("plain", users={USER: PASSWORD}) as server:
        url = f"smtp://support%40helpdesk.example.com@127.0.0.1:{server.port}"
        sender = SmtpSender(url, PASSWORD)
        with pytest.raises(SmtpTemporaryError, match="AUTH") as caught:
            sender.send(reply())
    assert_no_password(str(caught.value))


# Secrets


def test_wrong_password_hidden(
    certificate: trustme.LeafCert, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SmtpServer("tls", certificate=certificate, users={USER: "the-right-one"}) as server:
        url = f"smtps://support%40helpdesk.example.com@127.0.0.1:{server.port}"
        sender = SmtpSender(url, PASSWORD, ca_file=ca_file)
        with pytest.raises(SmtpTemporaryError, match="login") as caught:
            sender.send(reply())
    assert_no_password(str(caught.value))
    assert_no_password(repr(caught.value.args))
    for record in caplog.records:
        assert_no_password(record.getMessage())


def test_successful_login_not_logged(
    certificate: trustme.LeafCert, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with SmtpServer("starttls", certificate=certificate, users={USER: PASSWORD}) as server:
        url = f"smtp+starttls://support%40helpdesk.example.com@127.0.0.1:{server.port}"
        SmtpSender(url, PASSWORD, ca_file=ca_file).send(reply())
        server.wait_for_messages(1)
    assert caplog.records
    for record in caplog.records:
        assert_no_password(record.getMessage())


def test_failure_log_names_ticket(
    plain_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    plain_server.fail_next("DATA", "451 4.3.0 busy")
    outgoing = reply()
    with pytest.raises(SmtpTemporaryError):
        SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None).send(outgoing)
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert "ticket 6021" in warning.getMessage()
    assert outgoing.message_id in warning.getMessage()


def test_password_in_url_rejected() -> None:
    with pytest.raises(SmtpConfigError, match="THREADDESK_SMTP_PASSWORD") as caught:
        SmtpSender(f"smtps://support%40example.com:{PASSWORD}@smtp.example.com", None)
    assert_no_password(str(caught.value))


# URL parsing


@pytest.mark.parametrize(
    ("url", "security", "port"),
    [
        ("smtp://smtp.example.com", "plain", 25),
        ("smtp+starttls://smtp.example.com", "starttls", 587),
        ("smtps://smtp.example.com", "tls", 465),
        ("smtps://smtp.example.com:2465", "tls", 2465),
        ("SMTPS://smtp.example.com/", "tls", 465),
    ],
)
def test_url_security_and_port(url: str, security: str, port: int) -> None:
    settings = parse_smtp_url(url)
    assert settings.security == security
    assert settings.port == port


def test_url_user_is_unquoted() -> None:
    settings = parse_smtp_url("smtps://support%40example.com@smtp.example.com")
    assert settings.user == "support@example.com"
    assert settings.host == "smtp.example.com"


def test_url_without_user() -> None:
    assert parse_smtp_url("smtp://127.0.0.1:2525").user is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://smtp.example.com", "scheme"),
        ("smtp+ssl://smtp.example.com", "scheme"),
        ("smtp.example.com:25", "scheme"),
        ("smtp://", "host name is missing"),
        ("smtp://smtp.example.com/INBOX", "no path"),
        ("smtp://smtp.example.com?tls=1", "no path"),
        ("smtp://smtp.example.com:port", "invalid SMTP URL"),
        ("smtp://user:secret@smtp.example.com", "remove the password"),
    ],
)
def test_url_rejected(url: str, reason: str) -> None:
    with pytest.raises(SmtpConfigError, match=reason) as caught:
        parse_smtp_url(url)
    assert "secret" not in str(caught.value)


def test_user_without_password_rejected() -> None:
    with pytest.raises(SmtpConfigError, match="THREADDESK_SMTP_PASSWORD is not set"):
        SmtpSender("smtps://support%40example.com@smtp.example.com", None)


def test_password_without_user_rejected() -> None:
    with pytest.raises(SmtpConfigError, match="names no user"):
        SmtpSender("smtps://smtp.example.com", PASSWORD)


def test_missing_ca_file_rejected(tmp_path: Path) -> None:
    with pytest.raises(SmtpConfigError, match="CA file"):
        SmtpSender("smtps://smtp.example.com", None, ca_file=tmp_path / "absent.pem")


# FileOutbox


def test_outbox_writes_eml(tmp_path: Path) -> None:
    outgoing = reply()
    report = FileOutbox(tmp_path / "outbox").send(outgoing)
    [path] = (tmp_path / "outbox").glob("*.eml")
    assert report.location == str(path)
    assert path.read_bytes() == outgoing.as_bytes()


def test_outbox_file_name(tmp_path: Path) -> None:
    outgoing = reply(message_id="<abc123@helpdesk.example.com>")
    FileOutbox(tmp_path).send(outgoing)
    [path] = tmp_path.glob("*.eml")
    assert path.name == "20250318T100000Z-abc123@helpdesk.example.com.eml"


def test_outbox_resend_is_noop(tmp_path: Path) -> None:
    outgoing = reply()
    outbox = FileOutbox(tmp_path)
    outbox.send(outgoing)
    outbox.send(outgoing)
    assert len(list(tmp_path.iterdir())) == 1


def test_outbox_recomposed_resend_is_noop(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path)
    message_id = make_message_id("helpdesk.example.com")
    outbox.send(reply(message_id=message_id))
    later = compose_reply(
        ReplyRequest(
            ticket_number=6021,
            ticket_subject="Cannot export report",
            support_address=USER,
            support_name="Helpdesk",
            to=[Address("", CUSTOMER)],
            text="Please try the export again.",
            message_id=message_id,
            sent_at=datetime(2025, 3, 18, 11, 30, tzinfo=UTC),
        )
    )
    outbox.send(later)
    assert len(list(tmp_path.iterdir())) == 1


def test_outbox_one_file_per_message_id(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path)
    outbox.send(reply(message_id="<abc@helpdesk.example.com>"))
    outbox.send(reply(message_id="<x-abc@helpdesk.example.com>"))
    assert len(list(tmp_path.glob("*.eml"))) == 2


def test_outbox_file_parses_back(tmp_path: Path) -> None:
    outgoing = reply()
    FileOutbox(tmp_path).send(outgoing)
    [path] = tmp_path.glob("*.eml")
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    original = email.message_from_bytes(outgoing.as_bytes(), policy=email.policy.default)
    assert parsed.items() == original.items()


def test_outbox_leaves_no_temporary_files(tmp_path: Path) -> None:
    outbox = FileOutbox(tmp_path)
    outgoing = reply()
    outbox.send(outgoing)
    outbox.send(outgoing)
    assert [path.suffix for path in tmp_path.iterdir()] == [".eml"]


def test_unsafe_message_id_filename() -> None:
    name = message_id_filename("<a/b\\c:d@example.com>")
    assert "/" not in name
    assert "\\" not in name
    assert name != message_id_filename("<a_b_c_d@example.com>")
