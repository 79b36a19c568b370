"""Delivery holds no database transaction while a messenger is called, so intake goes on.

On SQLite every transaction holds the database's one write lock. A messenger
that is slow (a long message in many parts, a rate limit) must not stop
intake meanwhile.
"""

import io
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from handlers import dispatch
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.lease_keeper import LeaseKeeper
from handlers.messenger import ThreadRef, TicketCard
from store.models import OutboxItem
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


def claimed_until(session_factory: sessionmaker[Session]) -> datetime:
    with session_factory() as session:
        return session.scalars(select(OutboxItem.next_attempt_at)).one()


def test_lease_extended_while_delivering(
    session_factory: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "LEASE_RENEWAL", timedelta(milliseconds=20))
    intake = make_intake(session_factory, tmp_path / "data")
    intake.take(customer_mail("<lease-1@example.org>", "First"))
    messenger = GatedMessenger()
    delivery = threading.Thread(target=Dispatcher(session_factory, [messenger], EN).deliver_pending)
    delivery.start()
    assert messenger.entered.wait(WAIT_SECONDS)

    first_lease_end = claimed_until(session_factory)
    extended = wait_for(lambda: claimed_until(session_factory) > first_lease_end)
    taken_by_other = Dispatcher(session_factory, [ConsoleMessenger(io.StringIO(), EN)], EN)
    delivered_twice = taken_by_other.deliver_pending()
    messenger.gate.set()
    delivery.join(WAIT_SECONDS)

    with session_factory() as session:
        item = session.scalars(select(OutboxItem)).one()
    assert extended
    assert delivered_twice == 0
    assert item.state == "done"


def test_lease_not_extended_after_finish(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    intake = make_intake(session_factory, tmp_path / "data")
    intake.take(customer_mail("<lease-2@example.org>", "First"))
    Dispatcher(session_factory, [ConsoleMessenger(io.StringIO(), EN)], EN).deliver_pending()
    with session_factory() as session:
        item_id = session.scalars(select(OutboxItem.id)).one()
    keeper = LeaseKeeper(
        session_factory, item_id, dispatch.DELIVERING, dispatch.DELIVERY_LEASE, timedelta(hours=1)
    )

    assert keeper.extend() is False


def wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
