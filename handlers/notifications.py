"""Queue the messenger work that a change to a ticket causes, in the change's own transaction."""

from collections.abc import Mapping

from sqlalchemy.orm import Session

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


def enqueue_person_notice(
    session: Session,
    ticket: Ticket,
    person: str,
    message: str,
    params: Mapping[str, str | int],
) -> None:
    """Queue a direct message to `person`, worded in their language when it is delivered."""
    session.add(
        OutboxItem(
            kind=NOTIFY_PERSON,
            ticket_id=ticket.id,
            payload={"person": person, "message": message, "params": dict(params)},
        )
    )


def enqueue_channel_notice(
    session: Session,
    ticket: Ticket,
    channel: str,
    message: str,
    params: Mapping[str, str | int],
) -> None:
    """Queue a notice about the ticket in `channel`, a name under `channels` in rules.yaml."""
    session.add(
        OutboxItem(
            kind=NOTIFY_CHANNEL,
            ticket_id=ticket.id,
            payload={"channel": channel, "message": message, "params": dict(params)},
        )
    )


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
