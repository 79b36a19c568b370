"""Delivery holds no database transaction while a messenger is called, so intake goes on.

On SQLite every transaction holds the database's one write lock. A messenger
that is slow (a long message in many parts, a rate limit) must not stop
intake meanwhile.
"""

import io
import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.messenger import ThreadRef, TicketCard
from tests.intake_support import customer_mail, make_intake

EN = Translator("en")
# Generous: intake of one mail takes milliseconds; only a held lock makes it wait this long.
WAIT_SECONDS = 20.0


class GatedMessenger(ConsoleMessenger):
    """A console messenger whose card post waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(io.StringIO(), EN)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def post_ticket(self, card: TicketCard, chat: str | None = None) -> ThreadRef:
        self.entered.set()
        self.gate.wait(WAIT_SECONDS)
        return super().post_ticket(card, chat)


def test_intake_runs_while_a_card_is_posted(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    intake = make_intake(session_factory, tmp_path / "data")
    intake.take(customer_mail("<lock-1@example.org>", "First"))
    messenger = GatedMessenger()
    dispatcher = Dispatcher(session_factory, [messenger], EN)
    delivery = threading.Thread(target=dispatcher.deliver_pending)
    delivery.start()
    assert messenger.entered.wait(WAIT_SECONDS)

    second = threading.Thread(
        target=intake.take, args=(customer_mail("<lock-2@example.org>", "Second"),)
    )
    second.start()
    second.join(WAIT_SECONDS)
    stored_while_posting = not second.is_alive()
    messenger.gate.set()
    delivery.join(WAIT_SECONDS)

    assert stored_while_posting
    assert intake.ticket_count() == 2
    assert "#1" in messenger.output.getvalue()
