"""Word the facts that a ticket's card shows in every messenger: customer, status, owner, ..."""

import logging
from collections.abc import Mapping

from handlers.i18n import Translator
from handlers.labels import PRIORITY_LABELS, STATUS_LABELS
from handlers.messenger import TicketCard

logger = logging.getLogger(__name__)


def card_fact_lines(card: TicketCard, customer: str, t: Translator) -> list[str]:
    """Return the card's fact lines in the reader's language, uncut and unescaped.

    `customer` is the customer as the messenger shows them, since the
    messengers differ in what they show for a customer with no name or address.
    After the ticket's own fields come the departments asked about it that
    have not answered yet, and the lines about its SLA targets (due soon,
    overdue, paused), so that Slack and Telegram show the same facts.
    """
    facts = [
        t.gettext("Customer: {customer}", customer=customer),
        t.gettext("Status: {status}", status=_label(STATUS_LABELS, card.status, t)),
        t.gettext("Priority: {priority}", priority=_label(PRIORITY_LABELS, card.priority, t)),
        t.gettext("Owner: {name}", name=card.assignee or "—"),
        t.gettext("Received: {time}", time=t.datetime(card.created_at)),
    ]
    if card.tags:
        facts.append(t.gettext("Tags: {tags}", tags=", ".join(card.tags)))
    if card.waiting_for:
        waiting = ", ".join(card.waiting_for)
        facts.append(t.gettext("Waiting for {departments}", departments=waiting))
    facts.extend(card.extra.values())
    return facts


def replying_text(names: tuple[str, ...], t: Translator) -> str:
    """Return "Sveta is replying…" for the agents who have the Reply dialog open."""
    return t.ngettext(
        "{names} is replying…", "{names} are replying…", len(names), names=", ".join(names)
    )


def _label(labels: Mapping[str, str], value: str, t: Translator) -> str:
    return t.gettext(labels.get(value, value))
