"""Batched intake looks up customers and threads once per batch and still places every mail."""

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from handlers.intake import IntakeResult, Outcome, ingest_batch
from mailbridge.sources import IncomingMail
from store.models import Customer, CustomerAddress
from tests.intake_support import OWN_ADDRESS, Intake


@pytest.fixture(autouse=True)
def no_fallback(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test whose batch had to be stored again mail by mail.

    A look-up that went stale within its batch would make an INSERT conflict,
    and the batch would then be stored again without look-ups, hiding the fault.
    """
    caplog.set_level(logging.INFO, logger="handlers.intake")
    yield
    records = caplog.get_records("call")
    fallbacks = [record for record in records if "storing each in a SAVEPOINT" in record.msg]
    assert fallbacks == []


def batch(intake: Intake, *raws: bytes) -> list[IntakeResult]:
    mails = [IncomingMail(raw=raw, mailbox="test") for raw in raws]
    return ingest_batch(mails, intake.session_factory, intake.settings)


def mail_from(
    sender: str, message_id: str, subject: str = "Printer offline", reply_to: str | None = None
) -> bytes:
    """Return a plain-text mail to support, with `reply_to` in its threading headers if given."""
    thread_headers = f"In-Reply-To: {reply_to}\r\nReferences: {reply_to}\r\n" if reply_to else ""
    return (
        f"From: {sender}\r\nTo: {OWN_ADDRESS}\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n{thread_headers}"
        "Date: Tue, 18 Mar 2025 09:00:00 +0100\r\n\r\n"
        "The printer in room 4 is offline again.\r\n"
    ).encode()


def bounce_for(original_id: str) -> bytes:
    """Return a delivery-status report saying that the mail `original_id` could not be delivered."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        f"To: {OWN_ADDRESS}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce-1@mx.example.org>\r\nDate: Tue, 18 Mar 2025 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        "Final-Recipient: rfc822; marta@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {OWN_ADDRESS}\r\nTo: marta@example.org\r\n"
        f"Subject: Re: Order 5512 never arrived [#1]\r\nMessage-ID: {original_id}\r\n"
        "--b1--\r\n"
    ).encode()


def customers(session_factory: sessionmaker[Session]) -> list[tuple[str, str]]:
    """Return (address, customer name) of every customer address."""
    with session_factory() as session:
        rows = session.execute(
            select(CustomerAddress.address, Customer.name)
            .join(Customer, Customer.id == CustomerAddress.customer_id)
            .order_by(CustomerAddress.address)
        ).all()
        return [(address, name) for address, name in rows]


def customer_count(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(Customer)) or 0


def test_new_sender_twice_one_customer(intake: Intake) -> None:
    results = batch(
        intake,
        mail_from("ops@example.net", "<p1@example.net>"),
        mail_from("Olga Ops <OPS@example.net>", "<p2@example.net>"),
    )

    assert [result.outcome for result in results] == [Outcome.NEW_TICKET, Outcome.NEW_TICKET]
    assert customer_count(intake.session_factory) == 1
    # The second mail brings the name that the first one lacked.
    assert customers(intake.session_factory) == [("ops@example.net", "Olga Ops")]


def test_known_customer_across_batches(intake: Intake) -> None:
    batch(intake, mail_from("Olga Ops <ops@example.net>", "<p1@example.net>"))
    batch(intake, mail_from("ops@example.net", "<p2@example.net>"))

    assert customer_count(intake.session_factory) == 1
    assert customers(intake.session_factory) == [("ops@example.net", "Olga Ops")]


def test_reply_to_later_stored_message(intake: Intake) -> None:
    marta = "Marta Example <marta@example.org>"
    first = batch(intake, mail_from(marta, "<a1@example.org>"))[0]

    results = batch(
        intake,
        mail_from(marta, "<a2@example.org>", subject="Another question"),
        mail_from(marta, "<a3@example.org>", reply_to="<a2@example.org>"),
        mail_from(marta, "<a4@example.org>", reply_to="<a1@example.org>"),
    )

    assert [result.outcome for result in results] == [
        Outcome.NEW_TICKET,
        Outcome.FOLLOW_UP,
        Outcome.FOLLOW_UP,
    ]
    assert results[1].ticket_number == results[0].ticket_number
    assert results[2].ticket_number == first.ticket_number


def test_bounce_in_batch_joins_ticket(intake: Intake) -> None:
    intake.seed_ticket(
        1,
        "Order 5512 never arrived",
        "marta@example.org",
        "on_hold",
        ["<m1@example.org>", "<reply-1@helpdesk.example.com>"],
    )

    results = batch(
        intake,
        mail_from("ops@example.net", "<p1@example.net>"),
        bounce_for("<reply-1@helpdesk.example.com>"),
    )

    assert results[0].outcome == Outcome.NEW_TICKET
    assert results[1].outcome == Outcome.FOLLOW_UP
    assert results[1].ticket_number == 1
    assert results[1].kind == "bounce"
