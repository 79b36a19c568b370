"""The store's side of routing rules: customer facts, department load and the auto-reply log.

Each function runs in the caller's transaction. The two that must hold
across processes, the round-robin turn and the auto-reply slot, are single
conditional UPDATEs, so two workers never take the same turn or both send
an auto-reply to one sender.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import (
    AutoReplyLog,
    Counter,
    CustomerAddress,
    CustomerTag,
    Ticket,
    TicketStatus,
    TicketTag,
)
from store.tickets import advance_counter

# Statuses in which a ticket still needs its owner's work.
OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.ON_HOLD)
ROUND_ROBIN_PREFIX = "round_robin:"


@dataclass(frozen=True)
class CustomerFacts:
    """What rules may know about a sender: whether we know them, and their tags."""

    known: bool
    tags: frozenset[str]


def customer_facts(
    session: Session, address: str, *, excluding_ticket: int | None
) -> CustomerFacts:
    """Describe the customer who writes from `address`.

    A customer is known when they have a ticket other than `excluding_ticket`,
    the ticket the message being evaluated belongs to; a first message
    therefore comes from a new customer even though intake has just stored them.
    """
    customer_id = session.scalar(
        select(CustomerAddress.customer_id).where(CustomerAddress.address == address.lower())
    )
    if customer_id is None:
        return CustomerFacts(known=False, tags=frozenset())

    earlier = select(Ticket.id).where(Ticket.customer_id == customer_id)
    if excluding_ticket is not None:
        earlier = earlier.where(Ticket.id != excluding_ticket)
    known = session.scalar(earlier.limit(1)) is not None
    tags = session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == customer_id))
    return CustomerFacts(known=known, tags=frozenset(tags))


def open_ticket_counts(session: Session, names: Iterable[str]) -> dict[str, int]:
    """Return how many unfinished tickets each of `names` owns; a name with none is left out."""
    rows = session.execute(
        select(Ticket.assignee, func.count())
        .where(Ticket.assignee.in_(list(names)), Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.assignee)
    )
    return {str(assignee): int(count) for assignee, count in rows}


def take_round_robin_turn(session: Session, department: str) -> int:
    """Advance the department's round-robin counter atomically and return its new value.

    The caller takes the member at (value - 1) modulo the number of members.
    """
    name = f"{ROUND_ROBIN_PREFIX}{department}"[:50]
    advance = (
        update(Counter)
        .where(Counter.name == name)
        .values(value=Counter.value + 1)
        .returning(Counter.value)
    )
    return advance_counter(session, name, advance)


def take_auto_reply_slot(
    session: Session, address: str, now: datetime, interval: timedelta
) -> bool:
    """Record an auto-reply to `address` at `now`, unless one went there within `interval`.

    Returns True when the caller may send. The row is taken with a
    conditional UPDATE (or created), so of two workers only one gets True.
    """
    address = address.lower()
    taken = session.execute(
        update(AutoReplyLog)
        .where(AutoReplyLog.address == address, AutoReplyLog.last_sent_at <= now - interval)
        .values(last_sent_at=now)
        .returning(AutoReplyLog.address)
    ).first()
    if taken is not None:
        return True
    if session.get(AutoReplyLog, address) is not None:
        return False

    try:
        with session.begin_nested():
            session.add(AutoReplyLog(address=address, last_sent_at=now))
    except IntegrityError:
        return False  # another worker sent one to this address a moment ago
    return True


def last_auto_reply_at(session: Session, address: str) -> datetime | None:
    """Return when `address` last got an auto-reply, or None if never."""
    return session.scalar(
        select(AutoReplyLog.last_sent_at).where(AutoReplyLog.address == address.lower())
    )


def add_ticket_tags(session: Session, ticket_id: int, tags: Iterable[str]) -> list[str]:
    """Tag the ticket with each of `tags` it does not carry yet; return the tags added."""
    present = set(session.scalars(select(TicketTag.tag).where(TicketTag.ticket_id == ticket_id)))
    added = [tag for tag in dict.fromkeys(tags) if tag and tag not in present]
    session.add_all(TicketTag(ticket_id=ticket_id, tag=tag) for tag in added)
    return added
