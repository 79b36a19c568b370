"""Batched intake without a SAVEPOINT per mail, and its fallback to SAVEPOINTs when a mail fails."""

import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import handlers.intake
from handlers.intake import BatchIntakeError, IntakeSettings, Outcome, ingest, ingest_batch
from mailbridge.sources import IncomingMail
from store.blobs import BlobStore
from store.models import Message, Ticket
from store.tickets import StoredMessage


def mail(message_id: str, sender: str = "Rita Field <rita@example.org>") -> IncomingMail:
    raw = (
        f"From: {sender}\r\nTo: support@example.com\r\nSubject: Parcel {message_id}\r\n"
        f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: {message_id}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nWhere is my parcel?\r\n"
    ).encode()
    return IncomingMail(raw=raw, mailbox="test", source_ref=message_id)


def settings(root: Path) -> IntakeSettings:
    return IntakeSettings(blobs=BlobStore(root), max_attachment_bytes=1 << 20)


def count(session_factory: sessionmaker[Session], model: type[Message] | type[Ticket]) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def stored_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return the log lines of mails stored as new messages, leaving out skipped duplicates."""
    return [record.getMessage() for record in caplog.records if "stored as %s" in record.msg]


def test_batch_look_up_finds_stored(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    intake_settings = settings(tmp_path / "data")
    first = ingest(mail("<a@example.org>"), session_factory, intake_settings)

    results = ingest_batch(
        [mail("<a@example.org>"), mail("<b@example.org>")], session_factory, intake_settings
    )

    assert [result.outcome for result in results] == [Outcome.DUPLICATE, Outcome.NEW_TICKET]
    assert results[0].message_row_id == first.message_row_id
    assert results[0].ticket_number == first.ticket_number
    assert count(session_factory, Message) == 2


def test_race_after_look_up_falls_back(
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A mail another worker committed after the batch look-up fails the batch, not the others."""
    intake_settings = settings(tmp_path / "data")
    stored = ingest(mail("<b@example.org>"), session_factory, intake_settings)
    batch_look_ups: list[list[str]] = []

    def look_up_before_commit(session: Session, keys: list[str]) -> dict[str, StoredMessage]:
        # The batch look-up runs "before the other worker committed" and finds nothing.
        batch_look_ups.append(list(keys))
        return {}

    monkeypatch.setattr(handlers.intake, "find_messages_by_identities", look_up_before_commit)
    mails = [mail("<a@example.org>"), mail("<b@example.org>"), mail("<c@example.org>")]
    caplog.set_level(logging.INFO, logger="handlers.intake")
    caplog.clear()

    results = ingest_batch(mails, session_factory, intake_settings)

    assert len(batch_look_ups) == 1
    assert [result.outcome for result in results] == [
        Outcome.NEW_TICKET,
        Outcome.DUPLICATE,
        Outcome.NEW_TICKET,
    ]
    assert results[1].message_row_id == stored.message_row_id
    assert [result.ticket_number for result in results] == [2, 1, 3]
    assert count(session_factory, Message) == 3
    assert count(session_factory, Ticket) == 3
    assert any("failed in one transaction" in record.msg for record in caplog.records)
    # The rolled-back first attempt logged nothing, so each stored mail is logged once.
    assert len(stored_lines(caplog)) == 2


def test_batch_failed_blob_keeps_earlier(
    session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed blob write fails its mail only; the mails before it are committed."""
    intake_settings = settings(tmp_path / "data")
    failing = mail("<b@example.org>")
    real_write = BlobStore._write

    def write_failing_raw(store: BlobStore, digest: str, data: bytes) -> None:
        if data == failing.raw:
            raise OSError(28, "No space left on device")
        real_write(store, digest, data)

    monkeypatch.setattr(BlobStore, "_write", write_failing_raw)
    mails = [mail("<a@example.org>"), failing, mail("<c@example.org>")]

    with pytest.raises(BatchIntakeError) as raised:
        ingest_batch(mails, session_factory, intake_settings)

    assert [result.outcome for result in raised.value.results] == [Outcome.NEW_TICKET]
    assert raised.value.failed is failing
    assert isinstance(raised.value.__cause__, OSError)
    assert count(session_factory, Message) == 1
    assert count(session_factory, Ticket) == 1


def test_batch_one_log_line_each(
    session_factory: sessionmaker[Session], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handlers.intake")
    mails = [mail("<a@example.org>"), mail("<b@example.org>"), mail("<a@example.org>")]

    results = ingest_batch(mails, session_factory, settings(tmp_path / "data"))

    assert [result.outcome for result in results] == [
        Outcome.NEW_TICKET,
        Outcome.NEW_TICKET,
        Outcome.DUPLICATE,
    ]
    assert len(stored_lines(caplog)) == 2
    skipped = [record for record in caplog.records if "already stored" in record.msg]
    assert len(skipped) == 1
    assert not [record for record in caplog.records if "failed in one transaction" in record.msg]


def test_inline_blob_failure_on_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write into an existing folder runs in the caller, and its error is raised by wait()."""
    store = BlobStore(tmp_path / "data")
    data = b"attachment bytes" * 100
    digest = store.put(data)
    (store.path(digest).parent / digest).unlink()

    def fail_write(store: BlobStore, digest: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(BlobStore, "_write", fail_write)
    pending = store.put_in_background(data)

    assert pending.written.done()
    with pytest.raises(OSError):
        pending.wait()
