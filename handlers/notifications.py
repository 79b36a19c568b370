"""Queue the messenger work that a change to a ticket causes, in the change's own transaction.

A notice to a person or a channel is stored as a catalogue message id and
its values, and worded when it is delivered, in the reader's language.
Values that are moments are kept apart (`moments`), so that each reader
sees them in their own locale's format. A notice with `link_thread` shows
a button that opens the ticket's thread where the messenger can show one.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from handlers.i18n import Translator
from store.models import Message, OutboxItem, Ticket

POST_TICKET = "post_ticket"
POST_MESSAGE = "post_message"
UPDATE_CARD = "update_card"
NOTIFY_PERSON = "notify_person"
NOTIFY_CHANNEL = "notify_channel"
UPDATE_POST = "update_post"
SEND_EMAIL = "send_email"


def enqueue_new_ticket(session: Session, ticket: Ticket, first_message: Message) -> None:
    """Queue the ticket's card; the first message is shown on it."""
    session.add(OutboxItem(kind=POST_TICKET, ticket_id=ticket.id, message_row_id=first_message.id))


def enqueue_ticket_card(session: Session, ticket: Ticket) -> None:
    """Queue the card of a ticket that has none yet, such as one released from spam."""
    session.add(OutboxItem(kind=POST_TICKET, ticket_id=ticket.id))


def enqueue_follow_up(
    session: Session, ticket: Ticket, message: Message, skip_messenger: str | None = None
) -> None:
    """Queue a post of `message` in the ticket's thread.

    `skip_messenger` names the messenger the message was written in, which
    already shows it.
    """
    payload = {"delivered_to": [skip_messenger]} if skip_messenger else {}
    session.add(
        OutboxItem(
            kind=POST_MESSAGE, ticket_id=ticket.id, message_row_id=message.id, payload=payload
        )
    )


def enqueue_card_update(session: Session, ticket: Ticket) -> None:
    """Queue a redraw of the ticket's card in every messenger, showing its state at delivery."""
    session.add(OutboxItem(kind=UPDATE_CARD, ticket_id=ticket.id))


def enqueue_card_updates(session: Session, ticket_ids: Iterable[int]) -> None:
    """Queue a redraw of the cards of several tickets, given by id, each once."""
    for ticket_id in sorted(set(ticket_ids)):
        session.add(OutboxItem(kind=UPDATE_CARD, ticket_id=ticket_id))


def enqueue_person_notice(
    session: Session,
    ticket: Ticket,
    person: str,
    message: str,
    params: Mapping[str, str | int],
    moments: Mapping[str, datetime] | None = None,
    link_thread: bool = False,
) -> None:
    """Queue a direct message to `person`, worded in their language when it is delivered."""
    payload = _notice_payload(message, params, moments, link_thread)
    session.add(
        OutboxItem(kind=NOTIFY_PERSON, ticket_id=ticket.id, payload={"person": person, **payload})
    )


def enqueue_channel_notice(
    session: Session,
    ticket: Ticket,
    channel: str,
    message: str,
    params: Mapping[str, str | int],
    link_thread: bool = False,
) -> None:
    """Queue a notice about the ticket in `channel`, a name under `channels` in rules.yaml."""
    payload = _notice_payload(message, params, None, link_thread)
    session.add(
        OutboxItem(
            kind=NOTIFY_CHANNEL, ticket_id=ticket.id, payload={"channel": channel, **payload}
        )
    )


def word_notice(payload: Mapping[str, Any], reader: Translator) -> str:
    """Return the text of a queued notice in `reader`'s language, its moments in their format."""
    params = dict(payload.get("params") or {})
    for name, moment in (payload.get("moments") or {}).items():
        params[name] = reader.datetime(datetime.fromisoformat(moment))
    return reader.gettext(str(payload.get("message")), **params)


def _notice_payload(
    message: str,
    params: Mapping[str, str | int],
    moments: Mapping[str, datetime] | None,
    link_thread: bool,
) -> dict[str, Any]:
    payload: dict[str, Any] = {"message": message, "params": dict(params)}
    if moments:
        payload["moments"] = {name: moment.isoformat() for name, moment in moments.items()}
    if link_thread:
        payload["link_thread"] = True
    return payload


def enqueue_post_update(session: Session, ticket: Ticket, message: Message) -> None:
    """Queue a redraw, in every thread, of the post that shows `message` (its delivery state)."""
    session.add(OutboxItem(kind=UPDATE_POST, ticket_id=ticket.id, message_row_id=message.id))


def enqueue_email(
    session: Session, ticket: Ticket, message: Message, sender: str, recipients: list[str]
) -> None:
    """Queue sending the composed email stored for `message`, with its SMTP envelope."""
    session.add(
        OutboxItem(
            kind=SEND_EMAIL,
            ticket_id=ticket.id,
            message_row_id=message.id,
            payload={"sender": sender, "recipients": recipients, "ticket_number": ticket.number},
        )
    )
