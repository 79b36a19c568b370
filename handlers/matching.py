"""Decide which ticket an inbound email belongs to.

The order follows how mail clients keep conversations together: the
Message-IDs in References and In-Reply-To name a message we stored or sent;
failing that, the `[#N]` tag in the subject, which is trusted only from an
address of that ticket's customer, since anyone could type a ticket number.
A bounce belongs to the ticket whose outgoing mail it reports.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from mailbridge.classify import Classification, MailKind
from mailbridge.message import ParsedMessage
from store.models import Ticket, TicketStatus
from store.tickets import (
    customer_owns_address,
    find_customer_id,
    find_ticket_by_message_ids,
    find_ticket_by_number,
    latest_ticket_id,
    ticket_ids_by_message_id,
)

logger = logging.getLogger(__name__)

# How far back an auto-reply without threading headers may find its sender's ticket.
AUTO_REPLY_WINDOW = timedelta(days=1)

TICKET_TAG = re.compile(r"\[#(\d{1,12})\]")

# Built once, because building the statement on every call cost more than running it.
_RECENT_OPEN_TICKET = (
    select(Ticket)
    .where(
        Ticket.customer_id == bindparam("customer_id"),
        Ticket.status != TicketStatus.CLOSED,
        Ticket.updated_at >= bindparam("since"),
    )
    .order_by(Ticket.updated_at.desc())
    .limit(1)
)


class MatchReason(StrEnum):
    BOUNCED_MESSAGE = "bounced-message"
    REFERENCES = "references"
    IN_REPLY_TO = "in-reply-to"
    SUBJECT_TAG = "subject-tag"
    RECENT_TICKET_OF_SENDER = "recent-ticket-of-sender"
    NONE = "none"


@dataclass(frozen=True)
class Match:
    ticket: Ticket | None
    reason: MatchReason


def find_ticket(
    session: Session,
    parsed: ParsedMessage,
    classification: Classification,
    received_at: datetime,
) -> Match:
    """Return the ticket the message continues, or a Match without a ticket."""
    if classification.kind == MailKind.BOUNCE and classification.bounce is not None:
        bounced = find_ticket_by_message_ids(session, classification.bounce.original_message_ids)
        if bounced is not None:
            return Match(bounced, MatchReason.BOUNCED_MESSAGE)

    # One query looks up the Message-IDs of both headers, and References wins over In-Reply-To.
    known = ticket_ids_by_message_id(session, [*parsed.references, *parsed.in_reply_to])
    for message_ids, reason in (
        (parsed.references, MatchReason.REFERENCES),
        (parsed.in_reply_to, MatchReason.IN_REPLY_TO),
    ):
        ticket_id = latest_ticket_id(message_ids, known)
        if ticket_id is not None:
            return Match(session.get_one(Ticket, ticket_id), reason)

    tagged = _find_ticket_by_subject_tag(session, parsed)
    if tagged is not None:
        return Match(tagged, MatchReason.SUBJECT_TAG)

    if classification.kind == MailKind.AUTO_REPLY:
        recent = _find_recent_ticket_of_sender(session, parsed.sender.address, received_at)
        if recent is not None:
            return Match(recent, MatchReason.RECENT_TICKET_OF_SENDER)

    return Match(None, MatchReason.NONE)


def _find_recent_ticket_of_sender(
    session: Session, address: str, received_at: datetime
) -> Ticket | None:
    """Return the sender's ticket active within a day, for an auto-reply without threading headers.

    Out-of-office replies often drop In-Reply-To and the subject tag, yet they
    reply to the mail we sent last. Joining that ticket keeps them from opening
    tickets of their own.
    """
    customer_id = find_customer_id(session, address)
    if customer_id is None:
        return None
    since = received_at - AUTO_REPLY_WINDOW
    return session.scalars(
        _RECENT_OPEN_TICKET, {"customer_id": customer_id, "since": since}
    ).first()


def _find_ticket_by_subject_tag(session: Session, parsed: ParsedMessage) -> Ticket | None:
    for number_text in TICKET_TAG.findall(parsed.subject):
        ticket = find_ticket_by_number(session, int(number_text))
        if ticket is None:
            continue
        if customer_owns_address(ticket.customer, parsed.sender.address):
            return ticket
        logger.info(
            "message %s: subject names ticket #%s but %s is not its customer; not joining",
            parsed.message_id,
            number_text,
            parsed.sender.address,
        )
    return None
