"""The claim: one conditional UPDATE decides a ticket's single owner across all processes.

Each operation is a compare-and-set on the `assignee` column, so two agents
who click Claim at the same moment, in two processes or on two messengers,
cannot both win: the database applies one UPDATE first and the other then
matches no row. The caller owns the transaction.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, Update, case, select, update
from sqlalchemy.orm import Session

from store.models import Ticket, TicketStatus
from store.tickets import record_event
from store.types import utcnow


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    ALREADY_YOURS = "already_yours"
    HELD_BY_OTHER = "held_by_other"
    RELEASED = "released"
    NOT_YOURS = "not_yours"
    TAKEN_OVER = "taken_over"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class ClaimResult:
    outcome: ClaimOutcome
    owner: str | None
    claimed_at: datetime | None
    previous_owner: str | None = None


def claim(session: Session, ticket_id: int, agent: str) -> ClaimResult:
    """Make `agent` the owner if the ticket has none; a new ticket becomes open."""
    status_before = session.scalar(select(Ticket.status).where(Ticket.id == ticket_id))
    if status_before is None:
        return ClaimResult(ClaimOutcome.NOT_FOUND, None, None)

    now = utcnow()
    won = _rows_changed(
        session,
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.assignee.is_(None))
        .values(
            assignee=agent,
            assigned_at=now,
            updated_at=now,
            status=case(
                (Ticket.status == TicketStatus.NEW, TicketStatus.OPEN), else_=Ticket.status
            ),
        )
        .execution_options(synchronize_session=False),
    )

    if won == 1:
        _log(session, ticket_id, agent, "claimed")
        if status_before == TicketStatus.NEW:
            _log(session, ticket_id, agent, "status_changed", old="new", new="open")
        return ClaimResult(ClaimOutcome.CLAIMED, agent, now)

    owner, claimed_at = _current_owner(session, ticket_id)
    if owner == agent:
        return ClaimResult(ClaimOutcome.ALREADY_YOURS, owner, claimed_at)
    return ClaimResult(ClaimOutcome.HELD_BY_OTHER, owner, claimed_at)


def unclaim(session: Session, ticket_id: int, agent: str) -> ClaimResult:
    """Release the ticket if `agent` holds it; the status stays as it is."""
    released = _rows_changed(
        session,
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.assignee == agent)
        .values(assignee=None, assigned_at=None, updated_at=utcnow())
        .execution_options(synchronize_session=False),
    )

    if released == 1:
        _log(session, ticket_id, agent, "unclaimed")
        return ClaimResult(ClaimOutcome.RELEASED, None, None, previous_owner=agent)

    owner, claimed_at = _current_owner(session, ticket_id)
    if owner is None and not _exists(session, ticket_id):
        return ClaimResult(ClaimOutcome.NOT_FOUND, None, None)
    return ClaimResult(ClaimOutcome.NOT_YOURS, owner, claimed_at)


def take_over(
    session: Session, ticket_id: int, agent: str, expected_owner: str | None
) -> ClaimResult:
    """Move the ticket to `agent` if it is still held by `expected_owner`.

    The agent confirmed taking over from the owner they were shown; when the
    owner changed in the meantime, nothing happens and the new owner is
    returned, so nobody takes a ticket from someone they did not see.
    """
    now = utcnow()
    owner_matches = (
        Ticket.assignee.is_(None) if expected_owner is None else Ticket.assignee == expected_owner
    )
    moved = _rows_changed(
        session,
        update(Ticket)
        .where(Ticket.id == ticket_id, owner_matches)
        .values(
            assignee=agent,
            assigned_at=now,
            updated_at=now,
            status=case(
                (Ticket.status == TicketStatus.NEW, TicketStatus.OPEN), else_=Ticket.status
            ),
        )
        .execution_options(synchronize_session=False),
    )

    if moved == 1:
        _log(session, ticket_id, agent, "taken_over", previous_owner=expected_owner)
        return ClaimResult(ClaimOutcome.TAKEN_OVER, agent, now, previous_owner=expected_owner)

    owner, claimed_at = _current_owner(session, ticket_id)
    if owner is None and not _exists(session, ticket_id):
        return ClaimResult(ClaimOutcome.NOT_FOUND, None, None)
    return ClaimResult(ClaimOutcome.HELD_BY_OTHER, owner, claimed_at)


def _rows_changed(session: Session, statement: Update) -> int:
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount


def _current_owner(session: Session, ticket_id: int) -> tuple[str | None, datetime | None]:
    row = session.execute(
        select(Ticket.assignee, Ticket.assigned_at).where(Ticket.id == ticket_id)
    ).first()
    if row is None:
        return None, None
    return row.assignee, row.assigned_at


def _exists(session: Session, ticket_id: int) -> bool:
    return session.scalar(select(Ticket.id).where(Ticket.id == ticket_id)) is not None


def _log(session: Session, ticket_id: int, actor: str, kind: str, **data: object) -> None:
    ticket = session.get(Ticket, ticket_id)
    if ticket is not None:
        record_event(session, ticket, actor, kind, **data)
