"""How intake places mail on tickets: reopening, closed tickets, bounces, the subject tag."""

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.intake import Outcome
from store.models import Event, Ticket
from tests.intake_support import Intake, make_intake


def customer_mail(
    message_id: str,
    subject: str = "Order 5512 never arrived",
    sender: str = "marta@example.org",
    extra_headers: str = "",
    body: str = "Where is my parcel?",
) -> bytes:
    return (
        f"From: Marta Example <{sender}>\r\nTo: support@helpdesk.example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: {message_id}\r\n"
        f"Date: Tue, 04 Mar 2025 09:15:00 +0300\r\n{extra_headers}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def bounce_for(original_id: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        "To: support@helpdesk.example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.example.org>\r\nDate: Tue, 04 Mar 2025 10:00:00 +0000\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        "Final-Recipient: rfc822; marta@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: support@helpdesk.example.com\r\nTo: marta@example.org\r\n"
        f"Subject: Re: Order 5512 never arrived [#1]\r\nMessage-ID: {original_id}\r\n"
        "--b1--\r\n"
    ).encode()


def set_status(session_factory: sessionmaker[Session], number: int, status: str) -> None:
    with session_factory.begin() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        ticket.status = status


def test_reply_reopens_solved(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    first = intake.take(customer_mail("<m1@example.org>"))
    set_status(session_factory, first.ticket_number, "solved")

    reply = intake.take(
        customer_mail("<m2@example.org>", extra_headers="In-Reply-To: <m1@example.org>\r\n")
    )
    with session_factory() as session:
        events = session.scalars(select(Event.kind).order_by(Event.id)).all()

    assert reply.outcome == Outcome.FOLLOW_UP
    assert intake.ticket(first.ticket_number).status == "open"
    assert "status_changed" in events


def test_reply_to_closed_links(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    first = intake.take(customer_mail("<m1@example.org>"))
    set_status(session_factory, first.ticket_number, "closed")

    reply = intake.take(
        customer_mail("<m2@example.org>", extra_headers="References: <m1@example.org>\r\n")
    )
    new_ticket = intake.ticket(reply.ticket_number)
    old_ticket = intake.ticket(first.ticket_number)

    assert reply.outcome == Outcome.LINKED_TICKET
    assert reply.ticket_number != first.ticket_number
    assert new_ticket.linked_ticket_id == old_ticket.id
    assert old_ticket.status == "closed"
    assert intake.outbox_kinds()[-1] == ("post_ticket", reply.ticket_number)


def test_auto_reply_keeps_status(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    first = intake.take(customer_mail("<m1@example.org>"))
    set_status(session_factory, first.ticket_number, "solved")

    result = intake.take(
        customer_mail(
            "<ooo@example.org>",
            subject="Out of Office: Order 5512 never arrived",
            extra_headers="In-Reply-To: <m1@example.org>\r\nAuto-Submitted: auto-replied\r\n",
        )
    )

    assert result.ticket_number == first.ticket_number
    assert result.kind == "auto_reply"
    assert intake.ticket(first.ticket_number).status == "solved"


def test_bounce_joins_its_ticket(intake: Intake) -> None:
    intake.seed_ticket(
        1,
        "Order 5512 never arrived",
        "marta@example.org",
        "on_hold",
        ["<m1@example.org>", "<reply-1@helpdesk.example.com>"],
    )

    result = intake.take(bounce_for("<reply-1@helpdesk.example.com>"))

    assert result.ticket_number == 1
    assert result.outcome == Outcome.FOLLOW_UP
    assert result.kind == "bounce"
    assert intake.ticket_count() == 1
    assert intake.ticket(1).status == "on_hold"


def test_subject_tag_from_customer(intake: Intake) -> None:
    intake.seed_ticket(7, "Order 5512 never arrived", "marta@example.org", "on_hold", [])

    result = intake.take(customer_mail("<m9@example.org>", subject="Re: Order 5512 [#7]"))

    assert result.ticket_number == 7
    assert intake.ticket(7).status == "open"


def test_subject_tag_other_address(intake: Intake) -> None:
    intake.seed_ticket(7, "Order 5512 never arrived", "marta@example.org", "on_hold", [])

    result = intake.take(
        customer_mail("<m9@example.org>", subject="Re: Order 5512 [#7]", sender="eve@example.net")
    )

    assert result.outcome == Outcome.NEW_TICKET
    assert intake.ticket(7).status == "on_hold"


def test_same_id_different_mail(intake: Intake) -> None:
    first = intake.take(customer_mail("<shared@example.org>", body="First question"))
    second = intake.take(customer_mail("<shared@example.org>", body="A different question"))

    assert first.outcome == Outcome.NEW_TICKET
    assert second.outcome == Outcome.NEW_TICKET
    assert intake.ticket_count() == 2


def test_redelivery_with_new_trace(intake: Intake) -> None:
    original = customer_mail("<m1@example.org>")
    redelivered = b"Received: from relay2.example.org by mx.example.com\r\n" + original.replace(
        b"\r\n", b"\n"
    )

    intake.take(original)
    again = intake.take(redelivered)

    assert again.outcome == Outcome.DUPLICATE
    assert intake.ticket_count() == 1


def test_silent_intake_posts_nothing(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    intake = make_intake(session_factory, tmp_path / "data", silent=True)

    result = intake.take(customer_mail("<m1@example.org>"))

    assert result.outcome == Outcome.NEW_TICKET
    assert intake.outbox_kinds() == []
    assert intake.ticket(result.ticket_number).is_silent


@pytest.mark.parametrize(
    "files",
    [
        [b"", bytes(range(256)) * 4, "Bonjour".encode("utf-16")],
        [b"no header block at all", b"another lone body"],
        [b"\x00\x01\n\nsame tail", b"\x02\x03\n\nsame tail"],
    ],
)
def test_unreadable_mails_kept_apart(intake: Intake, files: list[bytes]) -> None:
    outcomes = [intake.take(raw).outcome for raw in files]

    assert outcomes == [Outcome.NEW_TICKET] * len(files)
    assert intake.ticket_count() == len(files)


def long_header_mail(index: int) -> bytes:
    name = "Очень " * 80
    return (
        f"From: {name} <{'x' * 330}@example.org>\r\nTo: support@helpdesk.example.com\r\n"
        f"Subject: Long headers {index}\r\nMessage-ID: <{'я' * 700}-{index}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the file.\r\n"
        "--b\r\nContent-Type: text/plain\r\n"
        f'Content-Disposition: attachment; filename="{"f" * 600}.txt"\r\n\r\nfile\r\n--b--\r\n'
    ).encode()


def test_long_values_stored(intake: Intake) -> None:
    first = intake.take(long_header_mail(1))
    second = intake.take(long_header_mail(2))
    message = intake.ticket(first.ticket_number).messages[0]
    codes = [note["code"] for note in message.notes]

    assert first.outcome == Outcome.NEW_TICKET
    assert second.outcome == Outcome.NEW_TICKET
    assert len(message.from_name) <= 300
    assert message.attachments[0].filename.endswith(".txt")
    assert len(message.attachments[0].filename) <= 500
    assert "value-truncated" in codes


def test_sender_without_address(intake: Intake) -> None:
    intake.seed_ticket(4, "Printer jams", "marta@example.org", "open", [])
    mail = (
        b"From: Just A Name\r\nTo: support@helpdesk.example.com\r\n"
        b"Subject: Question [#4]\r\nMessage-ID: <noaddr-{n}@example.org>\r\n\r\nHello?\r\n"
    )

    first = intake.take(mail.replace(b"{n}", b"1"))
    second = intake.take(mail.replace(b"{n}", b"2"))
    ticket = intake.ticket(first.ticket_number)

    assert first.ticket_number != 4
    assert second.ticket_number != 4
    assert first.ticket_number != second.ticket_number
    assert ticket.customer.addresses == []
    assert ticket.customer.name == "Just A Name"
