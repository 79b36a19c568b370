"""SLA targets: when a ticket is due, how close it is, and the one-time alerts about it.

`sla.targets` in rules.yaml gives, per priority, the time to the first
response and to the solution. Both run from the ticket's creation; with
`business_hours_only` they count only the opening hours of `business_hours`.
A ticket within `warn_before` of a target gets a warning, and one past it a
breach alert: each once, in the ticket's support channel, and on its card.

A ticket on hold waits for the customer, so it gets no alerts while on hold,
and its resolution clock stops. When the ticket leaves hold, its resolution
due time moves later by the time it spent on hold, counted like the target.
The first-response target does not stop, because the first reply either
meets it or misses it. Every status change in handlers/ goes through
`change_ticket_status`, which stops and restarts the clock.
"""

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from handlers.business_hours import BusinessHours, next_opening
from handlers.config import Rules
from handlers.digest_business import business_seconds
from handlers.i18n import N_, Translator
from handlers.notifications import enqueue_card_update, enqueue_channel_notice
from handlers.rules_book import RulesBook
from store.models import Ticket, TicketStatus
from store.tickets import change_status

logger = logging.getLogger(__name__)

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"
WARNING = "warning"
BREACH = "breach"
# The statuses in which a ticket is alerted about; on hold, it waits for the customer.
ALERTED_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN)
ACTIVE_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.ON_HOLD)
MAX_DAYS_AHEAD = 400
NO_TIME = timedelta(0)

ALERT_MESSAGES: Mapping[str, str] = {
    f"{FIRST_RESPONSE}:{WARNING}": N_(
        "SLA: ticket #{number} needs its first response by {time}: {subject}"
    ),
    f"{FIRST_RESPONSE}:{BREACH}": N_(
        "SLA: ticket #{number} missed its first-response target ({time}): {subject}"
    ),
    f"{RESOLUTION}:{WARNING}": N_("SLA: ticket #{number} is due to be solved by {time}: {subject}"),
    f"{RESOLUTION}:{BREACH}": N_(
        "SLA: ticket #{number} missed its resolution target ({time}): {subject}"
    ),
}


def add_business_time(hours: BusinessHours, start: datetime, duration: timedelta) -> datetime:
    """Return the moment when `duration` of opening hours has passed since `start`.

    Raises ValueError when the schedule has no opening hours within about a year.
    """
    remaining = duration
    cursor = next_opening(hours, start)
    while cursor is not None:
        closing = _closing_of_range(hours, cursor)
        available = closing - cursor
        if remaining <= available:
            return (cursor + remaining).astimezone(UTC)
        remaining -= available
        cursor = next_opening(hours, closing)
    raise ValueError("business_hours has no opening hours within a year")


def _closing_of_range(hours: BusinessHours, moment: datetime) -> datetime:
    """Return the end of the opening range that `moment` (an open moment) falls in."""
    local = moment.astimezone(hours.zone)
    minute = local.hour * 60 + local.minute
    for start, end in hours.minute_ranges(local.date()):
        if start <= minute < end:
            return _wall_clock(hours, local.date(), end)
    return moment


def _wall_clock(hours: BusinessHours, day: date, minutes: int) -> datetime:
    if minutes >= 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=hours.zone)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=hours.zone)


def counts_business_hours(rules: Rules | None) -> BusinessHours | None:
    """Return the business hours that SLA times are counted in, or None for calendar time."""
    if rules is not None and rules.sla.business_hours_only:
        return rules.business_hours
    return None


def target_moment(rules: Rules, start: datetime, duration: timedelta) -> datetime:
    """Return `start` plus `duration`, counted in business hours with `business_hours_only`."""
    hours = counts_business_hours(rules)
    if hours is not None:
        return add_business_time(hours, start, duration)
    return start + duration


def due_times(
    rules: Rules, priority: str, start: datetime, resolution_paused: timedelta = NO_TIME
) -> dict[str, datetime | None]:
    """Return the ticket columns of the due times for `priority`, counted from `start`.

    `resolution_paused` is the hold time that has already moved the resolution target.
    """
    target = rules.sla.targets.get(priority)  # type: ignore[call-overload]
    first = target.first_response if target is not None else None
    resolution = target.resolution if target is not None else None
    return {
        "first_response_due_at": target_moment(rules, start, first) if first else None,
        "resolution_due_at": (
            target_moment(rules, start, resolution + resolution_paused) if resolution else None
        ),
    }


def new_ticket_due_times(rules_book: RulesBook | None, ticket: Mapping[str, Any]) -> dict[str, Any]:
    """Return the due-time columns of a ticket about to be inserted (intake's row `ticket`).

    A ticket opened by automatic mail (intake leaves its
    `last_customer_message_at` empty) gets no targets, because nobody is
    waiting for an answer to an out-of-office reply. The customer's first
    own message starts them (`start_first_response_clock`).
    """
    if rules_book is None or not rules_book.current.sla.targets:
        return {}
    if ticket.get("last_customer_message_at") is None:
        return {"first_response_due_at": None, "resolution_due_at": None}
    priority = str(ticket.get("priority") or "normal")
    return due_times(rules_book.current, priority, ticket["created_at"])


def start_first_response_clock(ticket: Ticket, rules: Rules | None, since: datetime) -> None:
    """Give a ticket that had only automatic mail its SLA targets, counted from `since`.

    `since` is when the customer's own first message arrived: from then on
    someone waits for an answer.
    """
    if rules is None or not rules.sla.targets:
        return
    due = due_times(rules, ticket.priority, since)
    if ticket.first_response_at is None:
        ticket.first_response_due_at = due["first_response_due_at"]
    if ticket.resolution_due_at is None:
        ticket.resolution_due_at = due["resolution_due_at"]


def refresh_due_times(ticket: Ticket, rules: Rules | None) -> None:
    """Set the ticket's due times for its (new) priority; a changed target may alert again."""
    if rules is None:
        return
    paused = timedelta(seconds=ticket.resolution_paused_seconds or 0)
    due = due_times(rules, ticket.priority, ticket.created_at, paused)
    if ticket.last_customer_message_at is None:  # only automatic mail: see new_ticket_due_times
        due = {"first_response_due_at": None, "resolution_due_at": None}
    before = (ticket.first_response_due_at, ticket.resolution_due_at)
    ticket.first_response_due_at = due["first_response_due_at"]
    ticket.resolution_due_at = due["resolution_due_at"]
    if before != (ticket.first_response_due_at, ticket.resolution_due_at):
        ticket.sla_alerts = []


def change_ticket_status(
    session: Session,
    ticket: Ticket,
    status: TicketStatus,
    actor: str,
    rules: Rules | None,
    now: datetime,
) -> None:
    """Set the ticket's status, stopping the resolution clock on hold and restarting it after.

    This is the one way handlers change a status, so that no path in or out
    of hold (a status command, a customer's reply, a job) misses the clock.
    `now` is the moment of the change. `rules` decide whether hold time
    counts opening hours only. Without rules, hold time is calendar time.
    """
    previous = ticket.status
    change_status(session, ticket, status, actor)
    if previous == status:
        return
    if status == TicketStatus.ON_HOLD:
        pause_resolution_clock(ticket, now)
    elif previous == TicketStatus.ON_HOLD:
        resume_resolution_clock(ticket, rules, now)


def pause_resolution_clock(ticket: Ticket, now: datetime) -> None:
    """Stop the resolution clock of a ticket going on hold, unless it is stopped already."""
    if ticket.resolution_paused_at is None:
        ticket.resolution_paused_at = now


def resume_resolution_clock(ticket: Ticket, rules: Rules | None, now: datetime) -> None:
    """Restart the resolution clock, moving the resolution due time by the time spent on hold.

    The alerts already posted stay posted and are not repeated. The clock
    goes on where it stopped, so a ticket warned before its hold has as
    little time left after it, and one breached before it is still breached.
    """
    paused_at = ticket.resolution_paused_at
    if paused_at is None:
        return
    ticket.resolution_paused_at = None
    on_hold = hold_time(rules, paused_at, now)
    if on_hold <= NO_TIME:
        return

    ticket.resolution_paused_seconds = (ticket.resolution_paused_seconds or 0) + int(
        on_hold.total_seconds()
    )
    due = ticket.resolution_due_at
    if due is None:
        return
    if rules is None:
        ticket.resolution_due_at = due + on_hold
    else:
        ticket.resolution_due_at = target_moment(rules, due, on_hold)
    logger.info(
        "ticket #%d: resolution due moved from %s to %s after %s on hold",
        ticket.number,
        due.isoformat(),
        ticket.resolution_due_at.isoformat(),
        on_hold,
    )


def hold_time(rules: Rules | None, start: datetime, end: datetime) -> timedelta:
    """Return the time on hold from `start` to `end` that the resolution target counts.

    The result is whole seconds. With `business_hours_only`, only the seconds
    within opening hours count.
    """
    if end <= start:
        return NO_TIME
    hours = counts_business_hours(rules)
    if hours is not None:
        return timedelta(seconds=business_seconds(hours, start, end))
    return timedelta(seconds=round((end - start).total_seconds()))


def due_states(ticket: Ticket, warn_before: timedelta, now: datetime) -> dict[str, str]:
    """Return the state (warning or breach) of each target the ticket is close to or past."""
    states: dict[str, str] = {}
    targets = {
        FIRST_RESPONSE: ticket.first_response_due_at if ticket.first_response_at is None else None,
        RESOLUTION: ticket.resolution_due_at,
    }
    for kind, due in targets.items():
        if due is None:
            continue
        if now >= due:
            states[kind] = BREACH
        elif now >= due - warn_before:
            states[kind] = WARNING
    return states


def check_sla(session_factory: sessionmaker[Session], rules: Rules, now: datetime) -> int:
    """Post each SLA warning and breach that is due and not posted yet; return how many.

    The tickets are locked (SKIP LOCKED on PostgreSQL; SQLite has one writer),
    so several workers post each alert once.
    """
    if not rules.sla.targets:
        return 0
    warn_before = rules.sla.warn_before or timedelta(0)
    horizon = now + warn_before
    translator = Translator(rules.locale, rules.timezone)
    posted = 0
    with session_factory.begin() as session:
        query = (
            select(Ticket)
            .where(Ticket.status.in_(ALERTED_STATUSES), Ticket.is_silent.is_(False))
            .where(
                or_(
                    and_(
                        Ticket.first_response_at.is_(None),
                        Ticket.first_response_due_at <= horizon,
                    ),
                    Ticket.resolution_due_at <= horizon,
                )
            )
            .order_by(Ticket.id)
            .with_for_update(skip_locked=True)
        )
        for ticket in session.scalars(query):
            posted += _alert(session, ticket, warn_before, now, translator)
    return posted


def _alert(
    session: Session, ticket: Ticket, warn_before: timedelta, now: datetime, t: Translator
) -> int:
    """Queue the alerts of `ticket` not posted before, and record them; return how many."""
    done = set(ticket.sla_alerts or [])
    new = [
        f"{kind}:{state}"
        for kind, state in due_states(ticket, warn_before, now).items()
        if f"{kind}:{state}" not in done
    ]
    for alert in new:
        kind = alert.split(":", 1)[0]
        due = ticket.first_response_due_at if kind == FIRST_RESPONSE else ticket.resolution_due_at
        assert due is not None
        params: dict[str, str | int] = {
            "number": ticket.number,
            "time": t.datetime(due),
            "subject": ticket.subject[:200],
        }
        # An empty channel is the default support channel.
        enqueue_channel_notice(
            session, ticket, ticket.channel or "", ALERT_MESSAGES[alert], params, link_thread=True
        )
        logger.info("ticket #%d: SLA %s", ticket.number, alert)
    if new:
        ticket.sla_alerts = [*(ticket.sla_alerts or []), *new]
        enqueue_card_update(session, ticket)
    return len(new)


def sla_card_lines(ticket: Ticket, t: Translator) -> dict[str, str]:
    """Return the card's lines about its targets: when each is due, and if it is close or past."""
    lines: dict[str, str] = {}
    if ticket.status not in ACTIVE_STATUSES:
        return lines
    alerts = set(ticket.sla_alerts or [])
    if ticket.first_response_at is None and ticket.first_response_due_at is not None:
        lines["sla_first_response"] = t.gettext(
            "First response due: {time}{flag}",
            time=t.datetime(ticket.first_response_due_at),
            flag=_flag(alerts, FIRST_RESPONSE, t),
        )
    if ticket.status == TicketStatus.ON_HOLD and ticket.resolution_paused_at is not None:
        if ticket.resolution_due_at is not None:
            lines["sla_resolution"] = t.gettext(
                "Resolution due: paused while the ticket waits for the customer"
            )
    elif ticket.resolution_due_at is not None:
        lines["sla_resolution"] = t.gettext(
            "Resolution due: {time}{flag}",
            time=t.datetime(ticket.resolution_due_at),
            flag=_flag(alerts, RESOLUTION, t),
        )
    return lines


def _flag(alerts: set[str], kind: str, t: Translator) -> str:
    if f"{kind}:{BREACH}" in alerts:
        return " " + t.gettext("(overdue)")
    if f"{kind}:{WARNING}" in alerts:
        return " " + t.gettext("(due soon)")
    return ""
