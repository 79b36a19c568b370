"""The collision detector beyond the claim: who is writing a reply, and replies sent too close.

While an agent has a ticket's Reply dialog open, a row in `reply_drafts`
says so; the ticket's card shows it ("Sveta is replying…") and a second
agent who opens the dialog is warned. The row goes when the reply is sent
or the dialog is closed. While the agent types, the dialog reports it
(`touch_draft`) and the row's time moves forward, at most once per
`HEARTBEAT_INTERVAL`. A row whose time is older than `DRAFT_TTL` counts for
nothing and the queue's jobs delete it, so a dialog whose closing was never
reported (a crashed client, a closed browser) leaves the card soon.

When a reply to a ticket is queued within `REPLY_WINDOW` of another agent's
reply to it, the second is held back: its email and its thread post wait
in the outbox in state "held" and the message's delivery_state is "held".
Its author sees the first reply and chooses Send anyway (`release_reply`)
or Discard (`discard_reply`).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, sessionmaker

from handlers.i18n import N_
from handlers.notifications import POST_MESSAGE, SEND_EMAIL, enqueue_card_update
from handlers.people import Actor
from handlers.ticket_actions import Feedback
from store.models import Direction, Message, MessageKind, OutboxItem, ReplyDraft, Ticket
from store.tickets import find_ticket_by_number, record_event
from store.types import utcnow

logger = logging.getLogger(__name__)

# The agent's typing refreshes a draft at most this often, so a fast typist
# costs one write a minute, and the stored time lags the last keystroke by
# less than this.
HEARTBEAT_INTERVAL = timedelta(seconds=60)
# A draft with no sign of life (the opening, a keystroke, a template chosen)
# for this long is a dialog whose closing Slack never reported, such as after
# a crash. Because of the HEARTBEAT_INTERVAL lag, an agent who reads before
# typing has at least four minutes without a keystroke. When they type after
# that, the draft comes back. The queue's jobs run every minute, so the card
# drops a silent draft at most six minutes after its last sign of life.
DRAFT_TTL = timedelta(minutes=5)
# A second agent's reply within this time after the first is held back.
REPLY_WINDOW = timedelta(minutes=2)

HELD = "held"
DISCARDED = "discarded"
HELD_MESSAGE = N_(
    "{author} replied to ticket #{number} at {time}, so your reply is held back. "
    "Read their reply, then send yours anyway or discard it."
)


@dataclass(frozen=True)
class HeldReply:
    """A reply held back, and the earlier reply by another agent that caused it."""

    message_row_id: int
    number: int
    first_author: str
    first_text: str
    first_at: datetime

    def feedback(self) -> Feedback:
        return Feedback(
            HELD_MESSAGE,
            {
                "author": self.first_author,
                "number": self.number,
                "time": self.first_at,
                "held_message": self.message_row_id,
                "first_text": self.first_text,
            },
            ok=False,
        )


def held_reply_of(feedback: Feedback) -> HeldReply | None:
    """Return the held reply that `feedback` reports, or None for any other outcome."""
    if feedback.message != HELD_MESSAGE:
        return None
    params = feedback.params
    return HeldReply(
        message_row_id=int(str(params["held_message"])),
        number=int(str(params["number"])),
        first_author=str(params["author"]),
        first_text=str(params["first_text"]),
        first_at=params["time"],  # type: ignore[arg-type]
    )


# The drafts: who has the Reply dialog open.


def open_draft(
    session_factory: sessionmaker[Session], agent: str, number: int, now: datetime | None = None
) -> list[str] | None:
    """Record that `agent` opened ticket `number`'s Reply dialog.

    Return the other agents replying to it now (empty when none), or None
    when there is no such ticket. Stale drafts of every ticket go first.
    """
    now = now or utcnow()
    expire_stale_drafts(session_factory, now)
    with session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return None
        others = [name for name in active_drafters(session, ticket.id, now) if name != agent]
        if _save_draft(session, ticket.id, agent, now):
            enqueue_card_update(session, ticket)
    logger.info(
        "ticket #%d: %s opened the reply dialog; also replying: %d", number, agent, len(others)
    )
    return others


def _save_draft(session: Session, ticket_id: int, agent: str, now: datetime) -> bool:
    """Insert or refresh the draft; return True when it is new, so the card must show it."""
    draft = session.get(ReplyDraft, (ticket_id, agent))
    if draft is not None:
        draft.opened_at = now
        return False
    try:
        with session.begin_nested():
            session.add(ReplyDraft(ticket_id=ticket_id, agent=agent, opened_at=now))
    except IntegrityError:
        return False  # the same agent opened it twice at once; one row is enough
    return True


class DraftTouch(Enum):
    """The outcome of a sign of life from an open Reply dialog for its draft."""

    KEPT = "kept"  # written less than HEARTBEAT_INTERVAL before, so not written again
    REFRESHED = "refreshed"
    RESTORED = "restored"  # it had expired and been deleted, so it is recorded again
    SENT = "sent"  # the agent's reply was queued after this sign of life, so not restored
    NO_TICKET = "no_ticket"


def touch_draft(
    session_factory: sessionmaker[Session], agent: str, number: int, now: datetime | None = None
) -> DraftTouch:
    """Record that `agent` is still writing in ticket `number`'s Reply dialog at `now`.

    The draft's time moves to `now` only when it is older than
    HEARTBEAT_INTERVAL, so most keystrokes cost one read. A draft that had
    expired comes back, and the card is redrawn to show it again.
    """
    now = now or utcnow()
    with session_factory.begin() as session:
        found = session.execute(
            select(Ticket.id, ReplyDraft.opened_at)
            .outerjoin(
                ReplyDraft, (ReplyDraft.ticket_id == Ticket.id) & (ReplyDraft.agent == agent)
            )
            .where(Ticket.number == number)
        ).first()
        if found is None:
            return DraftTouch.NO_TICKET
        ticket_id, seen_at = found
        if seen_at is None:
            touched = _restore_draft(session, ticket_id, agent, now)
        elif seen_at >= now - HEARTBEAT_INTERVAL or not _refresh_draft(
            session, ticket_id, agent, now
        ):
            touched = DraftTouch.KEPT
        else:
            touched = DraftTouch.REFRESHED
            if seen_at < now - DRAFT_TTL:  # the card stopped showing it, so redraw the card
                _redraw_card(session, ticket_id)
    if touched in (DraftTouch.RESTORED, DraftTouch.SENT):
        logger.info("ticket #%d: reply draft of %s %s by typing", number, agent, touched.value)
    return touched


def _refresh_draft(session: Session, ticket_id: int, agent: str, now: datetime) -> bool:
    """Move the draft's time to `now` and return True, or return False when it is recent.

    The condition is in the UPDATE itself, so of two heartbeats at once, in
    two workers, only one writes.
    """
    result = session.execute(
        update(ReplyDraft)
        .where(
            ReplyDraft.ticket_id == ticket_id,
            ReplyDraft.agent == agent,
            ReplyDraft.opened_at < now - HEARTBEAT_INTERVAL,
        )
        .values(opened_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _restore_draft(session: Session, ticket_id: int, agent: str, now: datetime) -> DraftTouch:
    """Record the draft again after it expired, unless the reply went out after `now`.

    A keystroke's heartbeat waits in the listener's queue, so it may run
    after the Send that came later has removed the draft.

    NOTE: a heartbeat that runs after a later Cancel restores the draft, which
    then shows until DRAFT_TTL passes, since a closing leaves no record.
    """
    sent_later = session.scalar(
        select(Message.id)
        .where(
            Message.ticket_id == ticket_id,
            Message.kind == MessageKind.AGENT_REPLY,
            Message.author == agent,
            Message.created_at >= now,
        )
        .limit(1)
    )
    if sent_later is not None:
        return DraftTouch.SENT
    if _save_draft(session, ticket_id, agent, now):
        _redraw_card(session, ticket_id)
    return DraftTouch.RESTORED


def _redraw_card(session: Session, ticket_id: int) -> None:
    ticket = session.get(Ticket, ticket_id)
    if ticket is not None:
        enqueue_card_update(session, ticket)


def close_draft(session_factory: sessionmaker[Session], agent: str, number: int) -> bool:
    """Forget `agent`'s open Reply dialog of ticket `number`; return True when there was one."""
    with session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return False
        closed = drop_draft(session, ticket, agent)
    if closed:
        logger.info("ticket #%d: %s closed the reply dialog", number, agent)
    return closed


def drop_draft(session: Session, ticket: Ticket, agent: str) -> bool:
    """Delete `agent`'s draft of `ticket` in the caller's transaction, redrawing the card."""
    result = session.execute(
        delete(ReplyDraft).where(ReplyDraft.ticket_id == ticket.id, ReplyDraft.agent == agent)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    enqueue_card_update(session, ticket)
    return True


def active_drafters(session: Session, ticket_id: int, now: datetime | None = None) -> list[str]:
    """Return who has the ticket's Reply dialog open, first opened first; stale drafts skipped."""
    since = (now or utcnow()) - DRAFT_TTL
    query = (
        select(ReplyDraft.agent)
        .where(ReplyDraft.ticket_id == ticket_id, ReplyDraft.opened_at >= since)
        .order_by(ReplyDraft.opened_at, ReplyDraft.agent)
    )
    return list(session.scalars(query).all())


def replying_agents(ticket: Ticket) -> tuple[str, ...]:
    """Return who is replying to `ticket` now, for its card; empty outside a session."""
    session = object_session(ticket)
    if session is None:
        return ()
    return tuple(active_drafters(session, ticket.id))


def expire_stale_drafts(session_factory: sessionmaker[Session], now: datetime | None = None) -> int:
    """Delete drafts older than DRAFT_TTL and redraw their tickets' cards; return how many."""
    cutoff = (now or utcnow()) - DRAFT_TTL
    with session_factory.begin() as session:
        stale = session.execute(
            select(ReplyDraft.ticket_id, ReplyDraft.agent).where(ReplyDraft.opened_at < cutoff)
        ).all()
        if not stale:
            return 0
        session.execute(delete(ReplyDraft).where(ReplyDraft.opened_at < cutoff))
        for ticket_id in sorted({row.ticket_id for row in stale}):
            ticket = session.get(Ticket, ticket_id)
            if ticket is not None:
                enqueue_card_update(session, ticket)
    logger.info("reply drafts: %d stale drafts expired", len(stale))
    return len(stale)


# Replies sent too close to each other.


# How much of the other agent's reply a refused author is shown.
SHOWN_REPLY_CHARACTERS = 500
ANSWERED_BY_OWNER = N_(
    "Ticket #{number} is held by {owner}, who replied to the customer at {time}: {text}"
)


def refusal_with_recent_reply(
    session: Session, ticket: Ticket, owner: str, refusal: Feedback, now: datetime | None = None
) -> Feedback:
    """Add `owner`'s reply to `refusal` when they replied within REPLY_WINDOW.

    An agent whose reply is refused because a colleague took the ticket a
    moment before then reads what the customer was told, so that nothing
    needs to be sent twice.
    """
    now = now or utcnow()
    recent = session.scalars(
        select(Message)
        .where(
            Message.ticket_id == ticket.id,
            Message.kind == MessageKind.AGENT_REPLY,
            Message.author == owner,
            Message.created_at >= now - REPLY_WINDOW,
            Message.delivery_state.not_in([HELD, DISCARDED]),
        )
        .order_by(Message.id.desc())
    ).first()
    if recent is None:
        return refusal
    text = recent.visible_text.strip()
    if len(text) > SHOWN_REPLY_CHARACTERS:
        text = text[:SHOWN_REPLY_CHARACTERS].rstrip() + "…"
    return Feedback(
        ANSWERED_BY_OWNER,
        {"number": ticket.number, "owner": owner, "time": recent.created_at, "text": text},
        ok=False,
    )


def check_new_reply(
    session: Session, ticket: Ticket, reply: Message, agent: str, now: datetime | None = None
) -> HeldReply | None:
    """Finish `agent`'s draft, and hold `reply` back when another agent replied just before.

    Called in the transaction that queued `reply` with its email and thread post.
    """
    drop_draft(session, ticket, agent)
    now = now or utcnow()
    first = session.scalars(
        select(Message)
        .where(
            Message.ticket_id == ticket.id,
            Message.id != reply.id,
            Message.direction == Direction.OUTBOUND,
            Message.kind == MessageKind.AGENT_REPLY,
            Message.author != agent,
            Message.created_at >= now - REPLY_WINDOW,
            Message.delivery_state.not_in([HELD, DISCARDED]),
        )
        .order_by(Message.id.desc())
    ).first()
    if first is None:
        return None
    reply.delivery_state = HELD
    _set_outbox_state(session, reply.id, "pending", HELD)
    record_event(session, ticket, agent, "reply_held", message_row_id=reply.id, first=first.id)
    logger.info(
        "ticket #%d: reply by %s held: %s replied %s before",
        ticket.number,
        agent,
        first.author,
        now - first.created_at,
    )
    return HeldReply(
        reply.id, ticket.number, first.author or "", first.visible_text, first.created_at
    )


def release_reply(
    session_factory: sessionmaker[Session], actor: Actor, message_row_id: int
) -> Feedback:
    """Send a held reply after all ("Send anyway"): its email and thread post go out."""
    with session_factory.begin() as session:
        found = _held_reply(session, actor, message_row_id)
        if isinstance(found, Feedback):
            return found
        message, ticket = found
        message.delivery_state = "queued"
        _set_outbox_state(session, message.id, HELD, "pending")
        record_event(session, ticket, actor.name, "reply_released", message_row_id=message.id)
        number = ticket.number
    logger.info("ticket #%d: held reply %d sent anyway by %s", number, message_row_id, actor.name)
    return Feedback(N_("Reply to ticket #{number} queued for sending."), {"number": number})


def discard_reply(
    session_factory: sessionmaker[Session], actor: Actor, message_row_id: int
) -> Feedback:
    """Drop a held reply ("Discard"): it is kept for the audit log but never sent."""
    with session_factory.begin() as session:
        found = _held_reply(session, actor, message_row_id)
        if isinstance(found, Feedback):
            return found
        message, ticket = found
        message.delivery_state = DISCARDED
        _set_outbox_state(session, message.id, HELD, DISCARDED)
        record_event(session, ticket, actor.name, "reply_discarded", message_row_id=message.id)
        number = ticket.number
    logger.info("ticket #%d: held reply %d discarded by %s", number, message_row_id, actor.name)
    return Feedback(N_("Your reply to ticket #{number} was discarded."), {"number": number})


def _held_reply(
    session: Session, actor: Actor, message_row_id: int
) -> tuple[Message, Ticket] | Feedback:
    """Lock and return the held reply and its ticket, or say why it cannot be decided on."""
    message = session.scalars(
        select(Message).where(Message.id == message_row_id).with_for_update()
    ).first()
    if message is None or message.author != actor.name:
        return Feedback(N_("This held reply is not yours."), ok=False)
    if message.delivery_state != HELD:
        return Feedback(N_("This reply was already sent or discarded."), ok=False)
    return message, message.ticket


def _set_outbox_state(session: Session, message_row_id: int, old: str, new: str) -> None:
    session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.message_row_id == message_row_id,
            OutboxItem.kind.in_([SEND_EMAIL, POST_MESSAGE]),
            OutboxItem.state == old,
        )
        .values(state=new, next_attempt_at=utcnow())
    )
