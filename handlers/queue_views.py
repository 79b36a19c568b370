"""The `/desk list` use case: saved views, the filter words, and the tickets they select.

The words of a view (`views:` in rules.yaml) stand in for its name, so
`/desk list morning` and `/desk list morning tag:vip` both work. The result
is plain data that each messenger renders in its own way.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from handlers.commands import CommandSyntaxError
from handlers.config import Rules
from handlers.queue import list_tickets, parse_queue_filter
from store.models import Ticket

logger = logging.getLogger(__name__)

LIST_LIMIT = 50


@dataclass(frozen=True)
class ListedTicket:
    """One line of a ticket list."""

    ticket_id: int
    number: int
    status: str
    priority: str
    subject: str
    customer_name: str
    customer_address: str
    assignee: str | None
    waiting_since: datetime | None


@dataclass(frozen=True)
class QueueListing:
    """The answer to `/desk list`: tickets, the saved views when no filter was given, or an error.

    `error` is a catalogue message id and `error_params` its parameters.
    """

    tickets: tuple[ListedTicket, ...] = ()
    views: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    error_params: Mapping[str, object] = field(default_factory=dict)


def expand_views(argument: str | None, views: Mapping[str, str]) -> str:
    """Replace each word that names a view by the view's words (once: views do not nest)."""
    by_name = {name.lower(): words for name, words in views.items()}
    return " ".join(by_name.get(word.lower(), word) for word in (argument or "").split())


def read_queue(
    session_factory: sessionmaker[Session],
    rules: Rules,
    argument: str | None,
    actor_name: str | None,
    now: datetime,
) -> QueueListing:
    """Return the tickets that `argument` (filter words and view names) selects, in queue order."""
    people = [person.name for person in rules.agents]
    try:
        queue_filter = parse_queue_filter(expand_views(argument, rules.views), actor_name, people)
    except CommandSyntaxError as error:
        logger.info("/desk list %r: %s", argument, error)
        return QueueListing(error=error.message, error_params=error.params)
    with session_factory() as session:
        tickets = list_tickets(
            session, queue_filter, limit=LIST_LIMIT, order=rules.queue_order, now=now
        )
        listed = tuple(_listed(ticket) for ticket in tickets)
    views = tuple(rules.views.items()) if not (argument or "").strip() else ()
    return QueueListing(tickets=listed, views=views)


def _listed(ticket: Ticket) -> ListedTicket:
    addresses = ticket.customer.addresses
    return ListedTicket(
        ticket_id=ticket.id,
        number=ticket.number,
        status=ticket.status,
        priority=ticket.priority,
        subject=ticket.subject,
        customer_name=ticket.customer.name,
        customer_address=addresses[0].address if addresses else "",
        assignee=ticket.assignee,
        waiting_since=ticket.last_customer_message_at or ticket.created_at,
    )


def view_lines(views: Sequence[tuple[str, str]]) -> list[str]:
    """Return "name: words" for each saved view."""
    return [f"{name}: {words}" for name, words in views]
