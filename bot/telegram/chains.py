"""Remember which messages of a group without topics belong to which ticket's reply chain.

In such a group a ticket's thread is the chain of replies to its card.
An update names only the message that a new one replies to, one level
deep. The card and the first part of each post of a stored message can be
found in chat_threads and chat_posts; a colleague's comment, a command, or
the bot's answer to one of them cannot. Each of those is written down here
when the bot takes or sends it, so that a reply to it joins the ticket too.

The record is a row of processed_events named `chain:CHAT:MESSAGE:TICKET`:
the table already holds one row per message the bot took, its rows are
never pruned, and so no new table is needed. A lookup reads the rows that
start with `chain:CHAT:MESSAGE:`.
"""

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from telegram import Message
from telegram.constants import ChatType

from handlers.chat_events import record_chat_event
from store.models import ProcessedEvent

logger = logging.getLogger(__name__)

MESSENGER = "telegram"
PREFIX = "chain:"


def is_in_plain_group(message: Message) -> bool:
    """Return True for a group message outside any forum topic, where threads are reply chains."""
    return message.chat.type != ChatType.PRIVATE and not message.is_topic_message


def remember_in_chain(
    session_factory: sessionmaker[Session], chat_id: int | str, message_id: int, number: int
) -> None:
    """Write down that message `message_id` of `chat_id` is in ticket `number`'s reply chain.

    Writing it a second time (a redelivered update) changes nothing.
    """
    if record_chat_event(session_factory, MESSENGER, _event_id(chat_id, message_id, number)):
        logger.debug("ticket #%d: message %s in %s joins its chain", number, message_id, chat_id)


def ticket_of_chain_message(session: Session, chat_id: int | str, message_id: int) -> int | None:
    """Return the ticket whose chain message `message_id` of `chat_id` was written down in."""
    start = f"{PREFIX}{chat_id}:{message_id}:"
    found = session.scalars(
        select(ProcessedEvent.event_id).where(
            ProcessedEvent.messenger == MESSENGER,
            ProcessedEvent.event_id.like(f"{start}%"),
        )
    ).first()
    if found is None:
        return None
    number = found.removeprefix(start)
    return int(number) if number.isdigit() else None


def _event_id(chat_id: int | str, message_id: int, number: int) -> str:
    return f"{PREFIX}{chat_id}:{message_id}:{number}"
