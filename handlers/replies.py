"""Answer a customer by email: only the ticket's owner replies, and an unclaimed ticket is claimed.

The email is composed, stored with its Message-ID and queued in one
transaction, so the customer's next reply threads even if the process stops
before the first attempt, and a retry sends the very same message.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.collisions import check_new_reply, refusal_with_recent_reply
from handlers.i18n import N_
from handlers.notifications import enqueue_card_update, enqueue_email, enqueue_follow_up
from handlers.people import Actor
from handlers.ticket_actions import Feedback, held_by_other
from mailbridge.message import Address
from mailbridge.outgoing import (
    ComposeError,
    OutgoingEmail,
    ReplyRequest,
    address_domain,
    compose_reply,
    make_message_id,
)
from store.blobs import BlobStore
from store.claims import ClaimOutcome, claim
from store.models import Direction, Message, MessageKind, Ticket
from store.tickets import find_ticket_by_number, record_event
from store.types import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplySettings:
    """The sender of replies: the support address and the desk's name shown beside the agent's."""

    blobs: BlobStore
    support_address: str
    support_name: str
    own_addresses: frozenset[str] = frozenset()


def send_reply(
    session_factory: sessionmaker[Session],
    settings: ReplySettings,
    actor: Actor,
    number: int,
    text: str,
    origin: str | None = None,
) -> Feedback:
    """Queue an email to the ticket's customer from `actor`, claiming the ticket if it is free."""
    if not actor.works_tickets:
        return Feedback(N_("Only support agents can write to customers."), ok=False)
    if not text.strip():
        return Feedback(N_("The reply is empty."), ok=False)
    if not settings.support_address:
        return Feedback(
            N_("No support address is set: add support_address to rules.yaml."), ok=False
        )

    with session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return Feedback(N_("Ticket #{number} not found."), {"number": number}, ok=False)

        owner = claim(session, ticket.id, actor.name)
        if owner.outcome == ClaimOutcome.HELD_BY_OTHER:
            refusal = held_by_other(number, owner.owner, owner.claimed_at)
            return refusal_with_recent_reply(session, ticket, owner.owner or "", refusal)

        try:
            request = build_reply_request(session, ticket, settings, text, agent_name=actor.name)
            email = compose_reply(request)
        except ComposeError as error:
            logger.warning("ticket #%d: reply by %s not composed: %s", number, actor.name, error)
            return Feedback(
                N_("The reply could not be composed: {reason}"), {"reason": str(error)}, ok=False
            )

        reply = store_outgoing_email(
            session,
            ticket,
            settings,
            request,
            email,
            kind=MessageKind.AGENT_REPLY,
            author=actor.name,
        )
        enqueue_follow_up(session, ticket, reply)
        enqueue_email(session, ticket, reply, email.sender, list(email.recipients))
        record_event(session, ticket, actor.name, "reply_queued", message_row_id=reply.id)
        if owner.outcome == ClaimOutcome.CLAIMED:
            enqueue_card_update(session, ticket)
        held = check_new_reply(session, ticket, reply, actor.name)
        if held is not None:
            return held.feedback()

    logger.info("ticket #%d: reply %s by %s queued", number, email.message_id, actor.name)
    return Feedback(N_("Reply to ticket #{number} queued for sending."), {"number": number})


def reply_refusal(
    session_factory: sessionmaker[Session], actor: Actor, number: int
) -> Feedback | None:
    """Return why `actor` cannot reply to ticket `number` now, or None when they can.

    Checked before a typed reply waits out its undo window, so that no agent is
    told a reply is on its way that will then be refused.
    """
    if not actor.works_tickets:
        return Feedback(N_("Only support agents can write to customers."), ok=False)
    with session_factory() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return Feedback(N_("Ticket #{number} not found."), {"number": number}, ok=False)
        if ticket.assignee is not None and ticket.assignee != actor.name:
            refusal = held_by_other(number, ticket.assignee, ticket.assigned_at)
            return refusal_with_recent_reply(session, ticket, ticket.assignee, refusal)
    return None


def build_reply_request(
    session: Session,
    ticket: Ticket,
    settings: ReplySettings,
    text: str,
    *,
    agent_name: str | None,
    is_automatic: bool = False,
) -> ReplyRequest:
    """Describe an email to the ticket's customer, threaded under their latest message.

    An automatic reply (`is_automatic`) carries no agent's name and is marked
    with Auto-Submitted: auto-replied.
    """
    messages = session.scalars(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)
    ).all()
    latest = _latest_customer_message(messages)
    customer_address = _customer_address(ticket, latest)

    return ReplyRequest(
        ticket_number=ticket.number,
        ticket_subject=ticket.subject,
        customer_subject=latest.subject if latest else None,
        support_address=settings.support_address,
        support_name=settings.support_name,
        agent_name=agent_name,
        to=[Address(name=ticket.customer.name, address=customer_address)],
        cc=_ticket_cc(messages),
        text=text,
        in_reply_to=latest.message_id if latest else None,
        references=[message.message_id for message in messages if message.message_id],
        message_id=make_message_id(address_domain(settings.support_address)),
        own_addresses=sorted(settings.own_addresses),
        is_automatic=is_automatic,
    )


def _latest_customer_message(messages: Sequence[Message]) -> Message | None:
    """Return the customer's latest real email: automatic mail and bounces get no reply."""
    for message in reversed(messages):
        if message.direction == Direction.INBOUND and message.kind == MessageKind.CUSTOMER:
            return message
    return None


def _ticket_cc(messages: Sequence[Message]) -> list[Address]:
    """Return everyone the customer copied on the ticket so far, as help desks keep a ticket's Cc.

    Our own addresses and duplicates are removed when the email is composed.
    """
    copied: list[Address] = []
    for message in messages:
        if message.direction == Direction.INBOUND and message.kind == MessageKind.CUSTOMER:
            copied.extend(Address(entry.get("name", ""), entry["address"]) for entry in message.cc)
    return copied


def _customer_address(ticket: Ticket, latest: Message | None) -> str:
    if latest is not None and latest.from_address:
        return latest.from_address
    return ticket.customer.addresses[0].address


def store_outgoing_email(
    session: Session,
    ticket: Ticket,
    settings: ReplySettings,
    request: ReplyRequest,
    email: OutgoingEmail,
    *,
    kind: MessageKind,
    author: str,
) -> Message:
    """Store a composed email on its ticket, its bytes in the blob store, as queued for sending."""
    reply = Message(
        ticket_id=ticket.id,
        direction=Direction.OUTBOUND,
        kind=kind,
        message_id=email.message_id,
        subject=_header(email, "Subject"),
        author=author,
        from_name=request.agent_name or request.support_name,
        from_address=settings.support_address,
        to=[address.as_dict() for address in request.to],
        cc=[address.as_dict() for address in request.cc],
        full_text=request.text,
        visible_text=request.text,
        raw_sha256=settings.blobs.put(email.data),
        raw_size=len(email.data),
        delivery_state="queued",
        sent_at=email.sent_at,
        received_at=utcnow(),
    )
    session.add(reply)
    session.flush()
    ticket.updated_at = utcnow()
    return reply


def _header(email: OutgoingEmail, name: str) -> str:
    headers = BytesHeaderParser(policy=default).parsebytes(email.data)
    return str(headers.get(name, ""))
