"""A hand-built desk with known digest numbers for Sunday 29 March 2026 in Europe/Berlin.

That Sunday the clocks in Berlin go from 02:00 to 03:00, so the day runs from
2026-03-28 23:00 to 2026-03-29 22:00 UTC (23 hours). The answers the tests
expect are written beside the rows that produce them.
"""

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from store.models import Customer, Event, Message, Question, Ticket, TicketTag

TIMEZONE = "Europe/Berlin"
DAY = date(2026, 3, 29)
AGENTS = ["Anna", "Boris", "Vera"]  # Vera sends no reply
# After the period: the SLA breaches are counted up to here.
NOW = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)

RULES_YAML = """\
locale: {locale}
timezone: Europe/Berlin
agents:
  - {{name: Anna, slack: U0ANNA, role: agent}}
  - {{name: Boris, slack: U0BORIS, role: agent}}
  - {{name: Vera, slack: U0VERA, role: agent}}
  - {{name: Mila, slack: U0MILA, role: manager}}
slack:
  support_channel: C0SUPPORT
  digest_channel: C0DIGEST
digest:
  daily: "0 8 * * *"
  weekly: "0 9 * * mon"
"""


# Mail that reaches the desk: a person's, or automatic (out-of-office, bounce, list).
INBOUND_KINDS = ("customer", "auto_reply", "bounce", "list")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in March 2026, in UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def build_desk(session_factory: sessionmaker[Session]) -> None:
    """Insert the customers, tickets, messages, events and questions of the fixture."""
    with session_factory.begin() as session:
        customer = Customer(name="Kim", created_at=at(1, 0))
        session.add(customer)
        session.flush()
        for number, spec in enumerate(TICKETS, start=1):
            _add_ticket(session, customer.id, number, spec)
        for department, question in QUESTIONS:
            session.add(Question(department=department, asked_by="Anna", text="?", **question))


def add_tickets(
    session_factory: sessionmaker[Session], specs: list[dict[str, Any]], first_number: int = 100
) -> None:
    """Add tickets written like TICKETS to a desk, numbered from `first_number`."""
    with session_factory.begin() as session:
        customer = Customer(name="Lee", created_at=at(1, 0))
        session.add(customer)
        session.flush()
        for number, spec in enumerate(specs, start=first_number):
            _add_ticket(session, customer.id, number, spec)


def _add_ticket(session: Session, customer_id: int, number: int, spec: dict[str, Any]) -> None:
    fields = dict(spec)
    tags = fields.pop("tags", [])
    ticket_messages = fields.pop("messages", [])
    ticket_events = fields.pop("events", [])
    ticket = Ticket(number=number, customer_id=customer_id, subject=f"T{number}", **fields)
    ticket.updated_at = ticket.created_at
    session.add(ticket)
    session.flush()
    for tag in tags:
        session.add(TicketTag(ticket_id=ticket.id, tag=tag))
    for kind, moment, extra in ticket_messages:
        session.add(_message(ticket.id, kind, moment, **extra))
    for moment, old, new in ticket_events:
        session.add(
            Event(
                ticket_id=ticket.id,
                at=moment,
                actor="Anna",
                kind="status_changed",
                data={"old": old, "new": new},
            )
        )
        session.flush()  # event ids follow their times


def _message(ticket_id: int, kind: str, moment: datetime, **extra: Any) -> Message:
    direction = "inbound" if kind in INBOUND_KINDS else "outbound"
    message = Message(ticket_id=ticket_id, direction=direction, kind=kind, **extra)
    message.received_at = moment
    message.created_at = moment
    if kind in ("agent_reply", "auto_response"):
        message.delivery_state = extra.get("delivery_state", "sent")
        message.delivered_at = moment if message.delivery_state == "sent" else None
    return message


def customer(moment: datetime) -> tuple[str, datetime, dict[str, Any]]:
    return ("customer", moment, {})


def reply(author: str, moment: datetime, **extra: Any) -> tuple[str, datetime, dict[str, Any]]:
    return ("agent_reply", moment, {"author": author, **extra})


def auto(moment: datetime, **extra: Any) -> tuple[str, datetime, dict[str, Any]]:
    """Our auto-reply, sent at `moment` unless `delivery_state` says otherwise."""
    return ("auto_response", moment, extra)


def out_of_office(moment: datetime) -> tuple[str, datetime, dict[str, Any]]:
    """A customer's automatic answer (kind auto_reply), which no person wrote."""
    return ("auto_reply", moment, {"classification": {"kind": "auto_reply", "is_automatic": True}})


TICKETS: list[dict[str, Any]] = [
    # T1: 01:30 local, before the change. First response 3600 s (Anna, late: due 01:00),
    # solved after 18000 s, on time.
    {
        "created_at": at(29, 0, 30),
        "status": "solved",
        "priority": "normal",
        "assignee": "Anna",
        "topic": "billing",
        "tags": ["returns"],
        "first_response_at": at(29, 1, 30),
        "first_response_due_at": at(29, 1, 0),
        "solved_at": at(29, 5, 30),
        "resolution_due_at": at(29, 8, 0),
        "messages": [customer(at(29, 0, 30)), auto(at(29, 0, 31)), reply("Anna", at(29, 1, 30))],
        "events": [(at(29, 1, 30), "new", "open"), (at(29, 5, 30), "open", "solved")],
    },
    # T2: 03:15 local, just after the change. First response 1800 s (Boris, on time);
    # open at the end, resolution due at 20:00 UTC: a breach.
    {
        "created_at": at(29, 1, 15),
        "status": "open",
        "priority": "high",
        "assignee": "Boris",
        "tags": ["returns"],
        "first_response_at": at(29, 1, 45),
        "first_response_due_at": at(29, 2, 0),
        "resolution_due_at": at(29, 20, 0),
        "messages": [
            customer(at(29, 1, 15)),
            auto(at(29, 1, 16)),
            reply("Boris", at(29, 1, 45)),
            reply("Boris", at(29, 2, 0), delivery_state="failed"),
        ],
    },
    # T3: received the day before, solved, reopened twice, solved for good at 12:00 UTC:
    # resolution 93600 s (Anna); due at 11:00, so a breach.
    {
        "created_at": at(28, 10, 0),
        "status": "solved",
        "priority": "normal",
        "assignee": "Anna",
        "topic": "billing",
        "tags": ["returns"],
        "first_response_at": at(28, 10, 10),
        "solved_at": at(29, 12, 0),
        "resolution_due_at": at(29, 11, 0),
        "messages": [
            customer(at(28, 10, 0)),
            auto(at(28, 10, 1)),
            reply("Anna", at(28, 10, 10)),
            customer(at(29, 7, 30)),
            reply("Anna", at(29, 8, 30)),
            customer(at(29, 9, 45)),
        ],
        "events": [
            (at(28, 12, 0), "open", "solved"),
            (at(29, 7, 30), "solved", "open"),
            (at(29, 9, 0), "open", "solved"),
            (at(29, 9, 45), "solved", "open"),
            (at(29, 12, 0), "open", "solved"),
        ],
    },
    # T4: 22:00 local, never answered: first response due 21:00 UTC, a breach. Its
    # auto-reply is still queued, so it was not sent.
    {
        "created_at": at(29, 20, 0),
        "status": "new",
        "priority": "urgent",
        "topic": "shipping",
        "first_response_due_at": at(29, 21, 0),
        "messages": [customer(at(29, 20, 0)), auto(at(29, 20, 1), delivery_state="queued")],
    },
    # T5: spam, 07:00 local: its email is not among the busiest hours.
    {
        "created_at": at(29, 5, 0),
        "status": "spam",
        "priority": "normal",
        "messages": [customer(at(29, 5, 0))],
    },
    # T6: 08:00 local, first response 600 s (Anna), on hold at the end.
    {
        "created_at": at(29, 6, 0),
        "status": "on_hold",
        "priority": "normal",
        "assignee": "Anna",
        "first_response_at": at(29, 6, 10),
        "messages": [customer(at(29, 6, 0)), reply("Anna", at(29, 6, 10))],
    },
    # T7: 11:00 local, first response 7200 s (Anna), owned by Boris, solved after
    # 21600 s and closed; resolution due 12:00 UTC, a breach.
    {
        "created_at": at(29, 9, 0),
        "status": "closed",
        "priority": "low",
        "assignee": "Boris",
        "tags": ["login"],
        "first_response_at": at(29, 11, 0),
        "solved_at": at(29, 15, 0),
        "closed_at": at(29, 16, 0),
        "resolution_due_at": at(29, 12, 0),
        "messages": [customer(at(29, 9, 0)), reply("Anna", at(29, 11, 0))],
    },
    # T8: the day before; open at the period's end, solved the next morning.
    {
        "created_at": at(28, 8, 0),
        "status": "solved",
        "priority": "low",
        "assignee": "Boris",
        "tags": ["login"],
        "solved_at": at(30, 9, 0),
        "messages": [customer(at(28, 8, 0)), customer(at(28, 22, 59))],
        "events": [(at(28, 9, 0), "new", "open"), (at(30, 9, 0), "open", "solved")],
    },
    # T9: after the period; counts nowhere.
    {
        "created_at": at(30, 7, 0),
        "status": "new",
        "priority": "high",
        "tags": ["returns"],
        "messages": [customer(at(30, 7, 0))],
    },
]

QUESTIONS: list[tuple[str, dict[str, Any]]] = [
    ("accounting", {"ticket_id": 2, "asked_at": at(29, 10, 0)}),
    ("legal", {"ticket_id": 2, "asked_at": at(29, 11, 0), "answered_at": at(30, 7, 0)}),
    ("accounting", {"ticket_id": 3, "asked_at": at(29, 12, 0), "answered_at": at(29, 13, 0)}),
    ("accounting", {"ticket_id": 3, "asked_at": at(30, 7, 30)}),
]

# The expected answers for DAY.
RECEIVED = 5
SOLVED = 3
SPAM = 1
AUTO_REPLIES = 2
BACKLOG = {("open", "high"): 1, ("new", "urgent"): 1, ("on_hold", "normal"): 1, ("open", "low"): 1}
# First responses: Anna 600, 3600, 7200; Boris 1800.
TEAM_FIRST_RESPONSE = (4, 2700.0, 6120.0)
ANNA_FIRST_RESPONSE = (3, 3600.0, 6480.0)
BORIS_FIRST_RESPONSE = (1, 1800.0, 1800.0)
# Resolutions: Anna 18000, 93600; Boris 21600.
TEAM_RESOLUTION = (3, 21600.0, 79200.0)
ANNA_RESOLUTION = (2, 55800.0, 86040.0)
BORIS_RESOLUTION = (1, 21600.0, 21600.0)
REPLIES = {"Anna": 4, "Boris": 1, "Vera": 0}
TAGS = [("returns", 2, 1), ("login", 1, 1)]
TOPICS = [("billing", 1, 1), ("shipping", 1, 0)]
# Sunday (weekday 6), local hour -> customer messages, not counting T5's spam at 07:00
LOAD_SUNDAY = {1: 1, 3: 1, 8: 1, 9: 1, 11: 2, 22: 1}
FIRST_RESPONSE_BREACHES = 2
RESOLUTION_BREACHES = 3
UNANSWERED = {"accounting": 1, "legal": 1}
