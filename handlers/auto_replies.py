"""Queue an auto-reply that a rule asked for: a template, filled for the ticket, sent once.

The rules engine has already refused automatic mail, no-reply senders and
spam. Here the last guard runs in the store: the sender's auto-reply slot is
taken with a conditional UPDATE, so at most one auto-reply per sender leaves
within `auto_reply_interval`, whatever the number of workers. The email is
threaded into the ticket like an agent's reply and carries
`Auto-Submitted: auto-replied`, so a well-behaved autoresponder does not answer it.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from handlers.config import Rules
from handlers.notifications import enqueue_email, enqueue_follow_up
from handlers.replies import ReplySettings, build_reply_request, store_outgoing_email
from handlers.template_values import fill_template
from mailbridge.outgoing import ComposeError, compose_reply
from store.models import MessageKind, Ticket
from store.routing import take_auto_reply_slot
from store.tickets import record_event

logger = logging.getLogger(__name__)

AUTO_REPLY_ACTOR = "system:rules"


@dataclass(frozen=True)
class AutoReplyRequest:
    """A rule's auto-reply: which template, to whom, in answer to which text, and when."""

    template: str
    rule_name: str
    recipient: str
    customer_text: str
    received_at: datetime


def queue_auto_reply(
    session: Session,
    ticket: Ticket,
    request: AutoReplyRequest,
    rules: Rules,
    settings: ReplySettings,
) -> bool:
    """Compose, store and queue the auto-reply in the caller's transaction; return whether it was.

    A reply that must not go (sent to this sender recently, no support
    address, template missing, composing failed) is recorded as an
    `auto_reply_skipped` event with its reason instead.
    """
    if not settings.support_address:
        return _skip(session, ticket, request, "no-support-address")
    if request.recipient.lower() in staff_addresses(rules):
        # An agent who writes to the support address from their own mailbox
        # (a test, a forwarded request) needs no "we will answer soon".
        return _skip(session, ticket, request, "staff-sender")
    rendered = fill_template(
        rules,
        request.template,
        ticket,
        customer_text=request.customer_text,
        now=request.received_at,
        support_address=settings.support_address,
    )
    if rendered is None:
        return _skip(session, ticket, request, "unknown-template")

    reply_request = build_reply_request(
        session, ticket, settings, rendered.body, agent_name=None, is_automatic=True
    )
    try:
        email = compose_reply(reply_request)
    except ComposeError as error:
        logger.warning(
            "ticket #%d: auto-reply %s not composed: %s", ticket.number, request.template, error
        )
        return _skip(session, ticket, request, "compose-failed")
    if not take_auto_reply_slot(
        session, request.recipient, request.received_at, rules.auto_reply_interval
    ):
        return _skip(session, ticket, request, "recently-sent")

    reply = store_outgoing_email(
        session,
        ticket,
        settings,
        reply_request,
        email,
        kind=MessageKind.AUTO_RESPONSE,
        author=AUTO_REPLY_ACTOR,
    )
    enqueue_follow_up(session, ticket, reply)
    enqueue_email(session, ticket, reply, email.sender, list(email.recipients))
    record_event(
        session,
        ticket,
        AUTO_REPLY_ACTOR,
        "auto_reply_queued",
        message_row_id=reply.id,
        template=request.template,
        rule=request.rule_name,
    )
    logger.info(
        "ticket #%d: auto-reply %s (%s) queued as %s",
        ticket.number,
        request.template,
        request.rule_name,
        email.message_id,
    )
    return True


def staff_addresses(rules: Rules) -> frozenset[str]:
    """Return the email addresses of the agents and department members of rules.yaml."""
    people = [*rules.agents, *(m for d in rules.departments.values() for m in d.members)]
    return frozenset(person.email.lower() for person in people if person.email)


def _skip(session: Session, ticket: Ticket, request: AutoReplyRequest, reason: str) -> bool:
    record_event(
        session,
        ticket,
        AUTO_REPLY_ACTOR,
        "auto_reply_skipped",
        template=request.template,
        rule=request.rule_name,
        reason=reason,
    )
    logger.info(
        "ticket #%d: auto-reply %s (%s) not sent: %s",
        ticket.number,
        request.template,
        request.rule_name,
        reason,
    )
    return False
