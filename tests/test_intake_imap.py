"""The whole intake against a real IMAP server: pymap on 127.0.0.1, the service and the console."""

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from bot.service import Service
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.intake import IntakeSettings
from mailbridge.imap import ImapSource
from store.blobs import BlobStore
from store.models import Message, Ticket
from tests.imapserver import PASSWORD, PymapServer, imap_server
from tests.intake_support import case_file

__all__ = ["imap_server"]  # a fixture, imported so pytest finds it

pytestmark = pytest.mark.imap

# A folder of its own, since a server never deletes INBOX and the UIDVALIDITY
# test recreates the folder.
FOLDER = "Support"


class Desk:
    """A service instance as `threaddesk run` builds it, with the console output captured."""

    def __init__(
        self,
        server: PymapServer,
        session_factory: sessionmaker[Session],
        data_dir: Path,
        max_message_bytes: int = 1_000_000,
    ) -> None:
        self.server = server
        self.max_message_bytes = max_message_bytes
        self.session_factory = session_factory
        self.data_dir = data_dir
        self.output = io.StringIO()
        self.source: ImapSource | None = None
        self.service: Service | None = None
        self.restart()

    def restart(self) -> None:
        """Drop the running instance without any clean-up, as a crash would, and start anew."""
        translator = Translator("en")
        self.source = ImapSource(
            self.server.url(FOLDER),
            PASSWORD,
            self.session_factory,
            max_message_bytes=self.max_message_bytes,
        )
        self.service = Service(
            session_factory=self.session_factory,
            intake_settings=IntakeSettings(
                blobs=BlobStore(self.data_dir),
                max_attachment_bytes=1_000_000,
                own_addresses=frozenset({"support@helpdesk.example.com"}),
            ),
            source=self.source,
            dispatcher=Dispatcher(
                self.session_factory, [ConsoleMessenger(self.output, translator)], translator
            ),
        )

    def poll(self) -> list[str]:
        assert self.service is not None
        return [str(result.outcome) for result in self.service.poll_once()]

    def count(self, model: type[Ticket] | type[Message]) -> int:
        with self.session_factory() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def close(self) -> None:
        if self.source is not None:
            self.source.close()


@pytest.fixture
def desk(
    imap_server: PymapServer, session_factory: sessionmaker[Session], tmp_path: Path
) -> Iterator[Desk]:
    imap_server.recreate_folder(FOLDER)
    instance = Desk(imap_server, session_factory, tmp_path / "data")
    yield instance
    instance.close()


def follow_up_of(message_id: str) -> bytes:
    return (
        "From: Anna Testova <anna.testova@example.org>\r\nTo: support@helpdesk.example.com\r\n"
        "Subject: Re: order 5512\r\nMessage-ID: <follow-up-1@mail.example.org>\r\n"
        f"In-Reply-To: {message_id}\r\nDate: Tue, 04 Mar 2025 12:00:00 +0300\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nThe parcel is still not here.\r\n"
    ).encode()


def test_old_mail_left_alone(desk: Desk) -> None:
    desk.server.append(
        case_file("003"), internaldate=datetime(2025, 3, 1, tzinfo=UTC), folder=FOLDER
    )

    first_poll = desk.poll()

    assert first_poll == []
    assert desk.count(Ticket) == 0


def test_new_mail_and_follow_up(desk: Desk) -> None:
    desk.poll()
    desk.server.append(case_file("001"), folder=FOLDER)
    desk.server.append(follow_up_of("<20250304091500.A1@mail.example.org>"), folder=FOLDER)

    outcomes = desk.poll()
    printed = desk.output.getvalue()

    assert outcomes == ["new_ticket", "follow_up"]
    assert desk.count(Ticket) == 1
    assert "#1 [new · normal] Возврат заказа №5512 — не пришла посылка" in printed
    assert "↳ #1 email from Anna Testova <anna.testova@example.org>" in printed
    assert printed.index("Возврат заказа") < printed.index("The parcel is still not here.")


def test_restart_before_commit(desk: Desk) -> None:
    desk.poll()
    desk.server.append(case_file("003"), folder=FOLDER)
    assert desk.source is not None
    fetched_then_lost = list(desk.source.fetch_new())

    desk.restart()
    outcomes = desk.poll()

    assert len(fetched_then_lost) == 1
    assert outcomes == ["new_ticket"]
    assert desk.count(Ticket) == 1


def test_restart_after_commit(desk: Desk) -> None:
    desk.poll()
    desk.server.append(case_file("003"), folder=FOLDER)
    desk.poll()

    desk.restart()
    outcomes = desk.poll()

    assert outcomes == []
    assert desk.count(Message) == 1


def test_second_delivery_is_duplicate(desk: Desk) -> None:
    desk.poll()
    desk.server.append(case_file("001"), folder=FOLDER)
    desk.poll()

    desk.server.append(case_file("001"), folder=FOLDER)
    outcomes = desk.poll()

    assert outcomes == ["duplicate"]
    assert desk.count(Ticket) == 1
    assert desk.output.getvalue().count("Возврат заказа №5512") == 1


def test_uidvalidity_change(desk: Desk) -> None:
    desk.poll()
    desk.server.append(case_file("031", "input-2.eml"), folder=FOLDER)
    desk.poll()

    desk.server.recreate_folder(FOLDER)
    desk.server.append(case_file("031", "input-2.eml"), flags=("\\Seen",), folder=FOLDER)
    desk.server.append(case_file("031"), folder=FOLDER)
    desk.restart()
    outcomes = desk.poll()
    again = desk.poll()

    assert outcomes == ["duplicate", "new_ticket"]
    assert again == []
    assert desk.count(Ticket) == 2


def test_oversized_mail_listed(desk: Desk) -> None:
    desk.max_message_bytes = 300
    desk.restart()
    desk.poll()
    desk.server.append(case_file("033"), folder=FOLDER)

    outcomes = desk.poll()
    with desk.session_factory() as session:
        message = session.scalars(select(Message)).one()
        files = [(a.filename, a.size, a.sha256, a.omitted_reason) for a in message.attachments]
        note_codes = [note["code"] for note in message.notes]
    printed = desk.output.getvalue()

    assert outcomes == ["new_ticket"]
    assert message.visible_text == "The recording shows the crash at 0:42."
    assert files == [("bug-recording.mp4", 73_398_000, None, "not-fetched")]
    assert "message-too-large" in note_codes
    assert "attachment-not-fetched" in note_codes
    assert "Attachment bug-recording.mp4 (70 MiB) was not imported" in printed
    assert "bug-recording.mp4 (70 MiB) (not stored)" in printed
