"""The `/desk list` use case: saved views, the filter words, and the tickets they select.

The words of a view (`views:` in rules.yaml) stand in for its name, so
`/desk list morning` and `/desk list morning tag:vip` both work. The result
is plain data that each messenger renders in its own way; `waiting_label`
words how long each customer has waited, the same in every messenger.

A view is checked before it is used: rules.yaml may be reloaded with a view
that no longer works (an owner who left, a typo), and `threaddesk rules
check` reports it, with the same checks, but does not stop it loading.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from babel.dates import format_timedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from handlers.commands import CommandSyntaxError
from handlers.config import Rules
from handlers.i18n import N_, Translator
from handlers.queue import AGE_TOO_LONG as AGE_TOO_LONG  # rules_check reads it from here
from handlers.queue import (
    QueueFilter,
    filter_words,
    filtered_query,
    list_tickets,
    parse_queue_filter,
    read_age,
)
from store.models import Ticket

logger = logging.getLogger(__name__)

LIST_LIMIT = 50
# The owner name that `mine` in a saved view means while the view is checked
# outside a request. Any name works.
VIEW_CHECKER = "(view check)"
INVALID_VIEW = N_(
    "The saved view {view} in rules.yaml cannot be used: {word} is not a valid filter there. "
    "Ask an admin to run threaddesk rules check."
)


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
    # How long the customer had waited (see AGE_START in handlers/queue.py)
    # when the list was read; never negative.
    waited: timedelta = timedelta(0)


@dataclass(frozen=True)
class QueueListing:
    """The answer to `/desk list`: tickets, the saved views when no filter was given, or an error.

    `tickets` are the first LIST_LIMIT of the `total` that match. `error` is
    a catalogue message id and `error_params` its parameters.
    """

    tickets: tuple[ListedTicket, ...] = ()
    total: int = 0
    views: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    error_params: Mapping[str, object] = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        """Return how many matching tickets the list leaves out."""
        return max(self.total - len(self.tickets), 0)


def expand_views(argument: str | None, views: Mapping[str, str]) -> str:
    """Replace each word that names a view by the view's words (once: views do not nest)."""
    by_name = {name.lower(): words for name, words in views.items()}
    return " ".join(by_name.get(word.lower(), word) for word in filter_words(argument))


def read_queue(
    session_factory: sessionmaker[Session],
    rules: Rules,
    argument: str | None,
    actor_name: str | None,
    now: datetime,
) -> QueueListing:
    """Return the tickets that `argument` (filter words and view names) selects, in queue order."""
    people = [person.name for person in rules.agents]
    broken = _broken_view(argument, rules.views, people, now)
    if broken is not None:
        return broken
    try:
        queue_filter = read_filter(expand_views(argument, rules.views), actor_name, people, now)
    except CommandSyntaxError as error:
        logger.info("/desk list %r: %s", argument, error)
        return QueueListing(error=error.message, error_params=error.params)
    with session_factory() as session:
        tickets = list_tickets(
            session, queue_filter, limit=LIST_LIMIT, order=rules.queue_order, now=now
        )
        listed = tuple(_listed(ticket, now) for ticket in tickets)
        total = _count(session, queue_filter, now) if len(listed) >= LIST_LIMIT else len(listed)
    views = tuple(rules.views.items()) if not (argument or "").strip() else ()
    return QueueListing(tickets=listed, total=total, views=views)


def _count(session: Session, queue_filter: QueueFilter, now: datetime) -> int:
    """Return how many tickets `queue_filter` selects, beyond the LIST_LIMIT that are listed."""
    matching = filtered_query(queue_filter, now).subquery()
    return session.scalar(select(func.count()).select_from(matching)) or 0


def read_filter(
    argument: str | None, actor_name: str | None, people: Sequence[str], now: datetime
) -> QueueFilter:
    """Read filter words as `parse_queue_filter` does, rejecting an age that `now` cannot reach.

    An age such as `>99999999d` passes the parser, but subtracting it from
    `now` raises OverflowError, so it is rejected here as an invalid word.
    """
    for word in filter_words(argument):
        _check_age(word, now)
    return parse_queue_filter(argument, actor_name, people)


def _check_age(word: str, now: datetime) -> None:
    age = read_age(word)
    if age is None:
        return
    try:
        # Only the subtraction matters: it raises when the age reaches back before year 1.
        now - age[1]
    except OverflowError:
        raise CommandSyntaxError(AGE_TOO_LONG, word=word) from None


def filter_word_errors(
    words: str, people: Sequence[str], now: datetime
) -> list[tuple[str, CommandSyntaxError]]:
    """Return each word of a saved view's filter that cannot be used, with the reason.

    Each word is read on its own, so every bad word is found, not only the first.
    """
    errors = []
    for word in filter_words(words):
        try:
            read_filter(word, VIEW_CHECKER, people, now)
        except CommandSyntaxError as error:
            errors.append((word, error))
    return errors


def _broken_view(
    argument: str | None, views: Mapping[str, str], people: Sequence[str], now: datetime
) -> QueueListing | None:
    """Return the error listing for the first view named in `argument` that cannot be used."""
    by_name = {name.lower(): (name, words) for name, words in views.items()}
    for typed in filter_words(argument):
        if typed.lower() not in by_name:
            continue
        name, words = by_name[typed.lower()]
        errors = filter_word_errors(words, people, now)
        if errors:
            word, error = errors[0]
            logger.warning("/desk list: saved view %r cannot be used at %r: %s", name, word, error)
            return QueueListing(error=INVALID_VIEW, error_params={"view": name, "word": word})
    return None


def _listed(ticket: Ticket, now: datetime) -> ListedTicket:
    addresses = ticket.customer.addresses
    waiting_since = ticket.last_customer_message_at or ticket.created_at
    return ListedTicket(
        ticket_id=ticket.id,
        number=ticket.number,
        status=ticket.status,
        priority=ticket.priority,
        subject=ticket.subject,
        customer_name=ticket.customer.name,
        customer_address=addresses[0].address if addresses else "",
        assignee=ticket.assignee,
        waiting_since=waiting_since,
        waited=max(now - waiting_since, timedelta(0)) if waiting_since else timedelta(0),
    )


def waiting_label(ticket: ListedTicket, t: Translator) -> str:
    """Return how long the ticket's customer has waited in the reader's language: "waiting 3 hr"."""
    age = format_timedelta(ticket.waited, format="short", locale=t.locale)
    return t.gettext("waiting {age}", age=age)


def listing_heading(listing: QueueListing, t: Translator) -> str:
    """Return the list's first line: how many tickets it shows, and of how many when cut."""
    shown = len(listing.tickets)
    if not shown:
        return t.gettext("No tickets match.")
    if listing.hidden:
        return t.ngettext(
            "{shown} of {count} ticket, most urgent first:",
            "{shown} of {count} tickets, most urgent first:",
            listing.total,
            shown=shown,
        )
    return t.ngettext(
        "{count} ticket, most urgent first:", "{count} tickets, most urgent first:", shown
    )


def narrowing_hint(listing: QueueListing, command: str, t: Translator) -> str | None:
    """Return the list's last line when it was cut: how to see the tickets it left out.

    `command` is the messenger's list command, such as "/desk list" or "/list".
    """
    if not listing.hidden:
        return None
    return t.ngettext(
        "{count} more ticket is not shown. Narrow the list with a filter, "
        "such as {command} mine urgent, or with a saved view.",
        "{count} more tickets are not shown. Narrow the list with a filter, "
        "such as {command} mine urgent, or with a saved view.",
        listing.hidden,
        command=command,
    )


def view_lines(views: Sequence[tuple[str, str]]) -> list[str]:
    """Return "name: words" for each saved view."""
    return [f"{name}: {words}" for name, words in views]
