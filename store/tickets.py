"""Look-ups and atomic steps on tickets, customers and messages; the caller owns the transaction."""

from collections.abc import Sequence

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from store.models import Counter, Customer, CustomerAddress, Event, Message, Ticket, TicketStatus
from store.types import utcnow

TICKET_COUNTER = "ticket_number"


def reserve_ticket_number(session: Session) -> int:
    """Take the next ticket number with one atomic UPDATE, safe across processes.

    The counter never falls behind a number already in use, so tickets
    imported with their own numbers do not collide with new ones.
    """
    highest_used = select(func.coalesce(func.max(Ticket.number), 0)).scalar_subquery()
    advance = (
        update(Counter)
        .where(Counter.name == TICKET_COUNTER)
        .values(value=case((Counter.value < highest_used, highest_used), else_=Counter.value) + 1)
        .returning(Counter.value)
    )
    number = session.execute(advance).scalar_one_or_none()
    if number is not None:
        return number

    try:
        with session.begin_nested():
            session.add(Counter(name=TICKET_COUNTER, value=0))
    except IntegrityError:
        pass  # another process created the row first; the UPDATE below uses it
    return session.execute(advance).scalar_one()


def find_customer_by_address(session: Session, address: str) -> Customer | None:
    query = (
        select(Customer)
        .join(CustomerAddress)
        .where(CustomerAddress.address == address.strip().lower())
        .options(selectinload(Customer.addresses))
    )
    return session.scalars(query).first()


def get_or_create_customer(session: Session, address: str, name: str) -> Customer:
    """Return the customer who owns `address`, creating one when the address is new.

    A new customer is only added to the session: it gets its id at the next flush.
    """
    normalised = address.strip().lower()
    # Without find_customer_by_address's eager load of every address: intake
    # needs only the customer row, which saves a SELECT per known sender.
    query = select(Customer).join(CustomerAddress).where(CustomerAddress.address == normalised)
    customer = session.scalars(query).first()
    if customer is not None:
        if not customer.name and name:
            customer.name = name
        return customer

    customer = Customer(name=name, addresses=[CustomerAddress(address=normalised)])
    session.add(customer)
    return customer


def find_message_by_identity(session: Session, identity_key: str) -> Message | None:
    return session.scalars(select(Message).where(Message.identity_key == identity_key)).first()


def find_ticket_by_message_ids(session: Session, message_ids: Sequence[str]) -> Ticket | None:
    """Return the ticket of the message named latest in `message_ids` that we stored or sent."""
    if not message_ids:
        return None

    rows = session.execute(
        select(Message.message_id, Message.ticket_id).where(Message.message_id.in_(message_ids))
    ).all()
    ticket_by_message_id = {message_id: ticket_id for message_id, ticket_id in rows}
    for message_id in reversed(message_ids):
        ticket_id = ticket_by_message_id.get(message_id)
        if ticket_id is not None:
            return session.get(Ticket, ticket_id)
    return None


def find_ticket_by_number(session: Session, number: int) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.number == number)).first()


def customer_owns_address(customer: Customer, address: str) -> bool:
    wanted = address.strip().lower()
    return any(known.address == wanted for known in customer.addresses)


def record_event(session: Session, ticket: Ticket, actor: str, kind: str, **data: object) -> Event:
    event = Event(ticket_id=ticket.id, actor=actor, kind=kind, data=data, at=utcnow())
    session.add(event)
    return event


def change_status(session: Session, ticket: Ticket, status: TicketStatus, actor: str) -> None:
    """Set the status, keeping its timestamps and the audit log in step."""
    previous = ticket.status
    if previous == status:
        return

    now = utcnow()
    ticket.status = status
    ticket.updated_at = now
    if status == TicketStatus.SOLVED:
        ticket.solved_at = now
    if status == TicketStatus.CLOSED:
        ticket.closed_at = now
    record_event(session, ticket, actor, "status_changed", old=previous, new=str(status))
