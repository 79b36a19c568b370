"""What agents do to a ticket from any messenger: claim, release, take over, comment, set status.

Each use case checks who acts, changes the ticket in one transaction with
its audit event and the messenger work it causes (card updates, thread posts,
direct messages), and returns `Feedback` for the person who acted, worded
later in that person's language.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from handlers.config import Rules
from handlers.i18n import N_, Translator
from handlers.labels import PRIORITY_LABELS, STATUS_LABELS
from handlers.notifications import (
    enqueue_card_update,
    enqueue_follow_up,
    enqueue_person_notice,
    enqueue_ticket_card,
)
from handlers.people import Actor
from handlers.sla import change_ticket_status, refresh_due_times
from store.claims import ClaimOutcome, claim, take_over, unclaim
from store.models import Direction, Message, MessageKind, Priority, Ticket, TicketStatus
from store.tickets import find_ticket_by_number, record_event
from store.types import utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Feedback:
    """The message to the person who acted: a catalogue message id and its parameters."""

    message: str
    params: Mapping[str, object] = field(default_factory=dict)
    ok: bool = True

    def render(self, translator: Translator) -> str:
        values = {
            name: translator.datetime(value) if isinstance(value, datetime) else value
            for name, value in self.params.items()
        }
        for name in ("status", "priority"):
            if isinstance(values.get(name), str):
                labels = STATUS_LABELS if name == "status" else PRIORITY_LABELS
                values[name] = translator.gettext(labels.get(str(values[name]), str(values[name])))
        return translator.gettext(self.message, **values)


def refusal_for_stranger() -> Feedback:
    return Feedback(
        N_(
            "Sorry, you are not on this helpdesk's list of people, so threaddesk cannot act "
            "for you. Ask an admin to add you to rules.yaml."
        ),
        ok=False,
    )


def _refuse_non_staff(actor: Actor) -> Feedback | None:
    if actor.works_tickets:
        return None
    return Feedback(
        N_("Only support agents can do this; colleagues from {department} can read and comment."),
        {"department": actor.department or "-"},
        ok=False,
    )


def _not_found(number: int) -> Feedback:
    return Feedback(N_("Ticket #{number} not found."), {"number": number}, ok=False)


def claim_ticket(session_factory: sessionmaker[Session], actor: Actor, number: int) -> Feedback:
    refusal = _refuse_non_staff(actor)
    if refusal is not None:
        return refusal

    with session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return _not_found(number)
        result = claim(session, ticket.id, actor.name)
        if result.outcome == ClaimOutcome.CLAIMED:
            enqueue_card_update(session, ticket)

    logger.info("ticket #%d: claim by %s: %s", number, actor.name, result.outcome)
    if result.outcome == ClaimOutcome.CLAIMED:
        return Feedback(N_("You claimed ticket #{number}."), {"number": number})
    if result.outcome == ClaimOutcome.ALREADY_YOURS:
        return Feedback(N_("Ticket #{number} is already yours."), {"number": number})
    return held_by_other(number, result.owner, result.claimed_at)


def held_by_other(number: int, owner: str | None, claimed_at: datetime | None) -> Feedback:
    return Feedback(
        N_("Ticket #{number} is held by {owner} since {time}."),
        {"number": number, "owner": owner or "-", "time": claimed_at or utcnow()},
        ok=False,
    )


def unclaim_ticket(session_factory: sessionmaker[Session], actor: Actor, number: int) -> Feedback:
    refusal = _refuse_non_staff(actor)
    if refusal is not None:
        return refusal

    with session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return _not_found(number)
        result = unclaim(session, ticket.id, actor.name)
        if result.outcome == ClaimOutcome.RELEASED:
            enqueue_card_update(session, ticket)

    if result.outcome == ClaimOutcome.RELEASED:
        return Feedback(N_("You released ticket #{number}."), {"number": number})
    if result.owner is None:
        return Feedback(N_("Ticket #{number} has no owner."), {"number": number}, ok=False)
    return held_by_other(number, result.owner, result.claimed_at)


def take_over_ticket(
    session_factory: sessionmaker[Session], actor: Actor, number: int, expected_owner: str | None
) -> Feedback:
    """Move the ticket to `actor` from the owner they confirmed, and tell that owner."""
    refusal = _refuse_non_staff(actor)
    if refusal is not None:
        return refusal
    if expected_owner == actor.name:
        # The owner clicked Take over on their own ticket's card: nothing moves.
        return Feedback(N_("Ticket #{number} is already yours."), {"number": number})

    with session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return _not_found(number)
        result = take_over(session, ticket.id, actor.name, expected_owner)
        if result.outcome == ClaimOutcome.TAKEN_OVER:
            enqueue_card_update(session, ticket)
            if expected_owner and expected_owner != actor.name:
                enqueue_person_notice(
                    session,
                    ticket,
                    expected_owner,
                    N_("{name} took over ticket #{number} from you."),
                    {"name": actor.name, "number": number},
                )

    if result.outcome == ClaimOutcome.TAKEN_OVER:
        logger.info("ticket #%d: %s took over from %s", number, actor.name, expected_owner)
        return Feedback(N_("You took over ticket #{number}."), {"number": number})
    return held_by_other(number, result.owner, result.claimed_at)


def add_note(
    session_factory: sessionmaker[Session],
    actor: Actor,
    number: int,
    text: str,
    origin: str | None = None,
) -> Feedback:
    """Store an internal comment and show it in every messenger but the one it was written in."""
    if not text.strip():
        return Feedback(N_("The comment is empty."), ok=False)

    with session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return _not_found(number)
        note = store_internal_message(session, ticket, actor, text)
        enqueue_follow_up(session, ticket, note, skip_messenger=origin)

    return Feedback(N_("Comment added to ticket #{number}."), {"number": number})


def store_internal_message(session: Session, ticket: Ticket, actor: Actor, text: str) -> Message:
    note = Message(
        ticket_id=ticket.id,
        direction=Direction.INTERNAL,
        kind=MessageKind.NOTE,
        author=actor.name,
        from_name=actor.name,
        full_text=text,
        visible_text=text,
        sent_at=utcnow(),
    )
    session.add(note)
    session.flush()
    record_event(session, ticket, actor.name, "note_added", message_row_id=note.id)
    return note


def set_status(
    session_factory: sessionmaker[Session],
    actor: Actor,
    number: int,
    status: str,
    rules: Rules | None = None,
    now: datetime | None = None,
) -> Feedback:
    """Set the status; `rules` decide how a hold moves the resolution due time (see sla.py)."""
    if status not in set(TicketStatus):
        return Feedback(N_("Unknown status {value}."), {"value": status}, ok=False)
    moment = now or utcnow()

    def apply(session: Session, ticket: Ticket) -> None:
        was_spam = ticket.status == TicketStatus.SPAM
        change_ticket_status(session, ticket, TicketStatus(status), actor.name, rules, moment)
        if was_spam and status != TicketStatus.SPAM and not ticket.is_silent:
            # A ticket taken in as spam was never posted; now it needs its card.
            enqueue_ticket_card(session, ticket)

    failure = _change_ticket(session_factory, actor, number, apply)
    if failure is not None:
        return failure
    return Feedback(N_("Ticket #{number} is now {status}."), {"number": number, "status": status})


def set_priority(
    session_factory: sessionmaker[Session],
    actor: Actor,
    number: int,
    priority: str,
    rules: Rules | None = None,
) -> Feedback:
    """Set the priority, and with `rules` the SLA due times that the new priority has."""
    if priority not in set(Priority):
        return Feedback(N_("Unknown priority {value}."), {"value": priority}, ok=False)

    def apply(session: Session, ticket: Ticket) -> None:
        previous = ticket.priority
        ticket.priority = priority
        ticket.updated_at = utcnow()
        refresh_due_times(ticket, rules)
        record_event(session, ticket, actor.name, "priority_changed", old=previous, new=priority)

    failure = _change_ticket(session_factory, actor, number, apply)
    if failure is not None:
        return failure
    return Feedback(
        N_("Ticket #{number} now has {priority} priority."),
        {"number": number, "priority": priority},
    )


def _change_ticket(
    session_factory: sessionmaker[Session],
    actor: Actor,
    number: int,
    apply: Callable[[Session, Ticket], None],
) -> Feedback | None:
    """Apply a staff member's change to ticket `number` and queue its card redraw.

    Returns the refusal when `actor` may not change tickets or the ticket
    does not exist, and None when the change is committed.
    """
    refusal = _refuse_non_staff(actor)
    if refusal is not None:
        return refusal

    with session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return _not_found(number)
        apply(session, ticket)
        enqueue_card_update(session, ticket)
    return None
