"""Reply with a template of rules.yaml: fill it for one ticket, or reject an unknown name.

Slack's `/desk reply N #name` and Reply modal, the console's `reply N #name`
and any other messenger fill templates here. So each of them renders the
same text from the same customer message, and rejects an unknown name with
the same list of the names that exist.
"""

import difflib
import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.config import Rules
from handlers.i18n import N_
from handlers.people import Actor
from handlers.replies import ReplySettings, reply_refusal, send_reply
from handlers.template_values import fill_template
from handlers.templates import RenderedTemplate
from handlers.ticket_actions import Feedback
from store.models import Direction, Message, MessageKind, Ticket
from store.tickets import find_ticket_by_number
from store.types import utcnow

logger = logging.getLogger(__name__)

# The minimum difflib similarity ratio (0 to 1) at which a template's name is
# suggested for a name that does not exist.
SUGGESTION_CUTOFF = 0.6


def unknown_template(rules: Rules, name: str) -> Feedback | None:
    """Return the rejection of template `name` with the names that exist, or None if it exists."""
    if name in rules.templates:
        return None
    return template_not_found(rules, name)


def template_not_found(rules: Rules, name: str) -> Feedback:
    """Return the rejection of template `name`: the names that exist, and the closest of them."""
    if not rules.templates:
        return Feedback(
            N_("Template #{name} not found: rules.yaml has no templates."),
            {"name": name},
            ok=False,
        )

    names = ", ".join(f"#{known}" for known in rules.templates)
    suggestion = suggest_template(rules, name)
    if suggestion is None:
        return Feedback(
            N_("Template #{name} not found. Templates: {names}."),
            {"name": name, "names": names},
            ok=False,
        )
    return Feedback(
        N_("Template #{name} not found. Did you mean #{suggestion}? Templates: {names}."),
        {"name": name, "suggestion": suggestion, "names": names},
        ok=False,
    )


def suggest_template(rules: Rules, name: str) -> str | None:
    """Return the template name closest to `name`, ignoring letter case, or None."""
    by_lowercase = {known.lower(): known for known in rules.templates}
    close = difflib.get_close_matches(
        name.lower(), list(by_lowercase), n=1, cutoff=SUGGESTION_CUTOFF
    )
    return by_lowercase[close[0]] if close else None


def latest_customer_text(session: Session, ticket: Ticket) -> str:
    """Return the visible text of the customer's latest email on `ticket` ("" when there is none).

    Automatic mail and bounces are skipped: their language is the mail
    server's, not the customer's.
    """
    text = session.scalar(
        select(Message.visible_text)
        .where(
            Message.ticket_id == ticket.id,
            Message.direction == Direction.INBOUND,
            Message.kind == MessageKind.CUSTOMER,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    return text or ""


def fill_ticket_template(
    session_factory: sessionmaker[Session],
    rules: Rules,
    name: str,
    number: int,
    *,
    agent_name: str | None,
    support_address: str,
    now: datetime | None = None,
) -> RenderedTemplate | Feedback:
    """Render template `name` for ticket `number` in its customer's language, or return why not."""
    rejection = unknown_template(rules, name)
    if rejection is not None:
        return rejection

    with session_factory() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return Feedback(N_("Ticket #{number} not found."), {"number": number}, ok=False)
        rendered = fill_template(
            rules,
            name,
            ticket,
            customer_text=latest_customer_text(session, ticket),
            now=now or utcnow(),
            agent_name=agent_name,
            support_address=support_address,
        )
    if rendered is None:
        return template_not_found(rules, name)
    return rendered


def template_reply_text(
    session_factory: sessionmaker[Session],
    rules: Rules,
    actor: Actor,
    number: int,
    name: str,
    *,
    support_address: str,
) -> RenderedTemplate | Feedback:
    """Fill template `name` as `actor`'s reply to ticket `number`, or return why it cannot go.

    The rules of a typed reply apply first: only staff write to customers,
    and not to a ticket that another agent has claimed.
    """
    refusal = reply_refusal(session_factory, actor, number)
    if refusal is not None:
        return refusal
    return fill_ticket_template(
        session_factory,
        rules,
        name,
        number,
        agent_name=actor.name,
        support_address=support_address,
    )


def send_template_reply(
    session_factory: sessionmaker[Session],
    settings: ReplySettings,
    rules: Rules,
    actor: Actor,
    number: int,
    name: str,
    origin: str | None = None,
) -> Feedback:
    """Queue template `name`, filled for ticket `number`, as `actor`'s email to the customer."""
    filled = template_reply_text(
        session_factory, rules, actor, number, name, support_address=settings.support_address
    )
    if isinstance(filled, Feedback):
        logger.info(
            "ticket #%d: template %s not sent for %s: %s", number, name, actor.name, filled.message
        )
        return filled
    return send_reply(session_factory, settings, actor, number, filled.body, origin)
