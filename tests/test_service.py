"""The service loop on a Maildir with the console messenger, and outbox delivery with retries."""

import io
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from bot.service import Service
from handlers.dispatch import Dispatcher, deliver_pending
from handlers.i18n import Translator
from handlers.intake import IntakeSettings, ingest
from handlers.messenger import MessageView, ThreadRef, TicketCard
from mailbridge.maildir import MaildirSource
from store.blobs import BlobStore
from store.models import OutboxItem
from store.types import utcnow

DEMO_MAIL = Path(__file__).resolve().parent.parent / "bot" / "demo_mail"


def make_maildir(root: Path, files: list[str]) -> MaildirSource:
    for folder in ("new", "cur", "tmp"):
        (root / folder).mkdir(parents=True)
    for index, name in enumerate(files):
        (root / "new" / f"{1700000000 + index}.{index}.test").write_bytes(
            (DEMO_MAIL / name).read_bytes()
        )
    return MaildirSource(root, poll_interval=0.01, settle_seconds=0)


def make_service(
    session_factory: sessionmaker[Session],
    source: MaildirSource,
    tmp_path: Path,
    output: io.StringIO,
) -> Service:
    translator = Translator("en")
    return Service(
        session_factory=session_factory,
        intake_settings=IntakeSettings(
            blobs=BlobStore(tmp_path / "data"), max_attachment_bytes=1 << 20
        ),
        source=source,
        dispatcher=Dispatcher(session_factory, [ConsoleMessenger(output, translator)], translator),
    )


def test_maildir_moves_to_cur(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    source = make_maildir(tmp_path / "Maildir", ["01-sms-code.eml", "02-refund.eml"])
    service = make_service(session_factory, source, tmp_path, io.StringIO())

    results = service.poll_once()

    assert [result.outcome for result in results] == ["new_ticket", "new_ticket"]
    assert list((tmp_path / "Maildir" / "new").iterdir()) == []
    assert sorted(path.name for path in (tmp_path / "Maildir" / "cur").iterdir()) == [
        "1700000000.0.test:2,",
        "1700000001.1.test:2,",
    ]


def test_maildir_ignores_cur(tmp_path: Path) -> None:
    source = make_maildir(tmp_path / "Maildir", [])
    (tmp_path / "Maildir" / "cur" / "old:2,S").write_bytes(b"Subject: old\r\n\r\nold mail\r\n")

    assert list(source.fetch_new()) == []


def test_maildir_path_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is not a Maildir"):
        MaildirSource(tmp_path)


def test_follow_up_under_ticket(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    output = io.StringIO()
    source = make_maildir(tmp_path / "Maildir", ["01-sms-code.eml", "04-sms-code-follow-up.eml"])
    service = make_service(session_factory, source, tmp_path, output)

    service.poll_once()
    printed = output.getvalue()

    assert printed.count("━" * 72) == 1
    assert "#1 [new · normal] Не приходит СМС с кодом подтверждения" in printed
    assert "↳ #1 email from Ольга Смирнова <olga.smirnova@example.org>" in printed
    assert printed.index("Не приходит СМС") < printed.index("Забыла добавить")


def test_crash_before_acknowledge(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    output = io.StringIO()
    source = make_maildir(tmp_path / "Maildir", ["02-refund.eml"])
    service = make_service(session_factory, source, tmp_path, output)
    for mail in source.fetch_new():
        ingest(
            mail, session_factory, service.intake_settings
        )  # the process dies before acknowledging

    results = service.poll_once()

    assert [result.outcome for result in results] == ["duplicate"]
    assert output.getvalue().count("Refund for order 48213") == 1
    assert list((tmp_path / "Maildir" / "new").iterdir()) == []


class FlakyMessenger:
    """A messenger whose remote end is down until `is_up` is set."""

    name = "flaky"

    def __init__(self) -> None:
        self.is_up = False
        self.posted: list[str] = []

    def post_ticket(self, card: TicketCard) -> ThreadRef:
        if not self.is_up:
            raise ConnectionError("remote end unreachable")
        self.posted.append(f"card {card.number}")
        return ThreadRef(self.name, "chat", str(card.number))

    def update_ticket(self, thread: ThreadRef, card: TicketCard) -> None:
        self.posted.append(f"update {card.number}")

    def post_in_thread(self, thread: ThreadRef, message: MessageView) -> str | None:
        self.posted.append(f"message {message.ticket_number}")
        return None

    def update_in_thread(self, thread: ThreadRef, post_id: str, message: MessageView) -> None:
        self.posted.append(f"update of {post_id}")

    def notify_person(self, user_id: str, text: str) -> None:
        self.posted.append(f"notice {user_id}")


def test_outbox_retries_in_order(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    source = make_maildir(tmp_path / "Maildir", ["01-sms-code.eml", "04-sms-code-follow-up.eml"])
    messenger = FlakyMessenger()
    service = make_service(session_factory, source, tmp_path, io.StringIO())
    service.dispatcher = Dispatcher(session_factory, [messenger], Translator("en"))
    translator = Translator("en")

    service.poll_once()
    with session_factory() as session:
        items = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
    states_while_down = [(item.state, item.attempts, item.last_error) for item in items]

    messenger.is_up = True
    with session_factory.begin() as session:
        for item in session.scalars(select(OutboxItem)):
            item.next_attempt_at = utcnow() - timedelta(seconds=1)
    completed = deliver_pending(session_factory, [messenger], translator)
    again = deliver_pending(session_factory, [messenger], translator)

    assert states_while_down == [
        ("pending", 1, "ConnectionError: remote end unreachable"),
        ("pending", 0, "waiting for the ticket's card"),
    ]
    assert completed == 2
    assert again == 0
    assert messenger.posted == ["card 1", "message 1"]


class SlowMessenger(FlakyMessenger):
    """A messenger that is up but slow, so two workers deliver at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.is_up = True
        self._lock = threading.Lock()

    def post_ticket(self, card: TicketCard) -> ThreadRef:
        time.sleep(0.05)
        with self._lock:
            return super().post_ticket(card)


def test_two_workers_post_once(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    source = make_maildir(
        tmp_path / "Maildir", ["01-sms-code.eml", "02-refund.eml", "06-delivery-1251.eml"]
    )
    service = make_service(session_factory, source, tmp_path, io.StringIO())
    for mail in source.fetch_new():
        service.handle_mail(mail)
    messenger = SlowMessenger()
    translator = Translator("en")

    workers = [
        threading.Thread(target=deliver_pending, args=(session_factory, [messenger], translator))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert sorted(messenger.posted) == ["card 1", "card 2", "card 3"]
