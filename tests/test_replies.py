"""Replies to customers: who may send, the claim on the way, and delivery through real SMTP."""

import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from handlers.config import Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.people import Directory
from handlers.replies import send_reply
from handlers.ticket_actions import claim_ticket
from mailbridge.file_outbox import FileOutbox
from mailbridge.smtp import SmtpSender
from store.blobs import BlobStore
from store.models import Message, OutboxItem
from store.types import utcnow
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail, reply_settings
from tests.smtpserver import SmtpServer

RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "agents": [{"name": "Sveta", "slack": "U1"}, {"name": "Дмитрий", "slack": "U2"}],
        "departments": {"accounting": {"members": [{"name": "Olga", "slack": "U3"}]}},
    }
)
DIRECTORY = Directory(RULES)
SVETA = DIRECTORY.find("slack", "U1")
DMITRY = DIRECTORY.find("slack", "U2")
OLGA = DIRECTORY.find("slack", "U3")
EN = Translator("en")

FIRST_MAIL = (
    b"From: Marta Example <marta@example.org>\r\nTo: support@helpdesk.example.com\r\n"
    b"Cc: Boss <boss@example.org>, support@helpdesk.example.com\r\n"
    b"Subject: Cannot export report\r\nMessage-ID: <c1-6021@mail.example.org>\r\n"
    b"Date: Tue, 18 Mar 2025 09:00:00 +0100\r\n\r\nThe export fails for long ranges.\r\n"
)
SECOND_MAIL = customer_mail(
    "<c2-6021@mail.example.org>",
    "Re: Cannot export report",
    "Still failing today.",
    reply_to="<c1-6021@mail.example.org>",
    date="Tue, 18 Mar 2025 10:00:00 +0100",
)


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """The intake with FIRST_MAIL and its follow-up SECOND_MAIL taken: ticket #1."""
    intake.take(FIRST_MAIL)
    intake.take(SECOND_MAIL)
    return intake


def dispatcher(
    session_factory: sessionmaker[Session], tmp_path: Path, sender: object, output: io.StringIO
) -> Dispatcher:
    return Dispatcher(
        session_factory,
        [ConsoleMessenger(output, EN)],
        EN,
        DIRECTORY,
        mail_sender=sender,  # type: ignore[arg-type]
        blobs=BlobStore(tmp_path / "data"),
    )


def test_reply_reaches_smtp(
    intake: Intake,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    smtp_server: SmtpServer,
) -> None:
    assert SVETA is not None
    output = io.StringIO()
    desk = dispatcher(
        session_factory, tmp_path, SmtpSender(f"smtp://127.0.0.1:{smtp_server.port}", None), output
    )
    desk.deliver_pending()

    feedback = send_reply(
        session_factory, reply_settings(tmp_path / "data"), SVETA, 1, "Please try the export again."
    )
    desk.deliver_pending()
    desk.deliver_pending()
    received = smtp_server.wait_for_messages(1)[0].parsed()
    ticket = intake.ticket(1)
    reply = ticket.messages[-1]
    printed = output.getvalue()

    assert feedback.render(EN) == "Reply to ticket #1 queued for sending."
    assert ticket.assignee == "Sveta"
    assert received["To"] == "Marta Example <marta@example.org>"
    assert received["Cc"] == "Boss <boss@example.org>"
    assert received["Subject"] == "Re: Cannot export report [#1]"
    assert received["In-Reply-To"] == "<c2-6021@mail.example.org>"
    assert received["References"].split() == [
        "<c1-6021@mail.example.org>",
        "<c2-6021@mail.example.org>",
    ]
    assert received["Message-ID"] == reply.message_id
    assert "Sveta" in received["From"]
    assert "Please try the export again." in received.get_body(("plain",)).get_content()
    assert reply.delivery_state == "sent"
    assert ticket.first_response_at is not None
    assert "↳ #1 reply from Sveta [queued]" in printed
    assert "↳ #1 reply from Sveta: sent" in printed


def test_reply_to_held_ticket(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    assert SVETA is not None
    assert DMITRY is not None
    claim_ticket(session_factory, SVETA, 1)

    feedback = send_reply(session_factory, reply_settings(tmp_path / "data"), DMITRY, 1, "Hello")
    with session_factory() as session:
        outbound = session.scalars(select(Message).where(Message.direction == "outbound")).all()

    assert not feedback.ok
    assert feedback.render(EN).startswith("Ticket #1 is held by Sveta since")
    assert outbound == []


def test_department_cannot_reply(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    assert OLGA is not None

    feedback = send_reply(session_factory, reply_settings(tmp_path / "data"), OLGA, 1, "Paid.")

    assert feedback.render(EN) == "Only support agents can write to customers."
    assert intake.ticket(1).assignee is None


def test_permanent_failure_shown(
    intake: Intake,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    smtp_server: SmtpServer,
) -> None:
    assert SVETA is not None
    output = io.StringIO()
    desk = dispatcher(
        session_factory, tmp_path, SmtpSender(f"smtp://127.0.0.1:{smtp_server.port}", None), output
    )
    desk.deliver_pending()
    smtp_server.fail_next("DATA", "554 5.6.0 message refused")

    send_reply(session_factory, reply_settings(tmp_path / "data"), SVETA, 1, "Hello")
    desk.deliver_pending()
    desk.deliver_pending()
    reply = intake.ticket(1).messages[-1]

    assert reply.delivery_state == "failed"
    assert reply.delivery_error is not None
    assert "554" in reply.delivery_error
    assert intake.ticket(1).first_response_at is None
    assert "failed: " in output.getvalue()


def test_temporary_failure_retried(
    intake: Intake,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    smtp_server: SmtpServer,
) -> None:
    assert SVETA is not None
    desk = dispatcher(
        session_factory,
        tmp_path,
        SmtpSender(f"smtp://127.0.0.1:{smtp_server.port}", None),
        io.StringIO(),
    )
    smtp_server.fail_next("MAIL", "451 4.3.0 try again later")

    send_reply(session_factory, reply_settings(tmp_path / "data"), SVETA, 1, "Hello")
    desk.deliver_pending()
    with session_factory() as session:
        item = session.scalars(select(OutboxItem).where(OutboxItem.kind == "send_email")).one()
        state_after_failure = (item.state, item.attempts)
    with session_factory.begin() as session:
        session.execute(update(OutboxItem).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    desk.deliver_pending()
    received = smtp_server.wait_for_messages(1)

    assert state_after_failure == ("pending", 1)
    assert len(received) == 1
    assert intake.ticket(1).messages[-1].delivery_state == "sent"


def test_file_outbox_without_smtp(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    assert SVETA is not None
    desk = dispatcher(session_factory, tmp_path, FileOutbox(tmp_path / "outbox"), io.StringIO())

    send_reply(session_factory, reply_settings(tmp_path / "data"), SVETA, 1, "Written to a file.")
    desk.deliver_pending()
    desk.deliver_pending()
    files = list((tmp_path / "outbox").glob("*.eml"))

    assert len(files) == 1
    assert b"Written to a file." in files[0].read_bytes()
    assert intake.ticket(1).messages[-1].delivery_state == "sent"


def test_customer_answer_threads(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    assert SVETA is not None
    send_reply(session_factory, reply_settings(tmp_path / "data"), SVETA, 1, "Please try again.")
    reply_id = intake.ticket(1).messages[-1].message_id
    assert reply_id is not None
    answer = (
        "From: Marta Example <marta@example.org>\r\nTo: support@helpdesk.example.com\r\n"
        f"Subject: Re: Cannot export report [#1]\r\nMessage-ID: <c3@mail.example.org>\r\n"
        f"In-Reply-To: {reply_id}\r\n\r\nWorks now, thanks!\r\n"
    ).encode()

    result = intake.take(answer)

    assert result.ticket_number == 1
    assert result.outcome == "follow_up"
