"""Listing the queue with filters: mine, unassigned, by status."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.commands import CommandSyntaxError
from handlers.config import Rules
from handlers.queue import DEFAULT_ORDER, QueueFilter, list_tickets, parse_queue_filter
from store.models import Ticket
from tests.intake_support import make_intake


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        (None, QueueFilter()),
        ("mine", QueueFilter(owner="Sveta")),
        ("unassigned", QueueFilter(unassigned=True)),
        ("solved", QueueFilter(statuses=("solved",))),
        ("status:on_hold mine", QueueFilter(owner="Sveta", statuses=("on_hold",))),
        ("решён", QueueFilter(statuses=("solved",))),
    ],
)
def test_filter_parsed(argument: str | None, expected: QueueFilter) -> None:
    assert parse_queue_filter(argument, "Sveta") == expected


def test_unknown_filter_word() -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_queue_filter("urgentest", "Sveta")

    assert raised.value.params == {"word": "urgentest"}


def test_filters_select_tickets(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    intake = make_intake(session_factory, tmp_path / "data")
    intake.seed_ticket(1, "Mine", "a@example.org", "open", [])
    intake.seed_ticket(2, "Free", "b@example.org", "new", [])
    intake.seed_ticket(3, "Done", "c@example.org", "solved", [])
    with session_factory.begin() as session:
        ticket = intake.ticket(1)
        session.merge(ticket).assignee = "Sveta"

    with session_factory() as session:
        mine = [t.number for t in list_tickets(session, parse_queue_filter("mine", "Sveta"))]
        free = [t.number for t in list_tickets(session, parse_queue_filter("unassigned", None))]
        solved = [t.number for t in list_tickets(session, parse_queue_filter("solved", None))]
        default = [t.number for t in list_tickets(session, parse_queue_filter(None, None))]

    assert mine == [1]
    assert free == [2]
    assert solved == [3]
    assert sorted(default) == [1, 2]


def test_queue_order_from_rules(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    intake = make_intake(session_factory, tmp_path / "data")
    base = datetime(2025, 3, 17, 9, 0, tzinfo=UTC)
    seeded = [(1, "low", 0), (2, "urgent", 30), (3, "normal", 10), (4, "urgent", 5)]
    for number, _priority, _minutes in seeded:
        intake.seed_ticket(number, f"Ticket {number}", f"c{number}@example.org", "new", [])
    with session_factory.begin() as session:
        for number, priority, minutes in seeded:
            ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
            ticket.priority = priority
            ticket.last_customer_message_at = base + timedelta(minutes=minutes)
            ticket.created_at = base - timedelta(minutes=minutes)

    def listed(order: tuple[str, ...]) -> list[int]:
        with session_factory() as session:
            tickets = list_tickets(session, parse_queue_filter(None, None), order=order)
            return [ticket.number for ticket in tickets]

    assert listed(DEFAULT_ORDER) == [4, 2, 3, 1]
    assert listed(("waiting",)) == [1, 4, 3, 2]
    assert listed(("created",)) == [2, 3, 4, 1]
    assert Rules().queue_order == list(DEFAULT_ORDER)
