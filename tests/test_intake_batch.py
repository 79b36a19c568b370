"""Batched intake: one transaction for several mails, a SAVEPOINT for each."""

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import handlers.intake
from bot.service import batches
from handlers.intake import (
    BatchIntakeError,
    IntakeSettings,
    Outcome,
    ingest,
    ingest_batch,
)
from mailbridge.sources import IncomingMail
from store.blobs import BlobStore
from store.models import Event, Message, Ticket
from store.tickets import find_message_by_identity
from tests.test_service import DEMO_MAIL, make_maildir, make_service

FILES = ["01-sms-code.eml", "02-refund.eml", "03-invoice-vat.eml"]


def demo_mail(name: str) -> IncomingMail:
    return IncomingMail(raw=(DEMO_MAIL / name).read_bytes(), mailbox="test", source_ref=name)


def settings(tmp_path: Path) -> IntakeSettings:
    return IntakeSettings(blobs=BlobStore(tmp_path / "data"), max_attachment_bytes=1 << 20)


def count(session_factory: sessionmaker[Session], model: type[Message] | type[Ticket]) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def fail_on_subject(monkeypatch: pytest.MonkeyPatch, subject_part: str) -> None:
    """Make matching raise for the mail whose subject contains `subject_part`."""
    real_find_ticket = handlers.intake.find_ticket

    def find_ticket(session, parsed, classification, received_at):  # type: ignore[no-untyped-def]
        if subject_part in parsed.subject:
            raise RuntimeError(f"matching failed on {parsed.subject!r}")
        return real_find_ticket(session, parsed, classification, received_at)

    monkeypatch.setattr(handlers.intake, "find_ticket", find_ticket)


def test_batch_stores_each_mail(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    results = ingest_batch([demo_mail(name) for name in FILES], session_factory, settings(tmp_path))

    assert [result.outcome for result in results] == [Outcome.NEW_TICKET] * 3
    assert [result.ticket_number for result in results] == [1, 2, 3]
    assert "СМС" in results[0].subject
    assert count(session_factory, Ticket) == 3
    assert count(session_factory, Message) == 3
    with session_factory() as session:
        kinds = session.scalars(select(Event.kind).order_by(Event.id)).all()
    assert kinds == ["ticket_created", "email_received"] * 3


def test_batch_follow_up_in_same_batch(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    mails = [demo_mail("01-sms-code.eml"), demo_mail("04-sms-code-follow-up.eml")]

    results = ingest_batch(mails, session_factory, settings(tmp_path))

    assert [result.outcome for result in results] == [Outcome.NEW_TICKET, Outcome.FOLLOW_UP]
    assert results[1].ticket_number == results[0].ticket_number


def test_batch_repeated_mail_once(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    mails = [demo_mail("02-refund.eml"), demo_mail("02-refund.eml")]

    results = ingest_batch(mails, session_factory, settings(tmp_path))

    assert [result.outcome for result in results] == [Outcome.NEW_TICKET, Outcome.DUPLICATE]
    assert results[1].message_row_id == results[0].message_row_id
    assert count(session_factory, Message) == 1


def test_batch_concurrent_duplicate_keeps_others(
    session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mail stored by another worker after our look-up fails only its own SAVEPOINT."""
    intake_settings = settings(tmp_path)
    stored = ingest(demo_mail("02-refund.eml"), session_factory, intake_settings)
    looked_up: list[str] = []

    def miss_first_look_up(session: Session, identity_key: str) -> Message | None:
        # The first look-up of the refund mail happens "before the other worker committed".
        if identity_key not in looked_up:
            looked_up.append(identity_key)
            return None
        return find_message_by_identity(session, identity_key)

    monkeypatch.setattr(handlers.intake, "find_message_by_identity", miss_first_look_up)
    mails = [demo_mail(name) for name in FILES]

    results = ingest_batch(mails, session_factory, intake_settings)

    assert [result.outcome for result in results] == [
        Outcome.NEW_TICKET,
        Outcome.DUPLICATE,
        Outcome.NEW_TICKET,
    ]
    assert results[1].message_row_id == stored.message_row_id
    assert count(session_factory, Message) == 3
    assert count(session_factory, Ticket) == 3


def test_batch_failure_commits_earlier(
    session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_on_subject(monkeypatch, "Refund")
    mails = [demo_mail(name) for name in FILES]

    with pytest.raises(BatchIntakeError) as raised:
        ingest_batch(mails, session_factory, settings(tmp_path))

    assert [result.outcome for result in raised.value.results] == [Outcome.NEW_TICKET]
    assert raised.value.failed is mails[1]
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert count(session_factory, Message) == 1
    assert count(session_factory, Ticket) == 1


def test_poll_acknowledges_committed_only(
    session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_on_subject(monkeypatch, "Refund")
    source = make_maildir(tmp_path / "Maildir", FILES)
    service = make_service(session_factory, source, tmp_path, io.StringIO())

    with pytest.raises(BatchIntakeError):
        service.poll_once()

    assert [path.name for path in (tmp_path / "Maildir" / "cur").iterdir()] == [
        "1700000000.0.test:2,"
    ]
    assert sorted(path.name for path in (tmp_path / "Maildir" / "new").iterdir()) == [
        "1700000001.1.test",
        "1700000002.2.test",
    ]

    monkeypatch.undo()
    results = service.poll_once()

    assert [result.outcome for result in results] == [Outcome.NEW_TICKET] * 2
    assert list((tmp_path / "Maildir" / "new").iterdir()) == []
    assert count(session_factory, Ticket) == 3


def test_batches_split_by_count_and_bytes() -> None:
    mails = [IncomingMail(raw=b"x" * size, mailbox="test") for size in (10, 10, 10, 50, 10)]

    sizes = [[len(mail.raw) for mail in batch] for batch in batches(mails, 2, 40)]

    assert sizes == [[10, 10], [10], [50], [10]]
