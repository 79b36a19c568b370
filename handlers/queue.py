"""Read the ticket queue: the open tickets in working order, and one ticket in full."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, select
from sqlalchemy.orm import Session, selectinload

from handlers.commands import STATUS_WORDS, CommandSyntaxError
from handlers.i18n import N_
from store.models import Message, Priority, Ticket, TicketStatus

PRIORITY_RANK = case(
    {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3},
    value=Ticket.priority,
    else_=4,
)
OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.ON_HOLD)
# The sort keys of `queue_order` in rules.yaml. A ticket the customer has not
# written on yet (only automatic mail) waits last.
ORDER_COLUMNS: dict[str, ColumnElement[Any]] = {
    "priority": PRIORITY_RANK,
    "waiting": Ticket.last_customer_message_at.asc().nulls_last(),
    "created": Ticket.created_at.asc(),
    "updated": Ticket.updated_at.asc(),
}
DEFAULT_ORDER = ("priority", "waiting")


MINE_WORDS = frozenset({"mine", "me", "my", "мои", "мой"})
UNASSIGNED_WORDS = frozenset({"unassigned", "nobody", "free", "свободные", "ничьи"})


@dataclass(frozen=True)
class QueueFilter:
    """Which tickets a list shows: by owner and by status."""

    owner: str | None = None
    unassigned: bool = False
    statuses: tuple[str, ...] = tuple(OPEN_STATUSES)


def parse_queue_filter(argument: str | None, actor_name: str | None) -> QueueFilter:
    """Read "mine", "unassigned" and status words ("solved", "status:on_hold") into a filter.

    Raises CommandSyntaxError naming the first word it does not know.
    """
    owner: str | None = None
    unassigned = False
    statuses: list[str] = []
    for word in (argument or "").lower().split():
        value = word.removeprefix("status:")
        if word in MINE_WORDS and actor_name is not None:
            owner = actor_name
        elif word in UNASSIGNED_WORDS:
            unassigned = True
        elif value in STATUS_WORDS:
            statuses.append(STATUS_WORDS[value])
        else:
            raise CommandSyntaxError(
                N_("Unknown filter {word}. Use mine, unassigned or a status such as solved."),
                word=word,
            )
    return QueueFilter(owner, unassigned, tuple(statuses) or tuple(OPEN_STATUSES))


def list_tickets(
    session: Session,
    queue_filter: QueueFilter,
    limit: int = 50,
    order: Sequence[str] = DEFAULT_ORDER,
) -> list[Ticket]:
    """Return the tickets of `queue_filter` sorted by `order` (see `queue_order` in rules.yaml).

    The default is the highest priority first, then the customer who has
    waited longest. The ticket number breaks every tie.
    """
    query = select(Ticket).where(Ticket.status.in_(queue_filter.statuses))
    if queue_filter.owner is not None:
        query = query.where(Ticket.assignee == queue_filter.owner)
    if queue_filter.unassigned:
        query = query.where(Ticket.assignee.is_(None))
    query = (
        query.order_by(*(ORDER_COLUMNS[key] for key in order), Ticket.number)
        .options(selectinload(Ticket.customer), selectinload(Ticket.tags))
        .limit(limit)
    )
    return list(session.scalars(query))


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
