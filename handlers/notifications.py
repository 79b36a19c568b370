"""Queue the messenger work that a change to a ticket causes, in the change's own transaction."""

from sqlalchemy.orm import Session

from store.models import Message, OutboxItem, Ticket

POST_TICKET = "post_ticket"
POST_MESSAGE = "post_message"


def enqueue_new_ticket(session: Session, ticket: Ticket, first_message: Message) -> None:
    """Queue the ticket's card; the first message is shown on it."""
    session.add(OutboxItem(kind=POST_TICKET, ticket_id=ticket.id, message_row_id=first_message.id))


def enqueue_follow_up(session: Session, ticket: Ticket, message: Message) -> None:
    """Queue a post of `message` in the ticket's thread."""
    session.add(OutboxItem(kind=POST_MESSAGE, ticket_id=ticket.id, message_row_id=message.id))
