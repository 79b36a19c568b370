"""Helpers for intake tests: feeding mail in and building the tickets a case starts from."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from handlers.intake import IntakeResult, IntakeSettings, ingest
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


def case_file(case: str, name: str = "input.eml") -> bytes:
    matches = sorted(CASES_DIR.glob(f"{case}-*"))
    assert matches, f"no case folder starting with {case} under {CASES_DIR}"
    return (matches[0] / name).read_bytes()


def case_payload(case: str) -> dict[str, Any]:
    return json.loads(case_file(case, "payload.json"))


def imap_time(text: str) -> datetime:
    """Parse an IMAP INTERNALDATE such as "18-Mar-2025 08:10:05 +0000"."""
    return datetime.strptime(text, "%d-%b-%Y %H:%M:%S %z").astimezone(UTC)


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
        mail = IncomingMail(raw=raw, mailbox=mailbox, received_at=received_at, position=position)
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
