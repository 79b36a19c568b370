"""The queue's periodic jobs: remind owners of tickets on hold, close solved tickets, alert on SLA.

Each job is a plain function of (session factory, rules, now), so a test
runs it with a fake clock and the scheduler with the real one. Several workers
may run the jobs at once. A reminder is claimed with one conditional UPDATE,
and tickets to close are locked with SKIP LOCKED (SQLite has a single
writer), so each reminder and each closing happens once.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ScalarSelect, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from handlers.collisions import expire_stale_drafts
from handlers.config import Rules
from handlers.i18n import N_
from handlers.notifications import enqueue_card_update, enqueue_person_notice
from handlers.questions import remind_unanswered_questions
from handlers.sla import change_ticket_status, check_sla
from store.models import Event, Ticket, TicketStatus
from store.post_journal import prune_post_journal

logger = logging.getLogger(__name__)

JOBS_ACTOR = "system:jobs"
BATCH_SIZE = 200
ON_HOLD_REMINDER = N_(
    "Ticket #{number} has been on hold since {since} with no answer from the customer: {subject}"
)


@dataclass(frozen=True)
class JobCounts:
    """Counts of the work that one run of the queue's jobs did."""

    reminders: int
    closed: int
    sla_alerts: int
    question_reminders: int = 0
    expired_drafts: int = 0


def run_queue_jobs(
    session_factory: sessionmaker[Session], rules: Rules, now: datetime
) -> JobCounts:
    """Run every job of the queue once."""
    counts = JobCounts(
        reminders=remind_on_hold(session_factory, rules, now),
        closed=close_solved(session_factory, rules, now),
        sla_alerts=check_sla(session_factory, rules, now),
        question_reminders=remind_unanswered_questions(session_factory, rules, now),
        expired_drafts=expire_stale_drafts(session_factory, now),
    )
    # Housekeeping, not counted: a count wakes the outbox, and this gives it nothing to do.
    prune_post_journal(session_factory, now)
    if counts != JobCounts(0, 0, 0, 0, 0):
        logger.info(
            "queue jobs: %d reminders, %d tickets closed, %d SLA alerts, %d question reminders",
            counts.reminders,
            counts.closed,
            counts.sla_alerts,
            counts.question_reminders,
        )
    return counts


def _on_hold_since() -> ScalarSelect[datetime]:
    """Select the last status change, which for a ticket on hold is when it went on hold."""
    return (
        select(func.max(Event.at))
        .where(Event.ticket_id == Ticket.id, Event.kind == "status_changed")
        .scalar_subquery()
    )


def remind_on_hold(session_factory: sessionmaker[Session], rules: Rules, now: datetime) -> int:
    """Remind the owner of each ticket on hold past `reminders.on_hold_after`; return how many.

    A customer's reply reopens a ticket, so a ticket still on hold has had
    none. Each period on hold gets one reminder: `on_hold_reminded_at` is set
    by a conditional UPDATE, and only the worker whose UPDATE changed the row
    queues the direct message, in the same transaction.
    """
    after = rules.reminders.on_hold_after
    if after is None:
        return 0
    since = func.coalesce(_on_hold_since(), Ticket.updated_at)
    with session_factory() as session:
        due = session.execute(
            select(Ticket.id, since)
            .where(Ticket.status == TicketStatus.ON_HOLD, Ticket.assignee.is_not(None))
            .where(since <= now - after)
            .where(or_(Ticket.on_hold_reminded_at.is_(None), Ticket.on_hold_reminded_at < since))
            .order_by(Ticket.id)
            .limit(BATCH_SIZE)
        ).all()
    return sum(
        _remind(session_factory, ticket_id, on_hold_at, now) for ticket_id, on_hold_at in due
    )


def _remind(
    session_factory: sessionmaker[Session],
    ticket_id: int,
    on_hold_at: datetime,
    now: datetime,
) -> bool:
    """Claim the reminder of one ticket and queue it; return False when another worker has it."""
    with session_factory.begin() as session:
        claimed = session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id, Ticket.status == TicketStatus.ON_HOLD)
            .where(
                or_(
                    Ticket.on_hold_reminded_at.is_(None),
                    Ticket.on_hold_reminded_at < on_hold_at,
                )
            )
            .values(on_hold_reminded_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False
        ticket = session.get(Ticket, ticket_id)
        if ticket is None or ticket.assignee is None:
            return False
        enqueue_person_notice(
            session,
            ticket,
            ticket.assignee,
            ON_HOLD_REMINDER,
            {"number": ticket.number, "subject": ticket.subject[:200]},
            moments={"since": on_hold_at},
            link_thread=True,
        )
    logger.info("ticket #%d: on-hold reminder queued", ticket.number)
    return True


def close_solved(session_factory: sessionmaker[Session], rules: Rules, now: datetime) -> int:
    """Close each ticket solved longer ago than `reminders.close_solved_after`; return how many."""
    after = rules.reminders.close_solved_after
    if after is None:
        return 0
    closed = 0
    with session_factory.begin() as session:
        tickets = session.scalars(
            select(Ticket)
            .where(Ticket.status == TicketStatus.SOLVED, Ticket.solved_at <= now - after)
            .order_by(Ticket.id)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        ).all()
        for ticket in tickets:
            change_ticket_status(session, ticket, TicketStatus.CLOSED, JOBS_ACTOR, rules, now)
            ticket.closed_at = now
            if not ticket.is_silent:
                enqueue_card_update(session, ticket)
            logger.info("ticket #%d: closed, solved since %s", ticket.number, ticket.solved_at)
            closed += 1
    return closed
