"""Find the ticket of a messenger thread, and remember which messenger events were handled.

A recorded event id lets a redelivered event run only once.
"""

import logging

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.models import ChatThread, ProcessedEvent, Ticket

logger = logging.getLogger(__name__)


def record_chat_event(
    session_factory: sessionmaker[Session], messenger: str, event_id: str
) -> bool:
    """Record `event_id` of `messenger`; return False when it was recorded before."""
    try:
        with session_factory.begin() as session:
            session.add(ProcessedEvent(messenger=messenger, event_id=event_id))
    except IntegrityError:
        return False
    return True


def forget_chat_event(
    session_factory: sessionmaker[Session], messenger: str, event_id: str
) -> None:
    """Delete the record of `event_id`, so a redelivery of the event runs again."""
    with session_factory.begin() as session:
        session.execute(
            delete(ProcessedEvent).where(
                ProcessedEvent.messenger == messenger, ProcessedEvent.event_id == event_id
            )
        )


def ticket_number_of_thread(
    session: Session, messenger: str, chat_id: str, thread_match: ColumnElement[bool]
) -> int | None:
    """Return the number of the ticket whose thread in `chat_id` matches `thread_match`, or None.

    `thread_match` is a condition on `ChatThread.thread_id`, whose format each messenger sets.
    """
    number: int | None = session.scalar(
        select(Ticket.number)
        .join(ChatThread, ChatThread.ticket_id == Ticket.id)
        .where(
            ChatThread.messenger == messenger,
            ChatThread.chat_id == chat_id,
            thread_match,
        )
    )
    return number
