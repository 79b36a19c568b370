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
    return facts


def _label(labels: Mapping[str, str], value: str, t: Translator) -> str:
    return t.gettext(labels.get(value, value))
