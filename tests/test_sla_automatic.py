"""A ticket opened by automatic mail gets no SLA targets until the customer writes."""

import dataclasses
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from handlers.people import Actor
from handlers.rules_book import RulesBook
from handlers.ticket_actions import set_priority
from tests.intake_support import (
    CUSTOMER,
    MAIL_DATE,
    OWN_ADDRESS,
    Intake,
    customer_mail,
    make_intake,
)
from tests.test_sla import CREATED, RULES

SVETA = Actor("Sveta", "agent")


def out_of_office_mail(message_id: str) -> bytes:
    """An out-of-office reply (RFC 3834) that threads to no ticket we know."""
    return (
        f"From: {CUSTOMER}\r\nTo: {OWN_ADDRESS}\r\nSubject: Out of office\r\n"
        f"Message-ID: {message_id}\r\nAuto-Submitted: auto-replied\r\n"
        f"Date: {MAIL_DATE}\r\n\r\nI am away until Monday.\r\n"
    ).encode()


def test_out_of_office_no_first_response_target(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    plain = make_intake(session_factory, tmp_path / "data")
    intake = Intake(session_factory, dataclasses.replace(plain.settings, rules=RulesBook(RULES)))

    intake.take(out_of_office_mail("<away-1@mail.example.org>"))
    opened = intake.ticket(1)
    set_priority(session_factory, SVETA, 1, "urgent", RULES)
    urgent = intake.ticket(1)

    assert opened.messages[0].kind == "auto_reply"
    assert (opened.first_response_due_at, opened.resolution_due_at) == (None, None)
    assert (urgent.first_response_due_at, urgent.resolution_due_at) == (None, None)


def test_customer_message_starts_first_response_clock(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    plain = make_intake(session_factory, tmp_path / "data")
    intake = Intake(session_factory, dataclasses.replace(plain.settings, rules=RulesBook(RULES)))
    intake.take(out_of_office_mail("<away-2@mail.example.org>"))
    written = CREATED + timedelta(hours=3)

    intake.take(
        customer_mail("<back-2@mail.example.org>", reply_to="<away-2@mail.example.org>"),
        received_at=written,
    )
    ticket = intake.ticket(1)

    assert len(ticket.messages) == 2
    assert ticket.first_response_due_at == written + timedelta(hours=4)
    assert ticket.resolution_due_at == written + timedelta(days=2)
