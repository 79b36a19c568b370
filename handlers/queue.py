"""Read the ticket queue: the open tickets in working order, and one ticket in full."""

from sqlalchemy import case, select
from sqlalchemy.orm import Session, selectinload

from store.models import Message, Priority, Ticket, TicketStatus

PRIORITY_RANK = case(
    {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3},
    value=Ticket.priority,
    else_=4,
)
OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.ON_HOLD)


def list_open_tickets(session: Session, limit: int = 50) -> list[Ticket]:
    """Return unsolved tickets, highest priority first, then longest waiting first."""
    query = (
        select(Ticket)
        .where(Ticket.status.in_(OPEN_STATUSES))
        .order_by(PRIORITY_RANK, Ticket.last_customer_message_at, Ticket.number)
        .options(selectinload(Ticket.customer), selectinload(Ticket.tags))
        .limit(limit)
    )
    return list(session.scalars(query))


def load_ticket(session: Session, number: int) -> Ticket | None:
    """Return the ticket with its customer, tags, messages and attachments loaded."""
    query = (
        select(Ticket)
        .where(Ticket.number == number)
        .options(
            selectinload(Ticket.customer),
            selectinload(Ticket.tags),
            selectinload(Ticket.messages).selectinload(Message.attachments),
        )
    )
    return session.scalars(query).first()
