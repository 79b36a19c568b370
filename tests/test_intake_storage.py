"""The rows and files that intake writes with Core INSERTs and background blob writes."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from handlers.intake import IntakeSettings, Outcome, ingest
from mailbridge.sources import IncomingMail
from store.blobs import BlobStore
from store.models import Customer, Event, Message, Ticket
from tests.intake_support import Intake, make_intake


def mail(
    message_id: str,
    sender: str = "Rita Field <rita@example.org>",
    in_reply_to: str | None = None,
    subject: str = "Parcel never arrived",
) -> bytes:
    threading = (
        f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" if in_reply_to else ""
    )
    return (
        f"From: {sender}\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: {message_id}\r\n{threading}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nWhere is my parcel?\r\n"
    ).encode()


ARRIVAL = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
WRITTEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_ticket_time_is_arrival(intake: Intake) -> None:
    first = intake.take(mail("<old-date@example.org>"), received_at=ARRIVAL)
    answer = intake.take(
        mail("<old-answer@example.org>", in_reply_to="<old-date@example.org>"),
        received_at=ARRIVAL + timedelta(hours=1),
    )
    ticket = intake.ticket(first.ticket_number)

    assert answer.outcome == Outcome.FOLLOW_UP
    assert ticket.messages[0].sent_at == WRITTEN
    assert ticket.created_at == ARRIVAL
    assert ticket.last_customer_message_at == ARRIVAL + timedelta(hours=1)
    assert ticket.first_response_due_at is None or ticket.first_response_due_at > ARRIVAL


def test_silent_import_keeps_written_time(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    importer = make_intake(session_factory, tmp_path / "data", silent=True)

    result = importer.take(mail("<imported@example.org>"), received_at=ARRIVAL)

    assert importer.ticket(result.ticket_number).created_at == WRITTEN


def event_kinds(session_factory: sessionmaker[Session], ticket_number: int) -> list[str]:
    with session_factory() as session:
        kinds = session.scalars(
            select(Event.kind)
            .join(Ticket, Ticket.id == Event.ticket_id)
            .where(Ticket.number == ticket_number)
            .order_by(Event.id)
        )
        return list(kinds)


def test_new_ticket_rows(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    result = intake.take(mail("<first@example.org>"))
    ticket = intake.ticket(result.ticket_number)

    assert result.outcome == Outcome.NEW_TICKET
    assert ticket.status == "new"
    assert ticket.subject == "Parcel never arrived"
    assert ticket.customer.name == "Rita Field"
    assert [address.address for address in ticket.customer.addresses] == ["rita@example.org"]
    assert ticket.created_at == ticket.messages[0].received_at
    assert ticket.last_customer_message_at == ticket.messages[0].received_at
    assert ticket.messages[0].id == result.message_row_id
    assert ticket.messages[0].kind == "customer"
    assert event_kinds(session_factory, result.ticket_number) == [
        "ticket_created",
        "email_received",
    ]
    assert intake.outbox_kinds() == [("post_ticket", result.ticket_number)]


def test_known_sender_reuses_customer(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    first = intake.take(mail("<first@example.org>", sender="rita@example.org"))
    second = intake.take(mail("<second@example.org>", subject="Another parcel"))

    with session_factory() as session:
        customers = session.scalars(select(Customer)).all()
    assert second.ticket_number == first.ticket_number + 1
    assert len(customers) == 1
    assert customers[0].name == "Rita Field"


def test_number_follows_seeded_ticket(intake: Intake) -> None:
    intake.take(mail("<first@example.org>"))
    intake.seed_ticket(500, "Imported", "old@example.org", "open", [])

    result = intake.take(mail("<second@example.org>", subject="Another parcel"))

    assert result.ticket_number == 501


def test_follow_up_reopens_in_order(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    intake.seed_ticket(7, "Parcel never arrived", "rita@example.org", "solved", ["<ours@x>"])

    result = intake.take(mail("<reply@example.org>", in_reply_to="<ours@x>"))
    ticket = intake.ticket(7)

    assert result.outcome == Outcome.FOLLOW_UP
    assert result.ticket_number == 7
    assert ticket.status == "open"
    assert ticket.last_customer_message_at == ticket.messages[-1].sent_at
    assert event_kinds(session_factory, 7) == ["status_changed", "email_received"]
    assert intake.outbox_kinds() == [("update_card", 7), ("post_message", 7)]


def test_reply_to_closed_links(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    intake.seed_ticket(7, "Parcel never arrived", "rita@example.org", "closed", ["<ours@x>"])

    result = intake.take(mail("<reply@example.org>", in_reply_to="<ours@x>"))

    with session_factory() as session:
        linked_id = session.scalar(
            select(Ticket.linked_ticket_id).where(Ticket.number == result.ticket_number)
        )
        closed_id = session.scalar(select(Ticket.id).where(Ticket.number == 7))
        created = session.scalars(
            select(Event.data).where(Event.kind == "ticket_created").order_by(Event.id)
        ).all()
    assert result.outcome == Outcome.LINKED_TICKET
    assert result.ticket_number != 7
    assert linked_id == closed_id
    assert created == [{"linked_ticket": 7}]


def test_duplicate_reports_first(intake: Intake) -> None:
    raw = mail("<first@example.org>")
    first = intake.take(raw)

    again = intake.take(raw)

    assert again.outcome == Outcome.DUPLICATE
    assert again.ticket_number == first.ticket_number
    assert again.message_row_id == first.message_row_id
    assert again.visible_text == first.visible_text
    assert again.classification == first.classification


def test_failed_blob_write_stores_nothing(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_bytes(b"a file where the blob folder should be")
    settings = IntakeSettings(blobs=BlobStore(blocked), max_attachment_bytes=1 << 20)

    with pytest.raises(OSError):
        ingest(
            IncomingMail(raw=mail("<first@example.org>"), mailbox="test"), session_factory, settings
        )

    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_background_blob_complete(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "data")
    data = b"attachment bytes" * 1000

    pending = [store.put_in_background(data) for _ in range(3)]
    digests = {blob.wait() for blob in pending}

    assert digests == {store.put(data)}
    assert store.get(pending[0].digest) == data
    assert [path.name for path in store.path(pending[0].digest).parent.iterdir()] == [
        pending[0].digest
    ]
