"""Deliver queued outbox work to the messengers, at least once and effectively once.

A card is posted only while the ticket has no thread in that messenger, so a
retry after a crash finds the thread and does not post a second card. A
follow-up waits until its ticket's card is posted. A failed delivery is
retried with exponential backoff.
"""

import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from handlers.i18n import Translator
from handlers.messenger import Messenger, ThreadRef
from handlers.notifications import NOTIFY_PERSON, POST_MESSAGE, POST_TICKET, UPDATE_CARD
from handlers.people import Directory
from handlers.views import message_view, ticket_card
from store.models import ChatThread, Message, OutboxItem, Ticket
from store.types import utcnow

logger = logging.getLogger(__name__)

FIRST_RETRY_DELAY = timedelta(seconds=2)
MAX_RETRY_DELAY = timedelta(minutes=10)
BATCH_SIZE = 100


class ThreadNotReady(Exception):
    """The ticket's card is not posted yet in this messenger, so its thread does not exist."""


def deliver_pending(
    session_factory: sessionmaker[Session],
    messengers: Sequence[Messenger],
    translator: Translator,
    directory: Directory | None = None,
) -> int:
    """Deliver every due outbox item; return how many were completed."""
    completed = 0
    with session_factory() as session:
        due = session.scalars(
            select(OutboxItem.id)
            .where(OutboxItem.state == "pending", OutboxItem.next_attempt_at <= utcnow())
            .order_by(OutboxItem.id)
            .limit(BATCH_SIZE)
        ).all()

    for item_id in due:
        with session_factory.begin() as session:
            # Another worker delivering the same item holds its row lock, so this one
            # skips it instead of posting it a second time (SQLite has one writer anyway).
            item = session.get(OutboxItem, item_id, with_for_update={"skip_locked": True})
            if item is None or item.state != "pending":
                continue
            if _deliver_item(session, item, messengers, translator, directory):
                completed += 1
    return completed


def _deliver_item(
    session: Session,
    item: OutboxItem,
    messengers: Sequence[Messenger],
    translator: Translator,
    directory: Directory | None,
) -> bool:
    delivered_to = set(item.payload.get("delivered_to", []))
    for messenger in messengers:
        if messenger.name in delivered_to:
            continue
        try:
            _deliver_to(session, item, messenger, translator, directory)
        except ThreadNotReady:
            _postpone(item, "waiting for the ticket's card", count_attempt=False)
            return False
        except Exception as error:  # an adapter may fail in any way; the item is retried
            logger.warning(
                "ticket %d: outbox item %d (%s) to %s failed: %s",
                item.ticket_id,
                item.id,
                item.kind,
                messenger.name,
                error,
            )
            _postpone(item, f"{type(error).__name__}: {error}", count_attempt=True)
            item.payload = {**item.payload, "delivered_to": sorted(delivered_to)}
            return False
        delivered_to.add(messenger.name)

    item.payload = {**item.payload, "delivered_to": sorted(delivered_to)}
    item.state = "done"
    item.done_at = utcnow()
    return True


def _deliver_to(
    session: Session,
    item: OutboxItem,
    messenger: Messenger,
    translator: Translator,
    directory: Directory | None,
) -> None:
    if item.kind == NOTIFY_PERSON:
        _notify_person(item, messenger, translator, directory)
        return

    ticket = session.scalars(
        select(Ticket)
        .where(Ticket.id == item.ticket_id)
        .options(selectinload(Ticket.messages).selectinload(Message.attachments))
    ).one()
    thread = _find_thread(session, ticket, messenger)

    if item.kind == POST_TICKET:
        if thread is None:
            linked_number = _linked_ticket_number(session, ticket)
            thread = messenger.post_ticket(ticket_card(ticket, translator, linked_number))
            _remember_thread(session, ticket, thread)
        return

    if item.kind == UPDATE_CARD:
        if thread is not None:
            linked_number = _linked_ticket_number(session, ticket)
            messenger.update_ticket(thread, ticket_card(ticket, translator, linked_number))
        return

    if item.kind == POST_MESSAGE:
        if thread is None:
            raise ThreadNotReady()
        message = session.get(Message, item.message_row_id)
        if message is not None:
            messenger.post_in_thread(thread, message_view(message, ticket.number, translator))
        return

    raise ValueError(f"unknown outbox item kind {item.kind!r}")


def _notify_person(
    item: OutboxItem, messenger: Messenger, translator: Translator, directory: Directory | None
) -> None:
    """Send a direct message in the person's own language; skip a messenger they are not on."""
    name = str(item.payload.get("person", ""))
    user_id = name if messenger.name == "console" else None
    person = directory.person(name) if directory is not None else None
    if directory is not None and user_id is None:
        user_id = directory.messenger_id(name, messenger.name)
    if user_id is None:
        return

    reader = translator
    if person is not None and person.locale:
        reader = Translator(person.locale, translator.timezone.key)
    params = item.payload.get("params") or {}
    text = reader.gettext(str(item.payload.get("message", "")), **dict(params))
    messenger.notify_person(user_id, text)


def _find_thread(session: Session, ticket: Ticket, messenger: Messenger) -> ThreadRef | None:
    row = session.scalars(
        select(ChatThread).where(
            ChatThread.ticket_id == ticket.id, ChatThread.messenger == messenger.name
        )
    ).first()
    if row is None:
        return None
    return ThreadRef(messenger=row.messenger, chat_id=row.chat_id, thread_id=row.thread_id)


def _remember_thread(session: Session, ticket: Ticket, thread: ThreadRef) -> None:
    session.add(
        ChatThread(
            ticket_id=ticket.id,
            messenger=thread.messenger,
            chat_id=thread.chat_id,
            thread_id=thread.thread_id,
        )
    )
    session.flush()


def _linked_ticket_number(session: Session, ticket: Ticket) -> int | None:
    if ticket.linked_ticket_id is None:
        return None
    linked = session.get(Ticket, ticket.linked_ticket_id)
    return linked.number if linked else None


def _postpone(item: OutboxItem, reason: str, *, count_attempt: bool) -> None:
    if count_attempt:
        item.attempts += 1
    delay = min(FIRST_RETRY_DELAY * (2 ** max(item.attempts - 1, 0)), MAX_RETRY_DELAY)
    item.next_attempt_at = utcnow() + delay
    item.last_error = reason
