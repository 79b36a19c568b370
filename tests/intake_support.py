"""Helpers for intake tests: building mail, feeding it in and the tickets a case starts from."""

import email.policy
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from handlers.intake import IntakeResult, IntakeSettings, ingest
from handlers.replies import ReplySettings
from mailbridge.sources import IncomingMail, MailboxPosition
from store.blobs import BlobStore
from store.models import (
    Customer,
    CustomerAddress,
    Direction,
    Message,
    MessageKind,
    OutboxItem,
    Ticket,
)

CASES_DIR = Path(__file__).resolve().parent / "cases"
OWN_ADDRESS = "support@helpdesk.example.com"
CUSTOMER = "Marta Example <marta@example.org>"
MAIL_DATE = "Tue, 18 Mar 2025 09:00:00 +0100"


def case_file(case: str, name: str = "input.eml") -> bytes:
    matches = sorted(CASES_DIR.glob(f"{case}-*"))
    assert matches, f"no case folder starting with {case} under {CASES_DIR}"
    return (matches[0] / name).read_bytes()


def case_payload(case: str) -> dict[str, Any]:
    return json.loads(case_file(case, "payload.json"))


def imap_time(text: str) -> datetime:
    """Parse an IMAP INTERNALDATE such as "18-Mar-2025 08:10:05 +0000"."""
    return datetime.strptime(text, "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)


def customer_mail(
    message_id: str,
    subject: str = "Cannot export report",
    text: str = "The export fails for long ranges.",
    reply_to: str | None = None,
    date: str = MAIL_DATE,
) -> bytes:
    """Return a plain-text email from the customer to support, with CRLF line ends.

    With `reply_to`, the mail names that Message-ID in In-Reply-To and References.
    """
    thread_headers = f"In-Reply-To: {reply_to}\r\nReferences: {reply_to}\r\n" if reply_to else ""
    return (
        f"From: {CUSTOMER}\r\nTo: {OWN_ADDRESS}\r\n"
        f"Subject: {subject}\r\nMessage-ID: {message_id}\r\n"
        f"{thread_headers}Date: {date}\r\n\r\n{text}\r\n"
    ).encode()


def mail_with_attachments(
    message_id: str,
    subject: str,
    text: str,
    files: Iterable[tuple[str, bytes, str]],
    reply_to: str | None = None,
    date: str = MAIL_DATE,
) -> bytes:
    """Return an email from the customer to support with `files` attached.

    Each file is (filename, content, MIME type such as "image/png"). With
    `reply_to`, the mail names that Message-ID in In-Reply-To and References.
    """
    message = EmailMessage()
    message["From"] = CUSTOMER
    message["To"] = OWN_ADDRESS
    message["Subject"] = subject
    message["Message-ID"] = message_id
    if reply_to is not None:
        message["In-Reply-To"] = reply_to
        message["References"] = reply_to
    message["Date"] = date
    message.set_content(text)
    for filename, content, mime_type in files:
        maintype, subtype = mime_type.split("/")
        message.add_attachment(content, maintype, subtype, filename=filename)
    return message.as_bytes(policy=email.policy.SMTP)


@dataclass
class Intake:
    session_factory: sessionmaker[Session]
    settings: IntakeSettings

    def take(
        self,
        raw: bytes,
        received_at: datetime | None = None,
        position: MailboxPosition | None = None,
        mailbox: str = "test",
    ) -> IntakeResult:
        """Take `raw` in as if it arrived at `received_at`.

        Without `received_at`, the mail arrives at the time its Date header
        gives (or now, without one), so that tests written around Date
        headers keep their times: intake times tickets by arrival.
        """
        arrival = received_at or _date_header_time(raw)
        mail = IncomingMail(raw=raw, mailbox=mailbox, received_at=arrival, position=position)
        return ingest(mail, self.session_factory, self.settings)

    def ticket(self, number: int) -> Ticket:
        with self.session_factory() as session:
            ticket = session.scalars(
                select(Ticket)
                .where(Ticket.number == number)
                .options(
                    selectinload(Ticket.messages).selectinload(Message.attachments),
                    selectinload(Ticket.customer).selectinload(Customer.addresses),
                    selectinload(Ticket.tags),
                )
            ).one()
            return ticket

    def ticket_count(self) -> int:
        with self.session_factory() as session:
            return session.scalar(select(func.count()).select_from(Ticket)) or 0

    def outbox_kinds(self) -> list[tuple[str, int]]:
        with self.session_factory() as session:
            rows = session.execute(
                select(OutboxItem.kind, Ticket.number)
                .join(Ticket, Ticket.id == OutboxItem.ticket_id)
                .order_by(OutboxItem.id)
            ).all()
            return [(kind, number) for kind, number in rows]

    def seed_ticket(
        self,
        number: int,
        subject: str,
        requester: str,
        status: str,
        known_ids: list[str],
        updated_at: datetime | None = None,
    ) -> None:
        """Create a ticket as it stood before a case, with the Message-IDs it already knows."""
        with self.session_factory.begin() as session:
            customer = Customer(name="", addresses=[CustomerAddress(address=requester)])
            ticket = Ticket(number=number, subject=subject, status=status, customer=customer)
            if updated_at is not None:
                ticket.updated_at = updated_at
            session.add(ticket)
            session.flush()
            for message_id in known_ids:
                ours = message_id.endswith("@helpdesk.example.com>")
                session.add(
                    Message(
                        ticket_id=ticket.id,
                        direction=Direction.OUTBOUND if ours else Direction.INBOUND,
                        kind=MessageKind.AGENT_REPLY if ours else MessageKind.CUSTOMER,
                        message_id=message_id,
                        subject=subject,
                        from_address=OWN_ADDRESS if ours else requester,
                    )
                )


def make_intake(
    session_factory: sessionmaker[Session], data_dir: Path, silent: bool = False
) -> Intake:
    settings = IntakeSettings(
        blobs=BlobStore(data_dir),
        max_attachment_bytes=20 * 1024 * 1024,
        own_addresses=frozenset({OWN_ADDRESS}),
        silent=silent,
    )
    return Intake(session_factory, settings)


def reply_settings(data_dir: Path) -> ReplySettings:
    """Return the reply settings of the test desk: support's address and blobs in `data_dir`."""
    return ReplySettings(
        blobs=BlobStore(data_dir),
        support_address=OWN_ADDRESS,
        support_name="Example Support",
        own_addresses=frozenset({OWN_ADDRESS}),
    )


def notes(session_factory: sessionmaker[Session]) -> list[str]:
    """Return the visible text of every internal note in the database."""
    with session_factory() as session:
        query = select(Message.visible_text).where(Message.kind == MessageKind.NOTE)
        return list(session.scalars(query).all())


def assignee(session_factory: sessionmaker[Session]) -> str | None:
    """Return the assignee of the database's only ticket, or None when it is unassigned."""
    with session_factory() as session:
        return session.scalars(select(Ticket.assignee)).one()


def _date_header_time(raw: bytes) -> datetime | None:
    """Return the time of `raw`'s Date header in UTC, or None when it has no valid one."""
    headers = BytesParser(policy=compat32).parsebytes(raw, headersonly=True)
    value = headers.get("Date")
    if value is None:
        return None
    try:
        written = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if written.tzinfo is None:
        return None
    return written.astimezone(UTC)
